"""A counting HTTP/1.1 proxy in front of the bench registry: how many bytes each side
uploads as blobs, which blobs those were, and which cross-repository mounts it asked for.

It parses each request (request line, headers, body by ``Content-Length`` or chunked
transfer encoding) and each response, so keep-alive connections, buildah's chunked
``PATCH`` uploads and ocirel's monolithic ``PUT`` are all counted the same way: the
body payload (after de-chunking) of every ``POST``/``PATCH``/``PUT`` to
``/v2/<name>/blobs/uploads/``. The bytes of an upload session (the UUID in the path)
are attributed to the digest its final ``PUT ...?digest=`` names.

The registry builds its ``Location`` headers from the ``Host`` header, which the proxy
passes through, so clients keep talking to the proxy for the whole upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

_UPLOAD = re.compile(r"^/v2/(?P<name>.+?)/blobs/uploads/(?P<session>[^/]*)$")
_COUNTED = frozenset({"POST", "PATCH", "PUT"})
_BUFFER = 1 << 16


@dataclass(frozen=True)
class Mount:
    repository: str
    digest: str
    source: str
    status: int  # 201: mounted; 202: the registry opened an upload session instead

    @property
    def mounted(self) -> bool:
        return self.status == 201


@dataclass
class Uploads:
    """What one side uploaded between two :meth:`CountingProxy.take` calls."""

    by_digest: dict[str, int] = field(default_factory=dict)
    unattributed: int = 0  # bytes of sessions that never named a digest
    mounts: list[Mount] = field(default_factory=list)
    requests: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_digest.values()) + self.unattributed

    def bytes_of(self, digests: set[str]) -> int:
        return sum(size for digest, size in self.by_digest.items() if digest in digests)


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, int] = {}
        self._current = Uploads()
        #: every request as "METHOD target body=N -> status", when not None (debugging)
        self.log: list[str] | None = None

    def record(self, method: str, target: str, body: int, status: int) -> None:
        if self.log is not None:
            with self._lock:
                self.log.append(f"{method} {target} body={body} -> {status}")
        url = urlsplit(target)
        match = _UPLOAD.match(url.path)
        if method not in _COUNTED or match is None:
            return
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        with self._lock:
            self._current.requests += 1
            if method == "POST" and "mount" in query:
                self._current.mounts.append(
                    Mount(match["name"], query["mount"], query.get("from", ""), status)
                )
            key = f"{match['name']}/{match['session']}"
            pending = self._sessions.pop(key, 0) + body
            if "digest" in query and 200 <= status < 300:
                digest = query["digest"]
                self._current.by_digest[digest] = self._current.by_digest.get(digest, 0) + pending
            elif match["session"]:
                self._sessions[key] = pending
            else:  # a POST opening a session: its (usually empty) body
                self._current.unattributed += pending

    def take(self) -> Uploads:
        with self._lock:
            taken, self._current = self._current, Uploads()
            taken.unattributed += sum(self._sessions.values())
            self._sessions.clear()
            return taken


# ------------------------------------------------------------------ HTTP framing


def _read_head(stream: BinaryIO) -> tuple[bytes, list[tuple[str, str]], bytes]:
    """The start line, the headers (name lower-cased) and the raw head bytes."""
    start = stream.readline(65537)
    raw = bytearray(start)
    headers: list[tuple[str, str]] = []
    while start:
        line = stream.readline(65537)
        raw += line
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return start, headers, bytes(raw)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key == name), None)


def _copy_exact(source: BinaryIO, sink: Callable[[bytes], object], size: int) -> int:
    left = size
    while left > 0:
        chunk = source.read(min(left, _BUFFER))
        if not chunk:
            raise ConnectionError("peer closed mid-body")
        sink(chunk)
        left -= len(chunk)
    return size


def _copy_chunked(source: BinaryIO, sink: Callable[[bytes], object]) -> int:
    payload = 0
    while True:
        size_line = source.readline(65537)
        if not size_line:
            raise ConnectionError("peer closed mid-chunk")
        sink(size_line)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (trailer := source.readline(65537)) not in (b"\r\n", b"\n", b""):
                sink(trailer)
            sink(b"\r\n")
            return payload
        payload += _copy_exact(source, sink, size)
        sink(source.readline(65537))  # the CRLF after the chunk


def _copy_body(
    source: BinaryIO, sink: Callable[[bytes], object], headers: list[tuple[str, str]]
) -> int | None:
    """Copy a message body; its payload size, or None when it runs to end of stream."""
    if "chunked" in (_header(headers, "transfer-encoding") or "").lower():
        return _copy_chunked(source, sink)
    length = _header(headers, "content-length")
    if length is not None:
        return _copy_exact(source, sink, int(length))
    return None


def _without(raw_head: bytes, name: bytes) -> bytes:
    lines = raw_head.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(name + b":"))


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        with (
            contextlib.suppress(OSError, ConnectionError, ValueError),
            socket.create_connection(self.server.upstream) as upstream,
        ):
            # a head and a body are two writes: with Nagle on, the body of every small
            # response waited for the client's delayed ACK (~40 ms on loopback), a cost
            # no real registry has (Go's net/http sets TCP_NODELAY), paid per request
            for sock in (self.connection, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.rfile.peek(1)[:1] == b"\x16":  # type: ignore[attr-defined]
                self._tunnel(upstream)  # a TLS hello: let the registry answer it
                return
            replies = upstream.makefile("rb")
            while self._exchange(upstream, replies):
                pass

    def _tunnel(self, upstream: socket.socket) -> None:
        """Relay bytes both ways, unparsed (a client trying https first; the plain-http
        registry answers 400 and closes, and the client falls back to http)."""

        def back() -> None:
            with contextlib.suppress(OSError):
                while data := upstream.recv(_BUFFER):
                    self.wfile.write(data)
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_WR)

        thread = threading.Thread(target=back, daemon=True)
        thread.start()
        with contextlib.suppress(OSError):
            while data := self.rfile.read1(_BUFFER):  # type: ignore[attr-defined]
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)
        thread.join(timeout=30)

    def _exchange(self, upstream: socket.socket, replies: BinaryIO) -> bool:
        """Relay one request and its response; False when the connection ends."""
        start, headers, raw = _read_head(self.rfile)  # type: ignore[arg-type]
        if not start.strip():
            return False
        method, target = start.decode("latin-1").split()[:2]
        if (_header(headers, "expect") or "").lower() == "100-continue":
            raw = _without(raw, b"expect")
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        upstream.sendall(raw)
        body = _copy_body(self.rfile, upstream.sendall, headers) or 0  # type: ignore[arg-type]
        status_line, reply_headers, reply_raw = _read_head(replies)
        if not status_line:
            return False
        status = int(status_line.split()[1])
        self.server.stats.record(method, target, body, status)  # before the client sees it
        self.wfile.write(reply_raw)
        no_body = method == "HEAD" or status in (204, 304) or status < 200
        if not no_body and _copy_body(replies, self.wfile.write, reply_headers) is None:
            while chunk := replies.read(_BUFFER):  # no framing: the body runs to close
                self.wfile.write(chunk)
            return False
        closing = (_header(reply_headers, "connection") or "").lower() == "close"
        return not closing and (_header(headers, "connection") or "").lower() != "close"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.stats = _Stats()


class CountingProxy:
    """``with CountingProxy("127.0.0.1:5000") as proxy``: ``proxy.host`` is where clients
    go, ``proxy.take()`` returns (and resets) what was uploaded since the last call."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._server = _Server((host, int(port)))
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def take(self) -> Uploads:
        return self._server.stats.take()


