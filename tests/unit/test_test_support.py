"""The test-support helpers that decide what a passing test means."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support import engines
from tests.support.kubectl import assert_pinned, without_tag
from tests.support.steps import wait_for_step

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"nginx:1.25@{D}", f"nginx@{D}"),
        (f"localhost:5000/a/b:v1@{D}", f"localhost:5000/a/b@{D}"),
        (f"localhost:5000/a/b@{D}", f"localhost:5000/a/b@{D}"),
        ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1"),
    ],
)
def test_without_tag(image: str, expected: str) -> None:
    assert without_tag(image) == expected


def test_assert_pinned_accepts_both_kubectl_renderings() -> None:
    want = [f"registry.example.com/app:v7@{D}", "quay.io/other/tool:2.0"]
    assert_pinned([f"registry.example.com/app:v7@{D}", "quay.io/other/tool:2.0"], want)  # 1.21+
    assert_pinned([f"registry.example.com/app@{D}", "quay.io/other/tool:2.0"], want)  # 1.20


@pytest.mark.parametrize(
    "rendered",
    [
        "registry.example.com/app:v7",  # not pinned
        f"registry.example.com/app:v6@{D}",  # the wrong tag kept
        "registry.example.com/app@sha256:" + "cd" * 32,  # another digest
        f"registry.example.com/other@{D}",  # another name
    ],
)
def test_assert_pinned_rejects_what_a_deployment_would_notice(rendered: str) -> None:
    with pytest.raises(AssertionError):
        assert_pinned([rendered], [f"registry.example.com/app:v7@{D}"])


def test_a_missing_docker_engine_is_reported_in_plain_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = tmp_path / "docker"
    # Debian's client: an empty answer and a template error, not "cannot connect"
    docker.write_text(
        '#!/bin/sh\necho \'template: :1:9: executing "" at <.Server.Version>: '
        "nil pointer evaluating *types.Version.Version' >&2\nexit 1\n"
    )
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    engines.docker_daemon_problem.cache_clear()
    try:
        assert engines.docker_daemon_problem() == (
            "no Docker engine at unix:///var/run/docker.sock "
            "(start one with `scripts/start-dockerd`)"
        )
        monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/x/docker.sock")
        engines.docker_daemon_problem.cache_clear()
        assert engines.docker_daemon_problem() == (
            "no Docker engine at unix:///tmp/x/docker.sock (start one with `scripts/start-dockerd`)"
        )
    finally:
        engines.docker_daemon_problem.cache_clear()


def test_waiting_for_a_step_fails_fast_with_the_builders_stderr(tmp_path: Path) -> None:
    log = tmp_path / "ocirel.log"
    with log.open("w") as output:
        proc = subprocess.Popen(
            ["sh", "-c", "echo 'Error: cannot clone: Operation not permitted' >&2; exit 1"],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception) as failure:
        wait_for_step(proc, lambda: None, log, timeout=300)
    assert time.monotonic() - started < 10
    assert "exited before the step started (ocirel exit code 1)" in str(failure.value)
    assert "cannot clone: Operation not permitted" in str(failure.value)


def test_waiting_for_a_step_returns_what_started_returns(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert wait_for_step(proc, lambda: {1: "sleep"}, tmp_path / "log", timeout=5) == {
            1: "sleep"
        }
        with pytest.raises(pytest.fail.Exception, match=r"did not start within 0\.5 s"):
            wait_for_step(proc, lambda: None, tmp_path / "log", timeout=0.5)
    finally:
        proc.kill()
        proc.wait()


def test_the_rootless_lane_says_why_docker_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(engines.NO_DOCKER_ENV, "rootless lane: the Docker engine is root's")
    engines.docker_daemon_problem.cache_clear()
    try:
        assert engines.engine_problem("docker") == "rootless lane: the Docker engine is root's"
    finally:
        engines.docker_daemon_problem.cache_clear()
