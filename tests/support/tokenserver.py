"""An in-process token server for distribution's ``auth: token`` mode.

It speaks the Docker registry token protocol: ``GET /token?service=S&scope=S...``
with optional Basic credentials, and (for clients that use OAuth2) ``POST /token``
with a ``grant_type=password`` form. Tokens are JWTs signed RS256 whose ``x5c``
header carries the signing certificate; the registry verifies that chain against
its ``rootcertbundle`` (the private CA).

Authenticated users get the actions they ask for, limited to what their account
allows; anonymous requests and unknown scopes get an empty ``access`` list, so the
registry answers anonymous pulls with 401. Every request is recorded (never the
credentials themselves) for tests to inspect.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import ssl
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.pki import IssuedCert, cert_der

ALL_ACTIONS: frozenset[str] = frozenset({"pull", "push", "delete", "*"})
READ_ACTIONS: frozenset[str] = frozenset({"pull"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_jwt(header: Mapping[str, Any], claims: Mapping[str, Any], key: rsa.RSAPrivateKey) -> str:
    """Compact JWS (RS256) of ``claims``."""
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (for test assertions)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload))
    return claims


@dataclass(frozen=True)
class Scope:
    """One ``type:name:actions`` scope of a token request."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        kind, sep, rest = text.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (sep and sep2 and kind and name):
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


@dataclass(frozen=True)
class TokenRequest:
    """What the token server saw. Credentials are never recorded, only their presence."""

    method: str
    service: str | None
    scopes: tuple[str, ...]
    account: str | None
    has_authorization: bool
    authenticated: bool
    status: int
    granted: tuple[Scope, ...]


@dataclass
class Account:
    password: str
    actions: frozenset[str] = ALL_ACTIONS


@dataclass
class TokenServer:
    """Issues registry tokens on ``127.0.0.1``; start with :meth:`start`, stop with :meth:`stop`.

    ``lifetime`` (seconds) is the token's ``exp - iat`` and its ``expires_in``.
    ``skew`` (seconds, may be negative) shifts ``iat``/``nbf``/``exp``: a skew below
    ``-(lifetime + 60)`` makes tokens the registry rejects at once (distribution allows
    60 s of leeway on ``exp`` and ``nbf``). Both may be changed while running.
    """

    signer: IssuedCert
    service: str = "ocirel-test-registry"
    issuer: str = "ocirel-test-token-issuer"
    lifetime: int = 300
    skew: int = 0
    tls: IssuedCert | None = None
    accounts: dict[str, Account] = field(default_factory=dict)
    requests: list[TokenRequest] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- lifecycle ---------------------------------------------------------------

    def start(self, workdir: Path) -> TokenServer:
        """Listen on a free loopback port (HTTPS when ``tls`` is set)."""
        handler = type("BoundTokenHandler", (_TokenHandler,), {"server_state": self})
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        if self.tls is not None:
            cert_path, key_path = self.tls.write(workdir, "token-server")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_path, key_path)
            # The handshake then runs on first read, in the request's own thread.
            httpd.socket = context.wrap_socket(
                httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, name="ocirel-test-token-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = None
        self._thread = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("token server is not running")
        return int(self._httpd.server_address[1])

    @property
    def realm(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/token"

    # -- accounts and records ------------------------------------------------------

    def add_account(
        self, username: str, password: str, actions: Iterable[str] = ALL_ACTIONS
    ) -> None:
        self.accounts[username] = Account(password, frozenset(actions))

    def recorded(self) -> list[TokenRequest]:
        """A snapshot of the requests seen so far."""
        with self._lock:
            return list(self.requests)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- token issuing -------------------------------------------------------------

    def check_credentials(self, username: str, password: str) -> bool:
        account = self.accounts.get(username)
        return account is not None and secrets.compare_digest(
            account.password.encode(), password.encode()
        )

    def grant(self, account: str | None, scopes: Iterable[str]) -> tuple[Scope, ...]:
        """The access an account gets for the requested scopes (none when anonymous)."""
        if account is None or account not in self.accounts:
            return ()
        allowed = self.accounts[account].actions
        granted: list[Scope] = []
        for text in scopes:
            scope = Scope.parse(text)
            if scope is None or scope.type not in {"repository", "registry"}:
                continue
            actions = tuple(a for a in scope.actions if a in allowed or "*" in allowed)
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return tuple(granted)

    def issue(
        self, account: str | None, granted: Iterable[Scope], *, now: int | None = None
    ) -> dict[str, Any]:
        """A token response body for ``account`` with ``granted`` access.

        ``now`` (epoch seconds) replaces the clock, e.g. to mint an expired token.
        """
        now = (int(time.time()) if now is None else now) + self.skew
        claims = {
            "iss": self.issuer,
            "sub": account or "",
            "aud": self.service,
            "exp": now + self.lifetime,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": [
                {"type": s.type, "name": s.name, "actions": list(s.actions)} for s in granted
            ],
        }
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(cert_der(self.signer.cert)).decode("ascii")],
        }
        key = self.signer.key
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("the token signing key must be RSA (RS256)")
        token = sign_jwt(header, claims, key)
        issued_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {
            "token": token,
            "access_token": token,
            "expires_in": self.lifetime,
            "issued_at": issued_at,
        }


