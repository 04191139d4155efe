"""The HTTP choke point against the scripted fake: RELIABILITY items 11-23.

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
Connections are watched by the ``net`` guard (tests/unit/conftest.py), which also
lets a non-loopback *name* (``registry.test``) reach a local fake, so the rules for
remote registries run for real without leaving the machine.
"""

from __future__ import annotations

import email.utils
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocirel import reference
from ocirel.auth import Credentials, find_credentials
from ocirel.errors import (
    InvalidReferenceError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
)
from ocirel.redact import redact
from ocirel.registry import Registry
from ocirel.transport import (
    RegistryPolicy,
    Reply,
    Transport,
    is_forbidden_host,
    is_loopback,
    parse_link_next,
    parse_retry_after,
    parse_warnings,
    parse_www_authenticate,
    raise_for_status,
)
from tests.unit.fakeregistry import (
    DROP,
    RESET,
    STALL,
    FakeRegistry,
    MakeTransport,
    NetGuard,
    Response,
    StalledServer,
    TlsFiles,
    TokenService,
    basic,
    json_reply,
    oci_error,
    redirect,
    sequence,
    status,
    tags_page,
    wait_until,
)

TAGS = "/v2/team/app/tags/list"
BLOB = "/v2/team/app/blobs/sha256:" + "b" * 64
PULL = "repository:team/app:pull"


def alice(password: str = "wonderland-pass") -> Credentials:
    return Credentials("alice", password, source="test")


def get(transport: Transport, registry: str, path: str = TAGS) -> Reply:
    return transport.request("GET", registry, path, scope=PULL)


@pytest.fixture
def stalled() -> Iterator[StalledServer]:
    server = StalledServer()
    yield server
    server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ item 11


def test_r11_non_json_4xx_shows_status_and_truncated_body(
    fake: FakeRegistry, transport: Transport
) -> None:
    page = b"<html><head><title>Proxy error</title></head><body>" + b"x" * 5000 + b"</body></html>"
    fake.route("GET", TAGS, status(400, page, Content_Type="text/html"))
    with pytest.raises(RegistryError) as caught:
        raise_for_status(get(transport, fake.address), what="listing tags")
    message = str(caught.value)
    assert "400" in message
    assert "Proxy error" in message
    assert message.endswith("…")
    assert len(message) < 400
    assert caught.value.status == 400
    assert not caught.value.temporary


def test_r11_unknown_error_code_shown(fake: FakeRegistry, transport: Transport) -> None:
    fake.route("GET", TAGS, oci_error(418, "TEAPOT_OVERHEATED", "short and stout"))
    with pytest.raises(RegistryError, match="418 TEAPOT_OVERHEATED: short and stout") as caught:
        raise_for_status(get(transport, fake.address))
    assert caught.value.codes == ("TEAPOT_OVERHEATED",)


def test_r11_head_error_has_no_body(fake: FakeRegistry, transport: Transport) -> None:
    fake.route("HEAD", "/v2/team/app/manifests/v1", status(400))
    reply = transport.request("HEAD", fake.address, "/v2/team/app/manifests/v1", scope=PULL)
    with pytest.raises(RegistryError, match=r"400 \(no body\)"):
        raise_for_status(reply)


@pytest.mark.parametrize(
    ("code", "error", "temporary"),
    [
        (401, RegistryAuthError, False),
        (403, RegistryAuthError, False),
        (404, RegistryNotFoundError, False),
        (409, RegistryError, False),
        (500, RegistryError, True),
        (503, RegistryError, True),
    ],
)
def test_r11_status_maps_to_error_class(
    code: int, error: type[RegistryError], temporary: bool
) -> None:
    reply = Reply(code, {}, b'{"errors": [{"code": "X"}]}', "https://r.example/v2/", "GET")
    with pytest.raises(error) as caught:
        raise_for_status(reply)
    assert type(caught.value) is error
    assert caught.value.temporary is temporary
    assert raise_for_status(Reply(200, {}, b"", "https://r.example/v2/", "GET")).status == 200


# ------------------------------------------------------------------ item 12


