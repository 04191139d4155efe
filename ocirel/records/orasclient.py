"""oras-py, fed with ocirel's own transport. The only module that imports ``oras``.

oras-py (0.2.x) pushes and pulls the build records' blobs and manifests. Its own HTTP
layer has known limits (REFERENCE.md): it keeps one bearer token whatever the scope
(a push after a pull-scoped request fails on a strict token server), its ``retry``
decorator sleeps ``2 + 3**n`` seconds on any error (about 131 s in all) and ignores
429, and it reads credentials only from docker config files. So every request oras-py
makes goes through :meth:`OrasClient.do_request`, which replaces the decorated
``Registry.do_request`` with a call to :class:`ocirel.transport.Transport`:

* credentials from ocirel's lookup (``OCIREL_USERNAME``/``PASSWORD``, auth files,
  credential helpers), one token per scope (``repository:<name>:pull`` for GET/HEAD,
  ``pull,push`` otherwise, taken from the URL), refreshed by ocirel's token cache;
* ocirel's TLS policy (CA file, ``--insecure``) and its one retry loop (429/5xx with
  ``Retry-After``, a bounded number of attempts, no 131 s sleeps);
* oras-py's own auth backend is never asked (``load_configs`` is a no-op).

oras-py is imported on first use: ``import ocirel.records.orasclient`` stays cheap.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ocirel.errors import OcirelError, RegistryError
from ocirel.oci import Digest, canonical_json, sha256_digest
from ocirel.redact import redact
from ocirel.reference import Reference
from ocirel.transport import MANIFEST_MAX_BODY, Reply, raise_for_status

if TYPE_CHECKING:
    from ocirel.transport import Transport

_SCOPED_PATH = "/v2/"
_KINDS = ("/manifests/", "/blobs/", "/tags/", "/referrers/")


class _Headers:
    """Case-insensitive read access to a reply's headers (what oras-py calls)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._items = {k.lower(): v for k, v in headers.items()}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._items.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items


