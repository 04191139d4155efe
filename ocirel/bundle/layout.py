"""OCI image layouts on disk: writing one (export) and reading one, a directory or a
tar of it (import).

A bundle is an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/…``)
plus the lockfile it was made from (``ocirel.lock.json`` at its root). ``index.json``
has one descriptor per lockfile entry, annotated with the full reference
(``org.opencontainers.image.ref.name``, also ``io.containerd.image.name``) and the
entry's name (:data:`LOCK_NAME`).

Every blob is written to a temporary file, hashed while it is written, and renamed
into place only when its size and digest are right and it is on disk (fsynced off the
download path, :mod:`ocirel.bundle.flush`), so a blob file that exists is complete (an
interrupted export run again keeps it). ``index.json`` is written last, once every
blob is durable.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocirel import fsutil
from ocirel.bundle.flush import Flusher
from ocirel.errors import DigestMismatchError, OcirelError
from ocirel.oci import (
    ACCEPT_ALL,
    INDEX_TYPES,
    Digest,
    ImageManifest,
    parse_manifest,
    sha256_digest,
)
from ocirel.ocilayout import (
    INDEX_FILE,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    LOCK_NAME,
    REF_NAME,
    has_blob,
)
from ocirel.reference import is_valid_digest

LOCK_FILE = "ocirel.lock.json"
CONTAINERD_NAME = "io.containerd.image.name"
#: the largest index.json, lockfile or manifest read from a bundle
MAX_SMALL_FILE = 16 * 1024 * 1024


#: a binary stream that reads into a buffer: a file, or a member of a tar
Readable = io.RawIOBase | io.BufferedIOBase


class BundleError(OcirelError):
    """A bundle that is not a readable OCI layout written by ocirel, or is damaged."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI descriptor: what a manifest or index.json says about a blob."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        data["size"] = self.size
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data


def descriptor(data: object, where: str) -> Descriptor:
    """A descriptor from JSON, checked (a digest is well-formed, a size is a count)."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: a descriptor is not a JSON object")
    digest, size, media_type = data.get("digest"), data.get("size"), data.get("mediaType")
    if (
        not isinstance(digest, str)
        or not is_valid_digest(digest)
        or not digest.startswith("sha256:")
    ):
        raise BundleError(f"{where}: malformed or unsupported digest {str(digest)[:80]!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BundleError(f"{where}: descriptor {digest[:19]} has no valid size")
    annotations = data.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise BundleError(f"{where}: descriptor {digest[:19]} has malformed annotations")
    return Descriptor(
        str(media_type or ""), digest, size, {str(k): str(v) for k, v in annotations.items()}
    )


def children(manifest: ImageManifest, where: str) -> tuple[list[Descriptor], list[Descriptor]]:
    """What ``manifest`` refers to: (child manifests of an index, blobs of an image)."""
    document = manifest.document
    if manifest.media_type in INDEX_TYPES:
        items = document.get("manifests") or []
        if not isinstance(items, list):
            raise BundleError(f"{where}: 'manifests' is not a list")
        return [descriptor(item, where) for item in items], []
    blobs = [descriptor(document.get("config"), where)] if document.get("config") else []
    layers = document.get("layers") or []
    if not isinstance(layers, list):
        raise BundleError(f"{where}: 'layers' is not a list")
    return [], blobs + [descriptor(item, where) for item in layers]


def blob_name(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


# ------------------------------------------------------------------------- writing


class LayoutWriter:
    """Writes an OCI layout into ``root`` (created; an existing layout is reused).

    ``durable=False``: blobs are not fsynced (a temporary layout that is tarred, the
    tar being what is kept). Use it as a context manager, or call :meth:`finish`:
    either waits for the blobs still being flushed.
    """

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = root
        self._flusher = Flusher(durable=durable)
        if root.exists() and not root.is_dir():
            raise BundleError(f"{root} exists and is not a directory")
        if root.is_dir() and any(root.iterdir()) and not (root / LAYOUT_FILE).is_file():
            raise BundleError(
                f"{root} is a non-empty directory and not an OCI layout",
                hint="name a new or empty directory, or an earlier export to finish it",
            )
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if not (root / LAYOUT_FILE).is_file():
            fsutil.write_atomic(root / LAYOUT_FILE, json.dumps(LAYOUT_VERSION) + "\n")

    def path(self, digest: str) -> Path:
        return self.root / blob_name(digest)

    def has(self, digest: str, size: int) -> bool:
        """Whether a complete blob is there (blob files only appear once verified)."""
        return has_blob(self.path(digest), size)

    def write(self, digest: Digest, size: int, chunks: Iterable[bytes]) -> None:
        """Write ``chunks`` as blob ``digest``: hashed as written, renamed into place
        only when size and digest are right (else DigestMismatchError, nothing left)."""
        target = self.path(digest)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            hasher, written = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    hasher.update(chunk)
                    written += len(chunk)
                    handle.write(chunk)
            _check_blob(digest, size, "sha256:" + hasher.hexdigest(), written)
            self._flusher.settle(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def __enter__(self) -> LayoutWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Waits for the blobs being flushed; their error only when none is raised."""
        if exc_info[0] is None:
            self._flusher.wait()
        else:
            with contextlib.suppress(Exception):
                self._flusher.wait()

    def write_bytes(self, digest: Digest, data: bytes) -> None:
        if not self.has(digest, len(data)):
            self.write(digest, len(data), [data])

    def finish(self, manifests: Iterable[Descriptor], lock_text: str) -> None:
        """Every blob on disk, then the lockfile, then ``index.json`` (last: a layout
        with it is complete)."""
        self._flusher.wait()
        if self._flusher.durable:
            fsutil.fsync_dir(self.root / "blobs" / "sha256")
        fsutil.write_atomic(self.root / LOCK_FILE, lock_text)
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [item.to_json() for item in manifests],
        }
        fsutil.write_atomic(self.root / INDEX_FILE, json.dumps(index, indent=2) + "\n")


