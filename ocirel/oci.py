"""The OCI vocabulary, in one place: media types, label names, digests, image configs,
the platform string, manifests and images. Pure: no I/O; imports only ocirel.errors.

:mod:`ocirel.registry` moves these over the network, :mod:`ocirel.image` reads and
stamps them from a builder's OCI layout, :mod:`ocirel.compare` compares configs.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NewType, TypedDict, cast

from ocirel.errors import UnsupportedManifestError

# ----------------------------------------------------------------- media types

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

#: every manifest type ocirel reads, and the Accept header asking for any of them
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
ACCEPT_ALL = ", ".join(MANIFEST_TYPES)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
#: configs of images (what ``compare`` understands); any other config type is an artifact
IMAGE_CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
#: layer media types whose blobs can be reused as they are, and the OCI type each is
#: written as in an OCI manifest (a Docker gzip layer is byte-for-byte an OCI gzip layer)
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
REUSABLE_LAYER_TYPES = {
    OCI_LAYER_GZIP: OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD: OCI_LAYER_ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": OCI_LAYER_GZIP,
}
SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)

# ------------------------------------------------------------------ label names

LABEL_VERSION = "org.opencontainers.image.version"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_CREATED = "org.opencontainers.image.created"
#: labels that describe the release rather than the content (ignored by ``compare``)
RELEASE_LABELS = frozenset({LABEL_VERSION, LABEL_CREATED, LABEL_REVISION})

# ---------------------------------------------------------------------- digests

#: ``algorithm:hex``, checked by :func:`ocirel.reference.validate_digest` or computed
#: by :func:`sha256_digest`; a plain ``str`` at run time
Digest = NewType("Digest", str)


def sha256_digest(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def canonical_json(document: object) -> bytes:
    """Compact JSON, keys in their original order: what Go's encoder writes."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ---------------------------------------------------------------- image configs


class ImageConfig(TypedDict, total=False):
    """The members of an image config ocirel reads; any other member is kept as it is.
    The values come from a registry or a builder: readers still check their shapes."""

    os: str
    architecture: str
    variant: str
    created: str
    rootfs: dict[str, Any]  # {"type": "layers", "diff_ids": [...]}
    config: dict[str, Any]  # the runtime configuration: Env, Cmd, Labels …
    history: list[dict[str, Any]]


def as_image_config(data: object) -> ImageConfig:
    """Parsed JSON as an image config: an object as it is, anything else as empty."""
    return cast("ImageConfig", data) if isinstance(data, dict) else {}


def parse_image_config(data: bytes) -> ImageConfig:
    """Raises ``ValueError`` (or ``RecursionError``) when ``data`` is not JSON."""
    return as_image_config(json.loads(data))


def platform_of(config: ImageConfig) -> str:
    """``os/architecture[/variant]``, as in a lockfile's ``platforms``."""
    platform = f"{config.get('os', 'linux')}/{config.get('architecture', 'unknown')}"
    return platform + (f"/{config['variant']}" if config.get("variant") else "")


# -------------------------------------------------------------- manifests, images


@dataclass(frozen=True)
class ImageManifest:
    """A manifest (image or index) as bytes, with their digest and media type."""

    digest: Digest
    media_type: str
    body: bytes

    @property
    def document(self) -> dict[str, Any]:
        data = json.loads(self.body)
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class ManifestInfo:
    """What a manifest is without its bytes: digest, media type, size when known."""

    digest: Digest
    media_type: str
    size: int | None


def not_comparable(manifest: ImageManifest) -> str | None:
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


def media_type_of(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value: parameters dropped, lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_manifest(
    body: bytes, digest: Digest, *, served_as: str | None, accept: str, what: str
) -> ImageManifest:
    """The manifest ``body`` of ``what``, served with the Content-Type ``served_as``:
    a JSON object of a type ocirel reads, asked for in ``accept``, whose ``mediaType``
    (when it has one) is the type it was served as. Anything else raises
    :class:`UnsupportedManifestError`."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise UnsupportedManifestError(f"the manifest of {what} is not valid JSON") from None
    if not isinstance(document, dict):
        raise UnsupportedManifestError(f"the manifest of {what} is not a JSON object")
    body_type, header_type = document.get("mediaType"), media_type_of(served_as)
    if body_type is not None and header_type in MANIFEST_TYPES and body_type != header_type:
        raise _unsupported(
            f"the manifest of {what} says mediaType {body_type!r} but was served as "
            f"{header_type!r}; refusing an ambiguous manifest",
            body_type,
        )
    media_type = body_type if isinstance(body_type, str) else header_type
    if media_type not in MANIFEST_TYPES:
        raise _unsupported(
            f"the manifest of {what} has an unsupported media type {media_type!r}", media_type
        )
    check_accepted(what, media_type, accept)
    return ImageManifest(digest, media_type, body)


def check_accepted(what: str, media_type: str, accept: str) -> None:
    """A registry may answer with another manifest type than asked (a platform's
    manifest for an index): never take its digest for the one asked for."""
    accepted = {media_type_of(item) for item in accept.split(",")}
    if media_type not in accepted:
        raise UnsupportedManifestError(
            f"{what}: the registry answered with a {media_type} instead of "
            f"{' or '.join(sorted(accepted))}; refusing to take its digest"
        )


def _unsupported(message: str, media_type: object) -> UnsupportedManifestError:
    if isinstance(media_type, str) and media_type in SCHEMA1_TYPES:
        return UnsupportedManifestError(
            message, reason="is a schema 1 manifest, which ocirel cannot compare"
        )
    return UnsupportedManifestError(message)


@dataclass(frozen=True)
class Layer:
    """A layer blob: a file of the builder's layout (``path``), or a blob the registry
    already holds (``path`` None), in the target repository or in ``sources``, other
    repositories of the same registry it can be mounted from."""

    digest: Digest
    size: int
    path: Path | None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class OciImage:
    """A single-platform image: manifest, config bytes, and layer files."""

    manifest: ImageManifest
    config_bytes: bytes
    layers: tuple[Layer, ...]

    @property
    def config_digest(self) -> Digest:
        return sha256_digest(self.config_bytes)

    @property
    def config(self) -> ImageConfig:
        return parse_image_config(self.config_bytes)

    @property
    def blobs(self) -> tuple[tuple[Digest, int], ...]:
        """(digest, size) of the config and every layer, config first."""
        return (
            (self.config_digest, len(self.config_bytes)),
            *((layer.digest, layer.size) for layer in self.layers),
        )

    def open_blob(self, digest: str) -> IO[bytes]:
        if digest == self.config_digest:
            return io.BytesIO(self.config_bytes)
        for layer in self.layers:
            if layer.digest == digest and layer.path is not None:
                return layer.path.open("rb")
        raise KeyError(digest)

    def layer(self, digest: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.digest == digest), None)

    @property
    def platform(self) -> str:
        return platform_of(self.config)
