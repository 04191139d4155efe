"""``ocirel doctor`` as a real command on this machine: real builders, a real registry,
a PATH without builders, and a real docker CLI whose daemon cannot be reached."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import OcirelRunner
from tests.support.registry import RegistryServer


@pytest.mark.builder  # also in the rootless lane: subordinate ids, user namespaces
def test_doctor_on_this_machine(
    ocirel: OcirelRunner, registry: RegistryServer, require_engine: Callable[[str], None],
    tmp_path: Path,
) -> None:  # fmt: skip
    require_engine("buildah")
    run = ocirel("doctor", "--json", "--image", f"{registry.host}/t/doctor", cwd=tmp_path)
    assert run.returncode == 0, run.explain()
    data = run.json
    assert data["ok"] is True
    buildah = next(b for b in data["backends"] if b["name"] == "buildah")
    assert buildah["usable"] is True
    assert re.fullmatch(r"\d+\.\d+\S*", buildah["version"] or ""), buildah
    assert data["backend"]["selected"] == "buildah"
    assert data["backend"]["reason"] == "buildah (auto: first of buildah, podman, docker)"
    assert data["registry"]["reachable"] is True
    assert data["registry"]["detail"] == "answers /v2/ (http, HTTP 200)"
    assert data["isolation"]["name"] == "chroot"
    assert data["host"]["rootless"] is (data["host"]["uid"] != 0)
    assert not [p for p in data["problems"] if p["severity"] == "error"], data["problems"]
    if data["host"]["rootless"]:
        assert data["host"]["subuid"], data["host"]
        assert data["host"]["user_namespaces"]["unshare"] == "ok", data["host"]


def test_doctor_with_no_builder(ocirel: OcirelRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    run = ocirel("doctor", cwd=tmp_path, env={"PATH": str(empty)})
    assert run.returncode == 1, run.explain()
    for name in ("buildah", "podman", "docker"):
        assert f"-- {name:<8} not installed" in run.stdout, run.explain()
    assert "error: no usable builder (buildah, podman or docker)" in run.stdout
    assert "apt-get install buildah" in run.stdout
    assert "apt-get install podman" in run.stdout
    assert "apt-get install docker.io" in run.stdout
    assert run.stdout.rstrip().endswith("verdict:     publishing cannot work here")


def test_doctor_with_a_docker_cli_but_no_daemon(ocirel: OcirelRunner, tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI installed")
    bindir = tmp_path / "only-docker"
    bindir.mkdir()
    (bindir / "docker").symlink_to(docker)
    env = {"PATH": str(bindir), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    run = ocirel("doctor", "--json", cwd=tmp_path, env=env)
    assert run.returncode == 1, run.explain()
    data = run.json
    entry = next(b for b in data["backends"] if b["name"] == "docker")
    assert entry["installed"] is True, entry
    assert entry["usable"] is False, entry
    assert entry["problem"].startswith("no Docker engine at unix:///nonexistent/docker.sock"), entry
    assert "start the Docker engine" in entry["fix"]
    assert entry["version"].startswith("client "), entry
    assert data["backend"]["selected"] is None
    assert data["ok"] is False

    # the same verdict in words, and publish refuses with the same reason
    text = ocirel("doctor", cwd=tmp_path, env=env)
    assert text.returncode == 1, text.explain()
    assert "!! docker" in text.stdout
    assert "problem: no Docker engine at unix:///nonexistent/docker.sock" in text.stdout
    publish = ocirel("publish", "--image", "127.0.0.1:1/t/x", "--backend", "docker", str(tmp_path),
                     cwd=tmp_path, env=env)  # fmt: skip
    assert publish.returncode == 1, publish.explain()
    assert (
        "backend docker is not usable: no Docker engine at unix:///nonexistent/docker.sock"
        in publish.stderr
    )


def test_doctor_with_an_unreachable_registry(
    ocirel: OcirelRunner, require_engine: Callable[[str], None], tmp_path: Path
) -> None:
    require_engine("buildah")
    run = ocirel("doctor", "--image", "127.0.0.1:9/t/x", cwd=tmp_path)  # port 9: discard, closed
    assert run.returncode == 1, run.explain()
    assert "registry:    127.0.0.1:9: FAILED" in run.stdout
    assert "fix: nothing answers on that host and port" in run.stdout
