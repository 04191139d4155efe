"""What ``ocirel show REF`` reports: the image a tag, digest or lockfile entry names,
its platforms, the tags pointing at it and its build records."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocirel import lockfile, reference
from ocirel.errors import ConfigError, OcirelError
from ocirel.lockfile import LockEntry
from ocirel.oci import INDEX_TYPES, Digest, platform_of
from ocirel.records.referrers import Attached, build_records
from ocirel.reference import Reference
from ocirel.registry import Registry
from ocirel.versioning import is_referrers_tag

#: more tags than this are not each resolved (``show`` says so)
MAX_TAGS_CHECKED = 500
_WORKERS = 8


@dataclass(frozen=True)
class Target:
    """What REF names: a repository and a digest (and the lockfile entry, if any)."""

    repo: Reference
    digest: Digest | None
    entry: LockEntry | None = None


@dataclass(frozen=True)
class Shown:
    repository: str
    digest: Digest
    media_type: str
    platforms: list[str]
    tags: list[str] | None  # None: too many tags to check each
    records: list[Attached] = field(default_factory=list)
    entry: LockEntry | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "reference": f"{self.repository}@{self.digest}",
            "mediaType": self.media_type,
            "platforms": self.platforms,
            "tags": self.tags,
            "lockEntry": self.entry.name if self.entry else None,
            "records": [r.to_json() for r in self.records],
        }


def target_of(text: str, lock_path: Path) -> Target:
    """REF as a lockfile entry name (when the lockfile has one), else as a reference."""
    if lock_path.is_file():
        entry = lockfile.load(lock_path).entries.get(text)
        if entry is not None and reference.is_layout(entry.repository):
            raise ConfigError(
                f"entry {text!r} lives in the OCI layout {entry.repository}, and build "
                "records live in registries: it has none",
                hint=f"inspect it with: skopeo inspect {entry.repository}:{entry.tag}",
            )
        if entry is not None:
            return Target(reference.parse_repository(entry.repository), entry.digest, entry)
    try:
        ref = reference.parse(text)
    except OcirelError as exc:
        raise ConfigError(
            f"{text!r} is neither an entry of {lock_path} nor an image reference ({exc})",
            hint="give a tag (registry/repo:v3), a digest (registry/repo@sha256:…) "
            "or a lockfile entry name",
        ) from None
    if not ref.tag and not ref.digest:
        raise ConfigError(
            f"{text!r} names a repository, not an image",
            hint=f"add a tag or a digest, e.g. {ref.name}:v1",
        )
    return Target(ref, Digest(ref.digest) if ref.digest else None)


def show(registry: Registry, target: Target) -> Shown:
    ref = target.repo.with_digest(target.digest) if target.digest else target.repo
    info = registry.resolve(ref)
    repo = ref.repo_only()
    return Shown(
        repository=repo.name,
        digest=info.digest,
        media_type=info.media_type,
        platforms=_platforms(registry, repo.with_digest(info.digest), info.media_type),
        tags=_tags_at(registry, repo, info.digest),
        records=build_records(registry, repo, info.digest),
        entry=target.entry,
    )


def _platforms(registry: Registry, ref: Reference, media_type: str) -> list[str]:
    manifest = registry.get_manifest(ref)
    if media_type in INDEX_TYPES:
        found = []
        for item in manifest.document.get("manifests", []):
            platform = item.get("platform") if isinstance(item, dict) else None
            if isinstance(platform, dict) and platform.get("architecture") != "unknown":
                found.append(platform_of(platform))  # type: ignore[arg-type]
        return found
    return [platform_of(registry.get_config(ref.repo_only(), manifest))]


def _tags_at(registry: Registry, repo: Reference, digest: Digest) -> list[str] | None:
    tags = [t for t in registry.list_tags(repo) if not is_referrers_tag(t)]
    if len(tags) > MAX_TAGS_CHECKED:
        return None

    def points_here(tag: str) -> bool:
        try:
            return registry.resolve(repo.with_tag(tag)).digest == digest
        except OcirelError:  # deleted meanwhile, or another manifest type
            return False

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        hits = list(pool.map(points_here, tags))
    return sorted(t for t, hit in zip(tags, hits, strict=True) if hit)
