"""A multi-platform image: the OCI index over one image per platform, the platforms an
index lists, the emulation check before a build, and whether a build of several
platforms is the latest version again (compared platform by platform).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocirel import emulation
from ocirel.backends.base import find_containerfile
from ocirel.compare import differences
from ocirel.containerfile import emulated_run_stages
from ocirel.errors import BackendError, ConfigError, EmulationError, OcirelError
from ocirel.oci import (
    INDEX_TYPES,
    OCI_INDEX,
    Digest,
    ImageConfig,
    ImageManifest,
    OciImage,
    canonical_json,
    platform_of,
    sha256_digest,
)
from ocirel.publish.request import PublishRequest
from ocirel.publish.unchanged import Decision, Previous, decide

if TYPE_CHECKING:
    from ocirel.registry import Registry


def platform_descriptor(config: ImageConfig) -> dict[str, str]:
    """The ``platform`` of an index entry, from the image's config."""
    found = {"architecture": config.get("architecture", "unknown"), "os": config.get("os", "linux")}
    if config.get("variant"):
        found["variant"] = config["variant"]
    return found


def build_index(images: Sequence[OciImage]) -> ImageManifest:
    """The OCI index listing ``images`` (one per platform) in the order given."""
    manifests: list[dict[str, Any]] = [
        {
            "mediaType": image.manifest.media_type,
            "digest": image.manifest.digest,
            "size": len(image.manifest.body),
            "platform": platform_descriptor(image.config),
        }
        for image in images
    ]
    body = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    return ImageManifest(sha256_digest(body), OCI_INDEX, body)


def index_platforms(index: ImageManifest) -> dict[str, Digest]:
    """Each platform an index lists → its manifest's digest (attestation entries, whose
    platform is ``unknown/unknown``, left out)."""
    found: dict[str, Digest] = {}
    for item in index.document.get("manifests", []):
        platform = item.get("platform") if isinstance(item, dict) else None
        digest = item.get("digest") if isinstance(item, dict) else None
        usable = isinstance(platform, dict) and platform.get("architecture") != "unknown"
        if usable and isinstance(digest, str):
            found[platform_of(platform)] = Digest(digest)  # type: ignore[arg-type]
    return found


def same_platform(requested: str, built: str) -> bool:
    """``linux/arm64`` asked for and ``linux/arm64/v8`` built are the same (os and arch)."""
    return requested.split("/")[:2] == built.split("/")[:2]


def check_platform(requested: str, config: ImageConfig, builder: str) -> None:
    """The image ``builder`` built for ``requested`` must be of that platform."""
    built = platform_of(config)
    if not same_platform(requested, built):
        raise BackendError(
            f"{builder} was asked to build {requested} but built {built}",
            hint="the base image may not exist for that platform (check its platforms with "
            "`ocirel show BASE`), or the layer cache held another platform's step: "
            "publish again with --no-cache",
        )


def check_emulation(
    request: PublishRequest, host: str | None = None, root: Path = emulation.BINFMT_MISC
) -> None:
    """Before building for a foreign platform: RUN steps there run that platform's
    programs, which needs qemu-user registered with binfmt_misc. Without it, fail now
    with the fix (a COPY-only or cross-compiling Containerfile needs none)."""
    foreign = [p for p in request.platforms if emulation.is_foreign(p, host)]
    if not foreign:
        return
    try:
        path = find_containerfile(request.context, request.containerfile)
        stages = emulated_run_stages(path.read_text(encoding="utf-8"), request.target)
    except (OSError, UnicodeDecodeError, ConfigError):
        return  # the build itself says what is wrong with the Containerfile
    if not stages:
        return
    states = [emulation.emulation(platform, host=host, root=root) for platform in foreign]
    missing = [state for state in states if not state.available]
    if missing:
        raise EmulationError(
            f"the Containerfile has RUN steps (stage {', '.join(stages)}) that would run "
            f"{', '.join(e.platform for e in missing)} programs on this "
            f"{host or emulation.host_platform()} host, and no emulator is registered "
            f"({'; '.join(e.detail for e in missing)})",
            hint=emulation.EMULATION_FIX + "; `ocirel doctor` shows the emulation status",
        )


def compare_index(
    registry: Registry,
    request: PublishRequest,
    previous: Previous | None,
    configs: Mapping[str, ImageConfig],
    say: Callable[[str], None],
) -> tuple[Decision, dict[str, Digest]]:
    """A new version, or the latest index again: the same platforms, each with the same
    layers and configuration as the latest version's image for that platform. With the
    decision, the latest index's platforms (for the lockfile, when it is reused)."""
    if request.explicit_tag is not None or request.always_new_version or previous is None:
        return decide(request, previous, {}, say), {}
    manifest = previous.manifest
    if manifest is None or manifest.media_type not in INDEX_TYPES:
        why = previous.skipped or "is a single-platform image"
        return Decision(True, (f"{previous.tag} {why}; this build is an index",)), {}
    before = index_platforms(manifest)
    built = {platform_of(config): config for config in configs.values()}
    if sorted(before) != sorted(built):
        why = f"the platforms differ ({', '.join(sorted(before))} → {', '.join(sorted(built))})"
        return Decision(True, (f"the build differs from {previous.tag}:", why), previous.tag), {}
    reasons = _platform_differences(registry, request, before, built)
    if reasons:
        return Decision(True, (f"the build differs from {previous.tag}:", *reasons)), {}
    return Decision(
        False,
        (f"every platform has the same layers and configuration as {previous.tag} "
         f"({manifest.digest}); reusing it",),
        previous.tag, manifest.digest,
    ), before  # fmt: skip


def _platform_differences(
    registry: Registry,
    request: PublishRequest,
    before: Mapping[str, Digest],
    built: Mapping[str, ImageConfig],
) -> list[str]:
    repo = request.registry_repository
    reasons: list[str] = []
    for platform, digest in before.items():
        try:
            manifest = registry.get_manifest(repo.with_digest(digest))
            old = registry.get_config(repo, manifest)
        except OcirelError as exc:
            reasons.append(f"{platform}: the latest version's image cannot be read ({exc})")
            continue
        reasons += [f"{platform}: {reason}" for reason in differences(built[platform], old)]
    return reasons
