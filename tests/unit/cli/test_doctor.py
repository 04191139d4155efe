"""``ocirel doctor`` through typer's CliRunner: what the command prints and its exit code
(the verdict and the probes themselves are tested in ``tests/unit/test_doctor.py``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ocirel.cli import app
from ocirel.doctor.fixes import DOCKER_DAEMON_FIX
from tests.unit.fakeregistry import FakeRegistry, oci_error


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_home: Path) -> Path:
    """An empty PATH directory; the command runs in tmp_path with no OCIREL_* settings."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("OCIREL_", "DOCKER_")):
            monkeypatch.delenv(name)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    return bindir


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["doctor", *args])


def test_no_builder_at_all(isolated: Path) -> None:
    result = invoke()
    assert result.exit_code == 1, result.output
    for name in ("buildah", "podman", "docker"):
        assert f"-- {name:<8} not installed" in result.output
    assert "fix: install buildah (Debian/Ubuntu: apt-get install buildah)" in result.output
    assert "fix: install podman (Debian/Ubuntu: apt-get install podman)" in result.output
    assert "error: no usable builder (buildah, podman or docker)" in result.output
    assert "verdict:     publishing cannot work here" in result.output


def test_docker_cli_without_daemon(isolated: Path) -> None:
    docker = isolated / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        'case "$*" in *Client.Version*) echo "28.2.2 ";; esac\n'
        "echo 'Cannot connect to the Docker daemon at unix:///nonexistent.' >&2\nexit 1\n"
    )
    docker.chmod(0o755)
    result = invoke("--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    entry = next(b for b in data["backends"] if b["name"] == "docker")
    assert entry["installed"] is True
    assert entry["usable"] is False
    assert entry["version"] == "client 28.2.2"
    assert entry["problem"] == (
        "no Docker engine at unix:///nonexistent "
        "(start one: `dockerd`, or `systemctl start docker`)"
    )
    assert entry["fix"] == DOCKER_DAEMON_FIX
    assert data["ok"] is False
    assert data["backend"]["selected"] is None
    messages = [p["message"] for p in data["problems"]]
    assert "no usable builder (buildah, podman or docker)" in messages
    assert any(m.startswith("docker is installed but not usable") for m in messages)


def test_json_is_one_object_and_the_registry_is_checked(isolated: Path, fake: FakeRegistry) -> None:
    result = invoke("--json", "--image", f"{fake.address}/team/app")
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["registry"] == {
        "registry": fake.address, "reachable": True, "auth_ok": True, "fix": None,
        "detail": "answers /v2/ (http, HTTP 200)",
    }  # fmt: skip
    assert fake.requests("/v2/$", "GET")


def test_an_unreachable_registry_fails_the_verdict(isolated: Path, fake: FakeRegistry) -> None:
    fake.route("GET", "/v2/$", oci_error(500, "UNKNOWN", "broken"))
    result = invoke("--json", "--image", f"{fake.address}/team/app")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["registry"]["reachable"] is False
    assert any(p["message"].startswith(f"registry {fake.address}:") for p in data["problems"])


def test_a_bad_image_is_a_usage_error(isolated: Path) -> None:
    result = invoke("--image", "Not/A/Repo")
    assert result.exit_code == 2, result.output
