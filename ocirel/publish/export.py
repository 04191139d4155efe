"""The layout publisher's export: only what the registry lacks is compressed, and each
layer is uploaded as soon as the builder has written it.

:class:`LayoutExport` gathers what is known about the build's layers (the previous
version's, the base image's, the cache's: :mod:`ocirel.publish.reuse`), exports through
a planted layout while the known blobs are made present in the target repository, and
sends finished layers early (:mod:`ocirel.publish.early`). After a successful publish it
teaches the cache (:mod:`ocirel.publish.layercache`) what the registry now holds.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ocirel.backends.base import BuildEnv, LayoutExporter
from ocirel.errors import DigestMismatchError, OcirelError
from ocirel.image import read_layout
from ocirel.oci import OCI_LAYER_GZIP, Digest, ImageConfig, OciImage
from ocirel.publish.early import EarlyUploads, wait_for
from ocirel.publish.layercache import LayerCache
from ocirel.publish.reuse import KnownBlob, base_image, export_reusing, layers_of, merge
from ocirel.publish.unchanged import Previous
from ocirel.reference import Reference
from ocirel.reference import parse as parse_reference

if TYPE_CHECKING:
    from ocirel.registry import Registry

Say = Callable[[str], None]


@dataclass
class LayoutExport:
    """One publish's export and the layer facts it gathered (main thread only)."""

    exporter: LayoutExporter
    build_env: BuildEnv
    registry: Registry
    repo: Reference
    timeout: float
    say: Say
    cache: LayerCache = field(default_factory=LayerCache.default)
    #: ``--explain``: nothing may be written to the registry (no mount, no early upload)
    read_only: bool = False
    _base: dict[Digest, KnownBlob] = field(default_factory=dict, init=False)
    _early: dict[Digest, Future[None]] = field(default_factory=dict, init=False)
    _planted: frozenset[Digest] = field(default_factory=frozenset, init=False)
    #: blobs of known layers made present in the target repository during the export
    _present: frozenset[Digest] = field(default_factory=frozenset, init=False)

    def export(
        self, image: str, workdir: Path, local_config: ImageConfig | None, previous: Previous | None
    ) -> OciImage:
        """``image`` as an OCI layout under ``workdir``, without compressing (or later
        uploading) the layers the registry already holds."""
        exported = self._export(image, workdir, self.reusable(image, local_config, previous))
        if local_config is not None and _diff_ids(local_config) != _diff_ids(exported.config):
            # the decision (unchanged or not) was made on local_config: it must be this image's
            raise DigestMismatchError(
                f"{self.exporter.name} exported other layers than the built image {image} has"
            )
        return exported

    def _export(self, image: str, workdir: Path, known: dict[Digest, KnownBlob]) -> OciImage:
        if not known:
            return self.export_layout(image, workdir / "layout")
        repo = self.repo
        self._planted = frozenset(known)

        def ensure(blob: KnownBlob) -> bool:
            if self.read_only:  # --explain: look, never write (no mount)
                return self.registry.blob_size(repo, blob.digest) in (blob.size, -1)
            return self.registry.ensure_blob(repo, blob.digest, blob.repositories, size=blob.size)

        outcome = export_reusing(
            lambda layout: self.export_layout(image, layout), workdir, known, ensure
        )
        if not self.read_only:
            self._present = frozenset(known[diff_id].digest for diff_id in outcome.reused)
        if outcome.refused:
            self.say(
                f"{len(outcome.refused)} known layer(s) could not be mounted into {repo.name}; "
                "exported and uploaded instead"
            )
        return outcome.image

    def reusable(
        self, image: str, local_config: ImageConfig | None, previous: Previous | None
    ) -> dict[Digest, KnownBlob]:
        """The build's layers the registry holds: the previous version's, the base
        image's (same registry), and those the cache knows. Without the local config
        (a build whose config the storage and inspect cannot show), all those of the
        previous version and the base are planted."""
        diff_ids = _diff_ids(local_config)
        own = (
            layers_of(previous.manifest, previous.config, self.repo.repository)
            if previous is not None and previous.manifest is not None else {}
        )  # fmt: skip
        self._base = self._base_layers(image)
        learnt = self.cache.lookup(self.repo.registry, diff_ids) if diff_ids else {}
        known = merge(own, self._base, learnt)
        # only blobs compressed as this export would compress them (gzip): a zstd blob
        # from another repository would change what clients must be able to pull
        return {
            d: b for d, b in known.items()
            if (diff_ids is None or d in diff_ids) and b.media_type == OCI_LAYER_GZIP
        }  # fmt: skip

    def _base_layers(self, image: str) -> dict[Digest, KnownBlob]:
        """The base image's layers, when the builder recorded a base on this registry."""
        base = base_image(self.exporter.image_annotations(image, self.build_env))
        if base is None:
            return {}
        try:
            ref = parse_reference(base[0])
            if ref.registry != self.repo.registry:
                return {}
            manifest = self.registry.get_manifest(ref.with_digest(base[1]))
            return layers_of(manifest, self.registry.get_config(ref, manifest), ref.repository)
        except OcirelError:  # an index, a base deleted since: nothing to reuse from it
            return {}

    def export_layout(self, image: str, layout: Path) -> OciImage:
        """Export into ``layout`` (each layer uploaded as soon as it is written) and read
        it back; the builder's digest file must name the layout's manifest."""
        repo = self.repo

        def upload(digest: Digest, path: Path, size: int) -> None:
            self.registry.put_blob_file(repo, digest, path, size)

        def stream(body: IO[bytes], digest: Callable[[], Digest]) -> Digest:
            return self.registry.upload_stream(repo, body, digest)

        if self.read_only:
            digest = self.exporter.export(image, layout, self.build_env, timeout=self.timeout)
        else:
            # a second pass (after a refused mount) exports layers the first one sent:
            # only the uploads that ask the registry first (a stream cannot)
            with EarlyUploads(layout, upload, None if self._early else stream) as early:
                digest = self.exporter.export(image, layout, self.build_env, timeout=self.timeout)
            self._early.update(early.started)
        exported = read_layout(layout, planted=self._planted)
        if exported.manifest.digest != digest:
            raise DigestMismatchError(
                f"{self.exporter.name} reported {digest} but the exported manifest is "
                f"{exported.manifest.digest}"
            )
        return exported

    def sent(self, digest: Digest) -> bool:
        """Whether ``digest`` is in the target repository already (for ``push_image``,
        which then neither checks nor uploads it): uploaded during the export, or a
        known layer found there or mounted while the builder exported."""
        return digest in self._present or wait_for(self._early, digest)

    def learn(self, pushed: OciImage) -> None:
        """Remember where the registry now holds the pushed layers (and the base's)."""
        own = layers_of(pushed.manifest, pushed.config, self.repo.repository)
        self.cache.learn(self.repo.registry, merge(own, self._base))


def _diff_ids(config: ImageConfig | None) -> tuple[Digest, ...] | None:
    rootfs = config.get("rootfs") if config is not None else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        return None
    return tuple(Digest(d) for d in ids if isinstance(d, str))
