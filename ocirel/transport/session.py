"""The single HTTP choke point: the only module that imports ``requests``.

What it guarantees, for every request ocirel makes to a registry:

* **Timeouts** on connect and on every read; bodies are read with a size cap.
  ``read_timeout`` (``OCIREL_READ_TIMEOUT``) is also a *deadline*: the whole status
  line and headers must arrive within it once the request is sent, and then each
  64 KiB of the body (or the rest of a smaller body) within it again, however the
  bytes trickle. A watchdog shuts the socket down when a deadline passes
  (:class:`_Deadline`); the request then fails as a timeout, and is not retried.
* **Scheme**: https, always verified (``--ca-file`` for a private CA). Plain http only
  for registries configured insecure, and for loopback registries (``localhost``,
  ``127.0.0.0/8``, ``::1``), which — like docker and containerd — may answer plain
  http without ``--insecure``. A TLS failure is never "fixed" by switching to http:
  only a server that answers TLS with plain HTTP is retried over http, and only
  for those hosts.
* **Auth**: the first contact pings ``/v2/`` and remembers the challenge. ``Basic``
  sends the credentials; ``Bearer`` fetches a token from the realm for
  ``service`` + ``scope`` and caches it per (realm, service, scope) until it
  expires. A 401 on a cached token refreshes it once, then fails. The realm must be
  https (http only for loopback/insecure registries on the same host), never a
  link-local or metadata address, never with user-info.
* **Redirects** are followed by hand (at most 5): ``Authorization`` is dropped when
  the host changes; https→http, user-info and link-local/metadata targets are refused.
* **Retries**: 429, 502, 503, 504 and connection errors (refused, reset, DNS) are
  retried a bounded number of times with jittered exponential backoff;
  ``Retry-After`` (seconds or HTTP date) is honoured up to a cap. Timeouts, 401, 403
  and 404 are not retried. Streaming request bodies are never replayed here: the
  caller restarts the upload.
* **No ambient credentials**: ``trust_env`` is off, so ``.netrc`` and
  ``REQUESTS_CA_BUNDLE`` are ignored; proxies from ``HTTPS_PROXY``/``NO_PROXY`` are
  applied explicitly (never for loopback).
* **Errors** are :class:`RegistryError` with status, method, URL, OCI error codes
  and a ``temporary`` flag; ``Warning`` headers are passed to ``on_warning``.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import logging
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import requests.adapters
import requests.utils
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from ocirel import __version__
from ocirel.auth import Credentials
from ocirel.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
)
from ocirel.redact import redact, register_credentials, register_secret
from ocirel.reference import api_host, split_host_port

_log = logging.getLogger("ocirel.transport")
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_MAX_BODY = 16 * 1024 * 1024
MANIFEST_MAX_BODY = 4 * 1024 * 1024
DEFAULT_TOKEN_LIFETIME = 60.0
_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_PLAIN_HTTP_MARKERS = (
    "wrong version number",
    "record layer failure",
    "http request",
    "packet length",
)

CredentialLookup = Callable[[str, str], Credentials | None]
BodyFactory = Callable[[], IO[bytes]]


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: Mapping[str, str]


@dataclass(frozen=True)
class Reply:
    """A response whose body has been read (and capped)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    method: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        import json  # noqa: PLC0415

        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise RegistryError(
                f"{self.method} {_display_url(self.url)}: the registry sent a body that is not "
                f"valid JSON: {_snippet(self.body)}",
                status=self.status,
                method=self.method,
                url=_display_url(self.url),
            ) from None


@dataclass
class RetryPolicy:
    retries: int = 4
    base_delay: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[float, float], float] = random.uniform


