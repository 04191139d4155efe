"""The session and the secrets: no ambient credentials (20), secrets never shown (23, 40),
``--debug`` request lines (50), proxies, User-Agent and query parameters.

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from ocirel import reference
from ocirel.auth import Credentials, find_credentials
from ocirel.errors import (
    InvalidReferenceError,
    RegistryAuthError,
    RegistryError,
)
from ocirel.redact import redact, register_secret
from ocirel.transport import (
    Transport,
    raise_for_status,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    TokenService,
    basic,
    json_reply,
    oci_error,
    redirect,
    status,
    tags_page,
)
from tests.unit.transport.helpers import (
    BLOB,
    TAGS,
    alice,
    closed_port,
    get,
)

# ------------------------------------------------------------------ item 20


def test_r20_netrc_never_used(
    fake: FakeRegistry,
    make_transport: MakeTransport,
    clean_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = clean_home / ".netrc"
    netrc.write_text(
        f"machine 127.0.0.1 login alice password netrc-secret\n"
        f"machine 127.0.0.1:{fake.port} login alice password netrc-secret\n"
        "default login alice password netrc-secret\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    fake.require_basic("alice", "netrc-secret")
    transport = make_transport(credentials=find_credentials)
    with pytest.raises(RegistryAuthError):
        raise_for_status(get(transport, fake.address))
    assert fake.log
    assert all(r.header("Authorization") is None for r in fake.log)


def test_r20_url_userinfo_never_used(fake: FakeRegistry, transport: Transport) -> None:
    with_userinfo = f"http://alice:userinfo-secret@{fake.address}"
    with pytest.raises(RegistryError, match="user-info"):
        transport.request("GET", fake.address, "", url=with_userinfo + TAGS)
    fake.route("GET", TAGS, redirect(with_userinfo + "/v2/x"))
    with pytest.raises(RegistryError, match="user-info"):
        get(transport, fake.address)
    assert fake.requests("/v2/x") == []
    assert all(r.header("Authorization") is None for r in fake.log)


def test_r20_userinfo_in_a_reference_is_not_a_credential() -> None:
    with pytest.raises(InvalidReferenceError):
        reference.parse("alice:secret@registry.example.com/team/app")


# ------------------------------------------------------------------ item 23


def test_r23_password_echoed_in_an_error_body_is_redacted(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    password = "pw-echo-9f8e7d"
    transport = make_transport(credentials=lambda r, p: alice(password))
    fake.require_basic("alice", password)
    encoded = basic("alice", password).split()[1]
    fake.route(
        "GET",
        TAGS,
        json_reply(
            {
                "errors": [
                    {"code": "DENIED", "message": f"user alice:{password} ({encoded}) may not"}
                ]
            },
            403,
        ),
    )
    fake.route(
        "GET", "/html", status(400, f"<p>{password} / Authorization: Basic {encoded}</p>".encode())
    )
    for path in (TAGS, "/html"):
        with pytest.raises(RegistryError) as caught:
            raise_for_status(get(transport, fake.address, path))
        text = f"{caught.value} {caught.value.hint}"
        assert password not in text
        assert encoded not in text
        assert "***" in text


def test_r23_bare_basic_header_value_echoed_is_redacted(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    password = "pw-bare-b64-1234"
    transport = make_transport(credentials=lambda r, p: alice(password))
    fake.require_basic("alice", password)
    encoded = basic("alice", password).split()[1]
    fake.route("GET", TAGS, status(400, f"rejected header value {encoded}".encode()))
    with pytest.raises(RegistryError) as caught:
        raise_for_status(get(transport, fake.address))
    assert encoded not in str(caught.value)


def test_r23_token_service_error_echoing_secrets_is_redacted(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    password = "pw-realm-5a4b3c"
    transport = make_transport(credentials=lambda r, p: alice(password))
    fake.require_bearer()
    fake.route(
        "GET",
        "/token",
        lambda r: status(
            500,
            f"token service crashed: auth={r.header('Authorization')} password={password}".encode(),
        ),
    )
    with pytest.raises(RegistryError) as caught:
        get(transport, fake.address)
    text = str(caught.value)
    assert "500" in text
    assert password not in text
    assert basic("alice", password).split()[1] not in text


def test_r23_token_service_garbage_body_not_echoed(
    fake: FakeRegistry, transport: Transport
) -> None:
    fake.require_bearer()
    fake.route("GET", "/token", status(200, b'{"token": "half-a-token-0123456789'))
    with pytest.raises(RegistryAuthError, match="not JSON") as caught:
        get(transport, fake.address)
    assert "half-a-token" not in str(caught.value)


def test_r23_token_echoed_by_the_registry_is_redacted(
    fake: FakeRegistry, transport: Transport
) -> None:
    tokens = fake.require_bearer()
    fake.route(
        "GET",
        TAGS,
        lambda r: oci_error(403, "DENIED", f"token {r.header('Authorization')} lacks push"),
    )
    with pytest.raises(RegistryAuthError) as caught:
        raise_for_status(get(transport, fake.address))
    sent = fake.requests(TAGS)[-1].header("Authorization") or ""
    assert sent.startswith("Bearer tok-1-")
    assert len(tokens.calls) == 1
    assert sent.split()[1] not in str(caught.value)


def test_r23_signed_redirect_query_never_in_errors(
    fake: FakeRegistry, other: FakeRegistry, transport: Transport
) -> None:
    fake.route(
        "GET", BLOB, redirect(f"{other.url}/bucket/b?X-Amz-Signature=sig-0xdeadbeef&token=t0k")
    )
    other.route("GET", "/bucket/b", status(403, b"<Error>AccessDenied</Error>"))
    with pytest.raises(RegistryError) as caught:
        raise_for_status(transport.request("GET", fake.address, BLOB))
    assert "AccessDenied" in str(caught.value)
    assert "sig-0xdeadbeef" not in str(caught.value)
    assert "t0k" not in str(caught.value)


def test_r23_connection_errors_carry_no_query_or_userinfo(transport: Transport) -> None:
    port = closed_port()
    with pytest.raises(RegistryError) as caught:
        transport.request("GET", f"127.0.0.1:{port}", TAGS, params={"token": "q-secret-1"})
    assert "q-secret-1" not in str(caught.value)


def test_r23_credentials_never_shown() -> None:
    creds = Credentials("alice", "repr-secret-77", "identity-secret-88", "file")
    assert "repr-secret-77" not in repr(creds)
    assert "identity-secret-88" not in repr(creds)
    assert redact("a repr-secret-77 b identity-secret-88") == "a *** b ***"


def test_loopback_ignores_proxy_environment(
    fake: FakeRegistry, transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead_proxy = f"http://127.0.0.1:{closed_port()}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, dead_proxy)
    fake.route("GET", TAGS, tags_page(["v1"]))
    assert get(transport, fake.address).json()["tags"] == ["v1"]


def test_user_agent_is_set(fake: FakeRegistry, transport: Transport) -> None:
    get(transport, fake.address)
    assert (fake.log[0].header("User-Agent") or "").startswith("ocirel/")


def test_request_records_query_params(fake: FakeRegistry, transport: Transport) -> None:
    fake.route("GET", TAGS, lambda r: json_reply({"n": r.arg("n"), "last": r.arg("last")}))
    reply = transport.request("GET", fake.address, TAGS, params={"n": "5", "last": "a b&c"})
    assert reply.json() == {"n": "5", "last": "a b&c"}


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
