"""TLS failures and what they say (21).

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

import warnings

import pytest

from ocirel.errors import (
    RegistryError,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    NetGuard,
    TlsFiles,
    tags_page,
    wait_until,
)
from tests.unit.transport.helpers import (
    TAGS,
    get,
)

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
