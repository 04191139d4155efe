"""Blob operations: size checks, fetching a small blob, upload, cross-repository mount.

Digests are validated before a URL is built. Uploads are monolithic (POST, then PUT
with the whole body) and restarted from the first byte when they fail; a streamed
body is never replayed halfway. A mount (``POST …/blobs/uploads/?mount=&from=``)
moves no bytes; a registry that declines it gets its upload session cancelled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import IO

from ocirel.errors import (
    DigestMismatchError,
    InvalidReferenceError,
    RegistryAuthError,
    RegistryError,
)
from ocirel.oci import Digest, sha256_digest
from ocirel.reference import Reference, parse_repository, validate_digest
from ocirel.registry import scope
from ocirel.transport import (
    MANIFEST_MAX_BODY,
    Again,
    Reply,
    Transport,
    join_url,
    raise_for_status,
    retrying,
)

UPLOAD_ATTEMPTS = 4

#: opens the blob's bytes from the start (an upload restarts from the first byte)
Opener = Callable[[], IO[bytes]]


def get_blob(
    transport: Transport, repo: Reference, digest: Digest, *, max_size: int = MANIFEST_MAX_BODY
) -> bytes:
    """A small blob (an image config), verified against its digest."""
    validate_digest(digest)
    reply = transport.request(
        "GET",
        repo.registry,
        f"/v2/{repo.repository}/blobs/{digest}",
        scope=scope.pull(repo),
        max_body=max_size,
    )
    raise_for_status(reply, what=f"fetching blob {digest[:19]} of {repo.name}")
    if sha256_digest(reply.body) != digest:
        raise DigestMismatchError(f"blob {digest} of {repo.name} does not hash to its digest")
    return reply.body


def blob_size(transport: Transport, repo: Reference, digest: Digest) -> int | None:
    """The size ``repo`` reports for ``digest`` (-1 when it does not say), None when
    it does not have the blob."""
    validate_digest(digest)
    reply = transport.request(
        "HEAD", repo.registry, f"/v2/{repo.repository}/blobs/{digest}", scope=scope.push(repo)
    )
    if reply.status == 404:
        return None
    raise_for_status(reply, what=f"checking blob {digest[:19]}")
    length = reply.header("Content-Length") or ""
    return int(length) if length.isdigit() else -1


def upload_blob(
    transport: Transport, repo: Reference, digest: Digest, opener: Opener, size: int
) -> None:
    """Monolithic upload (POST, then PUT with the whole body), restarted from the first
    byte on a temporary failure, through the transport's one retry loop."""
    validate_digest(digest)

    def attempt(_number: int) -> None:
        try:
            _upload_once(transport, repo, digest, opener, size)
        except RegistryError as exc:
            if not exc.temporary:
                raise
            failed = f"uploading {digest[:19]} to {repo.name} failed {UPLOAD_ATTEMPTS} times"
            raise Again(
                RegistryError(
                    f"{failed}: {exc}", status=exc.status, method=exc.method, url=exc.url,
                    temporary=True,
                )
            ) from None  # fmt: skip

    retrying(transport.policy.retry, attempt, retries=UPLOAD_ATTEMPTS - 1)


def _upload_once(
    transport: Transport, repo: Reference, digest: Digest, opener: Opener, size: int
) -> None:
    upload_url = _start_upload(transport, repo)
    upload_url += ("&" if "?" in upload_url else "?") + f"digest={digest}"
    reply = transport.request(
        "PUT",
        repo.registry,
        "",
        url=upload_url,
        scope=scope.push(repo),
        headers={"Content-Type": "application/octet-stream"},
        data=opener,
        content_length=size,
    )
    if reply.status in (429, 500, 502, 503, 504):
        raise_for_status(reply, what=f"uploading {digest[:19]}")
    if reply.status == 401:  # the transport dropped the rejected token: restart with a new one
        raise RegistryAuthError(
            f"{repo.registry} refused the upload of {digest[:19]} (401); it will be restarted",
            status=401,
            method="PUT",
            url=reply.url.split("?", 1)[0],
            temporary=True,
        )
    raise_for_status(reply, what=f"uploading {digest[:19]} to {repo.name}", ok=(201,))


