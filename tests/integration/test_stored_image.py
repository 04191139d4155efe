"""The built image's config and annotations read from the storage's files
(:mod:`ocirel.backends.stored`) are what ``buildah inspect`` says, root and rootless;
a build they cannot be verified for falls back to the inspect."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocirel.backends.buildah import Buildah
from ocirel.backends.stored import StoredImage, read_stored_image
from ocirel.hostinfo import graph_roots, is_rootless
from tests.support.localimages import build_env, storage_args

pytestmark = pytest.mark.builder


def build(context: Path, tmp_path: Path, *extra: str, builder: str = "buildah") -> str:
    iidfile = tmp_path / "iid"
    argv = [builder, *storage_args(builder), "build", "--isolation", "chroot", "--layers",
            "--iidfile", str(iidfile), *extra, str(context)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    return iidfile.read_text(encoding="utf-8").strip()


def read_here(image: str) -> StoredImage | None:
    """``image`` read from this user's storage as ocirel finds it (its graph roots)."""
    return read_stored_image(image, graph_roots(os.environ, is_rootless()))


def exported_config(builder: str, image: str, layout: Path) -> dict[str, Any]:
    """The config ``builder push IMAGE oci:LAYOUT`` writes (what ocirel uploads)."""
    argv = [builder, *storage_args(builder), "push", "--quiet", image, f"oci:{layout}"]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    config: dict[str, Any] = json.loads((blobs / manifest["config"]["digest"][7:]).read_text())
    return config


def inspect(image: str) -> dict[str, Any]:
    argv = ["buildah", *storage_args("buildah"), "inspect", "--type", "image", image]
    proc = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def remove(image: str, builder: str = "buildah") -> None:
    subprocess.run([builder, *storage_args(builder), "rmi", image], check=False,
                   capture_output=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("builder", ["buildah", "podman"])
def test_the_stored_config_is_the_one_the_export_writes(
    builder: str, build_context: Callable[..., Path], tmp_path: Path,
    require_engine: Callable[[str], None],
) -> None:  # fmt: skip
    require_engine(builder)
    context = build_context(f"RUN echo {builder} > /who.txt", unique=True)
    image = build(context, tmp_path, builder=builder)
    try:
        stored = read_here(image)
        assert stored is not None, f"not found under {graph_roots(os.environ, is_rootless())}"
        assert stored.config == exported_config(builder, image, tmp_path / "layout")
        assert len(stored.config["rootfs"]["diff_ids"]) >= 2
    finally:
        remove(image, builder)


def test_a_built_image_is_read_from_the_storage_as_inspect_shows_it(
    build_context: Callable[..., Path], tmp_path: Path, require_engine: Callable[[str], None]
) -> None:
    require_engine("buildah")
    context = build_context("RUN echo stored > /stored.txt", unique=True)
    image = build(context, tmp_path, "--annotation", "org.example.note=from the build")
    try:
        stored = read_here(image)
        inspected = inspect(image)
        assert stored is not None, f"not found under {graph_roots(os.environ, is_rootless())}"
        assert stored.config == inspected["OCIv1"]
        assert stored.annotations == inspected["ImageAnnotations"]
        assert stored.annotations["org.example.note"] == "from the build"
        assert Buildah().image_config(image, build_env()) == inspected["OCIv1"]
    finally:
        remove(image)


def test_a_docker_format_build_falls_back_to_inspect(
    build_context: Callable[..., Path], tmp_path: Path, require_engine: Callable[[str], None]
) -> None:
    require_engine("buildah")
    context = build_context("RUN echo docker > /format.txt", unique=True)
    image = build(context, tmp_path, "--format", "docker")
    try:
        assert read_here(image) is None
        config = Buildah().image_config(image, build_env())
        assert config == inspect(image)["OCIv1"]
        assert config is not None
        assert config["rootfs"]["diff_ids"]
    finally:
        remove(image)