def test_r12_warning_headers_shown_never_acted_on(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    shown: list[str] = []
    transport = make_transport(on_warning=shown.append)
    warning = '299 - "this registry is deprecated, move to r2", 299 - "second note"'
    fake.route("GET", TAGS, Response(200, {"Warning": warning}, tags_page(["v1"]).body))
    for _ in range(2):
        reply = get(transport, fake.address)
        assert reply.status == 200
        assert reply.json()["tags"] == ["v1"]
    assert shown == ["this registry is deprecated, move to r2", "second note"]
    assert len(fake.requests(TAGS)) == 2


def test_r12_warning_text_is_redacted(fake: FakeRegistry, make_transport: MakeTransport) -> None:
    shown: list[str] = []
    transport = make_transport(
        on_warning=shown.append, credentials=lambda r, p: alice("warn-s3cret")
    )
    fake.require_basic("alice", "warn-s3cret")
    fake.route("GET", TAGS, Response(200, {"Warning": '299 - "hello warn-s3cret"'}, b"{}"))
    get(transport, fake.address)
    assert shown == ["hello ***"]


@pytest.mark.parametrize(
    ("value", "texts"),
    [
        ('299 - "Deprecated"', ["Deprecated"]),
        ('299 registry.example "a \\"quoted\\" word"', ['a \\"quoted\\" word']),
        ('299 - "one", 299 - "two"', ["one", "two"]),
        ("free text without a code", ["free text without a code"]),
    ],
)
def test_r12_parse_warnings(value: str, texts: list[str]) -> None:
    assert parse_warnings(value) == texts


# ------------------------------------------------------------------ item 13


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def test_r13_retry_after_seconds_honoured(
    fake: FakeRegistry, transport: Transport, sleeps: list[float]
) -> None:
    fake.route("GET", TAGS, sequence(status(429, Retry_After="3"), tags_page(["v1"])))
    assert get(transport, fake.address).status == 200
    assert sleeps == [3.0]


def test_r13_retry_after_http_date_honoured(
    fake: FakeRegistry, transport: Transport, sleeps: list[float]
) -> None:
    fake.route("GET", TAGS, sequence(status(429, Retry_After=http_date(12)), tags_page(["v1"])))
    assert get(transport, fake.address).status == 200
    assert len(sleeps) == 1
    assert 9.0 <= sleeps[0] <= 12.5


@pytest.mark.parametrize(
    "retry_after",
    [http_date(3600), "99999999999", "1" * 400],
    ids=["date", "seconds", "400-digits"],
)
def test_r13_retry_after_capped(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float], retry_after: str
) -> None:
    transport = make_transport(max_wait=7.5)
    fake.route("GET", TAGS, sequence(status(503, Retry_After=retry_after), tags_page(["v1"])))
    assert get(transport, fake.address).status == 200
    assert sleeps == [7.5]