# ------------------------------------------------------------------ self-check


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def self_check(proxy: CountingProxy, size: int = 3_000_001) -> str:
    """Push one known blob through the proxy the way buildah does (chunked ``PATCH``
    then an empty ``PUT ?digest=``) and one the way ocirel does (monolithic ``PUT``),
    on one keep-alive connection, and check both are counted to the byte."""
    proxy.take()
    first, second = (bytes([n]) * size for n in (1, 2))
    connection = http.client.HTTPConnection(proxy.host, timeout=30)
    try:
        for data, chunked in ((first, True), (second, False)):
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            location = _request(connection, "POST", "/v2/bench/selfcheck/blobs/uploads/", b"")
            joiner = "&" if "?" in location else "?"
            if chunked:
                location = _request(connection, "PATCH", location, _chunks(data, 65_000))
                joiner = "&" if "?" in location else "?"
                _request(connection, "PUT", f"{location}{joiner}digest={digest}", b"")
            else:
                _request(connection, "PUT", f"{location}{joiner}digest={digest}", data)
    finally:
        connection.close()
    got = proxy.take()
    if got.total != 2 * size or set(got.by_digest.values()) != {size}:
        raise RuntimeError(f"counting proxy miscounted: {got} for two blobs of {size} bytes")
    return f"counted 2 x {size} bytes exactly (chunked PATCH + PUT, monolithic PUT)"


def _request(connection: http.client.HTTPConnection, method: str, target: str, body: object) -> str:
    path = urlsplit(target)
    url = f"{path.path}?{path.query}" if path.query else path.path
    chunked = not isinstance(body, bytes)
    headers = {"Content-Type": "application/octet-stream"}
    connection.request(method, url, body=body, headers=headers, encode_chunked=chunked)  # type: ignore[arg-type]
    reply = connection.getresponse()
    reply.read()
    if reply.status >= 300:
        raise RuntimeError(f"self-check {method} {url}: HTTP {reply.status}")
    return reply.getheader("Location", "")
