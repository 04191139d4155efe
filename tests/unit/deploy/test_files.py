"""ocirel.deploy.files: which files a path names."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocirel.deploy.files import (
    DEFAULT_MAX_FILE_SIZE,
    FileOptions,
    collect_paths,
    read_text,
    skip_message,
)
from ocirel.deploy.lint import lint_paths
from ocirel.deploy.pin import plan_pins
from ocirel.deploy.scan import scan_files
from ocirel.errors import ManifestError
from tests.unit.deploy.samples import D_APP7, LOCK, POD, write


def test_collect_paths(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", POD)
    write(tmp_path / "sub" / "b.yml", POD)
    write(tmp_path / "sub" / "notes.txt", "x")
    write(tmp_path / ".hidden" / "c.yaml", POD)
    write(tmp_path / ".gitlab-ci.yml", POD)
    write(tmp_path / "chart" / "Chart.yaml", "name: c\n")
    write(tmp_path / "chart" / "values.yaml", "image: a:1\n")
    write(tmp_path / "chart" / "templates" / "deploy.yaml", "{{ broken }: \n")
    write(tmp_path / "plain" / "templates" / "d.yaml", POD)
    found = collect_paths([tmp_path, tmp_path / "a.yaml", tmp_path / ".gitlab-ci.yml"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.yaml",
        "chart/Chart.yaml",
        "chart/values.yaml",
        "plain/templates/d.yaml",
        "sub/b.yml",
        ".gitlab-ci.yml",
    ]
    with pytest.raises(ManifestError, match="no such file"):
        collect_paths([tmp_path / "missing.yaml"])


def test_chart_templates_are_skipped_even_from_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "Chart.yaml", "name: c\n")
    write(tmp_path / "templates" / "deploy.yaml", "{{ template }}\n")
    monkeypatch.chdir(tmp_path / "templates")
    assert collect_paths([Path("deploy.yaml"), Path()]) == []


# ------------------------------------------------- issue 13 item 7: every kustomize/compose name

#: kustomize's ``examples/helloWorld/kustomization.yaml`` (no apiVersion/kind: the file
#: name is what makes it a kustomization), with an ``images:`` entry.
HELLO_KUSTOMIZATION = """\
# Example configuration for the webserver
# at https://github.com/monopole/hello
commonLabels:
  app: hello

resources:
- deployment.yaml
- service.yaml
- configMap.yaml

images:
- name: registry.example.com/team/app
  newTag: v7
"""
#: docker/awesome-compose's ``nginx-golang`` shape.
AWESOME_COMPOSE = """\
services:
  frontend:
    image: registry.example.com/team/app:v7
    ports:
      - "80:80"
    depends_on:
      - backend
  backend:
    build:
      context: backend
      target: builder