@dataclass
class _Trace:
    """What ``--debug`` says about one request."""

    started: float
    retries: int = 0
    auth: str | None = None
    fallback: bool = False


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class Transport:
    """One session for one ocirel command. Thread-safe for concurrent requests."""

    credentials: CredentialLookup = lambda registry, repository: None
    insecure_registries: Collection[str] = ()
    ca_file: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    on_warning: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._session = requests.Session()
        self._session.trust_env = False  # no .netrc, no REQUESTS_CA_BUNDLE
        adapter = _DeadlineAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = f"ocirel/{__version__}"
        if self.insecure_registries:
            # the user asked for unverified TLS for these registries; urllib3's per-request
            # warning would only repeat that on every request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._lock = threading.Lock()
        self._contact_locks: dict[str, threading.Lock] = {}
        self._schemes: dict[str, str] = {}
        self._challenges: dict[str, Challenge | None] = {}
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._refused: dict[tuple[str, str, str], _AnonymousRefusedError] = {}
        self._warned: set[str] = set()
        self.stats: dict[str, int] = {"requests": 0, "token_requests": 0}

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ public

    def request(
        self,
        method: str,
        registry: str,
        path: str,
        *,
        scope: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        data: bytes | BodyFactory | None = None,
        content_length: int | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        url: str | None = None,
    ) -> Reply:
        """Send ``method`` to ``registry`` + ``path`` (or to the absolute ``url``).

        ``scope`` is the token scope (``repository:<name>:pull[,push]``). Returns the
        final :class:`Reply` whatever its status; use :func:`raise_for_status`.
        """
        self._ensure_contact(registry)
        base = self._base(registry)
        target = url or base + path
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        self._check_target_host(target, registry)
        trace = _Trace(time.monotonic())
        try:
            reply = self._attempts(
                method, registry, target, scope=scope, headers=headers, data=data,
                content_length=content_length, max_body=max_body, trace=trace,
            )  # fmt: skip
        except RegistryError as exc:
            self._log_request(method, target, registry, trace, f"failed: {exc}")
            raise
        self._log_request(method, target, registry, trace, str(reply.status))
        return reply

    def _attempts(
        self,
        method: str,
        registry: str,
        target: str,
        *,
        scope: str | None,
        headers: Mapping[str, str] | None,
        data: bytes | BodyFactory | None,
        content_length: int | None,
        max_body: int,
        trace: _Trace,
    ) -> Reply:
        """Send until done: retries, one auth refresh, the anonymous fallback for reads."""
        replayable = not callable(data)
        refreshed = False
        attempt = 0
        while True:
            trace.retries = attempt
            auth, refusal = self._authorization_for(registry, scope, method)
            trace.auth, trace.fallback = auth, refusal is not None
            try:
                reply = self._send(
                    method, target, registry=registry, headers=headers, data=data,
                    content_length=content_length, auth=auth, max_body=max_body,
                )  # fmt: skip
            except _Retryable as exc:
                if not replayable or attempt >= self.retry.retries:
                    raise exc.error from None
                self.backoff(attempt, None)
                attempt += 1
                continue
            if reply.status == 401 and refusal is not None:
                raise refusal  # anonymous was the fallback; the token service's word stands
            if reply.status == 401 and not refreshed:
                refreshed = True
                if not self._is_registry_origin(registry, reply.url):
                    return reply  # a foreign host's challenge is none of the registry's business
                if self._learn_challenge(registry, reply, scope, stale=auth):
                    if not replayable:
                        return reply
                    continue
                return reply
            if reply.status in RETRYABLE_STATUS and replayable and attempt < self.retry.retries:
                self.backoff(attempt, reply.header("Retry-After"))
                attempt += 1
                continue
            return reply

    def _log_request(
        self, method: str, url: str, registry: str, trace: _Trace, outcome: str
    ) -> None:
        """``--debug``: one line per request; never a credential, token or query string."""
        if not _log.isEnabledFor(logging.DEBUG):
            return
        took = (time.monotonic() - trace.started) * 1000
        _log.debug(
            redact(
                f"{method} {_display_url(url)} → {outcome} in {took:.0f} ms "
                f"(retries {trace.retries}, auth: {self._auth_source(registry, trace)})"
            )
        )

    def _auth_source(self, registry: str, trace: _Trace) -> str:
        if trace.auth is None:
            return (
                "anonymous (the token service refused an anonymous token)"
                if trace.fallback
                else "anonymous"
            )
        if trace.auth.startswith("Basic "):
            return "basic"
        challenge = self._challenges.get(registry)
        realm = challenge.params.get("realm", "") if challenge else ""
        return f"bearer token from realm {_display_url(realm)}"

    def ping(self, registry: str) -> Reply:
        """``GET /v2/`` (with auth when challenged)."""
        return self.request("GET", registry, "/v2/")

    def base_url(self, registry: str) -> str:
        self._ensure_contact(registry)
        return self._base(registry)

    def scheme(self, registry: str) -> str:
        self._ensure_contact(registry)
        return self._schemes[registry]

    # ---------------------------------------------------------------- contact

    def _base(self, registry: str) -> str:
        host = api_host(registry)
        return f"{self._schemes[registry]}://{host}"

    def _is_insecure(self, registry: str) -> bool:
        return registry in self.insecure_registries

    def _plain_http_allowed(self, registry: str) -> bool:
        return self._is_insecure(registry) or is_loopback(split_host_port(registry)[0])

    def _verify(self, registry: str | None) -> bool | str:
        if registry is not None and self._is_insecure(registry):
            return False
        return self.ca_file or True

    def _ensure_contact(self, registry: str) -> None:
        """First contact: settle the scheme and learn the auth challenge from ``/v2/``."""
        if registry in self._schemes:
            return
        with self._contact_lock(registry):
            if registry in self._schemes:
                return
            host = api_host(registry)
            ping = f"https://{host}/v2/"
            attempt = 0
            while True:
                try:
                    reply = self._raw_once("GET", ping, registry=registry)
                    scheme = "https"
                    break
                except _Retryable as exc:
                    if exc.plain_http:
                        if not self._plain_http_allowed(registry):
                            raise exc.error from None
                        scheme = "http"
                        reply = self._send_with_retries(
                            "GET", f"http://{host}/v2/", registry=registry
                        )
                        break
                    if attempt >= self.retry.retries:  # refused, reset, DNS: bounded retries
                        raise exc.error from None
                    self.backoff(attempt, None)
                    attempt += 1
            self._schemes[registry] = scheme
            self._challenges[registry] = (
                parse_www_authenticate(reply.header("WWW-Authenticate") or "")
                if reply.status == 401
                else None
            )

    def _contact_lock(self, registry: str) -> threading.Lock:
        """One lock per registry: a dead host never delays first contact with another."""
        with self._lock:
            return self._contact_locks.setdefault(registry, threading.Lock())

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        registry: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        """One request without auth handling, retried on 429/5xx and broken connections."""
        attempt = 0
        while True:
            try:
                reply = self._raw_once(method, url, registry=registry, headers=headers, body=body)
            except _Retryable as exc:
                if attempt >= self.retry.retries:
                    raise exc.error from None
                self.backoff(attempt, None)
                attempt += 1
                continue
            if reply.status in RETRYABLE_STATUS and attempt < self.retry.retries:
                self.backoff(attempt, reply.header("Retry-After"))
                attempt += 1
                continue
            return reply

    # ------------------------------------------------------------------- auth

    def _authorization_for(
        self, registry: str, scope: str | None, method: str
    ) -> tuple[str | None, RegistryAuthError | None]:
        """The Authorization value, and the token service's refusal when reading anonymously.

        Some registries challenge on ``/v2/`` but serve public repositories to anyone,
        while their token service refuses anonymous requests: a read then goes out
        without a token, and a 401 to it reports the token service's refusal.
        """
        try:
            return self._authorization(registry, scope), None
        except _AnonymousRefusedError as exc:
            if method in ("GET", "HEAD") and not _wants_push(scope):
                return None, exc
            raise

    def _is_registry_origin(self, registry: str, url: str) -> bool:
        return _origin(url) == _origin(self._base(registry))

    def _authorization(self, registry: str, scope: str | None) -> str | None:
        challenge = self._challenges.get(registry)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self.credentials(registry, _scope_repository(scope))
            if creds is None:
                return None
            self._check_basic_allowed(registry)
            return _basic(creds.username, creds.password)
        if challenge.scheme == "bearer":
            return "Bearer " + self._token(registry, challenge, scope)
        return None

    def _learn_challenge(
        self, registry: str, reply: Reply, scope: str | None, stale: str | None
    ) -> bool:
        """After a 401: remember the challenge; say whether a retry can help."""
        challenge = parse_www_authenticate(reply.header("WWW-Authenticate") or "")
        if challenge is None:
            return False
        with self._lock:
            self._challenges[registry] = challenge
            if stale and stale.startswith("Bearer "):
                for key, token in list(self._tokens.items()):
                    if "Bearer " + token.value == stale:
                        del self._tokens[key]
        if challenge.scheme == "basic":
            return (
                stale is None and self.credentials(registry, _scope_repository(scope)) is not None
            )
        return challenge.scheme == "bearer"

    def _token(self, registry: str, challenge: Challenge, scope: str | None) -> str:
        realm = challenge.params.get("realm", "")
        service = challenge.params.get("service", "")
        scope = scope or challenge.params.get("scope", "")
        key = (realm, service, scope)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at > self.clock():
                return cached.value
            refused = self._refused.get(key)
        if refused is not None:
            raise refused
        try:
            token = self._fetch_token(registry, realm, service, scope)
        except _AnonymousRefusedError as exc:
            with self._lock:
                self._refused[key] = exc
            raise
        with self._lock:
            self._tokens[key] = token
        return token.value

    def _fetch_token(self, registry: str, realm: str, service: str, scope: str) -> _Token:
        self._check_realm(realm, registry)
        creds = self.credentials(registry, _scope_repository(scope))
        params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        headers: dict[str, str] = {}
        method, body = "GET", None
        if creds and creds.identity_token:
            method = "POST"
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "ocirel",
                **params,
            }
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            url = realm
        else:
            url = realm + ("&" if "?" in realm else "?") + urlencode(params) if params else realm
            if creds:
                headers["Authorization"] = _basic(creds.username, creds.password)
        self._count("token_requests")
        reply = self._token_request(registry, method, url, headers, body)
        if reply.status in (401, 403):
            raise (RegistryAuthError if creds else _AnonymousRefusedError)(
                f"the token service at {_display_url(realm)} refused "
                + ("the credentials" if creds else "anonymous access")
                + f" for {scope or 'this registry'} ({reply.status})",
                status=reply.status,
                method=method,
                url=_display_url(realm),
                hint=None
                if creds
                else f"log in to {registry} (podman login / docker login) "
                "or set OCIREL_USERNAME and OCIREL_PASSWORD",
            )
        if reply.status != 200:
            raise_for_status(reply, what="token request")
        try:
            data = reply.json()
        except RegistryError:  # never echo it: a token service's body holds secrets
            raise RegistryAuthError(
                f"the token service at {_display_url(realm)} answered with a body that is not JSON"
            ) from None
        value = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryAuthError(f"the token service at {_display_url(realm)} returned no token")
        register_secret(value)
        lifetime = data.get("expires_in", DEFAULT_TOKEN_LIFETIME)
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        # refresh a little early so that a token never expires between check and use
        return _Token(value, self.clock() + max(1.0, float(lifetime) * 0.9 - 5))

    def _token_request(
        self,
        registry: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> Reply:
        """Ask the token realm, following its redirects (at most 5).

        Credentials (the Basic header, an identity token in the form body) go only to
        the realm's own origin: a hop to another origin gets an anonymous request, and
        a form carrying an identity token is never sent there.
        """
        realm_origin = _origin(url)
        for _hop in range(MAX_REDIRECTS + 1):
            if _origin(url) != realm_origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                if body is not None:
                    raise RegistryAuthError(
                        f"the token service of {registry} redirected to another host "
                        f"({_display_url(url)}); refusing to send the identity token there"
                    )
            started = time.monotonic()
            reply = self._send_with_retries(method, url, headers=headers, body=body)
            if _log.isEnabledFor(logging.DEBUG):
                sent = "basic" if "Authorization" in headers else "anonymous"
                sent = "identity token" if body is not None else sent
                took = (time.monotonic() - started) * 1000
                _log.debug(
                    redact(
                        f"token {method} {_display_url(url)} → {reply.status} in "
                        f"{took:.0f} ms (auth: {sent})"
                    )
                )
            location = reply.header("Location")
            if reply.status not in REDIRECT_STATUS or not location:
                return reply
            url = self._redirect_target(url, location, registry)
            if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        raise RegistryAuthError(
            f"too many redirects from the token service of {registry} (more than {MAX_REDIRECTS})"
        )

    def _check_realm(self, realm: str, registry: str) -> None:
        try:
            join_url(realm, "", registry=registry, what="its token realm")
        except RegistryError as exc:
            raise RegistryAuthError(
                f"{registry} names a token realm that does not parse ({_display_url(realm)})"
            ) from exc
        parts = urlsplit(realm)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise RegistryAuthError(
                f"{registry} names an invalid token realm {_display_url(realm)!r}"
            )
        if parts.username or parts.password:
            raise RegistryAuthError(f"{registry} names a token realm with user-info; refusing it")
        if is_forbidden_host(host):
            raise RegistryAuthError(
                f"{registry} names a token realm on a link-local or metadata address "
                f"({host}); refusing to send credentials there"
            )
        if parts.scheme == "http":
            registry_host = split_host_port(registry)[0]
            same_or_local = is_loopback(host) or host == registry_host
            if not (self._plain_http_allowed(registry) and same_or_local):
                raise RegistryAuthError(
                    f"{registry} names a plain-http token realm ({_display_url(realm)}); "
                    "refusing to send credentials without TLS",
                    hint="serve the token realm over https, or mark the registry insecure "
                    "if it is a local test registry",
                )

    def _check_basic_allowed(self, registry: str) -> None:
        if self._schemes.get(registry) == "http" and not self._plain_http_allowed(registry):
            raise RegistryAuthError(f"refusing to send a password to {registry} over plain http")

    # --------------------------------------------------------------- sending

    def _check_target_host(self, url: str, registry: str) -> None:
        parts = urlsplit(join_url(url, "", registry=registry, what="a URL"))
        if parts.username or parts.password:
            raise RegistryError(f"refusing a URL with user-info from {registry}")

    def _send(
        self,
        method: str,
        url: str,
        *,
        registry: str,
        headers: Mapping[str, str] | None,
        data: bytes | BodyFactory | None,
        content_length: int | None,
        auth: str | None,
        max_body: int,
    ) -> Reply:
        body = data() if callable(data) else data
        try:
            return self._follow(
                method, url, registry=registry, headers=headers, body=body,
                content_length=content_length, auth=auth, max_body=max_body,
            )  # fmt: skip
        finally:
            if body is not None and not isinstance(body, bytes):
                body.close()

    def _follow(
        self,
        method: str,
        url: str,
        *,
        registry: str,
        headers: Mapping[str, str] | None,
        body: bytes | IO[bytes] | None,
        content_length: int | None,
        auth: str | None,
        max_body: int,
    ) -> Reply:
        # Credentials belong to the registry's own scheme://host:port. Any other place — a
        # redirect target, an upload Location on blob storage — gets none.
        for _hop in range(MAX_REDIRECTS + 1):
            same_host = self._is_registry_origin(registry, url)
            reply = self._raw_once(
                method, url, registry=registry if same_host else None, headers=headers,
                body=body, content_length=content_length, auth=auth if same_host else None,
                max_body=max_body,
            )  # fmt: skip
            if reply.status not in REDIRECT_STATUS or not reply.header("Location"):
                return reply
            url = self._redirect_target(url, reply.header("Location") or "", registry)
            if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                method, body, content_length = "GET", None, None
            elif body is not None and not isinstance(body, bytes):
                raise RegistryError(
                    f"{registry} redirected an upload ({reply.status}); it will be restarted",
                    status=reply.status,
                    method=method,
                    url=_display_url(url),
                    temporary=True,
                )
        raise RegistryError(f"too many redirects from {registry} (more than {MAX_REDIRECTS})")

    def _redirect_target(self, current: str, location: str, registry: str) -> str:
        target = join_url(current, location, registry=registry, what="a redirect Location")
        old, new = urlsplit(current), urlsplit(target)
        if new.scheme not in ("http", "https"):
            raise RegistryError(
                f"{registry} redirected to an unsupported URL scheme {new.scheme!r}"
            )
        if old.scheme == "https" and new.scheme == "http":
            raise RegistryError(
                f"{registry} redirected from https to plain http ({_display_url(target)}); refused"
            )
        if new.username or new.password:
            raise RegistryError(f"{registry} redirected to a URL with user-info; refused")
        if is_forbidden_host(new.hostname or ""):
            raise RegistryError(
                f"{registry} redirected to a link-local or metadata address "
                f"({new.hostname}); refused"
            )
        return target

    def _raw_once(
        self,
        method: str,
        url: str,
        *,
        registry: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | IO[bytes] | None = None,
        content_length: int | None = None,
        auth: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> Reply:
        send_headers = dict(headers or {})
        if auth:
            send_headers["Authorization"] = auth
        if content_length is not None:
            send_headers["Content-Length"] = str(content_length)
        deadline = _Deadline(self.read_timeout)
        _active.deadline = deadline
        try:
            reply = self._exchange(
                method, url, registry=registry, send_headers=send_headers, body=body,
                max_body=max_body, deadline=deadline,
            )  # fmt: skip
        except Exception as exc:
            # a socket timeout that fired on its own keeps its message; anything else that
            # follows the watchdog's shutdown (EOF, a broken read) is the deadline's doing
            own_timeout = isinstance(exc, RegistryError) and exc.temporary
            if deadline.cancel() and not own_timeout:
                raise self._overran(method, url) from None
            raise
        finally:
            _active.deadline = None
        if deadline.cancel():
            raise self._overran(method, url)
        self._note_warnings(reply)
        return reply

    def _overran(self, method: str, url: str) -> RegistryError:
        return RegistryError(
            f"timed out waiting for {_display_url(url)}: the reply stalled or trickled in "
            f"for longer than the read timeout ({self.read_timeout:g} s)",
            method=method,
            url=_display_url(url),
            temporary=True,
            hint="raise OCIREL_READ_TIMEOUT if the registry is slow",
        )

    def _exchange(
        self,
        method: str,
        url: str,
        *,
        registry: str | None,
        send_headers: Mapping[str, str],
        body: bytes | IO[bytes] | None,
        max_body: int,
        deadline: _Deadline,
    ) -> Reply:
        host = urlsplit(url).hostname or ""
        self._count("requests")
        try:
            response = self._session.request(
                method,
                url,
                headers=send_headers,
                data=body,
                timeout=(self.connect_timeout, self.read_timeout),
                verify=self._verify(registry),
                allow_redirects=False,
                stream=True,
                proxies={} if is_loopback(host) else _environ_proxies(url),
            )
        except requests.exceptions.SSLError as exc:
            raise _classify_ssl(exc, method, url, registry) from None
        except requests.exceptions.Timeout as exc:
            kind = (
                "connecting to"
                if isinstance(exc, requests.exceptions.ConnectTimeout)
                else "waiting for"
            )
            raise RegistryError(
                f"timed out {kind} {_display_url(url)} (connect {self.connect_timeout:g} s, "
                f"read {self.read_timeout:g} s)",
                method=method,
                url=_display_url(url),
                temporary=True,
                hint="raise OCIREL_READ_TIMEOUT / OCIREL_CONNECT_TIMEOUT if the registry is slow",
            ) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise _Retryable(
                RegistryError(
                    f"cannot reach {_display_url(url)}: {_reason(exc)}",
                    method=method,
                    url=_display_url(url),
                    temporary=True,
                )
            ) from None
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"{method} {_display_url(url)} failed: {_reason(exc)}") from None
        except ValueError as exc:  # requests parses a redirect's Location before we see it
            raise RegistryError(
                f"{method} {_display_url(url)}: the reply names a malformed URL "
                f"(a redirect Location?): {_reason(exc)}",
                method=method,
                url=_display_url(url),
            ) from None
        try:
            content = _read_capped(
                response, max_body, method, url, self.read_timeout, deadline=deadline
            )
        finally:
            response.close()
        return Reply(response.status_code, response.headers, content, url, method)

    def backoff(self, attempt: int, retry_after: str | None) -> None:
        wait = parse_retry_after(retry_after, now=time.time())
        if wait is None:
            ceiling = min(self.retry.max_wait, self.retry.base_delay * (2**attempt))
            wait = self.retry.jitter(ceiling / 2, ceiling)
        self.retry.sleep(max(0.0, min(wait, self.retry.max_wait)))

    def _note_warnings(self, reply: Reply) -> None:
        raw = reply.headers.get("Warning")
        if not raw or self.on_warning is None:
            return
        for text in parse_warnings(raw):
            if text not in self._warned:
                self._warned.add(text)
                self.on_warning(redact(text))


_CHUNK = 65536
_active = threading.local()  # .deadline: the _Deadline of this thread's request in flight


class _Deadline:
    """A watchdog for one request: shuts its socket down when the reply is too slow.

    A socket timeout bounds each ``recv``; a reply that trickles in a byte at a time
    never trips it. This bounds the whole wait instead: armed when the request has
    been sent (the connection's ``getresponse``), re-armed for each 64 KiB of body.
    The thread starts only once armed and ends with :meth:`cancel`.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._fired = False
        self._done = False
        self._sock: object = None
        self._expires = math.inf
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def attach(self, sock: object) -> None:
        with self._wake:
            self._sock = sock
        self.rearm()

    def rearm(self) -> None:
        with self._wake:
            self._expires = time.monotonic() + self.seconds
            if self._thread is None and not self._done:
                self._thread = threading.Thread(target=self._watch, daemon=True)
                self._thread.start()
            self._wake.notify()

    def cancel(self) -> bool:
        """Stop watching; say whether the deadline passed (the reply is then void)."""
        with self._wake:
            self._done = True
            self._wake.notify()
            return self._fired

    def _watch(self) -> None:
        with self._wake:
            while not self._done:
                left = self._expires - time.monotonic()
                if left <= 0:
                    self._fired = True
                    if isinstance(self._sock, socket.socket):
                        # the plain socket's shutdown, even under TLS: wakes the reader with EOF
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
                    return
                self._wake.wait(left)


def _arm_deadline(sock: object) -> None:
    deadline = getattr(_active, "deadline", None)
    if deadline is not None:
        deadline.attach(sock)


class _DeadlineHTTPConnection(urllib3.connection.HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _arm_deadline(self.sock)
        return super().getresponse(*args, **kwargs)


class _DeadlineHTTPSConnection(urllib3.connection.HTTPSConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _arm_deadline(self.sock)
        return super().getresponse(*args, **kwargs)


class _DeadlineHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_DEADLINE_POOLS = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose connections arm the request's :class:`_Deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_DEADLINE_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_DEADLINE_POOLS)
        return manager


class _AnonymousRefusedError(RegistryAuthError):
    """The token service refused an anonymous request (reads may still go anonymously)."""


class _Retryable(Exception):  # noqa: N818 - internal signal, not an error class
    def __init__(self, error: RegistryError, *, plain_http: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.plain_http = plain_http


def _classify_ssl(exc: Exception, method: str, url: str, registry: str | None) -> Exception:
    text = str(exc).lower()
    where = _display_url(url)
    if any(marker in text for marker in _PLAIN_HTTP_MARKERS):
        error = RegistryError(
            f"{where} answers plain http, not TLS",
            method=method,
            url=where,
            hint=f"if {registry or 'the registry'} is meant to be plain http, pass --insecure "
            "(or list it in insecure_registries)",
        )
        return _Retryable(error, plain_http=True)
    if "certificate" in text or "verify failed" in text:
        return RegistryError(
            f"TLS verification failed for {where}: {_reason(exc)}",
            method=method,
            url=where,
            hint="pass --ca-file PATH with the registry's CA certificate (OCIREL_CA_FILE); "
            "ocirel never falls back to plain http or skips verification by itself",
        )
    return RegistryError(f"TLS error talking to {where}: {_reason(exc)}", method=method, url=where)


def _read_capped(
    response: requests.Response,
    limit: int,
    method: str,
    url: str,
    read_timeout: float,
    *,
    deadline: _Deadline | None = None,
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK):
            if deadline is not None:
                deadline.rearm()  # the next 64 KiB gets the whole read timeout again
            size += len(chunk)
            if size > limit:
                raise RegistryError(
                    f"{method} {_display_url(url)}: response body larger than {limit} bytes; "
                    "refused",
                    status=response.status_code,
                    method=method,
                    url=_display_url(url),
                )
            chunks.append(chunk)
    except requests.exceptions.ContentDecodingError:
        encoding = response.headers.get("Content-Encoding", "")
        raise RegistryError(
            f"{method} {_display_url(url)}: the body does not decode as its Content-Encoding "
            f"({redact(encoding)[:40]}) says; refused",
            status=response.status_code,
            method=method,
            url=_display_url(url),
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        if exc.args and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError):
            # requests reports a body that stalls as a ConnectionError: a timeout, not retried
            raise RegistryError(
                f"{method} {_display_url(url)}: the body stalled for more than {read_timeout:g} s",
                status=response.status_code,
                method=method,
                url=_display_url(url),
                temporary=True,
            ) from None
        raise _Retryable(
            RegistryError(
                f"{method} {_display_url(url)}: the connection broke while reading the body "
                f"({_reason(exc)})",
                status=response.status_code,
                method=method,
                url=_display_url(url),
                temporary=True,
            )
        ) from None
    except requests.exceptions.Timeout:
        raise RegistryError(
            f"{method} {_display_url(url)}: the body stalled for more than {read_timeout:g} s",
            status=response.status_code,
            method=method,
            url=_display_url(url),
            temporary=True,
        ) from None
    body = b"".join(chunks)
    expected = response.headers.get("Content-Length")
    # with a Content-Encoding (gzip), Content-Length counts the encoded bytes, not these
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    cut_short = bool(expected and expected.isdigit() and int(expected) != len(body))
    if cut_short and method != "HEAD" and encoding in ("", "identity"):
        raise _Retryable(
            RegistryError(
                f"{method} {_display_url(url)}: body cut short ({len(body)} of {expected} bytes)",
                status=response.status_code,
                method=method,
                url=_display_url(url),
                temporary=True,
            )
        )
    return body


# ---------------------------------------------------------------- pure helpers


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_forbidden_host(host: str) -> bool:
    """Link-local and cloud metadata addresses: never a registry, realm or redirect."""
    host = host.strip("[]").lower().rstrip(".")
    if host in _METADATA_HOSTS:
        return True
    address = _ip_address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:169.254.169.254
    if address.is_link_local:
        return True
    return address in ipaddress.ip_network("fd00:ec2::/64")


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # The legacy forms the resolver still accepts: 2852039166, 0xa9fea9fe, 169.254.43518
    if not re.fullmatch(r"[0-9a-fx.]+", host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _environ_proxies(url: str) -> dict[str, str]:
    return dict(requests.utils.get_environ_proxies(url))


def _basic(username: str, password: str) -> str:
    import base64  # noqa: PLC0415

    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    register_credentials(username, password)  # a server may echo the bare header value back
    return "Basic " + encoded


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's default when absent): what credentials belong to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").rstrip("."), port


def _wants_push(scope: str | None) -> bool:
    actions = (scope or "").rsplit(":", 1)[-1] if scope and scope.count(":") >= 2 else ""
    return any(action != "pull" for action in actions.split(",") if action)


def _scope_repository(scope: str | None) -> str:
    if not scope:
        return ""
    parts = scope.split(":")
    return parts[1] if len(parts) >= 3 else ""


def _display_url(url: str) -> str:
    """The URL without user-info or query string (query strings may carry tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:  # malformed: show a bounded, redacted prefix without the query
        text = url.split("?", 1)[0].split("#", 1)[0]
        text = re.sub(r"(?<=://)[^/@]*@", "", text)
        return redact(text[:100]) + ("…" if len(text) > 100 else "")
    return redact(f"{parts.scheme}://{host}{parts.path}")


def join_url(base: str, reference: str, *, registry: str, what: str) -> str:
    """``reference`` (from a ``Link`` or ``Location`` header) resolved against ``base``.

    A URL that does not parse — a broken IPv6 literal, a port out of range, an
    http(s) URL without a host — is a :class:`RegistryError` naming ``what`` it was.
    """
    try:
        target = urljoin(base, reference.strip())
        parts = urlsplit(target)
        _ = parts.port  # raises ValueError when out of range
        if parts.hostname:
            parts.hostname.encode("idna")
    except (ValueError, UnicodeError) as exc:
        raise RegistryError(
            f"{registry} sent a malformed URL in {what} ({_display_url(reference)}): {exc}"
        ) from None
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise RegistryError(
            f"{registry} sent a malformed URL in {what} ({_display_url(reference)}): no host"
        )
    return target


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Temporary failure in name resolution",
        "Connection reset",
        "Connection aborted",
        "Remote end closed",
        "certificate verify failed",
        "timed out",
    ):
        if marker.lower() in text.lower():
            return marker.lower()
    return redact(text)[:200]


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace")
    text = re.sub(r"\s+", " ", text).strip()
    return redact(text) + ("…" if len(body) > limit else "") if text else "(empty body)"


_AUTH_PARAM_RE = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
# an auth-scheme starts a challenge: a token followed by a space or the end, never by "="
_AUTH_SCHEME_RE = re.compile(r"[\s,]*([A-Za-z][A-Za-z0-9_.+-]*)(?=\s|$)(?!\s*=)")


def parse_challenges(value: str) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value (two headers arrive comma-joined)."""
    found: list[tuple[str, dict[str, str]]] = []
    position = 0
    while position < len(value):
        scheme = _AUTH_SCHEME_RE.match(value, position)
        if scheme:
            found.append((scheme.group(1).lower(), {}))
            position = scheme.end()
            continue
        match = _AUTH_PARAM_RE.match(value, position)
        if not match or match.end() == position or not found:
            break
        key, raw = match.group(1).lower(), match.group(2)
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        found[-1][1][key] = raw
        position = match.end()
    return [Challenge(scheme, params) for scheme, params in found]


def parse_www_authenticate(value: str) -> Challenge | None:
    """The challenge to answer: ``Bearer`` (with a realm) over ``Basic``; None if neither."""
    challenges = parse_challenges(value)
    for challenge in challenges:
        if challenge.scheme == "bearer" and challenge.params.get("realm"):
            return challenge
    return next((c for c in challenges if c.scheme == "basic"), None)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):  # not str.isdigit(): "²" is a digit to it
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def parse_warnings(value: str) -> list[str]:
    """Texts of ``Warning: 299 - "text"`` headers (several may be comma-joined)."""
    found = re.findall(r'\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"', value)
    return found or [value.strip()]


_LINK_RE = re.compile(r"<([^<>]*)>\s*((?:;\s*[^;,]+)*)")  # [^<>]: linear on '<<<…'


def parse_link_next(value: str | None) -> str | None:
    """The target of ``rel="next"`` in a ``Link`` header, or None."""
    if not value:
        return None
    for match in _LINK_RE.finditer(value):
        rel = re.search(r';\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))', match.group(2), re.IGNORECASE)
        # rel holds space-separated relation types: "next" must be one of them, not a prefix
        if rel and "next" in (rel.group(1) or rel.group(2) or "").lower().split():
            return match.group(1).strip()
    return None


def raise_for_status(reply: Reply, *, what: str = "", ok: Collection[int] = (200,)) -> Reply:
    """Return ``reply`` when its status is in ``ok``; otherwise raise the right error."""
    if reply.status in ok:
        return reply
    codes, messages = _oci_errors(reply.body)
    where = f"{reply.method} {_display_url(reply.url)}"
    detail = "; ".join(f"{c}: {m}" if m else c for c, m in zip(codes, messages, strict=True))
    if not detail:
        detail = _snippet(reply.body) if reply.method != "HEAD" else "(no body)"
    message = f"{what + ': ' if what else ''}{where} → {reply.status} {detail}"
    kwargs: dict[str, Any] = {
        "status": reply.status,
        "method": reply.method,
        "url": _display_url(reply.url),
        "codes": codes,
    }
    if reply.status == 401:
        raise RegistryAuthError(
            message,
            **kwargs,
            hint="check the credentials (podman login / docker login, or "
            "OCIREL_USERNAME and OCIREL_PASSWORD)",
        )
    if reply.status == 403:
        raise RegistryAuthError(message, **kwargs, hint="the credentials lack permission for this")
    if reply.status == 404:
        raise RegistryNotFoundError(message, **kwargs)
    temporary = reply.status in RETRYABLE_STATUS or reply.status >= 500
    raise RegistryError(message, **kwargs, temporary=temporary)


def _oci_errors(body: bytes) -> tuple[list[str], list[str]]:
    import json  # noqa: PLC0415

    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return [], []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return [], []
    codes, messages = [], []
    for item in errors[:10]:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            codes.append(item["code"][:64])
            message = item.get("message")
            messages.append(redact(str(message))[:200] if message else "")
    return codes, messages
