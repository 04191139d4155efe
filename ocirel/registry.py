"""Registry operations on top of :mod:`ocirel.transport`.

* ``list_tags``: ``GET /v2/<name>/tags/list`` following ``Link: <…>; rel="next"``
  (relative or absolute), refusing a page on another host, a loop, or more than
  ``MAX_PAGES`` pages; a registry that rejects ``n`` is asked again with a smaller
  page size, then without ``n``. ``404 NAME_UNKNOWN`` on the first page means "no
  tags yet"; any other failure (a 404 on a later page, a body without ``tags``)
  raises — a version is never computed from a partial list.
* ``resolve``: ``HEAD`` the manifest with all four manifest media types accepted and
  read ``Docker-Content-Digest``; when it is missing or malformed, ``GET`` the
  manifest and hash the exact bytes.
* ``get_manifest``: the bytes, checked against the digest the registry claims and
  against the ``mediaType`` inside the document. Both refuse a manifest of a type
  that was not asked for (a platform's manifest when only index types were).
* Digests given to blob and manifest operations are validated before a URL is built.
* ``push_image``: upload the blobs of an :class:`~ocirel.oci.OciImage` (skipping
  blobs the registry has) and put its manifest **by digest** — no tag is touched;
  ``put_tag`` then points a tag at it. Uploads are restarted from the first byte
  when they fail; a streamed body is never replayed halfway.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from ocirel.errors import (
    DigestMismatchError,
    InvalidReferenceError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
    UnsupportedManifestError,
)
from ocirel.oci import (
    ACCEPT_ALL,
    MANIFEST_TYPES,
    Digest,
    ImageConfig,
    ImageManifest,
    ManifestInfo,
    OciImage,
    check_accepted,
    media_type_of,
    parse_image_config,
    parse_manifest,
    sha256_digest,
)
from ocirel.reference import Reference, is_valid_digest, parse_repository, validate_digest
from ocirel.transport import (
    MANIFEST_MAX_BODY,
    Again,
    Reply,
    Transport,
    check_same_origin,
    join_url,
    parse_link_next,
    raise_for_status,
    retrying,
)

PAGE_SIZES = (1000, 100, None)
MAX_PAGES = 1000
MAX_TAGS = 1_000_000
UPLOAD_ATTEMPTS = 4
UPLOAD_WORKERS = 4
NOT_FOUND_CODES = frozenset({"NAME_UNKNOWN", "NOT_FOUND"})


def _pull(ref: Reference) -> str:
    return f"repository:{ref.repository}:pull"


def _push(ref: Reference) -> str:
    return f"repository:{ref.repository}:pull,push"


class Registry:
    """Operations for any repository reachable through one :class:`Transport`."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # ---------------------------------------------------------------- tags

    def list_tags(self, repo: Reference) -> list[str]:
        """Every tag of ``repo``, each once (a registry may repeat one), in the order
        listed (not meaningful); [] for an unknown repository."""
        for page_size in PAGE_SIZES:
            try:
                return list(dict.fromkeys(self._iter_tags(repo, page_size)))
            except _PageSizeRejectedError:
                continue
            except RegistryNotFoundError as exc:
                if NOT_FOUND_CODES.intersection(exc.codes):
                    return []
                raise RegistryNotFoundError(
                    f"{exc} — the registry did not say the repository is unknown "
                    "(no NAME_UNKNOWN), so ocirel will not assume it is empty",
                    status=exc.status,
                    method=exc.method,
                    url=exc.url,
                    codes=exc.codes,
                ) from None
        raise RegistryError(f"{repo.registry} rejected every page size for the tag list")

    def _iter_tags(self, repo: Reference, page_size: int | None) -> Iterator[str]:
        path = f"/v2/{repo.repository}/tags/list"
        params = {"n": str(page_size)} if page_size else None
        base = self.transport.base_url(repo.registry)
        url: str | None = None
        seen: set[str] = set()
        count = 0
        for _page in range(MAX_PAGES):
            reply = self.transport.request(
                "GET",
                repo.registry,
                path,
                scope=_pull(repo),
                url=url,
                params=params if url is None else None,
            )
            if reply.status == 400 and page_size and url is None:
                raise _PageSizeRejectedError
            if reply.status == 404 and url is not None:  # not "no tags": earlier pages had some
                raise RegistryError(
                    f"listing tags of {repo.name}: a later page answered 404; "
                    "refusing a partial list"
                )
            raise_for_status(reply, what=f"listing tags of {repo.name}")
            for tag in _tags_from(reply, repo):
                count += 1
                yield tag
            if count > MAX_TAGS:
                raise RegistryError(f"{repo.name} lists more than {MAX_TAGS} tags; refusing")
            next_link = parse_link_next(reply.header("Link"))
            if next_link is None:  # "<>" is a Link to this very page: a loop, not the end
                return
            target = join_url(reply.url, next_link, registry=repo.registry, what="a tag-list Link")
            check_same_origin(
                repo.registry, base, target, what="a tag-list Link", hint=_PARTIAL_LIST_HINT
            )
            if target in seen:
                raise RegistryError(
                    f"{repo.registry} sent a tag-list Link that loops back to a page already "
                    "read; refusing a partial list"
                )
            seen.add(target)
            url = target
        raise RegistryError(
            f"{repo.name}: the tag list did not end after {MAX_PAGES} pages; "
            "refusing a partial list"
        )

    # ------------------------------------------------------------ manifests

    def _manifest_request(self, method: str, ref: Reference, accept: str) -> Reply:
        return self.transport.request(
            method,
            ref.registry,
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            scope=_pull(ref),
            headers={"Accept": accept},
            max_body=MANIFEST_MAX_BODY,
        )

    def resolve(self, ref: Reference, *, accept: str = ACCEPT_ALL) -> ManifestInfo:
        """The digest and media type ``ref`` (tag or digest) points to."""
        reply = self._manifest_request("HEAD", ref, accept)
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
                return ManifestInfo(
                    digest, media_type, int(size) if size and size.isdigit() else None
                )
        elif reply.status not in (405, 501):  # some registries refuse HEAD; GET instead
            raise_for_status(reply, what=f"resolving {ref}")
        manifest = self.get_manifest(ref, accept=accept)
        return ManifestInfo(manifest.digest, manifest.media_type, len(manifest.body))

    def exists(self, ref: Reference) -> bool:
        """Whether the manifest (tag or digest) exists: ``HEAD`` → 200 or 404."""
        reply = self._manifest_request("HEAD", ref, ACCEPT_ALL)
        if reply.status == 404:
            return False
        raise_for_status(reply, what=f"checking {ref}")
        return True

    def get_manifest(self, ref: Reference, *, accept: str = ACCEPT_ALL) -> ImageManifest:
        """The exact manifest bytes, their sha256 digest and media type (all checked)."""
        reply = self._manifest_request("GET", ref, accept)
        raise_for_status(reply, what=f"fetching the manifest of {ref}")
        digest = sha256_digest(reply.body)
        if ref.digest and ref.digest != digest:
            raise DigestMismatchError(
                f"the manifest of {ref} hashes to {digest}, not to the digest asked for"
            )
        claimed = reply.header("Docker-Content-Digest")
        if (
            claimed
            and is_valid_digest(claimed)
            and claimed.startswith("sha256:")
            and claimed != digest
        ):
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

    def get_blob(
        self, repo: Reference, digest: Digest, *, max_size: int = MANIFEST_MAX_BODY
    ) -> bytes:
        """A small blob (an image config), verified against its digest."""
        validate_digest(digest)
        reply = self.transport.request(
            "GET",
            repo.registry,
            f"/v2/{repo.repository}/blobs/{digest}",
            scope=_pull(repo),
            max_body=max_size,
        )
        raise_for_status(reply, what=f"fetching blob {digest[:19]} of {repo.name}")
        if sha256_digest(reply.body) != digest:
            raise DigestMismatchError(f"blob {digest} of {repo.name} does not hash to its digest")
        return reply.body

    def get_config(self, repo: Reference, manifest: ImageManifest) -> ImageConfig:
        """The image config ``manifest`` names, verified ({} when it names none)."""
        config_digest = manifest.document.get("config", {}).get("digest", "")
        if not config_digest:
            return {}
        try:
            return parse_image_config(self.get_blob(repo, config_digest))
        except (ValueError, RecursionError):  # binary, or not UTF-8: not an image config
            raise UnsupportedManifestError(
                f"the config of {repo.name}@{manifest.digest} is not JSON",
                reason="has a configuration that is not JSON",
            ) from None

    # --------------------------------------------------------------- upload

    def blob_exists(self, repo: Reference, digest: Digest) -> bool:
        return self.blob_size(repo, digest) is not None

    def upload_blob(
        self, repo: Reference, digest: Digest, opener: Callable[[], IO[bytes]], size: int
    ) -> None:
        """Monolithic upload (POST, then PUT with the whole body), restarted from the first
        byte on a temporary failure, through the transport's one retry loop."""
        validate_digest(digest)

        def attempt(_number: int) -> None:
            try:
                self._upload_once(repo, digest, opener, size)
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

        retrying(self.transport.policy.retry, attempt, retries=UPLOAD_ATTEMPTS - 1)

    def _upload_once(
        self, repo: Reference, digest: Digest, opener: Callable[[], IO[bytes]], size: int
    ) -> None:
        start = self.transport.request(
            "POST",
            repo.registry,
            f"/v2/{repo.repository}/blobs/uploads/",
            scope=_push(repo),
            headers={"Content-Length": "0"},
        )
        raise_for_status(start, what=f"starting an upload to {repo.name}", ok=(202,))
        location = start.header("Location")
        if not location:
            raise RegistryError(f"{repo.registry} started an upload without a Location header")
        upload_url = join_url(
            start.url, location, registry=repo.registry, what="an upload Location"
        )
        upload_url += ("&" if "?" in upload_url else "?") + f"digest={digest}"
        reply = self.transport.request(
            "PUT",
            repo.registry,
            "",
            url=upload_url,
            scope=_push(repo),
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

    def put_manifest(self, ref: Reference, manifest: ImageManifest) -> Digest:
        """PUT ``manifest`` at ``ref`` (tag or digest); return the digest the registry reports."""
        reply = self.transport.request(
            "PUT",
            ref.registry,
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            scope=_push(ref),
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

    def mount_blob(self, repo: Reference, digest: Digest, source: str) -> bool:
        """Ask the registry to mount ``digest`` from its repository ``source`` into
        ``repo`` (no bytes move). False when it declines (``202``: an upload session
        instead, which is cancelled) or cannot (the source is unknown, not readable)."""
        validate_digest(digest)
        from_repo = parse_repository(f"{repo.registry}/{source}")
        reply = self.transport.request(
            "POST",
            repo.registry,
            f"/v2/{repo.repository}/blobs/uploads/",
            params={"mount": digest, "from": from_repo.repository},
            scope=f"{_push(repo)} {_pull(from_repo)}",
            headers={"Content-Length": "0"},
        )
        if reply.status == 201:
            return True
        if reply.status == 202:
            self._cancel_upload(repo, reply)
            return False
        if reply.status in (401, 403, 404):  # no pull right on the source, or no such repo
            return False
        raise_for_status(reply, what=f"mounting {digest[:19]} from {source} into {repo.name}")
        return False

    def _cancel_upload(self, repo: Reference, started: Reply) -> None:
        """Best effort: the registry would expire the session anyway."""
        location = started.header("Location")
        if not location:
            return
        with contextlib.suppress(RegistryError):
            url = join_url(started.url, location, registry=repo.registry, what="an upload Location")
            self.transport.request("DELETE", repo.registry, "", url=url, scope=_push(repo))

    def blob_size(self, repo: Reference, digest: Digest) -> int | None:
        """The size ``repo`` reports for ``digest`` (-1 when it does not say), None when
        it does not have the blob."""
        validate_digest(digest)
        reply = self.transport.request(
            "HEAD", repo.registry, f"/v2/{repo.repository}/blobs/{digest}", scope=_push(repo)
        )
        if reply.status == 404:
            return None
        raise_for_status(reply, what=f"checking blob {digest[:19]}")
        length = reply.header("Content-Length") or ""
        return int(length) if length.isdigit() else -1

    def ensure_blob(
        self, repo: Reference, digest: Digest, sources: Iterable[str], *, size: int | None = None
    ) -> bool:
        """Make ``digest`` present in ``repo`` without moving its bytes: it is there
        already, or it is mounted from one of ``sources``. False when neither, or when
        ``size`` is given and the registry reports another one for it."""
        found = self.blob_size(repo, digest)
        if found is None:
            for source in sources:
                if source == repo.repository:
                    continue
                with contextlib.suppress(InvalidReferenceError):  # a bad name from a stale cache
                    if self.mount_blob(repo, digest, source):
                        found = self.blob_size(repo, digest) if size is not None else -1
                        break
        return found is not None and (size is None or found in (size, -1))

    def push_image(
        self, repo: Reference, image: OciImage, *, sent: Callable[[Digest], bool] | None = None
    ) -> Digest:
        """Put ``image``'s blobs into ``repo`` and its manifest by digest (untagged).

        Each blob is checked and, when missing, uploaded (a layout file) or mounted (a
        layer the registry holds elsewhere), all blobs at the same time. ``sent(digest)``
        says whether a blob was already uploaded (early, while the builder worked)."""
        blobs = image.blobs
        with ThreadPoolExecutor(max_workers=max(1, min(UPLOAD_WORKERS, len(blobs)))) as pool:
            futures = [pool.submit(self._put_blob, repo, image, d, s, sent) for d, s in blobs]
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
            "GET", repo.registry, "/v2/", scope=_push(repo) if push else _pull(repo)
        )
        raise_for_status(reply, what=f"authenticating to {repo.registry}")

    def put_tag(self, repo: Reference, tag: str, manifest: ImageManifest) -> Digest:
        return self.put_manifest(repo.with_tag(tag), manifest)


class _PageSizeRejectedError(Exception):
    pass


_PARTIAL_LIST_HINT = "a partial tag list could reuse a version; fix the registry's Link header"


def _tags_from(reply: Reply, repo: Reference) -> list[str]:
    data = reply.json()
    if not isinstance(data, dict):
        raise RegistryError(f"the tag list of {repo.name} is not a JSON object")
    if "tags" not in data:  # a body without "tags" is not a tag list (a proxy's "{}")
        raise RegistryError(f"the tag list of {repo.name} is malformed (no 'tags' member)")
    tags = data["tags"]
    if tags is None:  # distribution answers null for a repository without tags
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RegistryError(
            f"the tag list of {repo.name} is malformed ('tags' is not a list of strings)"
        )
    return tags