def upload_stream(
    transport: Transport, repo: Reference, body: IO[bytes], digest: Callable[[], Digest]
) -> Digest:
    """Upload a blob while it is still being written, as a registry push does: POST,
    one PATCH that streams ``body`` to its end (chunked transfer encoding), then PUT
    ``?digest=digest()`` — known only once the body has ended — and return it. The
    registry checks the bytes against that digest, so a stream can only store a
    correct blob. Not retried: after any failure the caller uploads the finished file."""
    location = _start_upload(transport, repo)
    reply = transport.request(
        "PATCH", repo.registry, "", url=location, scope=scope.push(repo),
        headers={"Content-Type": "application/octet-stream"}, data=lambda: body,
    )  # fmt: skip
    raise_for_status(reply, what=f"streaming a blob to {repo.name}", ok=(202,))
    final = validate_digest(digest())
    url = join_url(reply.url, reply.header("Location") or location, registry=repo.registry,
                   what="an upload Location")  # fmt: skip
    url += ("&" if "?" in url else "?") + f"digest={final}"
    reply = transport.request(
        "PUT", repo.registry, "", url=url, scope=scope.push(repo),
        headers={"Content-Length": "0"},
    )  # fmt: skip
    raise_for_status(reply, what=f"finishing the upload of {final[:19]} to {repo.name}", ok=(201,))
    return Digest(final)


def _start_upload(transport: Transport, repo: Reference) -> str:
    """POST a new upload session; its absolute URL."""
    start = transport.request(
        "POST",
        repo.registry,
        f"/v2/{repo.repository}/blobs/uploads/",
        scope=scope.push(repo),
        headers={"Content-Length": "0"},
    )
    raise_for_status(start, what=f"starting an upload to {repo.name}", ok=(202,))
    location = start.header("Location")
    if not location:
        raise RegistryError(f"{repo.registry} started an upload without a Location header")
    return join_url(start.url, location, registry=repo.registry, what="an upload Location")


def mount_blob(transport: Transport, repo: Reference, digest: Digest, source: str) -> bool:
    """Ask the registry to mount ``digest`` from its repository ``source`` into
    ``repo`` (no bytes move). False when it declines (``202``: an upload session
    instead, which is cancelled) or cannot (the source is unknown, not readable)."""
    validate_digest(digest)
    from_repo = parse_repository(f"{repo.registry}/{source}")
    reply = transport.request(
        "POST",
        repo.registry,
        f"/v2/{repo.repository}/blobs/uploads/",
        params={"mount": digest, "from": from_repo.repository},
        scope=f"{scope.push(repo)} {scope.pull(from_repo)}",
        headers={"Content-Length": "0"},
    )
    if reply.status == 201:
        return True
    if reply.status == 202:
        _cancel_upload(transport, repo, reply)
        return False
    if reply.status in (401, 403, 404):  # no pull right on the source, or no such repo
        return False
    raise_for_status(reply, what=f"mounting {digest[:19]} from {source} into {repo.name}")
    return False


def _cancel_upload(transport: Transport, repo: Reference, started: Reply) -> None:
    """Best effort: the registry would expire the session anyway."""
    location = started.header("Location")
    if not location:
        return
    with contextlib.suppress(RegistryError):
        url = join_url(started.url, location, registry=repo.registry, what="an upload Location")
        transport.request("DELETE", repo.registry, "", url=url, scope=scope.push(repo))


def ensure_blob(
    transport: Transport,
    repo: Reference,
    digest: Digest,
    sources: Iterable[str],
    *,
    size: int | None = None,
) -> bool:
    """Make ``digest`` present in ``repo`` without moving its bytes: it is there
    already, or it is mounted from one of ``sources``. False when neither, or when
    ``size`` is given and the registry reports another one for it."""
    found = blob_size(transport, repo, digest)
    if found is None:
        for source in sources:
            if source == repo.repository:
                continue
            with contextlib.suppress(InvalidReferenceError):  # a bad name from a stale cache
                if mount_blob(transport, repo, digest, source):
                    found = blob_size(transport, repo, digest) if size is not None else -1
                    break
    return found is not None and (size is None or found in (size, -1))