class OrasResponse:
    """The parts of ``requests.Response`` oras-py reads, over an ocirel :class:`Reply`."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.status_code = reply.status
        self.headers = _Headers(reply.headers)
        self.content = reply.body
        self.url = reply.url
        self.reason = str(reply.status)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return self.reply.json()

    def iter_content(self, chunk_size: int = 8192) -> Iterator[bytes]:
        for start in range(0, len(self.content), chunk_size):
            yield self.content[start : start + chunk_size]

    def raise_for_status(self) -> None:
        raise_for_status(self.reply, ok=range(200, 300))

    def __enter__(self) -> OrasResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def scope_for(method: str, path: str) -> str | None:
    """The token scope of a distribution API path: pull for reads, pull,push else."""
    if not path.startswith(_SCOPED_PATH):
        return None
    rest = path[len(_SCOPED_PATH) :]
    cuts = [rest.find(kind) for kind in _KINDS if rest.find(kind) > 0]
    if not cuts:
        return None
    actions = "pull" if method.upper() in ("GET", "HEAD") else "pull,push"
    return f"repository:{rest[: min(cuts)]}:{actions}"


def make_client(transport: Transport, registry: str) -> Any:
    """An ``oras.provider.Registry`` for ``registry`` whose requests go through
    ``transport`` (see the module docstring)."""
    import oras.provider  # noqa: PLC0415  (lazy: a heavy import, only for records)

    class OrasClient(oras.provider.Registry):  # type: ignore[misc]
        def __init__(self) -> None:
            insecure = transport.scheme(registry) == "http"
            super().__init__(hostname=registry, insecure=insecure, tls_verify=True)
            self.auth.load_configs = lambda *_args, **_kwargs: None  # ocirel finds creds

        def do_request(  # noqa: PLR0917 (oras-py's signature)
            self,
            url: str,
            method: str = "GET",
            data: bytes | dict[str, Any] | None = None,
            headers: dict[str, str] | None = None,
            json: dict[str, Any] | None = None,
            stream: bool = False,
        ) -> OrasResponse:
            # replaces the decorated original (~131 s of retries, one cached token)
            del stream  # records are small: always read whole (capped)
            return _send(
                transport, registry, url, method, data=data, headers=headers, document=json
            )

    return OrasClient()


def _send(
    transport: Transport,
    registry: str,
    url: str,
    method: str,
    *,
    data: bytes | dict[str, Any] | None,
    headers: Mapping[str, str] | None,
    document: dict[str, Any] | None,
) -> OrasResponse:
    sent = dict(headers or {})
    body: bytes | None
    if document is not None:
        body = canonical_json(document)
        sent.setdefault("Content-Type", "application/json")
    elif isinstance(data, dict):
        raise RegistryError("oras-py sent a form body; ocirel does not send forms")
    else:
        body = data
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    reply = transport.request(
        method.upper(),
        registry,
        parts.path,
        scope=scope_for(method, parts.path),
        headers=sent,
        params=params or None,
        data=body,
        max_body=MANIFEST_MAX_BODY,
    )
    if reply.status == 429 or reply.status >= 500:  # still failing after ocirel's retries:
        raise_for_status(reply, what=f"{method} for oras-py")  # oras-py would misread it
    return OrasResponse(reply)


# ------------------------------------------------------------------- operations


@contextlib.contextmanager
def _oras_errors(what: str) -> Iterator[None]:
    """oras-py raises ValueError, jsonschema's ValidationError, KeyError …: one
    :class:`RegistryError` saying what was being done (ocirel's own errors pass)."""
    try:
        yield
    except OcirelError:
        raise
    except Exception as exc:  # noqa: BLE001 (the boundary of a foreign library)
        raise RegistryError(f"{what}: oras-py failed: {redact(str(exc))[:300]}") from None


def _container(client: Any, repo: Reference) -> Any:
    return client.get_container(f"{repo.registry}/{repo.repository}")


def push_blob(
    client: Any, repo: Reference, data: bytes, media_type: str, workdir: Path
) -> dict[str, Any]:
    """Upload ``data`` with oras-py (skipped when present); its descriptor."""
    digest = sha256_digest(data)
    path = workdir / digest.replace(":", "-")
    path.write_bytes(data)
    layer = {"mediaType": media_type, "digest": digest, "size": len(data)}
    with _oras_errors(f"uploading blob {digest[:19]} to {repo.name}"):
        response = client.upload_blob(str(path), _container(client, repo), layer)
    _check(response, f"uploading blob {digest[:19]} to {repo.name}", (200, 201, 202))
    return layer


def push_manifest(
    client: Any, repo: Reference, manifest: dict[str, Any]
) -> tuple[Digest, OrasResponse]:
    """PUT ``manifest`` by digest with oras-py; its digest and the registry's reply."""
    digest = sha256_digest(canonical_json(manifest))
    container = client.get_container(f"{repo.registry}/{repo.repository}@{digest}")
    with _oras_errors(f"putting the build record manifest into {repo.name}"):
        response = client.upload_manifest(manifest, container)
    _check(response, f"putting the build record manifest into {repo.name}", (200, 201))
    reported = response.headers.get("Docker-Content-Digest")
    if reported and reported != digest:
        raise RegistryError(
            f"{repo.registry} stored the record manifest as {reported}, not {digest}"
        )
    return digest, response


def pull_manifest(client: Any, repo: Reference, digest: str, accept: list[str]) -> dict[str, Any]:
    """The manifest ``digest`` of ``repo`` read with oras-py, its bytes checked."""
    container = client.get_container(f"{repo.registry}/{repo.repository}@{digest}")
    response = client.do_request(
        f"{client.prefix}://{container.manifest_url()}",
        "GET",
        headers={"Accept": ", ".join(accept)},
    )
    _check(response, f"fetching the manifest {digest[:19]} of {repo.name}", (200,))
    if sha256_digest(response.content) != digest:
        raise RegistryError(f"the manifest {digest} of {repo.name} does not hash to its digest")
    with _oras_errors(f"reading the manifest {digest[:19]} of {repo.name}"):
        document = json.loads(response.content)
    if not isinstance(document, dict):
        raise RegistryError(f"the manifest {digest} of {repo.name} is not a JSON object")
    return document


def pull_blob(client: Any, repo: Reference, digest: str) -> bytes:
    """A small blob read with oras-py, checked against its digest."""
    with _oras_errors(f"fetching blob {digest[:19]} of {repo.name}"):
        response = client.get_blob(_container(client, repo), digest)
    _check(response, f"fetching blob {digest[:19]} of {repo.name}", (200,))
    if sha256_digest(response.content) != digest:
        raise RegistryError(f"blob {digest} of {repo.name} does not hash to its digest")
    return bytes(response.content)


def _check(response: Any, what: str, ok: tuple[int, ...]) -> None:
    if isinstance(response, OrasResponse):
        raise_for_status(response.reply, what=what, ok=ok)
    elif response.status_code not in ok:  # oras-py's own stand-in ("blob exists")
        raise RegistryError(f"{what}: {response.status_code}")