class _QuietServer(ThreadingHTTPServer):
    """Threaded server that does not print tracebacks for refused TLS handshakes."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def _parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


class _TokenHandler(BaseHTTPRequestHandler):
    server_state: ClassVar[TokenServer]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/token":
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        query = parse_qs(url.query)
        self._answer(
            method="GET",
            service=query.get("service", [None])[0],
            scopes=tuple(query.get("scope", [])),
            credentials=_parse_basic(self.headers.get("Authorization")),
            has_authorization=self.headers.get("Authorization") is not None,
        )

    def do_POST(self) -> None:
        """OAuth2 password grant, as used by some Docker clients."""
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        if url.path != "/token":
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        if form.get("grant_type", [""])[0] != "password":
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "unsupported_grant_type"})
            return
        credentials = (form.get("username", [""])[0], form.get("password", [""])[0])
        self._answer(
            method="POST",
            service=form.get("service", [None])[0],
            scopes=tuple(s for value in form.get("scope", []) for s in value.split(" ")),
            credentials=credentials,
            has_authorization=True,
        )

    def _answer(
        self,
        *,
        method: str,
        service: str | None,
        scopes: tuple[str, ...],
        credentials: tuple[str, str] | None,
        has_authorization: bool,
    ) -> None:
        state = self.server_state
        account: str | None = None
        authenticated = False
        if credentials is not None:
            authenticated = state.check_credentials(*credentials)
            account = credentials[0]
        if has_authorization and not authenticated:
            status = HTTPStatus.UNAUTHORIZED
            granted: tuple[Scope, ...] = ()
        elif service is not None and service != state.service:
            status = HTTPStatus.BAD_REQUEST
            granted = ()
        else:
            status = HTTPStatus.OK
            granted = state.grant(account if authenticated else None, scopes)
        state._record(
            TokenRequest(
                method=method,
                service=service,
                scopes=scopes,
                account=account,
                has_authorization=has_authorization,
                authenticated=authenticated,
                status=int(status),
                granted=granted,
            )
        )
        if status is HTTPStatus.OK:
            self._send_json(status, state.issue(account if authenticated else None, granted))
        elif status is HTTPStatus.UNAUTHORIZED:
            self._send_json(
                status,
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                extra_headers={"WWW-Authenticate": 'Basic realm="ocirel-test-token"'},
            )
        else:
            self._send_json(status, {"errors": [{"code": "DENIED", "message": "bad service"}]})

    def _send_json(
        self,
        status: HTTPStatus,
        body: Mapping[str, Any],
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
