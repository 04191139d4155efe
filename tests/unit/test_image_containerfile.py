"""The top-level Containerfile (the ocirel image for rootless CI runners) keeps its
promises: the base is a build argument with a public default, it runs as a non-root
user with subordinate ids, chroot isolation and vfs storage, and every file it
copies is in the repository. CI builds it with ocirel itself where a builder is
available (tests/integration)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def text() -> str:
    return (ROOT / "Containerfile").read_text(encoding="utf-8")


def instructions() -> list[str]:
    lines = [line.strip() for line in re.sub(r"\\\n", " ", text()).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_base_is_an_argument_before_from_with_a_public_default() -> None:
    assert instructions()[0] == "ARG BASE=docker.io/library/debian:bookworm-slim"
    assert instructions()[1] == "FROM ${BASE}"


def test_it_runs_as_a_non_root_user_with_subordinate_ids() -> None:
    users = [line.split()[1] for line in instructions() if line.startswith("USER ")]
    assert users == ["ocirel"]
    assert "useradd --create-home --uid 1000" in text()
    assert "--add-subuids 100000-165535" in text()
    assert "--add-subgids 100000-165535" in text()


def test_rootless_defaults() -> None:
    env = " ".join(line for line in instructions() if line.startswith("ENV "))
    assert "BUILDAH_ISOLATION=chroot" in env
    assert "STORAGE_DRIVER=vfs" in env
    assert 'driver = \\"vfs\\"' in text() or 'driver = "vfs"' in text()


def test_the_offline_build_arguments_exist() -> None:
    args = {line.split()[1].split("=")[0] for line in instructions() if line.startswith("ARG ")}
    assert {"BASE", "APT_MIRROR", "PIP_INDEX_URL", "WHEELHOUSE"} <= args


def test_every_copied_path_is_in_the_repository() -> None:
    for line in instructions():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
