"""An OCI image layout as a publish destination (``--image oci:PATH``).

The layout holds one repository. Its tags are the ``org.opencontainers.image.ref.name``
annotations of the manifest descriptors in ``index.json`` (as skopeo, buildah and
umoci write and read them: ``skopeo inspect oci:PATH:v2``). Each descriptor also
names its lockfile entry (``org.ocirel.lock.name``), so ``ocirel bundle import`` can
carry the layout into a registry.

Writes are atomic and serialized:

* a blob is hard-linked (or copied, across file systems) to a temporary name in
  ``blobs/sha256`` and renamed into place, so a blob file that exists is complete;
* ``index.json`` is replaced by :func:`ocirel.fsutil.write_atomic` only after every
  blob of the image is in place;
* whoever chooses a tag and appends it holds an exclusive ``flock`` on
  ``index.json.lock`` in the layout (:func:`locked`) from reading ``index.json`` to
  replacing it, so two publishes can neither lose an entry nor take the same tag.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocirel import fsutil
from ocirel.errors import DigestMismatchError, LayoutError, RegistryNotFoundError
from ocirel.oci import ACCEPT_ALL, OCI_INDEX, Digest, ImageManifest, parse_manifest, sha256_digest
from ocirel.reference import is_valid_digest

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LOCK_FILE = "index.json.lock"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
REF_NAME = "org.opencontainers.image.ref.name"
LOCK_NAME = "org.ocirel.lock.name"
#: the largest index.json or manifest read from a layout
MAX_SMALL_FILE = 16 * 1024 * 1024


@dataclass(frozen=True)
class Tagged:
    """One ``index.json`` descriptor with a ``ref.name``: a tag of the layout."""

    tag: str
    digest: Digest
    media_type: str
    size: int


def blob_path(root: Path, digest: str) -> Path:
    if not is_valid_digest(digest) or not digest.startswith("sha256:"):
        raise LayoutError(f"the OCI layout at {root} names an invalid digest {digest[:80]!r}")
    return root / "blobs" / "sha256" / digest.removeprefix("sha256:")


def check_destination(root: Path) -> None:
    """Fail early when ``root`` exists and is not (or cannot become) an OCI layout."""
    if root.exists() and not root.is_dir():
        raise LayoutError(
            f"{root} exists and is not a directory",
            hint="--image oci:PATH names a directory (created if missing)",
        )
    if root.is_dir() and not (root / LAYOUT_FILE).is_file() and any(root.iterdir()):
        raise LayoutError(
            f"{root} is a non-empty directory and not an OCI image layout (no oci-layout file)",
            hint="name a new or empty directory, or an existing OCI layout",
        )


def index(root: Path) -> dict[str, Any]:
    """``index.json`` (an empty index when the layout does not exist yet)."""
    path = root / INDEX_FILE
    try:
        if path.stat().st_size > MAX_SMALL_FILE:
            raise LayoutError(f"{path} is too large to be an OCI index")
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    except (OSError, ValueError, RecursionError) as exc:
        raise LayoutError(
            f"{path} is unreadable or not JSON: {exc}",
            hint="repair or remove the layout's index.json (the blobs stay usable)",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("manifests"), list):
        raise LayoutError(f"{path} is not an OCI index (no 'manifests' list)")
    return data


def tagged(root: Path) -> list[Tagged]:
    """The tagged descriptors of the layout at ``root``, in ``index.json`` order."""
    found = []
    for item in index(root)["manifests"]:
        annotations = item.get("annotations") if isinstance(item, dict) else None
        name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
        if not isinstance(name, str) or not name:
            continue
        digest, size = item.get("digest"), item.get("size")
        if not isinstance(digest, str) or not is_valid_digest(digest):
            raise LayoutError(f"{root / INDEX_FILE}: {name!r} has a malformed digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise LayoutError(f"{root / INDEX_FILE}: {name!r} has no valid size")
        found.append(Tagged(name, digest, str(item.get("mediaType") or ""), size))
    return found


def list_tags(root: Path) -> list[str]:
    """The layout's tags (``ref.name`` annotations); none when there is no layout yet."""
    return [item.tag for item in tagged(root)]


def read_blob(root: Path, digest: str) -> bytes:
    """A small blob (a manifest or config), checked against its digest."""
    path = blob_path(root, digest)
    try:
        if path.stat().st_size > MAX_SMALL_FILE:
            raise LayoutError(f"{path} is too large to be a manifest or config")
        data = path.read_bytes()
    except OSError as exc:
        raise LayoutError(f"the OCI layout at {root} lacks blob {digest}: {exc.strerror}") from None
    if sha256_digest(data) != digest:
        raise DigestMismatchError(
            f"blob {digest} in {root} does not hash to its digest; the layout is damaged"
        )
    return data


