"""Redirects: credentials only on the same origin (17), dangerous targets refused (18).

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel.errors import (
    RegistryError,
)
from ocirel.transport import (
    Transport,
    is_forbidden_host,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    NetGuard,
    Response,
    TlsFiles,
    TokenService,
    basic,
    redirect,
)
from tests.unit.transport.helpers import (
    BLOB,
    PULL,
    alice,
)

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
