"""Manifest operations: resolve, exists, get, put, and the image config a manifest names.

* ``resolve``: ``HEAD`` the manifest with all four manifest media types accepted and
  read ``Docker-Content-Digest``; when it is missing or malformed, ``GET`` the
  manifest and hash the exact bytes.
* ``get_manifest``: the bytes, checked against the digest the registry claims and
  against the ``mediaType`` inside the document. Both refuse a manifest of a type
  that was not asked for (a platform's manifest when only index types were).
* ``put_manifest``: PUT by tag or digest, checking the digest the registry reports.
"""

from __future__ import annotations

from ocirel.errors import DigestMismatchError, UnsupportedManifestError
from ocirel.oci import (
    ACCEPT_ALL,
    MANIFEST_TYPES,
    Digest,
    ImageConfig,
    ImageManifest,
    ManifestInfo,
    check_accepted,
    media_type_of,
    parse_image_config,
    parse_manifest,
    sha256_digest,
)
from ocirel.reference import Reference, is_valid_digest
from ocirel.registry import scope
from ocirel.registry.blobs import get_blob
from ocirel.transport import MANIFEST_MAX_BODY, Reply, Transport, raise_for_status


def _manifest_request(transport: Transport, method: str, ref: Reference, accept: str) -> Reply:
    return transport.request(
        method,
        ref.registry,
        f"/v2/{ref.repository}/manifests/{ref.identifier}",
        scope=scope.pull(ref),
        headers={"Accept": accept},
        max_body=MANIFEST_MAX_BODY,
    )


def resolve(transport: Transport, ref: Reference, *, accept: str = ACCEPT_ALL) -> ManifestInfo:
    """The digest and media type ``ref`` (tag or digest) points to."""
    reply = _manifest_request(transport, "HEAD", ref, accept)
    if reply.status == 200:
        digest = reply.header("Docker-Content-Digest") or ""
        media_type = media_type_of(reply.header("Content-Type"))
        if is_valid_digest(digest) and media_type in MANIFEST_TYPES:
            check_accepted(str(ref), media_type, accept)
            if ref.digest and digest != ref.digest:
                raise DigestMismatchError(
                    f"{ref} resolved to another digest ({digest}); the registry is inconsistent"
                )
            size = reply.header("Content-Length")
            return ManifestInfo(digest, media_type, int(size) if size and size.isdigit() else None)
    elif reply.status not in (405, 501):  # some registries refuse HEAD; GET instead
        raise_for_status(reply, what=f"resolving {ref}")
    manifest = get_manifest(transport, ref, accept=accept)
    return ManifestInfo(manifest.digest, manifest.media_type, len(manifest.body))


def exists(transport: Transport, ref: Reference) -> bool:
    """Whether the manifest (tag or digest) exists: ``HEAD`` → 200 or 404."""
    reply = _manifest_request(transport, "HEAD", ref, ACCEPT_ALL)
    if reply.status == 404:
        return False
    raise_for_status(reply, what=f"checking {ref}")
    return True


def get_manifest(
    transport: Transport, ref: Reference, *, accept: str = ACCEPT_ALL
) -> ImageManifest:
    """The exact manifest bytes, their sha256 digest and media type (all checked)."""
    reply = _manifest_request(transport, "GET", ref, accept)
    raise_for_status(reply, what=f"fetching the manifest of {ref}")
    digest = sha256_digest(reply.body)
    if ref.digest and ref.digest != digest:
        raise DigestMismatchError(
            f"the manifest of {ref} hashes to {digest}, not to the digest asked for"
        )
    claimed = reply.header("Docker-Content-Digest")
    if claimed and is_valid_digest(claimed) and claimed.startswith("sha256:") and claimed != digest:
        raise DigestMismatchError(
            f"{ref}: the registry says {claimed} but the manifest bytes hash to {digest}"
        )
    return parse_manifest(
        reply.body,
        digest,
        served_as=reply.header("Content-Type"),
        accept=accept,
        what=str(ref),
    )


def get_config(transport: Transport, repo: Reference, manifest: ImageManifest) -> ImageConfig:
    """The image config ``manifest`` names, verified ({} when it names none)."""
    config_digest = manifest.document.get("config", {}).get("digest", "")
    if not config_digest:
        return {}
    try:
        return parse_image_config(get_blob(transport, repo, config_digest))
    except (ValueError, RecursionError):  # binary, or not UTF-8: not an image config
        raise UnsupportedManifestError(
            f"the config of {repo.name}@{manifest.digest} is not JSON",
            reason="has a configuration that is not JSON",
        ) from None


def put_manifest(transport: Transport, ref: Reference, manifest: ImageManifest) -> Digest:
    """PUT ``manifest`` at ``ref`` (tag or digest); return the digest the registry reports."""
    reply = transport.request(
        "PUT",
        ref.registry,
        f"/v2/{ref.repository}/manifests/{ref.identifier}",
        scope=scope.push(ref),
        headers={"Content-Type": manifest.media_type},
        data=manifest.body,
    )
    raise_for_status(reply, what=f"putting the manifest {ref}", ok=(201, 200))
    reported = reply.header("Docker-Content-Digest")
    if reported and is_valid_digest(reported) and reported != manifest.digest:
        raise DigestMismatchError(
            f"{ref.registry} stored the manifest as {reported}, expected {manifest.digest}"
        )
    return manifest.digest