def test_r13_persistent_429_fails_clearly(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(retries=3, max_wait=5)
    fake.route(
        "GET",
        TAGS,
        Response(
            429,
            {"Retry-After": "2", "Content-Type": "application/json"},
            oci_error(429, "TOOMANYREQUESTS", "slow down").body,
        ),
    )
    with pytest.raises(RegistryError, match="429 TOOMANYREQUESTS") as caught:
        Registry(transport).list_tags(reference.parse(f"{fake.address}/team/app"))
    assert caught.value.temporary
    assert sleeps == [2.0, 2.0, 2.0]
    assert len(fake.requests(TAGS)) == 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("-5", None),
        ("1.5", None),
        ("²", None),
        ("٣", None),
        ("soon", None),
        ("", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_r13_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=time.time()) == expected


def test_r13_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0


# ------------------------------------------------------------------ item 14


def test_r14_5xx_burst_retried_with_jittered_backoff(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(retries=4)
    fake.route(
        "GET", TAGS, sequence(status(503), status(502), status(504), status(503), tags_page([]))
    )
    assert get(transport, fake.address).status == 200
    assert len(sleeps) == 4
    for attempt, wait in enumerate(sleeps):
        ceiling = 0.5 * 2**attempt
        assert ceiling / 2 <= wait <= ceiling


def test_r14_backoff_capped_by_max_wait(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(retries=8, max_wait=2.0)
    fake.route("GET", TAGS, status(503))
    assert get(transport, fake.address).status == 503
    assert len(sleeps) == 8
    assert max(sleeps) <= 2.0
    assert len(fake.requests(TAGS)) == 9


@pytest.mark.parametrize("code", [500, 501, 400, 401, 403, 404])
def test_r14_not_retried(
    fake: FakeRegistry, transport: Transport, sleeps: list[float], code: int
) -> None:
    fake.route("GET", TAGS, status(code))
    assert get(transport, fake.address).status == code
    assert len(fake.requests(TAGS)) == 1
    assert sleeps == []


@pytest.mark.parametrize("fault", [DROP, RESET], ids=["dropped", "reset"])
def test_r14_broken_connections_retried(
    fake: FakeRegistry, transport: Transport, sleeps: list[float], fault: Response
) -> None:
    fake.route("GET", TAGS, sequence(fault, fault, tags_page(["v1"])))
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    assert len(sleeps) == 2


@pytest.mark.parametrize("fault", [DROP, RESET], ids=["dropped", "reset"])
def test_r14_broken_connections_fail_after_bounded_retries(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float], fault: Response
) -> None:
    transport = make_transport(retries=2)
    fake.route("GET", TAGS, fault)
    with pytest.raises(RegistryError, match="cannot reach") as caught:
        get(transport, fake.address)
    assert caught.value.temporary
    assert len(fake.requests(TAGS)) == 3
    assert len(sleeps) == 2


def test_r14_connection_refused_retried_then_fails(
    make_transport: MakeTransport, sleeps: list[float], net: NetGuard
) -> None:
    transport = make_transport(retries=3)
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(RegistryError, match="connection refused") as caught:
        get(transport, address)
    assert caught.value.temporary
    assert len(sleeps) == 3
    assert len(net.connections) == 4


def test_r14_dns_failure_retried_then_fails(
    make_transport: MakeTransport, sleeps: list[float], net: NetGuard
) -> None:
    transport = make_transport(retries=2)
    with pytest.raises(RegistryError, match=r"cannot reach https://nxdomain\.test/v2/"):
        get(transport, "nxdomain.test")
    assert net.connections == [("nxdomain.test", 443)] * 3
    assert len(sleeps) == 2


def test_r14_bytes_bodies_replayed_streams_never(
    fake: FakeRegistry, transport: Transport, sleeps: list[float], tmp_path: Path
) -> None:
    fake.route("PUT", "/v2/team/app/manifests/v1", sequence(status(503), status(201)))
    reply = transport.request("PUT", fake.address, "/v2/team/app/manifests/v1", data=b"{}")
    assert reply.status == 201
    assert [r.body for r in fake.requests("/v2/team/app/manifests/v1")] == [b"{}", b"{}"]
    blob = tmp_path / "blob"
    blob.write_bytes(b"streamed")
    fake.route("PUT", "/upload", status(503))
    streamed = transport.request(
        "PUT", fake.address, "/upload", data=lambda: blob.open("rb"), content_length=8
    )
    assert streamed.status == 503
    assert len(fake.requests("/upload")) == 1
    assert len(sleeps) == 1


# ------------------------------------------------------------------ item 15


def test_r15_stalled_socket_times_out(
    stalled: StalledServer, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(connect_timeout=0.3, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="timed out") as caught:
        transport.ping(stalled.address)
    assert time.monotonic() - started < 2.0
    assert "OCIREL_READ_TIMEOUT" in (caught.value.hint or "")
    assert sleeps == []


def test_r15_registry_that_stops_answering_times_out(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(read_timeout=0.3)
    fake.route("GET", TAGS, STALL)
    transport.ping(fake.address)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="timed out waiting for"):
        get(transport, fake.address)
    assert time.monotonic() - started < 2.0  # nothing hangs (retries show in sleeps)
    assert len(fake.requests(TAGS)) == 1
    assert sleeps == []


def test_r15_body_stalled_mid_stream_times_out(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(read_timeout=0.3)
    body = tags_page(["v" + str(i) for i in range(200)]).body
    fake.route("GET", TAGS, Response(200, {}, body, stall_body=True))
    started = time.monotonic()
    with pytest.raises(RegistryError, match="stalled"):
        get(transport, fake.address)
    assert time.monotonic() - started < 2.0  # nothing hangs (retries show in sleeps)
    assert len(fake.requests(TAGS)) == 1
    assert sleeps == []


def test_r15_body_cut_short_detected_and_retried(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(retries=1)
    cut = Response(200, {"Content-Type": "application/json"}, b'{"tags": ["v1"', declared_length=64)
    fake.route("GET", TAGS, sequence(cut, tags_page(["v1"])))
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    fake.route("GET", TAGS, cut)
    with pytest.raises(RegistryError, match=r"broke while reading|cut short") as caught:
        get(transport, fake.address)
    assert caught.value.temporary


def test_r15_gzip_body_is_not_taken_for_a_cut_one(fake: FakeRegistry, transport: Transport) -> None:
    import gzip  # noqa: PLC0415

    plain = tags_page([f"v{i}" for i in range(300)]).body
    fake.route("GET", TAGS, Response(200, {"Content-Encoding": "gzip"}, gzip.compress(plain)))
    assert get(transport, fake.address).body == plain


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


# ------------------------------------------------------------------ item 17


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_r17_redirect_drops_authorization(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport, code: int, auth: str
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    if auth == "basic":
        fake.require_basic("alice", "wonderland-pass")
    else:
        fake.require_bearer(TokenService(credentials=("alice", "wonderland-pass")))
    fake.route("GET", BLOB, redirect(f"{other.url}/bucket/blob?X-Amz-Signature=abc", code))
    other.route("GET", "/bucket/blob", Response(200, {}, b"blob bytes"))
    reply = transport.request("GET", fake.address, BLOB, scope=PULL, headers={"Accept": "*/*"})
    assert (reply.status, reply.body) == (200, b"blob bytes")
    assert fake.requests(BLOB)[0].header("Authorization") is not None
    (arrived,) = other.requests("/bucket/blob")
    assert arrived.header("Authorization") is None
    assert arrived.arg("X-Amz-Signature") == "abc"


def test_r17_redirect_on_the_same_host_keeps_authorization(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    fake.require_basic("alice", "wonderland-pass")
    fake.route("GET", BLOB, redirect("/elsewhere/blob"))
    fake.route("GET", "/elsewhere/blob", Response(200, {}, b"ok"))
    assert transport.request("GET", fake.address, BLOB, scope=PULL).body == b"ok"
    assert fake.requests("/elsewhere/blob")[0].header("Authorization") == basic(
        "alice", "wonderland-pass"
    )


def test_r17_redirect_to_another_port_is_another_host(
    fake: FakeRegistry, other: FakeRegistry, make_transport: MakeTransport
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    fake.require_basic("alice", "wonderland-pass")
    other.require_basic("alice", "wonderland-pass")  # even a host that would accept them
    fake.route("GET", BLOB, redirect(f"http://localhost:{other.port}/b"))
    reply = transport.request("GET", fake.address, BLOB, scope=PULL)
    assert reply.status == 401
    assert other.log[0].header("Authorization") is None


def test_r17_too_many_redirects_fail(fake: FakeRegistry, transport: Transport) -> None:
    fake.route("GET", "/loop/.*", lambda r: redirect(f"/loop/{int(r.path.rsplit('/', 1)[1]) + 1}"))
    with pytest.raises(RegistryError, match="too many redirects"):
        transport.request("GET", fake.address, "/loop/0")
    assert len(fake.requests("/loop/.*")) == 6


def test_r17_redirected_upload_is_restarted_not_replayed(
    fake: FakeRegistry, other: FakeRegistry, transport: Transport, tmp_path: Path
) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"data")
    fake.route("PUT", "/upload", redirect(f"{other.url}/upload", 307))
    with pytest.raises(RegistryError, match="redirected an upload") as caught:
        transport.request(
            "PUT", fake.address, "/upload", data=lambda: blob.open("rb"), content_length=4
        )
    assert caught.value.temporary
    assert other.log == []


# ------------------------------------------------------------------ item 18


def test_r18_https_to_http_redirect_refused(
    tls_fake: FakeRegistry, other: FakeRegistry, tls_files: TlsFiles, make_transport: MakeTransport
) -> None:
    transport = make_transport(ca_file=str(tls_files.ca))
    tls_fake.route("GET", BLOB, redirect(f"{other.url}/blob"))
    with pytest.raises(RegistryError, match="from https to plain http"):
        transport.request("GET", tls_fake.address, BLOB)
    assert other.log == []
    assert other.connections == 0


FORBIDDEN_TARGETS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.170.2/v2/credentials",
    "http://[fe80::1]/x",
    "http://[fe80::1%25eth0]/x",
    "http://[fd00:ec2::254]/latest",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    "http://[::ffff:169.254.169.254]/latest",
    "http://2852039166/latest",
    "http://0xa9fea9fe/latest",
    "http://169.254.43518/latest",
    "http://0251.0376.0251.0376/latest",
]


@pytest.mark.parametrize("target", FORBIDDEN_TARGETS)
def test_r18_redirect_to_link_local_or_metadata_refused_without_connecting(
    fake: FakeRegistry, transport: Transport, net: NetGuard, target: str
) -> None:
    fake.route("GET", BLOB, redirect(target))
    with pytest.raises(RegistryError, match="link-local or metadata"):
        transport.request("GET", fake.address, BLOB)
    assert net.hosts() == {"127.0.0.1"}


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://user:pw@127.0.0.1:1/x", "user-info"),
        ("file:///etc/passwd", "unsupported URL scheme"),
        ("ftp://127.0.0.1/x", "unsupported URL scheme"),
    ],
)
def test_r18_redirect_to_odd_urls_refused(
    fake: FakeRegistry, transport: Transport, net: NetGuard, target: str, message: str
) -> None:
    fake.route("GET", BLOB, redirect(target))
    with pytest.raises(RegistryError, match=message):
        transport.request("GET", fake.address, BLOB)
    assert {port for _, port in net.connections} == {fake.port}


@pytest.mark.parametrize(
    ("host", "forbidden"),
    [
        ("169.254.169.254", True),
        ("169.254.0.1", True),
        ("fe80::1", True),
        ("[fe80::abcd]", True),
        ("fd00:ec2::254", True),
        ("metadata.google.internal", True),
        ("instance-data", True),
        ("::ffff:169.254.169.254", True),
        ("2852039166", True),
        ("0xA9FEA9FE", True),
        ("169.254.43518", True),
        ("metadata.google.internal.", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("registry.example.com", False),
        ("fd00:ec3::1", False),
        ("169.255.0.1", False),
        ("cafe.example", False),
        ("1", False),
        ("", False),
        ("deadbeef", False),
    ],
)
def test_r18_is_forbidden_host(host: str, forbidden: bool) -> None:
    assert is_forbidden_host(host) is forbidden


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


# ------------------------------------------------------------------ item 21


def test_r21_unknown_ca_fails_with_hint_and_never_falls_back_to_http(
    tls_fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport()
    with pytest.raises(RegistryError, match="TLS verification failed") as caught:
        transport.ping(tls_fake.address)
    assert "--ca-file" in (caught.value.hint or "")
    assert not caught.value.temporary
    assert wait_until(lambda: tls_fake.tls_errors)
    assert tls_fake.connections == 1  # one TLS attempt: no retry, no plain-http attempt
    assert len(tls_fake.tls_errors) == 1
    assert "unknown ca" in tls_fake.tls_errors[0].lower()
    assert tls_fake.log == []
    assert sleeps == []


def test_r21_unknown_ca_on_a_remote_name_fails_the_same(
    tls_fake: FakeRegistry, make_transport: MakeTransport, net: NetGuard
) -> None:
    net.alias("registry.test")
    with pytest.raises(RegistryError, match="TLS verification failed"):
        make_transport().ping(f"registry.test:{tls_fake.port}")
    assert tls_fake.connections == 1
    assert tls_fake.log == []


def test_r21_ca_file_makes_it_work(
    tls_fake: FakeRegistry, tls_files: TlsFiles, make_transport: MakeTransport
) -> None:
    transport = make_transport(ca_file=str(tls_files.ca))
    tls_fake.route("GET", TAGS, tags_page(["v1"]))
    assert get(transport, tls_fake.address).json()["tags"] == ["v1"]
    assert transport.scheme(tls_fake.address) == "https"
    assert tls_fake.tls_errors == []


def test_r21_ambient_ca_bundles_ignored(
    tls_fake: FakeRegistry,
    tls_files: TlsFiles,
    make_transport: MakeTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only --ca-file decides; REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE do not."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls_files.ca))
    with pytest.raises(RegistryError, match="TLS verification failed"):
        make_transport().ping(tls_fake.address)


def test_r21_verification_skipped_only_for_registries_marked_insecure(
    tls_fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    with pytest.raises(RegistryError, match="TLS verification failed"):
        make_transport(insecure_registries={"127.0.0.1:1"}).ping(tls_fake.address)
    transport = make_transport(insecure_registries={tls_fake.address})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert transport.ping(tls_fake.address).status == 200
    assert transport.scheme(tls_fake.address) == "https"


# ------------------------------------------------------------------ item 22


@pytest.mark.parametrize(
    ("registry", "allowed"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.3.4.5", True),
        ("[::1]:5000", True),
        ("app.localhost:80", True),
        ("insecure.example.com:5000", True),
        ("insecure.example.com", False),
        ("registry.example.com", False),
        ("10.0.0.5:5000", False),
        ("localhost.example.com", False),
        ("127.0.0.1.nip.io", False),
        ("[::2]:5000", False),
        ("0.0.0.0:5000", False),
    ],
)
def test_r22_plain_http_policy(registry: str, allowed: bool) -> None:
    policy = RegistryPolicy(insecure_registries=frozenset({"insecure.example.com:5000"}))
    assert policy.plain_http_allowed(registry) is allowed


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("x.localhost", True),
        ("127.255.255.254", True),
        ("localhostx", False),
        ("128.0.0.1", False),
        ("", False),
    ],
)
def test_r22_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_r22_loopback_http_works_without_insecure(fake: FakeRegistry, transport: Transport) -> None:
    fake.route("GET", TAGS, tags_page(["v1"]))
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    assert transport.scheme(fake.address) == "http"
    assert fake.tls_probes == 1  # https was tried first


def test_r22_remote_plain_http_refused_unless_insecure(
    fake: FakeRegistry, make_transport: MakeTransport, net: NetGuard
) -> None:
    net.alias("registry.test")
    registry = f"registry.test:{fake.port}"
    fake.route("GET", TAGS, tags_page(["v1"]))
    for insecure in (set(), {"other.test:1", "registry.test"}):
        with pytest.raises(RegistryError, match="answers plain http") as caught:
            get(make_transport(insecure_registries=insecure), registry)
        assert "--insecure" in (caught.value.hint or "")
    assert fake.log == []  # no plain-http request ever left
    transport = make_transport(insecure_registries={registry})
    assert get(transport, registry).json()["tags"] == ["v1"]
    assert transport.scheme(registry) == "http"


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


# ----------------------------------------------------------- pure parsers


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


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ('</v2/a/tags/list?n=2&last=b>; rel="next"', "/v2/a/tags/list?n=2&last=b"),
        ("</v2/a/tags/list?last=b>; rel=next", "/v2/a/tags/list?last=b"),
        (
            '<https://r.example/v2/a/tags/list?last=b>;rel="next"',
            "https://r.example/v2/a/tags/list?last=b",
        ),
        ('</p>; rel="prev", </n>; rel="next"', "/n"),
        ('</n>; rel="next last"', "/n"),
        ('</n>; title="x"; REL="Next"', "/n"),
        ('</p>; rel="prev"', None),
        ('</p>; rel="nextpage"', None),
        (None, None),
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_link_next(value: str | None, target: str | None) -> None:
    assert parse_link_next(value) == target


@pytest.mark.parametrize(
    "value", ["<" * 65_000, "<a>; " + " " * 65_000, '<a>; rel="prev", ' * 4_000, "<" * 30_000 + ">"]
)
def test_r02_pathological_link_headers_parse_in_linear_time(value: str) -> None:
    started = time.monotonic()
    parse_link_next(value)
    assert time.monotonic() - started < 0.5


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
