"""A scripted, in-process registry for unit tests: every fault on demand.

A :class:`FakeRegistry` is a threaded HTTP/1.1 server on ``127.0.0.1`` (port 0,
optionally TLS). Tests script it with routes, logged requests tell what arrived::

    fake.route("GET", "/v2/team/app/tags/list", tags_page(["v1", "v2"]))
    fake.route("GET", "/v2/team/app/tags/list", sequence(status(503), tags_page([])))
    fake.route("HEAD", "/v2/.*/manifests/.*", lambda req: Response(404))
    fake.log  # [Request(method, path, query, headers, body), ...]

A route is ``(method, path regex)`` → a :class:`Response` or a handler
``Request -> Response``; the latest matching route wins, unmatched paths get 404
(``GET /v2/`` answers 200 by default). A :class:`Response` may also misbehave:
``DROP`` (close without answering), ``RESET`` (TCP RST), ``STALL`` (never answer),
``declared_length`` above the body (cut short), ``stall_body`` (half a body, then
silence). :meth:`FakeRegistry.require_basic` and :meth:`FakeRegistry.require_bearer`
put an auth gate in front of every route; :class:`TokenService` is the realm.
Method ``"*"`` matches any method; ``HEAD`` falls back to the ``GET`` route (no body).
:class:`StalledServer` accepts connections and never answers; :func:`make_tls` makes
a private CA for ``FakeRegistry(tls=...)``; ``tls_errors``, ``tls_probes`` and
``connections`` tell what happened below HTTP (poll them with :func:`wait_until`).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import itertools
import json
import os
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from ocirel.transport import Transport


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Response:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    action: str = "send"  # send | drop | reset | stall
    declared_length: int | None = None  # announce more than the body: a cut-short body
    stall_body: bool = False  # send the headers and half the body, then go silent
    extra_headers: tuple[tuple[str, str], ...] = ()  # repeated names (two WWW-Authenticate)
    trickle: float = 0.0  # seconds between single bytes of the reply
    trickle_headers: bool = True  # False: the headers at once, then the body byte by byte


Handler = Callable[[Request], Response]
DROP = Response(action="drop")
RESET = Response(action="reset")
STALL = Response(action="stall")


def status(code: int, body: bytes = b"", **headers: str) -> Response:
    return Response(code, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def json_reply(data: Any, code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        code, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode()
    )


def oci_error(code: int, error: str, message: str = "") -> Response:
    return json_reply({"errors": [{"code": error, "message": message, "detail": None}]}, code)


def tags_page(tags: list[str] | None, link: str | None = None, name: str = "team/app") -> Response:
    headers = {"Link": f'<{link}>; rel="next"'} if link else {}
    return json_reply({"name": name, "tags": tags}, headers=headers)


def redirect(location: str, code: int = 307) -> Response:
    return Response(code, {"Location": location})


def sequence(*responses: Response | Handler) -> Handler:
    """Serve ``responses`` in turn; the last one repeats."""
    lock, position = threading.Lock(), itertools.count()

    def handler(request: Request) -> Response:
        with lock:
            index = min(next(position), len(responses) - 1)
        item = responses[index]
        return item(request) if callable(item) else item

    return handler


@dataclass
class TokenService:
    """A token realm: tokens accepted ``uses`` times each (None: forever)."""

    credentials: tuple[str, str] | None = None  # required Basic credentials; None: anyone
    uses: int | None = None
    expires_in: int = 300
    service: str = "fake-registry"
    calls: list[Request] = field(default_factory=list)
    _remaining: dict[str, int | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def scopes(self) -> list[str]:
        return [scope for call in self.calls for scope in call.query.get("scope", [])]

    def issue(self, request: Request) -> Response:
        with self._lock:
            self.calls.append(request)
        if self.credentials and request.header("Authorization") != basic(*self.credentials):
            return oci_error(401, "UNAUTHORIZED", "bad credentials for the token service")
        token = f"tok-{len(self.calls)}-{'x' * 24}"
        with self._lock:
            self._remaining[token] = self.uses
        return json_reply({"token": token, "expires_in": self.expires_in})

    def accept(self, authorization: str | None) -> bool:
        token = (authorization or "").removeprefix("Bearer ")
        with self._lock:
            if token not in self._remaining:
                return False
            left = self._remaining[token]
            if left is not None:
                if left <= 0:
                    return False
                self._remaining[token] = left - 1
        return True


def wait_until(condition: Callable[[], object], timeout: float = 2.0) -> bool:
    """Poll ``condition`` (server threads record some things after the client is done)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class FakeRegistry:
    def __init__(self, *, tls: TlsFiles | None = None) -> None:
        self.log: list[Request] = []
        self.tls_errors: list[str] = []  # failed TLS handshakes (client rejected us, or spoke http)
        self.tls_probes = 0  # TLS handshakes attempted against this plain-http server
        self.connections = 0
        self._routes: list[tuple[str, re.Pattern[str], Response | Handler]] = []
        self._gate: Handler | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.route("GET", "/v2/", json_reply({}))
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            self._server.tls = context
        self.scheme = "https" if tls else "http"
        self.port: int = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"  # what a reference calls the registry
        self.url = f"{self.scheme}://{self.address}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.005,), daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeRegistry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- scripting

    def route(self, method: str, pattern: str, reply: Response | Handler) -> None:
        with self._lock:
            self._routes.insert(0, (method.upper(), re.compile(pattern), reply))

    def requests(self, pattern: str = ".*", method: str | None = None) -> list[Request]:
        with self._lock:
            return [
                r
                for r in self.log
                if re.fullmatch(pattern, r.path) and (method is None or r.method == method)
            ]

    def require_basic(self, username: str, password: str) -> None:
        expected = basic(username, password)

        def gate(request: Request) -> Response:
            if request.header("Authorization") == expected:
                return _PASS
            return Response(401, {"WWW-Authenticate": 'Basic realm="fake"'}, _UNAUTHORIZED)

        self._gate = gate

    def require_bearer(
        self, service: TokenService | None = None, *, realm: FakeRegistry | None = None
    ) -> TokenService:
        """Bearer auth; the realm is ``/token`` on ``realm`` (default: this server)."""
        tokens = service or TokenService()
        host = realm or self
        host.route("GET", "/token", tokens.issue)
        host.route("POST", "/token", tokens.issue)

        def gate(request: Request) -> Response:
            if (request.path.startswith("/token") and host is self) or tokens.accept(
                request.header("Authorization")
            ):
                return _PASS
            scope = ""
            match = re.match(r"/v2/(.+)/(tags|manifests|blobs)/", request.path)
            if match:
                scope = f',scope="repository:{match.group(1)}:pull"'
            challenge = f'Bearer realm="{host.url}/token",service="{tokens.service}"{scope}'
            return Response(401, {"WWW-Authenticate": challenge}, _UNAUTHORIZED)

        self._gate = gate
        return tokens

    # ------------------------------------------------------------- answering

    def _answer(self, request: Request) -> Response:
        with self._lock:
            self.log.append(request)
            routes = list(self._routes)
        if self._gate is not None:
            gated = self._gate(request)
            if gated is not _PASS:
                return gated
        for method, pattern, reply in routes:
            if method in (request.method, "*") and pattern.fullmatch(request.path):
                return reply(request) if callable(reply) else reply
        if request.method == "HEAD":
            for method, pattern, reply in routes:  # HEAD falls back to the GET route
                if method == "GET" and pattern.fullmatch(request.path):
                    return reply(request) if callable(reply) else reply
        return oci_error(404, "NOT_FOUND", f"no route for {request.method} {request.path}")


