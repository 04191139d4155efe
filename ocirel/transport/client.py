"""One registry session per ocirel command: :class:`Transport`.

What it guarantees, for every request ocirel makes to a registry:

* **Timeouts** on connect and on every read, and a read *deadline*
  (:mod:`ocirel.transport.body`); bodies are read with a size cap.
* **Scheme**: https, always verified (``--ca-file`` for a private CA). Plain http only
  where the :class:`RegistryPolicy` allows it. A TLS failure is never "fixed" by
  switching to http: only a server that answers TLS with plain HTTP is retried over
  http, and only for those hosts.
* **Auth**: challenges and tokens (:mod:`ocirel.transport.challenge`); credentials go
  only to the registry's own origin.
* **Redirects** are followed by hand (:mod:`ocirel.transport.redirect`).
* **Retries** (:mod:`ocirel.transport.retry`): 429, 502, 503, 504 and connection errors
  (refused, reset, DNS) are retried a bounded number of times with jittered exponential
  backoff; ``Retry-After`` (seconds or HTTP date) is honoured up to a cap. Timeouts,
  401, 403 and 404 are not retried. Streaming request bodies are never replayed here:
  the caller restarts the upload.
* **Errors** are :class:`RegistryError` with status, method, URL, OCI error codes
  and a ``temporary`` flag; ``Warning`` headers are passed to ``on_warning``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import urlsplit

from ocirel.auth import Credentials
from ocirel.errors import RegistryError
from ocirel.redact import redact
from ocirel.reference import api_host
from ocirel.transport.body import deadline_for_this_thread
from ocirel.transport.challenge import Authenticator, CredentialLookup
from ocirel.transport.errors import AnswersPlainHttp, overran
from ocirel.transport.headers import parse_warnings
from ocirel.transport.policy import RegistryPolicy
from ocirel.transport.redirect import MAX_REDIRECTS, Hop, follow
from ocirel.transport.reply import RETRYABLE_STATUS, Reply
from ocirel.transport.retry import Again, retrying
from ocirel.transport.session import HttpSession
from ocirel.transport.urls import display_url, join_url, origin, with_query

_log = logging.getLogger("ocirel.transport")
DEFAULT_MAX_BODY = 16 * 1024 * 1024
MANIFEST_MAX_BODY = 4 * 1024 * 1024

BodyFactory = Callable[[], IO[bytes]]


@dataclass
class _Trace:
    """What ``--debug`` says about one request."""

    started: float
    retries: int = 0
    auth: str | None = None
    fallback: bool = False


@dataclass
class Transport:
    """One session for one ocirel command. Thread-safe for concurrent requests."""

    credentials: CredentialLookup = lambda registry, repository: None
    policy: RegistryPolicy = field(default_factory=RegistryPolicy)
    on_warning: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._session = HttpSession(self.policy)
        self._lock = threading.Lock()
        self._contact_locks: dict[str, threading.Lock] = {}
        self._schemes: dict[str, str] = {}
        self._warned: set[str] = set()
        self.auth = Authenticator(
            credentials=self._lookup,
            policy=self.policy,
            send=self._send_with_retries,
            scheme_of=self._schemes.get,
            clock=self.clock,
        )

    def close(self) -> None:
        self._session.close()

    def _lookup(self, registry: str, repository: str) -> Credentials | None:
        return self.credentials(registry, repository)  # late: tests swap ``credentials``

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
        target = with_query(url or self._base(registry) + path, params or {})
        parts = urlsplit(join_url(target, "", registry=registry, what="a URL"))
        if parts.username or parts.password:
            raise RegistryError(f"refusing a URL with user-info from {registry}")
        trace = _Trace(time.monotonic())
        hop = Hop(method, target, content_length=content_length, headers=headers or {})
        try:
            reply = self._attempts(
                hop, data, registry=registry, scope=scope, max_body=max_body, trace=trace
            )
        except RegistryError as exc:
            self._log_request(hop, registry, trace, f"failed: {exc}")
            raise
        self._log_request(hop, registry, trace, str(reply.status))
        return reply

    def ping(self, registry: str) -> Reply:
        """``GET /v2/`` (with auth when challenged)."""
        return self.request("GET", registry, "/v2/")

    def base_url(self, registry: str) -> str:
        self._ensure_contact(registry)
        return self._base(registry)

    def scheme(self, registry: str) -> str:
        self._ensure_contact(registry)
        return self._schemes[registry]

    # ---------------------------------------------------------------- attempts

    def _attempts(
        self,
        hop: Hop,
        data: bytes | BodyFactory | None,
        *,
        registry: str,
        scope: str | None,
        max_body: int,
        trace: _Trace,
    ) -> Reply:
        """Send until done: retries, one auth refresh, the anonymous fallback for reads."""
        replayable = not callable(data)
        refreshed = False

        def attempt(number: int) -> Reply:
            nonlocal refreshed
            trace.retries = number
            auth, refusal = self.auth.authorization_for(registry, scope, hop.method)
            trace.auth, trace.fallback = auth, refusal is not None
            try:
                reply = self._send(hop, data, registry=registry, auth=auth, max_body=max_body)
            except Again as again:
                if not replayable:  # a stream is never replayed here: the caller restarts it
                    raise again.error or again from None
                raise
            if reply.status == 401 and refusal is not None:
                raise refusal  # anonymous was the fallback; the token service's word stands
            if reply.status == 401 and not refreshed:
                refreshed = True
                base = self._base(registry)
                if self.auth.learn(registry, base, reply, scope, stale=auth) and replayable:
                    raise Again(now=True)
                return reply
            return _unless_busy(reply) if replayable else reply

        return retrying(self.policy.retry, attempt)

    def _send(
        self,
        hop: Hop,
        data: bytes | BodyFactory | None,
        *,
        registry: str,
        auth: str | None,
        max_body: int,
    ) -> Reply:
        body = data() if callable(data) else data
        base = origin(self._base(registry))

        def send(hop: Hop) -> Reply:
            # Credentials belong to the registry's own scheme://host:port. Any other place —
            # a redirect target, an upload Location on blob storage — gets none.
            same_host = origin(hop.url) == base
            return self._raw_once(
                hop, registry=registry if same_host else None,
                auth=auth if same_host else None, max_body=max_body,
            )  # fmt: skip

        def too_many() -> RegistryError:
            return RegistryError(f"too many redirects from {registry} (more than {MAX_REDIRECTS})")

        try:
            return follow(
                Hop(hop.method, hop.url, body, hop.content_length, hop.headers),
                send,
                registry=registry,
                too_many=too_many,
            )
        finally:
            if body is not None and not isinstance(body, bytes):
                body.close()

    def _send_with_retries(self, hop: Hop, *, registry: str | None = None) -> Reply:
        """One request without auth handling, retried on 429/5xx and broken connections."""
        return retrying(
            self.policy.retry, lambda _number: _unless_busy(self._raw_once(hop, registry=registry))
        )

    def _raw_once(
        self,
        hop: Hop,
        *,
        registry: str | None = None,
        auth: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> Reply:
        send_headers = dict(hop.headers)
        if auth:
            send_headers["Authorization"] = auth
        if hop.content_length is not None:
            send_headers["Content-Length"] = str(hop.content_length)
        with deadline_for_this_thread(self.policy.read_timeout) as deadline:
            try:
                reply = self._session.exchange(
                    hop.method, hop.url, registry=registry, headers=send_headers,
                    body=hop.body, max_body=max_body, deadline=deadline,
                )  # fmt: skip
            except Exception as exc:
                # a socket timeout that fired on its own keeps its message; anything else that
                # follows the watchdog's shutdown (EOF, a broken read) is the deadline's doing
                own_timeout = isinstance(exc, RegistryError) and exc.temporary
                if deadline.cancel() and not own_timeout:
                    raise overran(hop.method, hop.url, self.policy.read_timeout) from None
                raise
        if deadline.cancel():
            raise overran(hop.method, hop.url, self.policy.read_timeout)
        self._note_warnings(reply)
        return reply

    # ---------------------------------------------------------------- contact

    def _base(self, registry: str) -> str:
        return f"{self._schemes[registry]}://{api_host(registry)}"

    def _ensure_contact(self, registry: str) -> None:
        """First contact: settle the scheme and learn the auth challenge from ``/v2/``."""
        if registry in self._schemes:
            return
        with self._contact_lock(registry):
            if registry in self._schemes:
                return
            scheme, reply = retrying(self.policy.retry, lambda _n: self._first_contact(registry))
            self._schemes[registry] = scheme
            self.auth.remember(registry, reply)

    def _first_contact(self, registry: str) -> tuple[str, Reply]:
        """https, unless the server answers TLS with plain HTTP and the policy allows http."""
        host = api_host(registry)
        try:
            return "https", self._raw_once(Hop("GET", f"https://{host}/v2/"), registry=registry)
        except AnswersPlainHttp as exc:
            if not self.policy.plain_http_allowed(registry):
                raise exc.error or exc from None
            http = self._send_with_retries(Hop("GET", f"http://{host}/v2/"), registry=registry)
            return "http", http

    def _contact_lock(self, registry: str) -> threading.Lock:
        """One lock per registry: a dead host never delays first contact with another."""
        with self._lock:
            return self._contact_locks.setdefault(registry, threading.Lock())

    # ---------------------------------------------------------------- reporting

    def _log_request(self, hop: Hop, registry: str, trace: _Trace, outcome: str) -> None:
        """``--debug``: one line per request; never a credential, token or query string."""
        if not _log.isEnabledFor(logging.DEBUG):
            return
        took = (time.monotonic() - trace.started) * 1000
        source = self.auth.source(registry, trace.auth, trace.fallback)
        _log.debug(
            redact(
                f"{hop.method} {display_url(hop.url)} → {outcome} in {took:.0f} ms "
                f"(retries {trace.retries}, auth: {source})"
            )
        )

    def _note_warnings(self, reply: Reply) -> None:
        raw = reply.headers.get("Warning")
        if not raw or self.on_warning is None:
            return
        for text in parse_warnings(raw):
            if text not in self._warned:
                self._warned.add(text)
                self.on_warning(redact(text))


def _unless_busy(reply: Reply) -> Reply:
    """``reply``, unless the registry is busy (429, 502-504): then another try, after its
    ``Retry-After``; when no try is left, the busy reply is the answer."""
    if reply.status in RETRYABLE_STATUS:
        raise Again(final=reply, retry_after=reply.header("Retry-After"))
    return reply
