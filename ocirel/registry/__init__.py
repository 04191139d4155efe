"""Registry operations on top of :mod:`ocirel.transport`, one concern per module.

``tags`` (the paged tag list, never a partial one), ``manifests`` (resolve, get and
put a manifest; the image config it names), ``blobs`` (size checks, upload restarted
from the first byte, cross-repository mount) and ``scope`` (token scopes). The
:class:`Registry` below binds them to one :class:`Transport`; it also pushes a whole
:class:`~ocirel.oci.OciImage`: its blobs (skipping those the registry has), then its
manifest **by digest** — no tag is touched; ``put_tag`` then points a tag at it.
Callers import :class:`Registry` from here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from ocirel.errors import RegistryError
from ocirel.oci import ACCEPT_ALL, Digest, ImageConfig, ImageManifest, ManifestInfo, OciImage
from ocirel.reference import Reference
from ocirel.registry import blobs, manifests, scope, tags
from ocirel.transport import MANIFEST_MAX_BODY, Transport, raise_for_status

UPLOAD_WORKERS = 4


class Registry:
    """Operations for any repository reachable through one :class:`Transport`."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def list_tags(self, repo: Reference) -> list[str]:
        """Every tag of ``repo``, each once, in the order listed; [] for an unknown one."""
        return tags.list_tags(self.transport, repo)

    def resolve(self, ref: Reference, *, accept: str = ACCEPT_ALL) -> ManifestInfo:
        """The digest and media type ``ref`` (tag or digest) points to."""
        return manifests.resolve(self.transport, ref, accept=accept)

    def exists(self, ref: Reference) -> bool:
        """Whether the manifest (tag or digest) exists: ``HEAD`` → 200 or 404."""
        return manifests.exists(self.transport, ref)

    def get_manifest(self, ref: Reference, *, accept: str = ACCEPT_ALL) -> ImageManifest:
        """The exact manifest bytes, their sha256 digest and media type (all checked)."""
        return manifests.get_manifest(self.transport, ref, accept=accept)

    def get_blob(
        self, repo: Reference, digest: Digest, *, max_size: int = MANIFEST_MAX_BODY
    ) -> bytes:
        """A small blob (an image config), verified against its digest."""
        return blobs.get_blob(self.transport, repo, digest, max_size=max_size)

    def get_config(self, repo: Reference, manifest: ImageManifest) -> ImageConfig:
        """The image config ``manifest`` names, verified ({} when it names none)."""
        return manifests.get_config(self.transport, repo, manifest)

    def put_manifest(self, ref: Reference, manifest: ImageManifest) -> Digest:
        """PUT ``manifest`` at ``ref`` (tag or digest); return its digest."""
        return manifests.put_manifest(self.transport, ref, manifest)

    def put_tag(self, repo: Reference, tag: str, manifest: ImageManifest) -> Digest:
        return self.put_manifest(repo.with_tag(tag), manifest)

    def blob_size(self, repo: Reference, digest: Digest) -> int | None:
        """The size ``repo`` reports for ``digest`` (-1 when it does not say), None when
        it does not have the blob."""
        return blobs.blob_size(self.transport, repo, digest)

    def blob_exists(self, repo: Reference, digest: Digest) -> bool:
        return self.blob_size(repo, digest) is not None

    def upload_blob(
        self, repo: Reference, digest: Digest, opener: Callable[[], IO[bytes]], size: int
    ) -> None:
        """Upload a blob, restarted from the first byte on a temporary failure."""
        blobs.upload_blob(self.transport, repo, digest, opener, size)

    def upload_stream(
        self, repo: Reference, body: IO[bytes], digest: Callable[[], Digest]
    ) -> Digest:
        """Upload a blob still being written; ``digest()`` is asked once ``body`` ends."""
        return blobs.upload_stream(self.transport, repo, body, digest)

    def mount_blob(self, repo: Reference, digest: Digest, source: str) -> bool:
        """Mount ``digest`` from the repository ``source`` into ``repo``; False when the
        registry declines or cannot."""
        return blobs.mount_blob(self.transport, repo, digest, source)

    def ensure_blob(
        self, repo: Reference, digest: Digest, sources: Iterable[str], *, size: int | None = None
    ) -> bool:
        """Make ``digest`` present in ``repo`` without moving its bytes (there already,
        or mounted from one of ``sources``); False when neither, or the size differs."""
        return blobs.ensure_blob(self.transport, repo, digest, sources, size=size)

    def push_image(
        self, repo: Reference, image: OciImage, *, sent: Callable[[Digest], bool] | None = None
    ) -> Digest:
        """Put ``image``'s blobs into ``repo`` and its manifest by digest (untagged).

        Each blob is checked and, when missing, uploaded (a layout file) or mounted (a
        layer the registry holds elsewhere), all blobs at the same time. ``sent(digest)``
        says whether a blob was already uploaded (early, while the builder worked)."""
        blob_list = image.blobs
        with ThreadPoolExecutor(max_workers=max(1, min(UPLOAD_WORKERS, len(blob_list)))) as pool:
            futures = [pool.submit(self._put_blob, repo, image, d, s, sent) for d, s in blob_list]
            for future in futures:
                future.result()
        return self.put_manifest(repo.with_digest(image.manifest.digest), image.manifest)

    def put_blob_file(self, repo: Reference, digest: Digest, path: Path, size: int) -> None:
        """Upload the file ``path`` as ``digest`` unless ``repo`` has it."""
        if not self.blob_exists(repo, digest):
            self.upload_blob(repo, digest, lambda: path.open("rb"), size)

    def _put_blob(
        self,
        repo: Reference,
        image: OciImage,
        digest: Digest,
        size: int,
        sent: Callable[[Digest], bool] | None,
    ) -> None:
        if sent is not None and sent(digest):
            return
        layer = image.layer(digest)
        if layer is not None and layer.path is None:  # a blob the registry holds elsewhere
            if not self.ensure_blob(repo, digest, layer.sources):
                raise RegistryError(
                    f"{repo.registry} no longer has layer {digest[:19]} in {repo.name} "
                    f"nor in {', '.join(layer.sources) or 'any other repository'}"
                )
            return
        if not self.blob_exists(repo, digest):
            self.upload_blob(repo, digest, functools.partial(image.open_blob, digest), size)

    def warm_up(self, repo: Reference, *, push: bool = False) -> None:
        """Authenticate for ``repo`` ahead of time (the token is cached)."""
        reply = self.transport.request(
            "GET", repo.registry, "/v2/", scope=scope.push(repo) if push else scope.pull(repo)
        )
        raise_for_status(reply, what=f"authenticating to {repo.registry}")


__all__ = ["Registry"]
