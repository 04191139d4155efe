"""``ocirel bundle export``: every image of a lockfile, all platforms, into one OCI layout.

For each lockfile entry the manifest is fetched by its locked digest (so the bundle
holds exactly what was released, whatever the tag says now); an index brings every
platform's manifest, and every manifest its config and layers. Blobs are downloaded
in parallel and verified while written (:mod:`ocirel.bundle.layout`); blobs already
in the output directory (an earlier, interrupted export) are kept. The layout's
``index.json`` and the lockfile are written last; a ``.tar`` output is a tar of the
finished layout, built in a temporary directory next to it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ocirel import lockfile
from ocirel import reference as refs
from ocirel.bundle.bases import Base
from ocirel.bundle.layout import (
    CONTAINERD_NAME,
    LOCK_NAME,
    REF_NAME,
    BundleError,
    Descriptor,
    LayoutWriter,
    children,
    write_tar,
)
from ocirel.bundle.transfer import Progress, download, run_all
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest, ImageManifest
from ocirel.reference import Reference
from ocirel.registry import Registry


@dataclass
class ImagePlan:
    """One lockfile entry's content: its manifests (children first) and blobs."""

    entry: LockEntry
    repo: Reference
    top: ImageManifest
    manifests: list[ImageManifest] = field(default_factory=list)
    blobs: dict[Digest, Descriptor] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportResult:
    output: Path
    images: int
    blobs: int
    downloaded: int
    bytes: int
    bases: int = 0


ManifestSource = Callable[[Reference, Descriptor], ImageManifest]


def plan_image(
    entry: LockEntry, repo: Reference, fetch: ManifestSource, top_item: Descriptor | None = None
) -> ImagePlan:
    """Walk ``entry``'s manifest by digest: every child manifest and every blob.
    ``fetch`` returns a manifest verified against the descriptor's digest."""
    top = fetch(repo, top_item or Descriptor("", entry.digest, -1))
    plan = ImagePlan(entry, repo, top)
    seen: set[str] = set()

    def walk(manifest: ImageManifest) -> None:
        if manifest.digest in seen:
            return
        seen.add(manifest.digest)
        where = f"{repo.name}@{manifest.digest}"
        child_manifests, blobs = children(manifest, where)
        for child in child_manifests:
            walk(fetch(repo, child))
        for blob in blobs:
            plan.blobs.setdefault(blob.digest, blob)
        plan.manifests.append(manifest)

    walk(top)
    missing = set(entry.platforms.values()) - seen
    if missing:
        raise BundleError(
            f"lockfile entry {entry.name!r} lists platform manifest(s) "
            f"{', '.join(sorted(missing))} that {repo.name}@{entry.digest} does not contain",
            hint="the lockfile was edited or is stale: publish again, or fix its platforms",
        )
    return plan


def registry_manifests(registry: Registry) -> ManifestSource:
    def fetch(repo: Reference, item: Descriptor) -> ImageManifest:
        manifest = registry.get_manifest(repo.with_digest(item.digest))  # checks the digest
        if item.size >= 0 and len(manifest.body) != item.size:
            raise BundleError(
                f"{repo.name}@{item.digest} is {len(manifest.body)} bytes; its index says "
                f"{item.size}"
            )
        return manifest

    return fetch


def export_bundle(
    registry: Registry,
    lock: Lockfile,
    output: Path,
    *,
    progress: Progress | None = None,
    bases: Sequence[Base] = (),
) -> ExportResult:
    """Export every image of ``lock`` into ``output`` (a directory, or ``*.tar``), and
    the ``bases`` (in index.json, not in the bundle's lockfile)."""
    if not lock.entries:
        raise BundleError("the lockfile has no images to export", hint="publish an image first")
    for name, entry in sorted(lock.entries.items()):
        if refs.is_layout(entry.repository):
            raise BundleError(
                f"entry {name!r} lives in the OCI layout {entry.repository}, not in a "
                "registry; bundle export copies images out of registries",
                hint=f"the layout is a bundle already: ocirel bundle import "
                f"{entry.repository.removeprefix('oci:')} --to REGISTRY[/PREFIX]",
            )
    progress = progress or Progress()
    fetch = registry_manifests(registry)
    plans = [
        plan_image(entry, refs.parse_repository(entry.repository), fetch)
        for _, entry in sorted(lock.entries.items())
    ]
    base_plans = [(base, plan_image(base.entry(), base.repo, fetch)) for base in bases]
    if output.suffix == ".tar":
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as tmp:
            result = _export_layout(
                registry, lock, plans, base_plans, Path(tmp) / "layout", progress=progress,
                durable=False,  # the tar is what is kept, and it is fsynced
            )  # fmt: skip
            write_tar(Path(tmp) / "layout", output)
        return replace(result, output=output)
    return _export_layout(registry, lock, plans, base_plans, output, progress=progress)


def _export_layout(
    registry: Registry,
    lock: Lockfile,
    plans: list[ImagePlan],
    base_plans: list[tuple[Base, ImagePlan]],
    root: Path,
    *,
    progress: Progress,
    durable: bool = True,
) -> ExportResult:
    with LayoutWriter(root, durable=durable) as writer:
        return _export_into(writer, registry, lock, plans, base_plans, progress=progress)


def _export_into(
    writer: LayoutWriter,
    registry: Registry,
    lock: Lockfile,
    plans: list[ImagePlan],
    base_plans: list[tuple[Base, ImagePlan]],
    *,
    progress: Progress,
) -> ExportResult:
    root = writer.root
    blobs: dict[Digest, tuple[Reference, Descriptor]] = {}
    for plan in plans + [plan for _, plan in base_plans]:
        for digest, item in plan.blobs.items():
            blobs.setdefault(digest, (plan.repo, item))
    progress.start(len(blobs), sum(item.size for _, item in blobs.values()))

    def fetch_blob(work: tuple[Reference, Descriptor]) -> None:
        repo, item = work
        moved = not writer.has(item.digest, item.size)
        if moved:
            writer.write(item.digest, item.size, download(registry, repo, item.digest, item.size))
        progress.blob(item.digest, item.size, moved=moved, verb="downloaded")

    try:
        run_all(fetch_blob, blobs.values())
    finally:
        progress.done()
    for plan in plans + [plan for _, plan in base_plans]:
        for manifest in plan.manifests:
            writer.write_bytes(manifest.digest, manifest.body)
    exported = Lockfile({plan.entry.name: plan.entry for plan in plans}, lock.issued)
    index = [_index_entry(plan) for plan in plans]
    index += [_descriptor(plan, base.annotations()) for base, plan in base_plans]
    writer.finish(index, lockfile.dumps(exported))
    return ExportResult(
        root, len(plans), len(blobs), progress.moved, progress.moved_bytes, len(base_plans)
    )


def _index_entry(plan: ImagePlan) -> Descriptor:
    name = f"{plan.entry.repository}:{plan.entry.tag}"
    return _descriptor(plan, {REF_NAME: name, CONTAINERD_NAME: name, LOCK_NAME: plan.entry.name})


def _descriptor(plan: ImagePlan, annotations: dict[str, str]) -> Descriptor:
    return Descriptor(plan.top.media_type, plan.top.digest, len(plan.top.body), annotations)


__all__ = ["ExportResult", "ImagePlan", "export_bundle", "plan_image", "registry_manifests"]