_PASS = Response(status=0)
_UNAUTHORIZED = b'{"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}'


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeRegistry
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.fake.connections += 1
        sock.settimeout(10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up is business as usual here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.tls_failed = False
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                self.server.fake.tls_errors.append(str(exc))
                self.tls_failed = True
        super().setup()

    def handle(self) -> None:
        if self.tls_failed:
            return
        if not isinstance(self.request, ssl.SSLSocket):
            first = self.request.recv(1, socket.MSG_PEEK)
            if first == b"\x16":  # a TLS ClientHello on a plain-http port: answer like Go does
                self.server.fake.tls_probes += 1
                self.wfile.write(
                    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent TLS to an http server\n"
                )
                return
        super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            self.command, parts.path, parse_qs(parts.query), self.headers, self._body()
        )
        response = self.server.fake._answer(request)
        if response.action != "send":
            self._misbehave(response.action)
            return
        body = response.body
        if response.trickle:
            self._trickle(response)
            return
        self.send_response(response.status)
        for name, value in (*response.headers.items(), *response.extra_headers):
            self.send_header(name, value)
        announced = response.declared_length if response.declared_length is not None else len(body)
        if "Content-Length" not in response.headers:
            self.send_header("Content-Length", str(announced))
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.stall_body:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._misbehave("stall")
            return
        self.wfile.write(body)
        if announced != len(body):
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch  # noqa: N815

    def _trickle(self, response: Response) -> None:
        """Send the whole reply one byte at a time, ``response.trickle`` seconds apart."""
        self.close_connection = True
        head = f"HTTP/1.1 {response.status} X\r\nContent-Length: {len(response.body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in response.headers.items()) + "\r\n"
        slow = response.body
        if response.trickle_headers:
            slow = head.encode() + slow
        else:
            self.wfile.write(head.encode())
            self.wfile.flush()
        for byte in slow:
            if self.server.fake._stop.wait(response.trickle):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _misbehave(self, action: str) -> None:
        self.close_connection = True
        if action == "stall":
            self.server.fake._stop.wait(30)
        elif action == "reset":  # linger 0, then close: the kernel sends RST, not FIN
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.request.close()


@dataclass
class NetGuard:
    """What the unit tests' network guard saw (see conftest.py)."""

    connections: list[tuple[str, int]] = field(default_factory=list)
    aliases: set[str] = field(default_factory=set)

    def alias(self, name: str) -> None:
        """Let ``name`` (not a loopback name) reach 127.0.0.1."""
        self.aliases.add(name)

    def hosts(self) -> set[str]:
        return {host for host, _ in self.connections}


MakeTransport = Callable[..., "Transport"]  # the make_transport fixture (see conftest.py)


class StalledServer:
    """A port that accepts TCP connections (kernel backlog) and never says a word."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"

    def close(self) -> None:
        self._socket.close()


# ---------------------------------------------------------------- private CA


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate a client needs (``--ca-file``)
    cert: Path
    key: Path


def make_tls(directory: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A private CA and a server certificate for ``names``, written under ``directory``."""
    from cryptography import x509  # noqa: PLC0415 - only the TLS tests pay for it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def build(subject: str, issuer: str, public: Any, signer: Any, ca: bool) -> x509.Certificate:
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            sans: list[x509.GeneralName] = []
            for host in names:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    sans.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = f"fake CA {os.urandom(4).hex()}"  # unique: two fake CAs never look alike
    ca_cert = build(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    cert = build(names[0], ca_name, key.public_key(), ca_key, False)
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files
