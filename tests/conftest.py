"""Shared pytest configuration: engine requirements, registries, repositories, contexts.

* ``--require-engines`` (or ``OCIREL_REQUIRE_ENGINES=1``): a test whose engine
  (buildah, podman, docker daemon, skopeo, docker-registry, ...) is missing fails
  instead of skipping. ``--require-engines=buildah,podman`` requires only those.
* Tests under ``tests/integration`` are marked ``integration`` automatically.
* Registries are real ``docker-registry serve`` processes on 127.0.0.1.
* ``OCIREL_SKIP_REPORT=FILE``: every skipped test is appended to FILE as a JSON line
  ``{"test", "reason"}``, and the outcome counts as ``{"counts": {...}}`` at the end;
  ``scripts/test`` prints its summary of skips from it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

_REPO_ROOT = Path(__file__).resolve().parent.parent
if str(_REPO_ROOT) not in sys.path:  # `tests.support` importable under plain `pytest` too
    sys.path.insert(0, str(_REPO_ROOT))

from tests.support import engines  # noqa: E402
from tests.support.images import write_build_context  # noqa: E402
from tests.support.registry import RegistryServer, start_registry  # noqa: E402

_INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-engines",
        nargs="?",
        const="all",
        default=None,
        metavar="NAMES",
        help=(
            "fail (instead of skip) integration tests whose engine is missing; "
            "optionally a comma list such as buildah,podman "
            f"(default from ${engines.REQUIRE_ENV})"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    option: str | None = config.getoption("--require-engines")
    value = option if option is not None else os.environ.get(engines.REQUIRE_ENV)
    try:
        engines.set_required(engines.parse_requirement(value))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_report_header(config: pytest.Config) -> str:
    required = engines.required()
    return "required engines: " + (", ".join(sorted(required)) if required else "none (skip)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).resolve().is_relative_to(_INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


# -- skip report -----------------------------------------------------------------------

SKIP_REPORT_ENV = "OCIREL_SKIP_REPORT"


def _append_report(record: dict[str, Any]) -> None:
    path = os.environ.get(SKIP_REPORT_ENV)
    if path:
        with Path(path).open("a", encoding="utf-8") as report:
            report.write(json.dumps(record, sort_keys=True) + "\n")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        _append_report({"test": report.nodeid, "reason": reason.removeprefix("Skipped: ")})


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts = {
        key: len(reports)
        for key, reports in terminalreporter.stats.items()
        if key and key != "warnings"
    }
    _append_report({"counts": counts})


# -- engines ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def require_engine() -> Callable[[str], None]:
    """``require_engine("buildah")``: skip, or fail under ``--require-engines``."""
    return engines.require_engine


# -- registries ------------------------------------------------------------------------


def _registry(
    tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: Any
) -> Iterator[RegistryServer]:
    engines.require_engine("docker-registry")
    if kwargs.get("auth") == "basic":
        engines.require_engine("htpasswd")
    with start_registry(tmp_path_factory.mktemp(name), **kwargs) as server:
        yield server


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Plain HTTP, no auth: the distribution binary as a subprocess by default.

    ``OCIREL_TEST_REGISTRY=container`` runs it with testcontainers instead (needs a
    Docker engine; the image is built locally, see tests/support/container_registry.py),
    and ``auto`` picks the container whenever an engine is reachable.
    """
    mode = os.environ.get("OCIREL_TEST_REGISTRY", "process")
    if mode == "container" or (mode == "auto" and engines.docker_daemon_problem() is None):
        yield from _container_registry(tmp_path_factory)
    else:
        yield from _registry(tmp_path_factory, "registry-plain")


def _container_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    engines.require_engine("docker")
    engines.require_engine("docker-registry")  # the image is built from its binary
    from tests.support.container_registry import start_container_registry  # noqa: PLC0415

    with start_container_registry(tmp_path_factory.mktemp("registry-container")) as server:
        yield server


@pytest.fixture(scope="session")
def container_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Plain HTTP, no auth, run by testcontainers' DockerRegistryContainer."""
    yield from _container_registry(tmp_path_factory)


@pytest.fixture(scope="session")
def tls_basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """HTTPS with a private CA (``ca_file``) and htpasswd Basic auth."""
    yield from _registry(tmp_path_factory, "registry-tls-basic", tls=True, auth="basic")


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Plain HTTP registry with token auth; the token server is plain HTTP too."""
    yield from _registry(tmp_path_factory, "registry-token", auth="token")


@pytest.fixture(scope="session")
def tls_token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """HTTPS registry with token auth; the token server is HTTPS with the same private CA."""
    yield from _registry(tmp_path_factory, "registry-tls-token", tls=True, auth="token")


@pytest.fixture
def registry_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RegistryServer]]:
    """Start a private registry for one test: ``registry_factory(auth="token", token_lifetime=5)``.

    Takes the keyword arguments of :func:`tests.support.registry.start_registry`; every
    registry started is stopped when the test ends.
    """
    engines.require_engine("docker-registry")
    with ExitStack() as stack:

        def factory(**kwargs: Any) -> RegistryServer:
            if kwargs.get("auth") == "basic":
                engines.require_engine("htpasswd")
            workdir = tmp_path_factory.mktemp("registry")
            return stack.enter_context(start_registry(workdir, **kwargs))

        yield factory


_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


def repo_slug(text: str, max_length: int = 40) -> str:
    """A valid repository path component made from ``text``."""
    slug = _SLUG_JUNK.sub("-", text.lower())[:max_length].strip("-")
    return slug or "test"


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    """A fresh repository name per test, e.g. ``t/test-publish-twice-3f9a1c``."""
    return f"t/{repo_slug(request.node.name)}-{secrets.token_hex(3)}"


# -- images ----------------------------------------------------------------------------


@pytest.fixture
def build_context(tmp_path: Path) -> Callable[..., Path]:
    """``build_context("RUN echo hi > /x", unique=True)``: a ``FROM scratch`` busybox context.

    Takes the arguments of :func:`tests.support.images.write_build_context` after the
    directory; each call makes a new directory under the test's ``tmp_path``.
    """
    engines.require_engine("busybox")
    counter = iter(range(1_000_000))

    def make(*instructions: str, **kwargs: Any) -> Path:
        return write_build_context(tmp_path / f"context-{next(counter)}", instructions, **kwargs)

    return make


@pytest.fixture(autouse=True)
def _private_layer_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own ocirel cache (what it learns about registries' layers)."""
    monkeypatch.setenv("OCIREL_CACHE_DIR", str(tmp_path_factory.mktemp("ocirel-cache")))