def read_manifest(root: Path, tag: str) -> ImageManifest:
    """The manifest tagged ``tag`` (the last descriptor with that name wins)."""
    matches = [item for item in tagged(root) if item.tag == tag]
    if not matches:
        raise LayoutError(f"the OCI layout at {root} has no tag {tag!r}")
    item = matches[-1]
    body = read_blob(root, item.digest)
    return parse_manifest(
        body, item.digest, served_as=item.media_type or None, accept=ACCEPT_ALL,
        what=f"{root}:{tag}",
    )  # fmt: skip


def ensure_layout(root: Path) -> None:
    """``root`` made an OCI layout (``oci-layout`` and ``blobs/sha256``) if it is not one."""
    check_destination(root)
    try:
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if not (root / LAYOUT_FILE).is_file():
            fsutil.write_atomic(root / LAYOUT_FILE, json.dumps(LAYOUT_VERSION) + "\n")
    except OSError as exc:
        raise LayoutError(
            f"cannot create the OCI layout at {root}: {exc.strerror}",
            hint="choose a directory you can write, or fix its permissions",
        ) from None


def put_blob_file(root: Path, digest: str, source: Path, size: int) -> None:
    """Blob ``digest`` from the file ``source``: hard-linked when on the same file
    system, else copied; renamed into place, so the blob file is never partial."""
    target = blob_path(root, digest)
    if has_blob(target, size):
        return
    with _placing(root, digest, target) as tmp:
        try:
            os.link(source, tmp)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            shutil.copyfile(source, tmp)
        if tmp.stat().st_size != size:
            raise DigestMismatchError(f"blob {digest} at {source} is not {size} bytes")


def put_blob_bytes(root: Path, digest: str, data: bytes) -> None:
    """A small blob (config, manifest), written atomically."""
    target = blob_path(root, digest)
    if sha256_digest(data) != digest:
        raise DigestMismatchError(f"the bytes for blob {digest} do not hash to it")
    if has_blob(target, len(data)):
        return
    with _placing(root, digest, target) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def _placing(root: Path, digest: str, target: Path) -> Iterator[Path]:
    """A temporary name next to ``target`` for the body to be written to; once the
    ``with`` ends, the file is fsynced and renamed to ``target``. Whatever happens, no
    temporary file is left, and an OSError becomes a :class:`LayoutError`."""
    tmp = target.with_name(f".partial-{secrets.token_hex(8)}.tmp")
    try:
        yield tmp
        fsutil.fsync_file(tmp)
        tmp.replace(target)
    except OSError as exc:
        raise LayoutError(f"cannot write blob {digest} into {root}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def has_blob(path: Path, size: int) -> bool:
    """Whether the blob file ``path`` is there with ``size`` bytes (blob files only
    get their name once complete)."""
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def locked(root: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive ``flock`` on the layout's ``index.json.lock`` (released on exit)."""
    path = root / LOCK_FILE
    return fsutil.flocked(
        path, lambda exc: LayoutError(f"cannot create the lock file {path}: {exc.strerror}")
    )


def add_tag(root: Path, manifest: ImageManifest, tag: str, lock_name: str) -> None:
    """Append ``manifest`` under ``tag`` to ``index.json`` (atomically replaced). The
    caller holds :func:`locked` and has put every blob of the image in place."""
    fsutil.fsync_dir(root / "blobs" / "sha256")  # the blobs' renames before the index's
    data = index(root)
    data.setdefault("schemaVersion", 2)
    data.setdefault("mediaType", OCI_INDEX)
    data["manifests"].append(
        {
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": len(manifest.body),
            "annotations": {REF_NAME: tag, LOCK_NAME: lock_name},
        }
    )
    try:
        fsutil.write_atomic(root / INDEX_FILE, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise LayoutError(f"cannot write {root / INDEX_FILE}: {exc.strerror}") from None


def has_manifest(root: Path, digest: str) -> bool:
    """Whether the layout holds blob ``digest`` (a damaged one raises)."""
    path = blob_path(root, digest)
    if not path.is_file():
        return False
    read_blob(root, digest)
    return True


def tag_digest(root: Path, tag: str) -> Digest:
    """The digest ``tag`` names in the layout (the last descriptor wins); a missing
    tag raises :class:`~ocirel.errors.RegistryNotFoundError`, as a registry's 404."""
    matches = [item.digest for item in tagged(root) if item.tag == tag]
    if not matches:
        raise RegistryNotFoundError(f"the OCI layout at {root} has no tag {tag!r}")
    return matches[-1]