def _check_blob(digest: Digest, size: int, actual: str, written: int) -> None:
    if written != size or actual != digest:
        raise DigestMismatchError(
            f"blob {digest} arrived as {written} bytes hashing to {actual[:19]}…, "
            f"not the {size} bytes its manifest names; nothing was kept",
            hint="run the export again; if it repeats, the registry's copy is damaged",
        )


def write_tar(layout: Path, output: Path) -> None:
    """A tar of the layout directory ``layout`` at ``output`` (written atomically)."""
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in (LAYOUT_FILE, LOCK_FILE, INDEX_FILE):
                    tar.add(layout / name, arcname=name, recursive=False)
                for blob in sorted((layout / "blobs" / "sha256").iterdir()):
                    if not blob.name.startswith("."):
                        tar.add(blob, arcname=f"blobs/sha256/{blob.name}", recursive=False)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(output)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# ------------------------------------------------------------------------- reading


class Bundle:
    """A bundle to import: an OCI layout directory, or a tar of one.

    Blobs are opened as streams (several at once: a tar member is read through its own
    file handle), so nothing is extracted or held in memory.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._members: dict[str, tuple[int, int]] = {}
        if path.is_dir():
            if not (path / LAYOUT_FILE).is_file() or not (path / INDEX_FILE).is_file():
                raise BundleError(
                    f"{path} is not an OCI image layout (no oci-layout or index.json)",
                    hint="name a directory or .tar written by 'ocirel bundle export'",
                )
        elif path.is_file():
            self._members = _tar_members(path)
        else:
            raise BundleError(f"no bundle at {path}", hint="name the export's directory or .tar")

    def size(self, name: str) -> int | None:
        if self._members:
            return self._members[name][1] if name in self._members else None
        try:
            target = self.path / name
            return target.stat().st_size if target.is_file() else None
        except OSError:
            return None

    def open(self, name: str) -> Readable:
        """A binary stream of the file ``name`` (relative to the layout's root)."""
        if not self._members:
            return (self.path / name).open("rb")
        if name not in self._members:
            raise FileNotFoundError(name)
        offset, size = self._members[name]
        return _Window(self.path.open("rb"), offset, size)

    def read(self, name: str) -> bytes:
        size = self.size(name)
        if size is None:
            raise BundleError(f"{self.path}: {name} is missing; the bundle is incomplete")
        if size > MAX_SMALL_FILE:
            raise BundleError(f"{self.path}: {name} is {size} bytes, too large to be metadata")
        with self.open(name) as handle:
            return handle.read()

    def read_json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except (ValueError, RecursionError):
            raise BundleError(f"{self.path}: {name} is not valid JSON") from None

    def index(self) -> list[Descriptor]:
        data = self.read_json(INDEX_FILE)
        items = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise BundleError(f"{self.path}: index.json has no 'manifests' list")
        return [descriptor(item, f"{self.path}: index.json") for item in items]

    def manifest(self, item: Descriptor) -> ImageManifest:
        """A manifest blob, verified against its digest."""
        body = self.read(blob_name(item.digest))
        actual = sha256_digest(body)
        if actual != item.digest:
            raise DigestMismatchError(
                f"{self.path}: manifest {item.digest} hashes to {actual}; the bundle was "
                "altered or damaged, and nothing was pushed from it",
                hint="export the bundle again from the source registry",
            )
        where = f"{self.path}: {item.digest}"
        return parse_manifest(
            body, item.digest, served_as=item.media_type, accept=ACCEPT_ALL, what=where
        )


class _Window(io.RawIOBase):
    """``size`` bytes of ``handle`` from ``offset``: one member of an uncompressed tar."""

    def __init__(self, handle: io.BufferedIOBase, offset: int, size: int) -> None:
        super().__init__()
        self._handle, self._left = handle, size
        handle.seek(offset)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._left)
        if want <= 0:
            return 0
        got = int(self._handle.readinto(view[:want]) or 0)
        self._left -= got
        return got

    def close(self) -> None:
        self._handle.close()
        super().close()


def _tar_members(path: Path) -> dict[str, tuple[int, int]]:
    """name → (offset, size) of each regular file of the tar ``path``."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            members = {
                _normal(member.name): (member.offset_data, member.size)
                for member in tar
                if member.isreg()
            }
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(
            f"{path} is not an uncompressed tar of an OCI layout: {exc}",
            hint="name a directory or .tar written by 'ocirel bundle export'",
        ) from None
    if LAYOUT_FILE not in members or INDEX_FILE not in members:
        raise BundleError(
            f"{path} is a tar but not of an OCI image layout (no oci-layout or index.json)",
            hint="name a directory or .tar written by 'ocirel bundle export'",
        )
    return members


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


__all__ = [
    "CONTAINERD_NAME",
    "LOCK_FILE",
    "LOCK_NAME",
    "REF_NAME",
    "Bundle",
    "BundleError",
    "Descriptor",
    "LayoutWriter",
    "blob_name",
    "children",
    "descriptor",
    "write_tar",
]