"""
RECOGNISED_NAMES = (
    "Kustomization",
    "kustomization.yaml",
    "kustomization.yml",
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
)


def test_the_walk_takes_every_name_kustomize_and_compose_recognise(tmp_path: Path) -> None:
    for name in RECOGNISED_NAMES:
        body = AWESOME_COMPOSE if "compose" in name else HELLO_KUSTOMIZATION
        write(tmp_path / name.replace(".", "_") / name, body)
    write(tmp_path / "other" / "kustomization", "images: []\n")  # not a kustomize name
    write(tmp_path / "other" / "Dockerfile", "FROM scratch\n")
    found = [p.relative_to(tmp_path).as_posix() for p in collect_paths([tmp_path])]
    assert sorted(found) == sorted(f"{name.replace('.', '_')}/{name}" for name in RECOGNISED_NAMES)


def test_a_kustomization_file_found_by_the_walk_is_pinned_as_a_kustomization(
    tmp_path: Path,
) -> None:
    write(tmp_path / "overlays" / "prod" / "Kustomization", HELLO_KUSTOMIZATION)
    plan = plan_pins([tmp_path], LOCK)
    [result] = plan.changed
    assert result.path == str(tmp_path / "overlays" / "prod" / "Kustomization")
    assert result.text == HELLO_KUSTOMIZATION.replace(
        "  newTag: v7\n", f"  newTag: v7\n  digest: {D_APP7}\n"
    )
    [finding] = [f.rule for f in lint_paths([tmp_path]) if f.rule == "unpinned"]
    assert finding == "unpinned"


# ------------------------------------------- issue 13 item 3: unreadable directories and files


def _deny(monkeypatch: pytest.MonkeyPatch, name: str, denied: Path) -> None:
    """Make ``os.<name>`` fail on ``denied`` as it does for a non-root user without access."""
    real = getattr(os, name)

    def fake(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path) == os.fspath(denied):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, name, fake)


def test_an_unreadable_subdirectory_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "a.yaml", POD)
    secret = tmp_path / "team" / "secret"
    write(secret / "b.yaml", POD)
    _deny(monkeypatch, "scandir", secret)  # what os.scandir does on a mode 000 directory
    with pytest.raises(ManifestError) as info:
        collect_paths([tmp_path])
    assert str(info.value) == f"cannot read directory {secret}: Permission denied"
    assert info.value.hint == "give ocirel read access to it, or leave it out"


def test_an_unreadable_root_directory_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deny(monkeypatch, "scandir", tmp_path)
    with pytest.raises(ManifestError, match=f"cannot read directory {tmp_path}: Permission"):
        collect_paths([tmp_path])


def test_an_unreadable_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = write(tmp_path / "secret.yaml", POD)
    _deny(monkeypatch, "open", secret)
    assert collect_paths([tmp_path]) == [secret]
    with pytest.raises(ManifestError, match=f"cannot read {secret}: Permission denied"):
        scan_files([secret])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory; simulated above")
def test_real_permissions_unreadable_directory_and_file(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", POD)
    secret = tmp_path / "secret"
    write(secret / "b.yaml", POD)
    secret.chmod(0)
    try:
        with pytest.raises(ManifestError, match=f"cannot read directory {secret}: Permission"):
            collect_paths([tmp_path])
    finally:
        secret.chmod(0o755)
    locked = write(tmp_path / "locked.yaml", POD)
    locked.chmod(0)
    with pytest.raises(ManifestError, match=f"cannot read {locked}: Permission denied"):
        scan_files(collect_paths([tmp_path]))


# ------------------------------------------------ issue 13 item 4: only regular files are read


@pytest.fixture
def special_tree(tmp_path: Path) -> Iterator[Path]:
    """A tree with a FIFO, a socket, links to devices and a dangling link, all ``*.yaml``."""
    write(tmp_path / "deploy" / "pod.yaml", POD)
    (tmp_path / "deploy" / "linked.yaml").symlink_to("pod.yaml")
    os.mkfifo(tmp_path / "deploy" / "pipe.yaml")
    (tmp_path / "deploy" / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "deploy" / "null.yml").symlink_to("/dev/null")
    (tmp_path / "deploy" / "gone.yaml").symlink_to("missing.yaml")
    (tmp_path / "deploy" / "fifo-link.yaml").symlink_to("pipe.yaml")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "deploy" / "sock.yaml"))
    yield tmp_path / "deploy"
    sock.close()


def test_only_regular_files_are_taken_and_the_others_are_reported(special_tree: Path) -> None:
    skipped: list[tuple[str, str]] = []
    options = FileOptions(on_skip=lambda path, what: skipped.append((path.name, what)))
    found = collect_paths([special_tree], options)
    assert [p.name for p in found] == ["linked.yaml"]  # pod.yaml is the same file
    assert skipped == [
        ("fifo-link.yaml", "a symbolic link to a FIFO (named pipe)"),
        ("gone.yaml", "a dangling symbolic link"),
        ("null.yml", "a symbolic link to a character device"),
        ("pipe.yaml", "a FIFO (named pipe)"),
        ("sock.yaml", "a socket"),
        ("zero.yaml", "a symbolic link to a character device"),
    ]
    assert skip_message(Path("pipe.yaml"), "a FIFO (named pipe)") == (
        "pipe.yaml: skipped: a FIFO (named pipe), not a regular file"
    )


def test_special_files_named_directly_are_skipped_too(special_tree: Path) -> None:
    skipped: list[str] = []
    options = FileOptions(on_skip=lambda path, what: skipped.append(what))
    names = ("pipe.yaml", "zero.yaml", "pod.yaml")
    assert collect_paths([special_tree / n for n in names], options) == [special_tree / "pod.yaml"]
    assert skipped == ["a FIFO (named pipe)", "a symbolic link to a character device"]


@pytest.mark.timeout(10)
def test_special_files_are_never_opened(
    special_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    plan = plan_pins([special_tree], LOCK, scan_workers=1)
    assert [r.path for r in plan.results] == [str(special_tree / "linked.yaml")]
    assert opened == ["linked.yaml"]


@pytest.mark.timeout(10)
def test_reading_a_fifo_or_a_device_fails_instead_of_hanging(special_tree: Path) -> None:
    """A regular file swapped for a FIFO after the walk: O_NONBLOCK, then fstat refuses it."""
    with pytest.raises(ManifestError, match=r"pipe\.yaml: a FIFO \(named pipe\), not a regular"):
        read_text(special_tree / "pipe.yaml")
    with pytest.raises(ManifestError, match=r"zero\.yaml: a character device, not a regular"):
        read_text(special_tree / "zero.yaml")


def test_a_file_above_the_size_cap_is_an_error_naming_file_size_and_flag(tmp_path: Path) -> None:
    big = tmp_path / "install.yaml"
    with big.open("wb") as handle:  # sparse: no disk space used, never read
        handle.truncate(DEFAULT_MAX_FILE_SIZE + 1)
    with pytest.raises(ManifestError) as info:
        collect_paths([tmp_path])
    assert str(info.value) == f"{big}: 64.0 MiB is larger than the 64.0 MiB limit for one file"
    assert info.value.hint is not None
    assert "--max-file-size" in info.value.hint
    assert "max_file_size in ocirel.toml" in info.value.hint
    assert collect_paths([tmp_path], FileOptions(max_size=DEFAULT_MAX_FILE_SIZE + 1)) == [big]
    write(tmp_path / "small.yaml", "x" * 2048)
    with pytest.raises(ManifestError, match=r"small.yaml: 2048 bytes is larger than the 1024 b"):
        collect_paths([tmp_path / "small.yaml"], FileOptions(max_size=1024))


def test_the_default_cap_allows_a_50_mb_manifest(tmp_path: Path) -> None:
    big = tmp_path / "install.yaml"
    with big.open("wb") as handle:
        handle.truncate(50_000_000)
    assert collect_paths([tmp_path]) == [big]


def test_a_file_deleted_during_the_walk_is_simply_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "a.yaml", POD)
    doomed = write(tmp_path / "b.yaml", POD)
    real = os.scandir

    def listing_then_delete(path: Any) -> Any:
        entries = list(real(path))
        doomed.unlink(missing_ok=True)

        class Listing:
            def __enter__(self) -> list[os.DirEntry[str]]:
                return entries

            def __exit__(self, *_exc: object) -> None:
                return None

        return Listing()

    monkeypatch.setattr(os, "scandir", listing_then_delete)
    skipped: list[str] = []
    found = collect_paths([tmp_path], FileOptions(on_skip=lambda p, what: skipped.append(what)))
    assert (found, skipped) == ([tmp_path / "a.yaml"], [])
