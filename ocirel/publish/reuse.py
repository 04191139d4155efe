"""Layer reuse: a layer the registry already holds is never compressed, read or
uploaded again.

A containers-family builder exports an image by compressing *every* layer into the
OCI layout, base layers included, because its storage only knows each layer's
uncompressed digest (diff-id). A plain ``buildah push`` to a registry avoids that
with its blob-info cache; an export into a layout cannot. So ocirel does the
equivalent itself:

1. **What is known.** A layer's diff-id and its compressed blob are paired in every
   image manifest + config: the previous version's, the base image's (named by the
   ``org.opencontainers.image.base.*`` annotations the builder writes), and those
   ocirel learnt earlier (:mod:`ocirel.publish.layercache`). Each pairing comes with
   the repositories of the same registry that hold the blob.
2. **Plant.** Before the export, the fresh layout gets an empty file named by the
   diff-id of each known layer. The builder's layout writer sees "this blob is here
   already" and skips that layer: no read, no compression.
3. **Make sure.** Meanwhile, each known blob is made present in the target repository
   without moving bytes: it is there (``HEAD``), or it is mounted from a repository
   that holds it. A blob that cannot be (a refused mount, a blob deleted since) is
   exported for real in a second pass, so this never changes *what* is published.
4. **Substitute.** The exported manifest lists the planted layers as empty
   uncompressed blobs; each is replaced by the known compressed descriptor, which is
   what a registry push would have written. The config (diff-ids) is untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ocirel.errors import OcirelError, RegistryError
from ocirel.image import is_empty_file
from ocirel.oci import (
    REUSABLE_LAYER_TYPES,
    Digest,
    ImageConfig,
    ImageManifest,
    Layer,
    OciImage,
    canonical_json,
    sha256_digest,
)
from ocirel.reference import is_valid_digest

log = logging.getLogger(__name__)

#: what the builder writes for a planted (skipped) layer
UNCOMPRESSED_LAYER_TYPES = frozenset(
    {"application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar"}
)
ENSURE_WORKERS = 4
#: the base image a containers-family builder records in the image's annotations
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@dataclass(frozen=True)
class KnownBlob:
    """The compressed blob of one layer, and the repositories holding it."""

    digest: Digest
    size: int
    media_type: str
    repositories: tuple[str, ...] = ()


Knowledge = Mapping[Digest, KnownBlob]  # diff-id → blob


def layers_of(
    manifest: ImageManifest, config: ImageConfig, repository: str
) -> dict[Digest, KnownBlob]:
    """The diff-id → blob pairs of one image, held by ``repository``. Layers whose
    media type cannot be reused as they are (foreign, encrypted) are left out; a
    manifest and config that disagree on the number of layers give nothing."""
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    layers = manifest.document.get("layers")
    if not isinstance(diff_ids, list) or not isinstance(layers, list):
        return {}
    if len(diff_ids) != len(layers):
        return {}
    known: dict[Digest, KnownBlob] = {}
    for diff_id, layer in zip(diff_ids, layers, strict=True):
        blob = _blob_of(layer, repository)
        if blob is not None and isinstance(diff_id, str) and is_valid_digest(diff_id):
            known[Digest(diff_id)] = blob
    return known


def _blob_of(layer: Any, repository: str) -> KnownBlob | None:
    if not isinstance(layer, dict):
        return None
    media_type = REUSABLE_LAYER_TYPES.get(layer.get("mediaType", ""))
    digest, size = layer.get("digest"), layer.get("size")
    if media_type is None or not isinstance(digest, str) or not is_valid_digest(digest):
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return None
    return KnownBlob(Digest(digest), size, media_type, (repository,))


def merge(*sources: Knowledge) -> dict[Digest, KnownBlob]:
    """One view of several sources; the first source's blob wins for a diff-id (the
    same content may be compressed differently elsewhere), and the repositories of the
    sources that agree on that blob are pooled, in order."""
    merged: dict[Digest, KnownBlob] = {}
    for source in sources:
        for diff_id, blob in source.items():
            have = merged.get(diff_id)
            if have is None:
                merged[diff_id] = blob
            elif have.digest == blob.digest:
                repos = tuple(dict.fromkeys((*have.repositories, *blob.repositories)))
                merged[diff_id] = replace(have, repositories=repos)
    return merged


def base_image(annotations: Mapping[str, str]) -> tuple[str, Digest] | None:
    """The base image (name, manifest digest) the builder recorded, if any."""
    name, digest = annotations.get(BASE_NAME, ""), annotations.get(BASE_DIGEST, "")
    if name and is_valid_digest(digest):
        return name, Digest(digest)
    return None


class PlantIgnoredError(RegistryError):
    """The builder listed a planted (empty) layer as a compressed blob."""


# ------------------------------------------------------------------ the layout


def plant(layout: Path, diff_ids: Iterable[Digest]) -> None:
    """A new OCI layout at ``layout`` with an empty file for each of ``diff_ids``."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}', encoding="utf-8")
    for diff_id in diff_ids:
        algorithm, _, hexpart = diff_id.partition(":")
        if algorithm == "sha256":
            (blobs / hexpart).touch()


