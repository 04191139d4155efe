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

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from ocirel.errors import DigestMismatchError, RegistryError
from ocirel.reference import is_valid_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


#: configs of images (what ``compare`` understands); any other config type is an artifact
IMAGE_CONFIG_TYPES = frozenset({OCI_CONFIG, "application/vnd.docker.container.image.v1+json"})
SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)


def not_comparable(manifest: Manifest) -> str | None:
    """Why the image behind ``manifest`` cannot be compared layer by layer with a
    build (an index, an OCI artifact), or None when it can."""
    if manifest.media_type in INDEX_TYPES:
        return "is a multi-platform index"
    document = manifest.document
    config = document.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    artifact_type = document.get("artifactType")
    if artifact_type is not None or config_type not in IMAGE_CONFIG_TYPES:
        kind = artifact_type if isinstance(artifact_type, str) else config_type
        return f"is an OCI artifact ({kind!s:.100}), not an image"
    return None


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(document: object) -> bytes:
    """Compact JSON, keys in their original order: what Go's encoder writes."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes

    @property
    def document(self) -> dict[str, Any]:
        data = json.loads(self.body)
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    path: Path


@dataclass(frozen=True)
class OciImage:
    """A single-platform image: manifest, config bytes, and layer files."""

    manifest: Manifest
    config_bytes: bytes
    layers: tuple[Layer, ...]

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config_bytes)

    @property
    def config(self) -> dict[str, Any]:
        data = json.loads(self.config_bytes)
        return data if isinstance(data, dict) else {}

    @property
    def blobs(self) -> tuple[tuple[str, int], ...]:
        """(digest, size) of the config and every layer, config first."""
        return (
            (self.config_digest, len(self.config_bytes)),
            *((layer.digest, layer.size) for layer in self.layers),
        )

    def open_blob(self, digest: str) -> IO[bytes]:
        if digest == self.config_digest:
            return io.BytesIO(self.config_bytes)
        for layer in self.layers:
            if layer.digest == digest:
                return layer.path.open("rb")
        raise KeyError(digest)

    @property
    def platform(self) -> str:
        config = self.config
        platform = f"{config.get('os', 'linux')}/{config.get('architecture', 'unknown')}"
        return platform + (f"/{config['variant']}" if config.get("variant") else "")

    @property
    def labels(self) -> dict[str, str]:
        labels = self.config.get("config", {}).get("Labels") or {}
        return dict(labels) if isinstance(labels, dict) else {}


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
    manifest = Manifest(sha256_digest(body), image.manifest.media_type, body)
    return replace(image, manifest=manifest, config_bytes=config_bytes)


def _blob_path(root: Path, digest: str) -> Path:
    if not is_valid_digest(digest):
        raise DigestMismatchError(f"the OCI layout at {root} names an invalid digest")
    algorithm, _, hexpart = digest.partition(":")
    return root / "blobs" / algorithm / hexpart


def read_layout(root: Path) -> OciImage:
    """Read and check the single image manifest of the OCI layout at ``root``."""
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
        if not layer.path.is_file() or layer.path.stat().st_size != layer.size:
            raise DigestMismatchError(
                f"layer {layer.digest} in {root} is missing or has the wrong size"
            )
    return OciImage(Manifest(digest, media_type, body), config_bytes, layers)
