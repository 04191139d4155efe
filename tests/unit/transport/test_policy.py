"""Where plain http is allowed (22).

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel.errors import (
    RegistryError,
)
from ocirel.settings import RegistryOptions
from ocirel.transport import (
    RegistryPolicy,
    Transport,
    is_loopback,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    NetGuard,
    tags_page,
)
from tests.unit.transport.helpers import (
    TAGS,
    get,
)

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


# ------------------------------------------------------------------ one RegistryPolicy


def test_insecure_flag_covers_only_the_own_registries() -> None:
    config = RegistryOptions(insecure=True, insecure_registries=("listed.example.com",))
    policy = RegistryPolicy.from_settings(config, ["own.example.com"])
    assert policy.is_insecure("own.example.com")
    assert policy.is_insecure("listed.example.com")
    assert not policy.is_insecure("other.example.com")
    assert policy.is_insecure("Listed.Example.COM")  # host names: any case
    assert not RegistryPolicy.from_settings(RegistryOptions(), ["own.example.com"]).is_insecure(
        "own.example.com"
    )


def test_policy_carries_tls_timeouts_and_retries() -> None:
    config = RegistryOptions(
        ca_file=Path("/ca.pem"), connect_timeout=3, read_timeout=4, retries=5, max_retry_wait=6
    )
    policy = RegistryPolicy.from_settings(config)
    assert policy.verify("registry.example.com") == "/ca.pem"
    assert policy.verify(None) == "/ca.pem"
    assert (policy.connect_timeout, policy.read_timeout) == (3, 4)
    assert (policy.retry.retries, policy.retry.max_wait) == (5, 6)
    assert RegistryPolicy().verify("registry.example.com") is True


def test_insecure_registries_are_not_verified_and_other_hosts_are() -> None:
    policy = RegistryPolicy(insecure_registries=frozenset({"insecure.example.com"}))
    assert policy.verify("insecure.example.com") is False
    assert policy.verify(None) is True  # a redirect target on another host


@pytest.mark.parametrize(
    ("registry", "verified"),
    [
        ("cache.example.com", True),
        ("own.example.com", False),
        ("localhost:5000", False),
        ("127.0.0.1:5000", False),
    ],
)
def test_builder_tls_verify_follows_the_same_rule(registry: str, verified: bool) -> None:
    policy = RegistryPolicy.from_settings(RegistryOptions(insecure=True), ["own.example.com"])
    assert policy.builder_tls_verify(registry) is verified
