"""``ocirel pin`` and ``lint`` on any file tree (issue 13, items 3, 4, 5 and 7).

Unreadable directories fail the run, FIFOs and devices are reported and skipped,
``--max-file-size`` / ``max_file_size`` cap one file, ``Kustomization`` files are
found by the walk, and ``pin`` as root keeps a file's owner and group.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from ocirel import lockfile
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.unit.cli.invoke import run

D_APP = Digest("sha256:" + "a" * 64)
APP = "registry.example.com/team/app"
DEPLOYMENT = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: app
          image: {APP}:v7
"""
PINNED = DEPLOYMENT.replace(f"{APP}:v7", f"{APP}:v7@{D_APP}")
#: kustomize's own name for the file, with no kind: (as in kustomize's examples)
KUSTOMIZATION = f"""\
resources:
- deployment.yaml
images:
- name: {APP}
  newTag: v7
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture(autouse=True)
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "ocirel.lock.json"
    path.write_text(lockfile.dumps(Lockfile({"app": LockEntry("app", APP, "v7", D_APP)})))
    return path


def deny_scandir(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """``os.scandir`` on ``denied`` fails as on a mode-000 directory for a non-root user."""
    real = os.scandir

    def fake(path: Any = ".") -> Any:
        if Path(path).resolve() == denied.resolve():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", fake)


@pytest.mark.parametrize(
    "args", [("pin",), ("pin", "--check"), ("pin", "--diff"), ("lint",)], ids=" ".join
)
def test_an_unreadable_subdirectory_fails_the_run_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    write(tmp_path / "k8s" / "deployment.yaml", DEPLOYMENT)
    write(tmp_path / "k8s" / "prod" / "deployment.yaml", DEPLOYMENT)
    deny_scandir(monkeypatch, tmp_path / "k8s" / "prod")
    result = run(*args, "k8s", code=1)
    assert "cannot read directory k8s/prod: Permission denied" in result.stderr
    assert "hint: give ocirel read access to it, or leave it out" in result.stderr
    assert (tmp_path / "k8s" / "deployment.yaml").read_text() == DEPLOYMENT  # nothing written


@pytest.mark.timeout(20)
def test_fifos_and_devices_are_reported_and_skipped(tmp_path: Path) -> None:
    write(tmp_path / "k8s" / "deployment.yaml", DEPLOYMENT)
    os.mkfifo(tmp_path / "k8s" / "pipe.yaml")
    (tmp_path / "k8s" / "zero.yaml").symlink_to("/dev/zero")
    warnings = [
        "warning: k8s/pipe.yaml: skipped: a FIFO (named pipe), not a regular file",
        "warning: k8s/zero.yaml: skipped: a symbolic link to a character device, "
        "not a regular file",
    ]
    result = run("lint", "k8s", code=1)
    assert [line for line in result.stderr.splitlines() if "warning:" in line] == warnings
    assert "in 1 file(s)" in result.stderr
    result = run("pin", "--check", "k8s", code=1)
    assert [line for line in result.stderr.splitlines() if "warning:" in line] == warnings
    run("pin", "k8s")
    assert (tmp_path / "k8s" / "deployment.yaml").read_text() == PINNED
    assert (tmp_path / "k8s" / "pipe.yaml").exists()


def test_max_file_size_from_flag_environment_and_ocirel_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = write(tmp_path / "deployment.yaml", DEPLOYMENT + "#" * 2048 + "\n").stat().st_size
    result = run("lint", "--max-file-size", "2K", ".", code=1)
    assert f"deployment.yaml: {size} bytes is larger than the 2048 bytes limit" in result.stderr
    assert "hint: raise the limit with --max-file-size (or max_file_size in" in result.stderr
    run("pin", "--check", "--max-file-size", "2K", ".", code=1)
    write(tmp_path / "ocirel.toml", 'max_file_size = "2KiB"\n')
    assert "larger than the 2048 bytes limit" in run("pin", ".", code=1).stderr
    assert (tmp_path / "deployment.yaml").read_text().startswith(DEPLOYMENT)  # not written
    run("lint", "--max-file-size", "1M", ".", code=1)  # read: unpinned is the finding
    monkeypatch.setenv("OCIREL_MAX_FILE_SIZE", "4096")
    assert "pinned 1 reference(s)" in run("pin", ".").stderr


def test_a_bad_max_file_size_is_a_configuration_error(tmp_path: Path) -> None:
    write(tmp_path / "deployment.yaml", DEPLOYMENT)
    result = run("lint", "--max-file-size", "lots", ".", code=2)
    assert "invalid value for max_file_size from --max-file-size" in result.stderr


def test_a_kustomization_file_is_found_and_pinned(tmp_path: Path) -> None:
    kustomization = write(tmp_path / "overlays" / "prod" / "Kustomization", KUSTOMIZATION)
    result = run("pin", "--check", ".", code=1)
    assert "overlays/prod/Kustomization:4: registry.example.com/team/app" in result.stderr
    run("pin", ".")
    assert kustomization.read_text() == KUSTOMIZATION + f"  digest: {D_APP}\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_pin_as_root_keeps_owner_group_and_mode(tmp_path: Path) -> None:
    deployment = write(tmp_path / "k8s" / "deployment.yaml", DEPLOYMENT)
    os.chown(deployment, 1000, 1000)
    deployment.chmod(0o640)
    run("pin", "k8s")
    info = deployment.stat()
    assert deployment.read_text() == PINNED
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (1000, 1000, 0o640)