def substitute(image: OciImage, planted: Knowledge) -> OciImage:
    """``image`` (as exported from a planted layout) with each skipped layer replaced
    by its known compressed blob. A skipped layer is listed under its diff-id and its
    file is still the empty placeholder; the size the builder wrote for it is 0, or the
    uncompressed size when it skipped every layer. Raises when a planted layer was
    skipped but listed as compressed (an empty blob would be published)."""
    document = json.loads(image.manifest.body)
    descriptors = document.get("layers", [])
    layers: list[Layer] = []
    for descriptor, layer in zip(descriptors, image.layers, strict=True):
        blob = planted.get(layer.digest)
        if blob is not None and layer.path is not None and is_empty_file(layer.path):
            if descriptor.get("mediaType") not in UNCOMPRESSED_LAYER_TYPES:
                raise PlantIgnoredError(
                    f"the builder exported the planted layer {layer.digest[:19]} as "
                    f"{descriptor.get('mediaType')}; not publishing an empty blob"
                )
            descriptor.update(mediaType=blob.media_type, digest=blob.digest, size=blob.size)
            layers.append(Layer(blob.digest, blob.size, None, blob.repositories))
        else:
            layers.append(layer)
    if all(a is b for a, b in zip(layers, image.layers, strict=True)):
        return image
    body = canonical_json(document)
    manifest = ImageManifest(sha256_digest(body), image.manifest.media_type, body)
    return replace(image, manifest=manifest, layers=tuple(layers))


# ---------------------------------------------------------------- the export


Ensure = Callable[[KnownBlob], bool]


@dataclass(frozen=True)
class Reused:
    """What an export reused: the image, and the layers it did not export."""

    image: OciImage
    reused: tuple[Digest, ...] = ()
    refused: tuple[Digest, ...] = ()


def export_reusing(
    export: Callable[[Path], OciImage],
    workdir: Path,
    known: Knowledge,
    ensure: Ensure,
) -> Reused:
    """Export through ``export(layout)`` into a planted layout under ``workdir`` while
    ``ensure`` makes each known blob present in the target repository; layers whose
    blob could not be are exported for real in a second pass."""
    with ThreadPoolExecutor(max_workers=ENSURE_WORKERS) as pool:
        checks = {diff_id: pool.submit(_ensured, ensure, blob) for diff_id, blob in known.items()}
        layout = workdir / "layout"
        plant(layout, known)
        image = export(layout)
        refused = tuple(d for d, check in checks.items() if not check.result())
    kept = {d: blob for d, blob in known.items() if d not in refused}
    try:
        if not refused:
            return Reused(substitute(image, known), tuple(known))
        layout = workdir / "layout-again"
        plant(layout, kept)
        return Reused(substitute(export(layout), kept), tuple(kept), refused)
    except PlantIgnoredError:
        # the builder did not skip a planted layer as expected (seen with layers that
        # came from a --cache-from repository): export everything, plant nothing
        return Reused(export(workdir / "layout-plain"), (), tuple(known))


def _ensured(ensure: Ensure, blob: KnownBlob) -> bool:
    """``ensure(blob)``; a registry or I/O failure counts as "not present" (the layer is
    then exported and uploaded, and the upload meets and reports a real failure). Any
    other exception is a bug and is raised, not hidden behind the slow path."""
    try:
        return ensure(blob)
    except (OcirelError, OSError) as exc:
        log.debug("layer %s cannot be reused, it is exported: %s", blob.digest[:19], exc)
        return False
