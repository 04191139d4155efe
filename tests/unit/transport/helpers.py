"""Names the transport tests share: paths and scopes on the fake, a user, a request."""

from __future__ import annotations

import socket

from ocirel.auth import Credentials
from ocirel.transport import Reply, Transport
from tests.unit.fakeregistry import FakeRegistry, Response, TokenService

TAGS = "/v2/team/app/tags/list"
BLOB = "/v2/team/app/blobs/sha256:" + "b" * 64
PULL = "repository:team/app:pull"
PUSH = "repository:team/app:pull,push"
PASSWORD = "wonderland-pass"


def alice(password: str = PASSWORD) -> Credentials:
    return Credentials("alice", password, source="test")


def get(transport: Transport, registry: str, path: str = TAGS, scope: str = PULL) -> Reply:
    return transport.request("GET", registry, path, scope=scope)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def foreign_bearer(other: FakeRegistry) -> TokenService:
    """``other`` answers 401 with a Bearer challenge whose realm is on ``other``."""
    tokens = TokenService()
    other.route("*", "/token", tokens.issue)
    challenge = f'Bearer realm="{other.url}/token",service="evil"'
    other.route("*", "/(?!token).*", Response(401, {"WWW-Authenticate": challenge}))
    return tokens


def authorizations(server: FakeRegistry) -> list[str | None]:
    return [r.header("Authorization") for r in server.log]
