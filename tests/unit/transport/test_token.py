"""The token realm: dangerous realms refused (19), redirects of the token endpoint (53).

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from ocirel.auth import Credentials
from ocirel.errors import (
    RegistryAuthError,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    NetGuard,
    Response,
    TokenService,
    basic,
    json_reply,
    redirect,
    tags_page,
)
from tests.unit.transport.helpers import (
    PASSWORD,
    PULL,
    TAGS,
    alice,
    get,
)

# ------------------------------------------------------------------ item 19


def challenge_with_realm(fake: FakeRegistry, realm: str) -> None:
    header = f'Bearer realm="{realm}",service="fake"'
    fake.route("GET", "/v2/", Response(401, {"WWW-Authenticate": header}, b"{}"))
    fake.route("GET", TAGS, Response(401, {"WWW-Authenticate": header}, b"{}"))


@pytest.mark.parametrize(
    ("realm", "message"),
    [
        ("http://auth.example.com/token", "plain-http token realm"),
        ("http://169.254.169.254/token", "link-local or metadata"),
        ("https://[fe80::1]/token", "link-local or metadata"),
        ("https://user:pw@auth.example.com/token", "user-info"),
        ("file:///etc/passwd", "invalid token realm"),
        ("/relative/token", "invalid token realm"),
    ],
)
def test_r19_dangerous_token_realms_refused(
    fake: FakeRegistry, make_transport: MakeTransport, net: NetGuard, realm: str, message: str
) -> None:
    looked_up: list[str] = []

    def lookup(registry: str, repository: str) -> Credentials:
        looked_up.append(registry)
        return alice()

    transport = make_transport(credentials=lookup)
    challenge_with_realm(fake, realm)
    with pytest.raises(RegistryAuthError, match=message):
        get(transport, fake.address)
    assert net.hosts() == {"127.0.0.1"}
    assert looked_up == []


def test_r19_plain_http_realm_on_another_remote_host_refused(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport, net: NetGuard
) -> None:
    """An insecure remote registry may use a realm on itself, never on a third host."""
    net.alias("registry.test")
    net.alias("other.test")
    registry = f"registry.test:{fake.port}"
    transport = make_transport(insecure_registries={registry}, credentials=lambda r, p: alice())
    other.require_bearer()
    challenge_with_realm(fake, f"http://other.test:{other.port}/token")
    with pytest.raises(RegistryAuthError, match="plain-http token realm"):
        get(transport, registry)
    assert other.log == []


def test_r19_plain_http_realm_on_the_insecure_registry_itself_allowed(
    fake: FakeRegistry, make_transport: MakeTransport, net: NetGuard
) -> None:
    net.alias("registry.test")
    registry = f"registry.test:{fake.port}"
    transport = make_transport(insecure_registries={registry}, credentials=lambda r, p: alice())
    tokens = fake.require_bearer()
    challenge_with_realm(fake, f"http://{registry}/token")
    fake.route(
        "GET",
        TAGS,
        lambda r: (
            tags_page([])
            if tokens.accept(r.header("Authorization"))
            else Response(401, {"WWW-Authenticate": f'Bearer realm="http://{registry}/token"'})
        ),
    )
    assert get(transport, registry).status == 200
    assert tokens.calls[0].header("Authorization") == basic("alice", "wonderland-pass")


def test_r19_token_realm_on_another_local_server_gets_the_credentials(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport
) -> None:
    """The normal split (registry + auth server), both local: credentials go to the realm
    only, the registry itself sees the token."""
    transport = make_transport(credentials=lambda r, p: alice())
    tokens = fake.require_bearer(
        TokenService(credentials=("alice", "wonderland-pass")), realm=other
    )
    fake.route("GET", TAGS, tags_page(["v1"]))
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    assert [c.header("Authorization") for c in tokens.calls] == [basic("alice", "wonderland-pass")]
    assert tokens.scopes == [PULL]
    assert all((r.header("Authorization") or "").startswith("Bearer ") for r in fake.requests(TAGS))
    assert other.requests("/token") == tokens.calls


# ------------------------------------------------------------------ item 53


@pytest.mark.parametrize("code", [307, 308])
def test_r53_token_endpoint_redirect_on_its_origin_keeps_credentials(
    fake: FakeRegistry, make_transport: MakeTransport, code: int
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    tokens = fake.require_bearer(TokenService(credentials=("alice", PASSWORD)))
    fake.route("GET", "/token", lambda r: redirect(f"/token/v2?{urlencode(r.query, True)}", code))
    fake.route("GET", "/token/v2", tokens.issue)
    fake.route("GET", TAGS, tags_page(["v1"]))
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    (call,) = tokens.calls
    assert call.path == "/token/v2"
    assert call.header("Authorization") == basic("alice", PASSWORD)
    assert call.arg("scope") == PULL


@pytest.mark.parametrize("code", [307, 308])
def test_r53_token_endpoint_redirect_to_another_origin_gets_no_credentials(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport, code: int
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    tokens = fake.require_bearer(TokenService())
    fake.route("GET", "/token", redirect(f"{other.url}/token?moved=1", code))
    other.route("GET", "/token", tokens.issue)
    fake.route("GET", TAGS, tags_page(["v1"]))
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    assert fake.requests("/token")[0].header("Authorization") == basic("alice", PASSWORD)
    (call,) = other.log
    assert call.header("Authorization") is None
    assert call.arg("moved") == "1"


def test_r53_identity_token_never_posted_to_another_origin(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport
) -> None:
    creds = Credentials("<token>", "", "identity-refresh-token", "test")
    transport = make_transport(credentials=lambda r, p: creds)
    fake.require_bearer()
    fake.route("POST", "/token", redirect(f"{other.url}/token", 307))
    other.route("POST", "/token", json_reply({"token": "t" * 20}))
    with pytest.raises(RegistryAuthError, match="another host"):
        get(transport, fake.address)
    assert other.log == []
