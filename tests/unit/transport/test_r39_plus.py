"""Issue 9, the HTTP side: reliability items 39-58 that live in the transport.

Credentials stay with the registry (items 39, 52, 53, 58), secrets stay hidden in
other encodings (40), malformed URLs and bodies fail cleanly (44, 45), a trickling
reply cannot evade the read timeout (48), ``--debug`` logs requests (50) and a Link
that only changes the scheme says so (57). Same fixtures as test_session.py.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
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


# ------------------------------------------------------------------ item 44

BROKEN_URLS = [
    "http://[::1/v2/team/app/tags/list?last=v1",
    "http://127.0.0.1:99999/v2/team/app/tags/list?last=v1",
    "http://127.0.0.1:-1/x",
    "http://[fe80::zz]/x",
]


@pytest.mark.parametrize("url", BROKEN_URLS)
def test_r44_malformed_link_fails_cleanly(fake: FakeRegistry, registry: Registry, url: str) -> None:
    fake.route("GET", TAGS, tags_page(["v1"], link=url))
    with pytest.raises(RegistryError, match=r"malformed|another host") as caught:
        registry.list_tags(parse(f"{fake.address}/team/app"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("url", BROKEN_URLS)
def test_r44_malformed_redirect_location_fails_cleanly(
    fake: FakeRegistry, transport: Transport, url: str
) -> None:
    fake.route("GET", BLOB, redirect(url))
    with pytest.raises(RegistryError, match="malformed"):
        get(transport, fake.address, BLOB)


@pytest.mark.parametrize("url", BROKEN_URLS)
def test_r44_malformed_upload_location_fails_cleanly(
    fake: FakeRegistry, registry: Registry, tmp_path: Path, url: str
) -> None:
    fake.route("POST", "/v2/team/app/blobs/uploads/", status(202, Location=url))
    blob = tmp_path / "blob"
    blob.write_bytes(b"layer")
    with pytest.raises(RegistryError, match="malformed"):
        registry.upload_blob(
            parse(f"{fake.address}/team/app"), "sha256:" + "c" * 64, lambda: blob.open("rb"), 5
        )


@pytest.mark.parametrize("realm", BROKEN_URLS)
def test_r44_token_realm_that_does_not_parse_fails_cleanly(
    fake: FakeRegistry, make_transport: MakeTransport, realm: str
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    challenge = Response(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})
    fake.route("GET", "/v2/", challenge)
    fake.route("GET", TAGS, challenge)
    with pytest.raises(RegistryAuthError, match="token realm"):
        get(transport, fake.address)


def test_r44_cli_exit_1_for_a_malformed_link(fake: FakeRegistry, clean_home: Path) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    from ocirel.cli import app  # noqa: PLC0415

    fake.route("GET", TAGS, tags_page(["v1"], link=BROKEN_URLS[0]))
    result = CliRunner().invoke(app, ["tags", f"{fake.address}/team/app"])
    assert result.exit_code == 1, result.output
    assert "malformed" in result.output
    assert "internal error" not in result.output


# ------------------------------------------------------------------ item 45


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "x-gzip"])
def test_r45_body_that_does_not_decode_fails_cleanly(
    fake: FakeRegistry, transport: Transport, encoding: str
) -> None:
    garbage = (
        b"\x1f\x8b\x08\x00not really compressed at all" if "gzip" in encoding else b"\xff" * 40
    )
    fake.route("GET", TAGS, Response(200, {"Content-Encoding": encoding}, garbage))
    with pytest.raises(RegistryError, match="Content-Encoding") as caught:
        get(transport, fake.address)
    assert not isinstance(caught.value, RegistryAuthError)


def test_r45_deflate_that_decodes_is_read(fake: FakeRegistry, transport: Transport) -> None:
    plain = tags_page(["v1"]).body
    fake.route("GET", TAGS, Response(200, {"Content-Encoding": "deflate"}, zlib.compress(plain)))
    assert get(transport, fake.address).body == plain


# ------------------------------------------------------------------ item 57


def test_r57_link_to_https_on_the_same_host_names_the_scheme(
    fake: FakeRegistry, registry: Registry
) -> None:
    link = f"https://{fake.address}{TAGS}?last=v1"
    fake.route("GET", TAGS, tags_page(["v1"], link=link))
    with pytest.raises(RegistryError) as caught:
        registry.list_tags(parse(f"{fake.address}/team/app"))
    message = str(caught.value)
    assert "another host" not in message
    assert "https" in message
    assert "scheme" in message
    assert len(fake.requests(TAGS)) == 1


# ------------------------------------------------------------------ item 48


@pytest.mark.parametrize("headers_too", [True, False], ids=["headers", "body"])
def test_r48_trickling_reply_cannot_evade_the_read_timeout(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float], headers_too: bool
) -> None:
    """One byte every 0.1 s never trips a 0.5 s per-read timeout; the deadline does."""
    transport = make_transport(read_timeout=0.5)
    transport.ping(fake.address)
    body = tags_page(["v1", "v2", "v3"]).body
    fake.route("GET", TAGS, Response(200, {}, body, trickle=0.1, trickle_headers=headers_too))
    started = time.monotonic()
    with pytest.raises(RegistryError, match="timed out") as caught:
        get(transport, fake.address)
    assert time.monotonic() - started < 2.0
    assert "OCIREL_READ_TIMEOUT" in (caught.value.hint or "")
    assert len(fake.requests(TAGS)) == 1  # a timeout is not retried
    assert sleeps == []


def test_r48_a_slow_but_steady_body_is_read(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    """The deadline is per 64 KiB of body: a large body that keeps coming is fine."""
    transport = make_transport(read_timeout=0.5)
    body = tags_page([f"v{i}" for i in range(30000)]).body
    assert len(body) > 4 * 65536
    fake.route("GET", TAGS, Response(200, {}, body))
    assert get(transport, fake.address).body == body


# ------------------------------------------------------------------ item 50


def test_r50_debug_logs_each_request_without_secrets(
    fake: FakeRegistry, clean_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    from ocirel.cli import app  # noqa: PLC0415

    password = "debug-secret-pw-31337"
    tokens = fake.require_bearer(TokenService(credentials=("alice", password)))
    fake.route("GET", TAGS, tags_page(["v1", "v2"]))
    monkeypatch.setenv("OCIREL_USERNAME", "alice")
    monkeypatch.setenv("OCIREL_PASSWORD", password)
    result = CliRunner().invoke(app, ["--debug", "tags", f"{fake.address}/team/app"])
    assert result.exit_code == 0, result.output
    log = result.stderr
    lines = [line for line in log.splitlines() if "/v2/team/app/tags/list" in line]
    assert lines, log
    line = lines[-1]
    assert f"GET http://{fake.address}/v2/team/app/tags/list" in line
    assert "200" in line
    assert " ms" in line
    assert "retries 0" in line
    assert f"bearer token from realm http://{fake.address}/token" in line
    assert any("token" in entry and "basic" in entry for entry in log.splitlines()), log
    token = (fake.requests(TAGS)[-1].header("Authorization") or "").split()[-1]
    assert len(tokens.calls) == 1
    for secret in (password, token, basic("alice", password).split()[1]):
        assert secret not in log
        assert secret not in result.stdout


def test_r50_no_request_lines_without_debug(fake: FakeRegistry, clean_home: Path) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    from ocirel.cli import app  # noqa: PLC0415

    fake.route("GET", TAGS, tags_page(["v1"]))
    result = CliRunner().invoke(app, ["tags", f"{fake.address}/team/app"])
    assert result.exit_code == 0, result.output
    assert "/v2/" not in result.stderr
