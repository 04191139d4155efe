"""``ocirel bundle import``: push a bundle into another registry, digests unchanged.

Order, so that an interrupted run can simply be run again and nothing half-done is
ever visible under a tag:

1. **plan**: read the bundle's lockfile and ``index.json``, every manifest (verified
   against its digest) and check every blob is in the bundle with its size;
2. **check tags**: a tag that exists in the target with another digest stops the run
   before anything is pushed (a tag is never moved);
3. **blobs**: each blob is checked first (``HEAD``) and skipped when the target has
   it, mounted from another repository of this import when one has it, else uploaded
   from the bundle through :class:`~ocirel.bundle.transfer.VerifyingReader` (a
   tampered blob fails before its last byte is sent);
4. **manifests** by digest, children before the index (still untagged);
5. **tags**, only once every blob and manifest of every image is in place;
6. **verify**: each tag resolves to the bundle's digest, and every manifest the
   registry serves is byte-identical to the bundle's.

An OCI layout without a lockfile (``publish --image oci:PATH`` writes one) is imported
too: every tagged image, under ``TARGET/NAME`` (:func:`plan_layout`).

Repositories keep their path under the target: ``registry.example.com/team/app``
imported ``--to mirror.local:5000/air`` becomes ``mirror.local:5000/air/team/app``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, cast

from ocirel import lockfile
from ocirel import reference as refs
from ocirel.bundle.bases import Base, base_from_index, is_base
from ocirel.bundle.export import ImagePlan, ManifestSource, plan_image
from ocirel.bundle.layout import (
    LOCK_FILE,
    LOCK_NAME,
    REF_NAME,
    Bundle,
    BundleError,
    Descriptor,
    blob_name,
)
from ocirel.bundle.transfer import Progress, VerifyingReader, run_all
from ocirel.deploy.regmap import normalize_prefix
from ocirel.errors import (
    DigestMismatchError,
    InvalidReferenceError,
    LockfileError,
    RegistryNotFoundError,
    TagConflictError,
)
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest, ImageManifest
from ocirel.reference import Reference
from ocirel.registry import Registry


@dataclass(frozen=True)
class ImportResult:
    entries: tuple[LockEntry, ...]
    blobs: int
    uploaded: int
    bytes: int
    #: source prefix (host) → target: the ``pin --registry-map`` to use
    registry_map: Mapping[str, str]
    #: the base images carried (``bundle export --with-bases``): (source, where now)
    bases: tuple[tuple[Base, Base], ...] = ()


def target_repository(repository: str, target: str) -> Reference:
    """Where ``repository`` goes under ``target`` (``host[:port][/prefix]``)."""
    source = refs.parse_repository(repository)
    try:
        return refs.parse_repository(f"{target}/{source.repository}")
    except InvalidReferenceError as exc:
        raise BundleError(f"cannot import {repository} under {target}: {exc}") from None


def read_lock(bundle: Bundle) -> Lockfile:
    try:
        return lockfile.loads(bundle.read(LOCK_FILE).decode("utf-8"), where=f"{bundle.path}: lock")
    except (UnicodeDecodeError, LockfileError) as exc:
        raise BundleError(f"{bundle.path}: its lockfile is unreadable: {exc}") from None


def bundle_manifests(bundle: Bundle) -> ManifestSource:
    def fetch(_repo: Reference, item: Descriptor) -> ImageManifest:
        manifest = bundle.manifest(item)
        if item.size >= 0 and len(manifest.body) != item.size:
            raise BundleError(f"{bundle.path}: manifest {item.digest} is not {item.size} bytes")
        return manifest

    return fetch


def plan_import(bundle: Bundle, target: str) -> list[ImagePlan]:
    """Every image of the bundle, moved under ``target``; raises before any push when
    the bundle is incomplete, inconsistent or altered."""
    target = normalize_prefix(target, "--to")
    if bundle.size(LOCK_FILE) is None:  # an OCI layout, not a bundle: its tags
        return plan_layout(bundle, target)
    lock = read_lock(bundle)
    by_name = {item.annotations.get(LOCK_NAME): item for item in bundle.index()}
    fetch = bundle_manifests(bundle)
    plans = []
    for name, entry in sorted(lock.entries.items()):
        item = by_name.get(name)
        if item is None or item.digest != entry.digest:
            raise BundleError(
                f"{bundle.path}: index.json has no manifest {entry.digest} for lockfile "
                f"entry {name!r}; the bundle is inconsistent",
                hint="export the bundle again",
            )
        plan = plan_image(entry, target_repository(entry.repository, target), fetch, item)
        plans.append(_check_blobs(bundle, plan, entry.repository))
    return plans


def plan_layout(bundle: Bundle, target: str) -> list[ImagePlan]:
    """Every tagged image of an OCI layout without a lockfile (``publish --image
    oci:PATH`` writes one; skopeo or buildah too): each ``ref.name`` becomes a tag of
    ``TARGET/NAME``, NAME being the descriptor's lockfile name (``org.ocirel.lock.name``)
    or else the layout's directory name. The lockfile gets each NAME's last tag."""
    path = bundle.path.resolve()
    directory = path.with_suffix("") if path.suffix == ".tar" else path
    source = refs.parse_layout(f"{refs.LAYOUT_PREFIX}{directory}")
    fetch = bundle_manifests(bundle)
    plans = []
    for item in bundle.index():
        tag = item.annotations.get(REF_NAME)
        if is_base(item) or not tag:
            continue
        name = item.annotations.get(LOCK_NAME) or source.last_component
        try:
            entry = LockEntry(lockfile.validate_name(name), source.name,
                              refs.validate_tag(tag), item.digest)  # fmt: skip
        except (InvalidReferenceError, LockfileError) as exc:
            raise BundleError(
                f"{bundle.path}: index.json names {tag!r} ({name}), which ocirel cannot import "
                f"as a tag: {exc}",
                hint="import layouts whose ref.name annotations are plain tags (v1, 1.2.0)",
            ) from None
        plan = plan_image(entry, refs.parse_repository(f"{target}/{name}"), fetch, item)
        plans.append(_check_blobs(bundle, plan, f"{name}:{tag}"))
    if not plans:
        raise BundleError(
            f"{bundle.path}: an OCI layout without a lockfile and without tagged images "
            "(no org.opencontainers.image.ref.name annotation): nothing to import",
            hint="publish into it with --image oci:PATH, or name a bundle export",
        )
    return plans


def plan_bases(bundle: Bundle, target: str) -> list[tuple[Base, ImagePlan]]:
    """The base images of the bundle (none unless exported ``--with-bases``), each
    with its plan under ``target``: same path rule, its tag or a derived one."""
    target = normalize_prefix(target, "--to")
    fetch = bundle_manifests(bundle)
    found = []
    for item in bundle.index():
        if not is_base(item):
            continue
        base = base_from_index(item, f"{bundle.path}: index.json")
        plan = plan_image(base.entry(), target_repository(base.repo.name, target), fetch, item)
        found.append((base, _check_blobs(bundle, plan, base.name)))
    return found


def _check_blobs(bundle: Bundle, plan: ImagePlan, what: str) -> ImagePlan:
    for blob in plan.blobs.values():
        if bundle.size(blob_name(blob.digest)) != blob.size:
            raise BundleError(
                f"{bundle.path}: blob {blob.digest} of {what} is missing "
                f"or not {blob.size} bytes; nothing was pushed",
                hint="export the bundle again",
            )
    return plan


def import_bundle(
    registry: Registry,
    bundle: Bundle,
    target: str,
    *,
    progress: Progress | None = None,
    workers: int = 4,
) -> ImportResult:
    """Push ``bundle`` under ``target``, tag, verify; returns the new lockfile entries."""
    progress = progress or Progress()
    plans = plan_import(bundle, target)
    bases = plan_bases(bundle, target)
    every = plans + [plan for _, plan in bases]
    for plan in every:
        _check_tag(registry, plan)
    _push_blobs(registry, bundle, every, progress, workers)
    for plan in every:
        for manifest in plan.manifests:  # children first; untagged
            registry.put_manifest(plan.repo.with_digest(manifest.digest), manifest)
    for plan in every:
        if _check_tag(registry, plan) is None:
            registry.put_tag(plan.repo, plan.entry.tag, plan.top)
    for plan in every:
        _verify(registry, plan)
    # one entry per name: an OCI layout's last tag of each (a bundle has one anyway)
    latest = {plan.entry.name: plan for plan in plans}
    entries = tuple(replace(p.entry, repository=p.repo.name) for p in latest.values())
    moved_bases = tuple((base, replace(base, repo=plan.repo)) for base, plan in bases)
    moved = {
        refs.parse_repository(p.entry.repository).registry: p.repo.registry
        for p in plans
        if not refs.is_layout(p.entry.repository)  # from an OCI layout: no registry to map
    }
    prefix = normalize_prefix(target, "--to")
    blobs = len({d for plan in every for d in plan.blobs})
    return ImportResult(
        entries,
        blobs,
        progress.moved,
        progress.moved_bytes,
        dict.fromkeys(sorted(moved), prefix),
        moved_bases,
    )


def _check_tag(registry: Registry, plan: ImagePlan) -> Digest | None:
    """The digest the target's tag has now (None: no such tag); a tag on another
    digest is a conflict: ocirel never moves a tag."""
    ref = plan.repo.with_tag(plan.entry.tag)
    try:
        current = registry.resolve(ref).digest
    except RegistryNotFoundError:
        return None
    if current != plan.top.digest:
        raise TagConflictError(
            f"{ref} already exists with digest {current}, not the bundle's {plan.top.digest}; "
            "no tag was written",
            hint="import under another --to prefix, or remove that tag from the target",
        )
    return current


def _push_blobs(
    registry: Registry, bundle: Bundle, plans: list[ImagePlan], progress: Progress, workers: int
) -> None:
    wanted: dict[Digest, tuple[Descriptor, list[Reference]]] = {}
    for plan in plans:
        for digest, item in plan.blobs.items():
            wanted.setdefault(digest, (item, []))[1].append(plan.repo)
    progress.start(len(wanted), sum(item.size for item, _ in wanted.values()))

    def push(work: tuple[Descriptor, list[Reference]]) -> None:
        item, repos = work
        has: list[Reference] = []
        moved = False
        for repo in repos:
            if repo in has or registry.blob_exists(repo, item.digest):
                has.append(repo)
                continue
            if has and registry.mount_blob(repo, item.digest, has[0].repository):
                has.append(repo)
                continue
            registry.upload_blob(repo, item.digest, lambda: _reader(bundle, item), item.size)
            has.append(repo)
            moved = True
        progress.blob(item.digest, item.size, moved=moved, verb="uploaded")

    try:
        run_all(push, wanted.values(), workers)
    finally:
        progress.done()


def _reader(bundle: Bundle, item: Descriptor) -> IO[bytes]:
    """The blob from the bundle, checked as it is read; typed as the file object
    the upload takes (it reads, and has a length)."""
    handle = bundle.open(blob_name(item.digest))
    return cast("IO[bytes]", VerifyingReader(handle, item.digest, item.size, str(bundle.path)))


def _verify(registry: Registry, plan: ImagePlan) -> None:
    """The tag resolves to the bundle's digest; every manifest is byte-identical."""
    ref = plan.repo.with_tag(plan.entry.tag)
    found = registry.resolve(ref).digest
    if found != plan.top.digest:
        raise DigestMismatchError(
            f"{ref} resolves to {found} after the import, not to {plan.top.digest}",
            hint="another client changed the tag meanwhile; check the target registry",
        )
    for manifest in plan.manifests:
        served = registry.get_manifest(plan.repo.with_digest(manifest.digest))
        if served.body != manifest.body:
            raise DigestMismatchError(
                f"{plan.repo.name}@{manifest.digest}: the registry serves other bytes than "
                "the bundle holds"
            )


def write_lock(path: Path, result: ImportResult) -> None:
    """Add (or replace) the imported entries in the lockfile at ``path``."""

    def change(current: Lockfile) -> Lockfile:
        for entry in result.entries:
            current = current.with_entry(entry)
        return current

    lockfile.update(path, change)


__all__ = [
    "ImportResult",
    "import_bundle",
    "plan_bases",
    "plan_import",
    "target_repository",
    "write_lock",
]
