"""Which engines and tools a test needs, and whether their absence skips or fails.

Locally a missing builder skips its tests; in CI (``--require-engines`` or
``OCIREL_REQUIRE_ENGINES=1``) it fails them, so a broken CI image cannot pass by
skipping everything. The requirement may also name engines:
``--require-engines=buildah,podman`` (used by the rootless lane, where no Docker
daemon is reachable for an unprivileged user).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

import pytest

from tests.support.images import busybox_path
from tests.support.registry import registry_binary

REQUIRE_ENV = "OCIREL_REQUIRE_ENGINES"
#: Everything the integration tests may need.
KNOWN_ENGINES: tuple[str, ...] = (
    "buildah",
    "podman",
    "docker",
    "skopeo",
    "docker-registry",
    "htpasswd",
    "busybox",
)

_FALSE = {"", "0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on", "all"}


def parse_requirement(value: str | None) -> frozenset[str]:
    """``"1"``/``"all"`` → every known engine; ``"a,b"`` → those; empty/``"0"`` → none."""
    text = (value or "").strip().lower()
    if text in _FALSE:
        return frozenset()
    if text in _TRUE:
        return frozenset(KNOWN_ENGINES)
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = names - set(KNOWN_ENGINES)
    if unknown:
        raise ValueError(f"unknown engine(s) in requirement: {', '.join(sorted(unknown))}")
    return names


class _State:
    required: frozenset[str] = parse_requirement(os.environ.get(REQUIRE_ENV))


def set_required(names: frozenset[str]) -> None:
    """Called by conftest from ``--require-engines`` / ``OCIREL_REQUIRE_ENGINES``."""
    _State.required = names


def required() -> frozenset[str]:
    return _State.required


START_DOCKERD = "start one with `scripts/start-dockerd`"
#: set by scripts/test in its rootless lane, where the (root-owned) engine is not used
NO_DOCKER_ENV = "OCIREL_TEST_NO_DOCKER"


@functools.cache
def docker_daemon_problem() -> str | None:
    """``None`` when the Docker engine answers, else why not, in plain words (cached).

    ``scripts/test`` starts a private engine and points ``DOCKER_HOST`` at it; run
    alone, the tests use whatever engine the docker client's context names.
    """
    if reason := os.environ.get(NO_DOCKER_ENV):
        return reason
    docker = shutil.which("docker")
    if docker is None:
        return "docker client not found (install docker.io)"
    try:
        result = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the Docker engine at {_docker_host()} did not answer within 30 s"
    if result.returncode != 0 or not result.stdout.strip():
        from ocirel.backends.docker_daemon import daemon_problem  # noqa: PLC0415

        problem = daemon_problem((result.stderr or result.stdout).strip(), _docker_host())
        if problem.startswith("no Docker engine at "):
            problem = problem.partition(" (")[0] + f" ({START_DOCKERD})"
        return problem
    return None


def _docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine_problem(name: str) -> str | None:
    """``None`` when ``name`` is usable here, else a reason."""
    if name == "docker":
        return docker_daemon_problem()
    if name == "docker-registry":
        return None if registry_binary() else "docker-registry not installed"
    if name == "busybox":
        return None if busybox_path() else "static busybox not installed (busybox-static)"
    if name not in KNOWN_ENGINES:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(KNOWN_ENGINES)}")
    return None if shutil.which(name) else f"{name} not installed"


def require_engine(name: str) -> None:
    """Skip the calling test when ``name`` is unusable, or fail it if it is required."""
    problem = engine_problem(name)
    if problem is None:
        return
    if name in _State.required:
        pytest.fail(f"required engine {name!r} unavailable: {problem}", pytrace=False)
    pytest.skip(f"{name}: {problem}")
