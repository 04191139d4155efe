"""Issue 9, the HTTP side: reliability items 39-58 that live in the transport.

Credentials stay with the registry (items 39, 52, 53, 58), secrets stay hidden in
other encodings (40), malformed URLs and bodies fail cleanly (44, 45), a trickling
reply cannot evade the read timeout (48), ``--debug`` logs requests (50) and a Link
that only changes the scheme says so (57). Same fixtures as test_transport.py.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest

from ocirel.auth import Credentials
from ocirel.errors import RegistryAuthError, RegistryError
from ocirel.redact import redact, register_secret
from ocirel.reference import parse
from ocirel.registry import Registry
from ocirel.transport import Reply, Transport, parse_www_authenticate, raise_for_status
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

TAGS = "/v2/team/app/tags/list"
BLOB = "/v2/team/app/blobs/sha256:" + "b" * 64
PULL = "repository:team/app:pull"
PUSH = "repository:team/app:pull,push"
PASSWORD = "wonderland-pass"


def alice(password: str = PASSWORD) -> Credentials:
    return Credentials("alice", password, source="test")


def get(transport: Transport, registry: str, path: str = TAGS, scope: str = PULL) -> Reply:
    return transport.request("GET", registry, path, scope=scope)


def foreign_bearer(other: FakeRegistry) -> TokenService:
    """``other`` answers 401 with a Bearer challenge whose realm is on ``other``."""
    tokens = TokenService()
    other.route("*", "/token", tokens.issue)
    challenge = f'Bearer realm="{other.url}/token",service="evil"'
    other.route("*", "/(?!token).*", Response(401, {"WWW-Authenticate": challenge}))
    return tokens


def authorizations(server: FakeRegistry) -> list[str | None]:
    return [r.header("Authorization") for r in server.log]


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
        registry.upload_blob(repo, "sha256:" + "c" * 64, lambda: blob.open("rb"), 5)
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


# ------------------------------------------------------------------ item 40

SECRET = 'p@ss:w/rd %&"é\\+x'


def _encodings(username: str, password: str) -> dict[str, str]:
    pair = f"{username}:{password}".encode()
    return {
        "url": quote(password, safe=""),
        "url-lower-hex": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(password, "")),
        "url-plus": quote_plus(password, safe=""),
        "url-path": quote(password),
        "json": json.dumps(password)[1:-1],
        "json-utf8": json.dumps(password, ensure_ascii=False)[1:-1],
        "base64-pair": base64.b64encode(pair).decode(),
        "base64-pair-urlsafe": base64.urlsafe_b64encode(pair).decode().rstrip("="),
        "base64": base64.b64encode(password.encode()).decode(),
    }


@pytest.mark.parametrize("form", sorted(_encodings("alice", SECRET)))
def test_r40_password_in_other_encodings_is_redacted(form: str) -> None:
    Credentials("alice", SECRET, source="test")
    encoded = _encodings("alice", SECRET)[form]
    assert encoded != SECRET
    text = redact(f"the registry said: {encoded}.")
    assert encoded not in text
    assert "***" in text


@pytest.mark.parametrize("form", ["url", "url-plus", "json", "base64"])
def test_r40_token_in_other_encodings_is_redacted(form: str) -> None:
    token = "tok/en+with=odd/chars-0123456789"
    register_secret(token)
    encoded = {
        "url": quote(token, safe=""),
        "url-plus": quote_plus(token),
        "json": json.dumps(token).replace("/", "\\/")[1:-1],
        "base64": base64.b64encode(token.encode()).decode(),
    }[form]
    assert encoded != token
    assert encoded not in redact(f"echo {encoded} echo")


def test_r40_registry_echoing_the_password_url_encoded_is_redacted(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    password = "echo&pass/word 42"
    transport = make_transport(credentials=lambda r, p: alice(password))
    fake.require_basic("alice", password)
    forms = _encodings("alice", password)
    body = json_reply(
        {"errors": [{"code": "DENIED", "message": " ".join(forms.values())}]}, 403
    ).body
    fake.route("GET", TAGS, status(403, body))
    fake.route("GET", "/html", status(400, " | ".join(forms.values()).encode()))
    for path in (TAGS, "/html"):
        with pytest.raises(RegistryError) as caught:
            raise_for_status(get(transport, fake.address, path))
        text = str(caught.value)
        for form, encoded in forms.items():
            assert encoded not in text, form


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
