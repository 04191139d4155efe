"""The builder's local image list, as ocirel sees it (same storage flags)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ocirel import hostinfo
from ocirel.backends.base import BuildEnv
from ocirel.backends.buildah import Buildah
from ocirel.backends.podman import Podman


def build_env() -> BuildEnv:
    """The build environment (storage choice) ocirel uses here."""
    choice = hostinfo.choose_storage(
        None, os.environ, rootless=hostinfo.is_rootless(), kernel=hostinfo.kernel_version(),
        overlay_available=hostinfo.overlay_in_kernel(),
        fuse_overlayfs=shutil.which("fuse-overlayfs"),
    )  # fmt: skip
    return BuildEnv(storage=choice)


def storage_args(builder: str) -> list[str]:
    """The global storage flags ocirel passes to ``builder`` here (rootless buildah may use
    overlay while its own default is vfs: each driver has its own image list)."""
    if builder == "docker":
        return []
    backend = Buildah() if builder == "buildah" else Podman()
    return backend.global_args(build_env())


def local_image_names(builder: str) -> list[str]:
    """``repository:tag`` of every image in the builder's local storage, as ocirel sees it."""
    fmt = "{{.Name}}:{{.Tag}}" if builder == "buildah" else "{{.Repository}}:{{.Tag}}"
    argv = [builder, *storage_args(builder), "images", "--format", fmt]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def private_storage_env(directory: Path, driver: str = "vfs") -> dict[str, str]:
    """Environment that gives buildah/podman their own, empty image storage under
    ``directory``. Rootless containers/storage ignores ``graphroot`` and reads
    ``rootless_storage_path`` instead, so both are set."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "storage.conf"
    graph = directory / "graph"
    conf.write_text(
        f'[storage]\ndriver = "{driver}"\ngraphroot = "{graph}"\n'
        f'runroot = "{directory / "run"}"\nrootless_storage_path = "{graph}"\n'
    )
    return {"CONTAINERS_STORAGE_CONF": str(conf)}
