"""An OCI image on its way to the registry: read from a layout, stamped, uploaded.

The builder exports its image into a private OCI image layout. ocirel reads the one
image manifest there (checking every blob's presence and size and the manifest's
hash), and may *stamp* labels into the image config: the version label can only be
known once the registry has said which tag is free, which is after the build. Stamping
rewrites the config JSON (adding the labels and a history entry) and the manifest's
config descriptor; the layers are untouched, so a new version label costs a few
hundred bytes of upload, never a rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ocirel.errors import DigestMismatchError, RegistryError
from ocirel.oci import (
    INDEX_TYPES,
    OCI_MANIFEST,
    ImageManifest,
    Layer,
    OciImage,
    canonical_json,
    sha256_digest,
)
from ocirel.reference import is_valid_digest


def stamp_labels(image: OciImage, labels: Mapping[str, str]) -> OciImage:
    """``image`` with ``labels`` set in its config; same layers, new config and manifest."""
    if not labels:
        return image
    config = image.config
    inner = config.setdefault("config", {})
    if not isinstance(inner, dict):
        raise RegistryError("the image config's 'config' member is not an object")
    existing = inner.get("Labels") or {}
    inner["Labels"] = {**existing, **labels}
    history = config.get("history")
    if isinstance(history, list):
        entry: dict[str, Any] = {
            "created_by": "ocirel: LABEL " + " ".join(f"{k}={v}" for k, v in labels.items()),
            "empty_layer": True,
        }
        if config.get("created"):
            entry = {"created": config["created"], **entry}
        history.append(entry)
    config_bytes = canonical_json(config)
    manifest_doc = image.manifest.document
    manifest_doc["config"] = {
        **manifest_doc.get("config", {}),
        "digest": sha256_digest(config_bytes),
        "size": len(config_bytes),
    }
    body = canonical_json(manifest_doc)
    manifest = ImageManifest(sha256_digest(body), image.manifest.media_type, body)
    return replace(image, manifest=manifest, config_bytes=config_bytes)


def _blob_path(root: Path, digest: str) -> Path:
    if not is_valid_digest(digest):
        raise DigestMismatchError(f"the OCI layout at {root} names an invalid digest")
    algorithm, _, hexpart = digest.partition(":")
    return root / "blobs" / algorithm / hexpart


def read_layout(root: Path, *, planted: Collection[str] = ()) -> OciImage:
    """Read and check the single image manifest of the OCI layout at ``root``.

    ``planted``: digests of the empty placeholder files :mod:`ocirel.publish.reuse` put
    there; the builder skipped those layers, and lists them with whatever size it
    knows (0, or the uncompressed size when it skipped every layer)."""
    try:
        index = json.loads((root / "index.json").read_text(encoding="utf-8"))
        descriptor = index["manifests"][0]
        digest = descriptor["digest"]
        body = _blob_path(root, digest).read_bytes()
        document = json.loads(body)
        media_type = document.get("mediaType") or descriptor.get("mediaType") or OCI_MANIFEST
        if media_type in INDEX_TYPES:
            raise RegistryError("multi-platform images are not supported yet")
        config_descriptor = document["config"]
        config_bytes = _blob_path(root, config_descriptor["digest"]).read_bytes()
        layers = tuple(
            Layer(layer["digest"], int(layer["size"]), _blob_path(root, layer["digest"]))
            for layer in document.get("layers", [])
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise RegistryError(f"the builder's OCI layout at {root} is unreadable: {exc}") from None
    if sha256_digest(body) != digest:
        raise DigestMismatchError(f"the manifest in {root} does not hash to {digest}")
    if sha256_digest(config_bytes) != config_descriptor["digest"]:
        raise DigestMismatchError(f"the image config in {root} does not hash to its digest")
    for layer in layers:
        path = layer.path
        if layer.digest in planted and path is not None and is_empty_file(path):
            continue
        if path is None or not path.is_file() or path.stat().st_size != layer.size:
            raise DigestMismatchError(
                f"layer {layer.digest} in {root} is missing or has the wrong size"
            )
    return OciImage(ImageManifest(digest, media_type, body), config_bytes, layers)


def is_empty_file(path: Path) -> bool:
    """Whether ``path`` is a regular file of size 0 (a layer the builder skipped
    leaves the empty placeholder :mod:`ocirel.publish.reuse` planted)."""
    try:
        return path.is_file() and path.stat().st_size == 0
    except OSError:
        return False
