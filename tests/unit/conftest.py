"""Fixtures for the unit tests: fake registries, a network guard, a sleep recorder.

The ``net`` guard is autouse: every TCP connection urllib3 opens is logged, and one to
a non-loopback address fails like a DNS failure — unit tests never leave the machine.
``net.alias("registry.test")`` makes a non-loopback *name* reach 127.0.0.1, so the
rules for remote registries (https only, no http fallback) run against a local fake.
"""

from __future__ import annotations

import socket
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests.adapters
import urllib3.util.connection

from ocirel.reference import Reference, parse
from ocirel.registry import Registry
from ocirel.transport import RegistryPolicy, RetryPolicy, Transport, is_loopback
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    NetGuard,
    TlsFiles,
    make_tls,
)

ALIASES = ("registry.test", "other.test")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> NetGuard:
    guard = NetGuard()
    real = urllib3.util.connection.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host, port = address
        guard.connections.append((host, port))
        target = "127.0.0.1" if host in guard.aliases else host
        if not is_loopback(target):
            raise socket.gaierror(socket.EAI_NONAME, f"unit tests do not resolve {host}")
        return real((target, port), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    return guard


@pytest.fixture(scope="package", autouse=True)
def small_default_trust_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Unit tests never reach a public host, and loading certifi's ~150 roots costs
    ~15 ms per TLS attempt (every first contact tries https). So the default trust
    store is one *unrelated* CA: the fakes' CA is still unknown without ``ca_file``."""
    unrelated = make_tls(tmp_path_factory.mktemp("unrelated-ca"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", str(unrelated.ca))
        yield


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as server:
        yield server


@pytest.fixture
def other() -> Iterator[FakeRegistry]:
    """A second server: "another host" for redirects, Links and token realms."""
    with FakeRegistry() as server:
        yield server


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"), ("127.0.0.1", "localhost", *ALIASES))


@pytest.fixture
def tls_fake(tls_files: TlsFiles) -> Iterator[FakeRegistry]:
    with FakeRegistry(tls=tls_files) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    """What the retry policy would have slept, in order (nothing really sleeps)."""
    return []


@pytest.fixture
def make_transport(sleeps: list[float]) -> Iterator[MakeTransport]:
    made: list[Transport] = []

    def make(
        *,
        retries: int = 3,
        max_wait: float = 30.0,
        insecure_registries: Collection[str] = frozenset(),
        ca_file: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 2.0,
        **kwargs: Any,
    ) -> Transport:
        retry = RetryPolicy(retries=retries, base_delay=0.5, max_wait=max_wait, sleep=sleeps.append)
        policy = RegistryPolicy(
            insecure_registries=insecure_registries,
            ca_file=ca_file,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
        )
        transport = Transport(policy=policy, **kwargs)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def transport(make_transport: MakeTransport) -> Transport:
    return make_transport()


@pytest.fixture
def registry(transport: Transport) -> Registry:
    return Registry(transport)


@pytest.fixture
def repo(fake: FakeRegistry) -> Reference:
    return parse(f"{fake.address}/team/app")


@pytest.fixture
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and no credential-related environment."""
    home = tmp_path / "home"
    home.mkdir()
    for var in (
        "REGISTRY_AUTH_FILE",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "DOCKER_CONFIG",
        "OCIREL_USERNAME",
        "OCIREL_PASSWORD",
        "OCIREL_REGISTRY",
        "NETRC",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _no_real_image_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never read this machine's containers/storage (the builders' stored-image
    fast path, :mod:`ocirel.backends.stored`): no graph roots unless a test gives some."""
    from ocirel import hostinfo  # noqa: PLC0415

    monkeypatch.setattr(hostinfo, "graph_roots", lambda env, rootless: [])
