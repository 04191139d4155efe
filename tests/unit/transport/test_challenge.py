"""Challenges and tokens: refresh and cache (16), the origin rule (39), Bearer over
Basic (52), the anonymous fallback for public reads (58), ``WWW-Authenticate`` parsing.

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel.auth import Credentials
from ocirel.errors import (
    RegistryAuthError,
    RegistryError,
)
from ocirel.oci import Digest
from ocirel.reference import parse
from ocirel.registry import Registry
from ocirel.transport import (
    Transport,
    parse_www_authenticate,
    raise_for_status,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    Request,
    Response,
    TokenService,
    basic,
    json_reply,
    redirect,
    status,
    tags_page,
)
from tests.unit.transport.helpers import (
    BLOB,
    PASSWORD,
    PULL,
    PUSH,
    TAGS,
    alice,
    authorizations,
    foreign_bearer,
    get,
)

# ------------------------------------------------------------------ item 16


def registry_with_tokens(
    fake: FakeRegistry, transport: Transport, uses: int | None
) -> TokenService:
    tokens = fake.require_bearer(TokenService(uses=uses))
    fake.route("GET", TAGS, tags_page(["v1"]))
    fake.route("GET", "/v2/team/app/manifests/v1", status(200))
    return tokens


def test_r16_expired_token_refreshed_once(fake: FakeRegistry, transport: Transport) -> None:
    tokens = registry_with_tokens(fake, transport, uses=1)
    assert get(transport, fake.address).status == 200
    assert get(transport, fake.address).status == 200  # 401 on the old token, one refresh
    assert len(tokens.calls) == 2
    authorizations = [r.header("Authorization") for r in fake.requests(TAGS)]
    assert authorizations[1] == authorizations[0]
    assert authorizations[2] != authorizations[0]


def test_r16_token_rejected_after_refresh_fails(fake: FakeRegistry, transport: Transport) -> None:
    tokens = registry_with_tokens(fake, transport, uses=0)  # never accepted
    with pytest.raises(RegistryAuthError):
        raise_for_status(get(transport, fake.address))
    assert len(tokens.calls) == 2
    assert len(fake.requests(TAGS)) == 2


def test_r16_token_cached_per_scope(fake: FakeRegistry, transport: Transport) -> None:
    tokens = registry_with_tokens(fake, transport, uses=None)
    for scope in (PULL, PULL, "repository:team/app:pull,push", PULL, "repository:team/other:pull"):
        transport.request("GET", fake.address, TAGS, scope=scope)
    assert tokens.scopes == [PULL, "repository:team/app:pull,push", "repository:team/other:pull"]
    assert {c.arg("service") for c in tokens.calls} == {"fake-registry"}


def test_r16_token_expiry_by_the_clock(fake: FakeRegistry, make_transport: MakeTransport) -> None:
    now = [1000.0]
    transport = make_transport(clock=lambda: now[0])
    tokens = registry_with_tokens(fake, transport, uses=None)  # expires_in=300
    get(transport, fake.address)
    now[0] += 200
    get(transport, fake.address)
    assert len(tokens.calls) == 1
    now[0] += 100  # past 90 % of the lifetime: refreshed before the registry says 401
    assert get(transport, fake.address).status == 200
    assert len(tokens.calls) == 2


def test_r16_token_service_refusing_credentials_fails(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    transport = make_transport(credentials=lambda r, p: alice("wrong-password"))
    tokens = fake.require_bearer(TokenService(credentials=("alice", "wonderland-pass")))
    with pytest.raises(RegistryAuthError, match="refused the credentials"):
        get(transport, fake.address)
    assert tokens.calls[0].header("Authorization") == basic("alice", "wrong-password")


def test_r16_identity_token_exchanged_by_post(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    creds = Credentials("<token>", "", "identity-refresh-token", "test")
    transport = make_transport(credentials=lambda r, p: creds)
    tokens = fake.require_bearer()
    fake.route("GET", TAGS, tags_page([]))
    assert get(transport, fake.address).status == 200
    (call,) = tokens.calls
    assert call.method == "POST"
    assert call.header("Authorization") is None
    assert b"grant_type=refresh_token" in call.body
    assert b"refresh_token=identity-refresh-token" in call.body


@pytest.mark.parametrize(
    ("value", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
            "bearer",
            {
                "realm": "https://auth.example/token",
                "service": "registry.example",
                "scope": "repository:a/b:pull",
            },
        ),
        (
            'bearer realm="https://a/t", service=reg',
            "bearer",
            {"realm": "https://a/t", "service": "reg"},
        ),
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        ("Basic", "basic", {}),
        (
            'Bearer realm="https://a/t",error="insufficient_scope",scope="repository:x:pull,push"',
            "bearer",
            {
                "realm": "https://a/t",
                "error": "insufficient_scope",
                "scope": "repository:x:pull,push",
            },
        ),
        ('Bearer realm="https://a/t\\"q"', "bearer", {"realm": 'https://a/t"q'}),
    ],
)
def test_parse_www_authenticate(value: str, scheme: str, params: dict[str, str]) -> None:
    challenge = parse_www_authenticate(value)
    assert challenge is not None
    assert (challenge.scheme, dict(challenge.params)) == (scheme, params)


@pytest.mark.parametrize(
    "value", ["", "   ", "Negotiate abc", 'Bearer service="x"', "Bearer", "Digest realm=x"]
)
def test_parse_www_authenticate_rejects(value: str) -> None:
    assert parse_www_authenticate(value) is None


def test_first_contact_learns_challenge_once(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    fake.require_basic("alice", "wonderland-pass")
    fake.route("GET", TAGS, tags_page(["v1"]))
    for _ in range(3):
        assert get(transport, fake.address).status == 200
    pings = fake.requests("/v2/")
    assert len(pings) == 1
    assert pings[0].header("Authorization") is None
    assert all(
        r.header("Authorization") == basic("alice", "wonderland-pass") for r in fake.requests(TAGS)
    )


# ------------------------------------------------------------------ item 39


def test_r39_redirect_to_a_host_that_challenges_learns_nothing(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    fake.require_basic("alice", PASSWORD)
    fake.route("GET", BLOB, redirect(f"{other.url}/bucket/blob"))
    fake.route("GET", TAGS, tags_page(["v1"]))
    tokens = foreign_bearer(other)
    reply = get(transport, fake.address, BLOB)
    assert reply.status == 401
    assert tokens.calls == []
    assert authorizations(other) == [None]
    # the registry's own auth is unchanged: Basic, straight to the registry
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    assert fake.requests(TAGS)[-1].header("Authorization") == basic("alice", PASSWORD)
    assert tokens.calls == []
    assert authorizations(other) == [None]


def test_r39_upload_location_on_a_host_that_challenges_learns_nothing(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport, tmp_path: Path
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    registry = Registry(transport)
    repo = parse(f"{fake.address}/team/app")
    fake.require_basic("alice", PASSWORD)
    fake.route("POST", "/v2/team/app/blobs/uploads/", status(202, Location=f"{other.url}/up/1"))
    fake.route("GET", TAGS, tags_page(["v1"]))
    tokens = foreign_bearer(other)
    blob = tmp_path / "blob"
    blob.write_bytes(b"layer")
    with pytest.raises(RegistryError):
        registry.upload_blob(repo, Digest("sha256:" + "c" * 64), lambda: blob.open("rb"), 5)
    assert tokens.calls == []
    assert set(authorizations(other)) == {None}
    assert registry.list_tags(repo) == ["v1"]
    assert fake.requests(TAGS)[-1].header("Authorization") == basic("alice", PASSWORD)
    assert set(authorizations(fake)) == {basic("alice", PASSWORD), None}
    assert tokens.calls == []


def test_r39_registry_on_another_port_of_the_same_host_is_foreign(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport
) -> None:
    """Origin is scheme, host and port: the same address on another port is foreign."""
    transport = make_transport(credentials=lambda r, p: alice())
    fake.route("GET", BLOB, redirect(f"http://127.0.0.1:{other.port}/b"))
    tokens = foreign_bearer(other)
    assert get(transport, fake.address, BLOB).status == 401
    get(transport, fake.address, BLOB)
    assert tokens.calls == []
    assert set(authorizations(other)) == {None}
    assert set(authorizations(fake)) == {None}


# ------------------------------------------------------------------ item 52


def both_challenges(fake: FakeRegistry, tokens: TokenService, *, one_header: bool) -> None:
    fake.route("*", "/token", tokens.issue)
    basic_challenge = 'Basic realm="fake"'
    bearer_challenge = f'Bearer realm="{fake.url}/token",service="{tokens.service}"'

    def gate(request: Request) -> Response:
        if tokens.accept(request.header("Authorization")):
            return tags_page(["v1"]) if request.path == TAGS else json_reply({})
        if one_header:
            value = f"{basic_challenge}, {bearer_challenge}"
            return Response(401, {"WWW-Authenticate": value})
        pairs = (("WWW-Authenticate", basic_challenge), ("WWW-Authenticate", bearer_challenge))
        return Response(401, extra_headers=pairs)

    fake.route("GET", "/v2/", gate)
    fake.route("GET", TAGS, gate)


@pytest.mark.parametrize("one_header", [True, False], ids=["one-header", "two-headers"])
def test_r52_basic_and_bearer_offered_bearer_preferred(
    fake: FakeRegistry, make_transport: MakeTransport, one_header: bool
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    tokens = TokenService(credentials=("alice", PASSWORD))
    both_challenges(fake, tokens, one_header=one_header)
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    assert [c.header("Authorization") for c in tokens.calls] == [basic("alice", PASSWORD)]
    assert (fake.requests(TAGS)[-1].header("Authorization") or "").startswith("Bearer ")


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="r", Bearer realm="https://auth.example/token",service="s"',
        'Bearer realm="https://auth.example/token",service="s", Basic realm="r"',
        'Basic realm="r",Bearer realm="https://auth.example/token",service="s"',
    ],
)
def test_r52_parse_prefers_bearer(value: str) -> None:
    challenge = parse_www_authenticate(value)
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert dict(challenge.params) == {"realm": "https://auth.example/token", "service": "s"}


# ------------------------------------------------------------------ item 58


def public_repo_behind_a_strict_token_service(fake: FakeRegistry) -> TokenService:
    tokens = TokenService(credentials=("alice", PASSWORD))
    fake.route("*", "/token", tokens.issue)
    challenge = f'Bearer realm="{fake.url}/token",service="{tokens.service}"'
    fake.route("GET", "/v2/", Response(401, {"WWW-Authenticate": challenge}))
    fake.route("GET", TAGS, tags_page(["v1", "v2"]))
    return tokens


def test_r58_public_repository_read_anonymously_when_the_token_service_refuses(
    fake: FakeRegistry, transport: Transport
) -> None:
    tokens = public_repo_behind_a_strict_token_service(fake)
    assert get(transport, fake.address).json()["tags"] == ["v1", "v2"]
    assert get(transport, fake.address).status == 200
    assert fake.requests(TAGS)[-1].header("Authorization") is None
    assert len(tokens.calls) == 1  # the refusal is remembered for the scope


def test_r58_anonymous_fallback_only_for_reads(fake: FakeRegistry, transport: Transport) -> None:
    public_repo_behind_a_strict_token_service(fake)
    fake.route("POST", "/v2/team/app/blobs/uploads/", status(202, Location="/up"))
    with pytest.raises(RegistryAuthError, match="refused anonymous access"):
        transport.request("POST", fake.address, "/v2/team/app/blobs/uploads/", scope=PUSH)
    assert fake.requests("/v2/team/app/blobs/uploads/") == []


def test_r58_anonymous_read_refused_too_reports_the_token_service(
    fake: FakeRegistry, transport: Transport
) -> None:
    public_repo_behind_a_strict_token_service(fake)
    challenge = f'Bearer realm="{fake.url}/token",service="fake-registry"'
    fake.route("GET", TAGS, Response(401, {"WWW-Authenticate": challenge}))
    with pytest.raises(RegistryAuthError, match="refused anonymous access") as caught:
        get(transport, fake.address)
    assert "log in" in (caught.value.hint or "")


def test_r58_credentials_refused_are_not_hidden_by_a_fallback(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    transport = make_transport(credentials=lambda r, p: alice("wrong-password"))
    public_repo_behind_a_strict_token_service(fake)
    with pytest.raises(RegistryAuthError, match="refused the credentials"):
        get(transport, fake.address)
    assert fake.requests(TAGS) == []
