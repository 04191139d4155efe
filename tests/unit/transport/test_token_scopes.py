"""Several scopes in one token request (a cross-repository mount: push to the target,
pull from the source): each is its own ``scope`` parameter, and what a request is *for*
(push or not, which repository's credentials) is read from the first scope only."""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from ocirel.auth import Credentials
from ocirel.transport.challenge import _first_scope, _scope_repository, _wants_push
from ocirel.transport.token import _first_hop
from tests.unit.fakeregistry import FakeRegistry, MakeTransport, Request, Response, basic
from tests.unit.transport.helpers import PASSWORD, alice

REALM = "https://auth.example/token"
MOUNT = "repository:a:pull,push repository:b:pull"
UPLOADS = "/v2/team/app/blobs/uploads/"
MOUNT_SCOPE = "repository:team/app:pull,push repository:library/base:pull"


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query)


# ------------------------------------------------------------------ _first_hop


def test_several_scopes_become_several_scope_parameters_in_the_get() -> None:
    hop = _first_hop(REALM, "registry.example", MOUNT, None)
    assert hop.method == "GET"
    assert hop.body is None
    assert query_of(hop.url) == [
        ("service", "registry.example"),
        ("scope", "repository:a:pull,push"),
        ("scope", "repository:b:pull"),
    ]
    assert "Authorization" not in hop.headers


def test_several_scopes_with_basic_credentials() -> None:
    hop = _first_hop(REALM, "registry.example", MOUNT, alice())
    assert hop.method == "GET"
    assert parse_qs(urlsplit(hop.url).query)["scope"] == [
        "repository:a:pull,push",
        "repository:b:pull",
    ]
    assert hop.headers["Authorization"] == basic("alice", PASSWORD)


def test_several_scopes_become_one_space_separated_scope_in_the_identity_token_form() -> None:
    """distribution's OAuth2 spec: the form has one ``scope``, its scopes space separated."""
    creds = Credentials("<token>", "", "identity-refresh-token", "test")
    hop = _first_hop(REALM, "registry.example", MOUNT, creds)
    assert hop.method == "POST"
    assert hop.url == REALM  # nothing in the query: the form carries it all
    assert isinstance(hop.body, bytes)
    form = parse_qsl(hop.body.decode())
    assert ("grant_type", "refresh_token") in form
    assert ("refresh_token", "identity-refresh-token") in form
    assert ("service", "registry.example") in form
    assert [value for name, value in form if name == "scope"] == [
        "repository:a:pull,push repository:b:pull"
    ]
    assert hop.headers["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("", []),
        ("   ", []),
        ("repository:a:pull", ["repository:a:pull"]),
        ("  repository:a:pull   repository:b:pull ", ["repository:a:pull", "repository:b:pull"]),
    ],
)
def test_scope_parameters_split_on_whitespace(scope: str, expected: list[str]) -> None:
    hop = _first_hop(REALM, "", scope, None)
    assert [value for name, value in query_of(hop.url) if name == "scope"] == expected
    assert all(name != "service" for name, _ in query_of(hop.url))  # no service: not sent


def test_a_mount_asks_the_token_service_for_both_scopes(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    looked_up: list[tuple[str, str]] = []

    def lookup(registry: str, repository: str) -> Credentials:
        looked_up.append((registry, repository))
        return alice()

    transport = make_transport(credentials=lookup)
    tokens = fake.require_bearer()
    fake.route("POST", UPLOADS, _created)
    reply = transport.request("POST", fake.address, UPLOADS, scope=MOUNT_SCOPE)
    assert reply.status == 201
    (call,) = [c for c in tokens.calls if c.query.get("scope")]
    assert call.query["scope"] == ["repository:team/app:pull,push", "repository:library/base:pull"]
    assert tokens.scopes == ["repository:team/app:pull,push", "repository:library/base:pull"]
    assert looked_up
    assert {repository for _, repository in looked_up} == {"team/app"}  # the target's creds


def test_a_mount_with_an_identity_token_posts_both_scopes(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    creds = Credentials("<token>", "", "identity-refresh-token", "test")
    transport = make_transport(credentials=lambda r, p: creds)
    tokens = fake.require_bearer()
    fake.route("POST", UPLOADS, _created)
    assert transport.request("POST", fake.address, UPLOADS, scope=MOUNT_SCOPE).status == 201
    posts = [c for c in tokens.calls if c.method == "POST"]
    assert len(posts) == 1
    form = parse_qs(posts[0].body.decode())
    assert form["scope"] == ["repository:team/app:pull,push repository:library/base:pull"]
    assert form["refresh_token"] == ["identity-refresh-token"]


def _created(request: Request) -> Response:
    assert request.header("Authorization") is not None
    return Response(201, {"Location": "/v2/team/app/blobs/sha256:" + "b" * 64})


# ----------------------------------------------------- the first scope decides


@pytest.mark.parametrize(
    ("scope", "push"),
    [
        ("repository:a:pull,push repository:b:pull", True),
        ("repository:a:pull repository:b:pull,push", False),
        ("repository:a:pull repository:b:*", False),
        ("repository:a:push", True),
        ("repository:a:*", True),
        ("repository:a:pull", False),
        ("repository:a:pull,", False),
        ("", False),
        ("   ", False),
        (None, False),
        ("registry:catalog", False),
    ],
)
def test_wants_push_reads_the_first_scope_only(scope: str | None, push: bool) -> None:
    assert _wants_push(scope) is push


@pytest.mark.parametrize(
    ("scope", "repository"),
    [
        ("repository:a:pull,push repository:b:pull", "a"),
        ("repository:team/app:pull repository:library/base:pull", "team/app"),
        ("  repository:x:pull  ", "x"),
        ("repository:a", ""),
        ("", ""),
        ("  ", ""),
        (None, ""),
    ],
)
def test_scope_repository_reads_the_first_scope_only(scope: str | None, repository: str) -> None:
    assert _scope_repository(scope) == repository


def test_first_scope() -> None:
    assert _first_scope(MOUNT) == "repository:a:pull,push"
    assert _first_scope("\trepository:a:pull\n") == "repository:a:pull"
    assert _first_scope(None) == ""
    assert _first_scope(" ") == ""
