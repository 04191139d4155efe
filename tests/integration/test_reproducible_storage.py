"""The same source gives the same digest as root and rootless, and with buildah and podman.

The layers depend on the storage driver (see ``hostinfo.choose_storage``): native
overlay writes copied-up directories, and rootless also its ``user.overlay.*``
extended attributes, into the layer tars; vfs and overlay through fuse-overlayfs do
not. These tests build with the storage ocirel chooses and compare.

The context is owned by the user who builds it (a checkout of one's own): buildah
hashes a ``COPY`` source with the owners it sees, so root building another user's
checkout records another hash in the history (see the README).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocirel import hostinfo
from ocirel.backends.base import BuildEnv, BuildSpec
from ocirel.backends.buildah import Buildah
from ocirel.hostinfo import StorageChoice
from tests.integration.conftest import OcirelRunner, Run
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder

EPOCH = 1700000000
#: RUN steps copy up /bin and /run, COPY adds to a directory of a lower layer
INSTRUCTIONS = (
    "COPY app /app",
    "RUN echo built > /built.txt && mkdir -p /app/data && echo x > /bin/extra",
)
ROOTLESS_USER = os.environ.get("OCIREL_ROOTLESS_USER", "ocirel-ci")
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def storage_conf(directory: Path) -> Path:
    """A private store under ``directory`` with no driver set: ocirel's choice applies."""
    conf = directory / "storage.conf"
    graph = directory / "graph"
    conf.write_text(
        f'[storage]\ngraphroot = "{graph}"\nrunroot = "{directory / "run"}"\n'
        f'rootless_storage_path = "{graph}"\n'
    )
    return conf


def choice_for(env: dict[str, str], *, rootless: bool, fuse_device: bool) -> StorageChoice:
    return hostinfo.choose_storage(
        None, env, rootless=rootless, kernel=hostinfo.kernel_version(),
        overlay_available=hostinfo.overlay_in_kernel(),
        fuse_overlayfs=shutil.which("fuse-overlayfs"), fuse_device=fuse_device,
    )  # fmt: skip


def build_and_export(
    context: Path, work: Path, storage: StorageChoice, prefix: list[str], env: dict[str, str]
) -> str:
    """Build ``context`` with buildah as ocirel does, export it to an OCI layout, return
    the manifest digest. ``prefix`` runs the commands as another user."""
    backend = Buildah()
    build_env = BuildEnv(storage=storage)
    spec = BuildSpec(context=context, image="localhost/ocirel-repro:test", timestamp=EPOCH)
    layout = work / "layout"
    digestfile = work / "digest"
    for argv in (
        backend.build_argv(spec, build_env),
        backend.export_argv("localhost/ocirel-repro:test", layout, digestfile, build_env),
    ):
        proc = subprocess.run(
            [*prefix, *argv], env=env, cwd=work, capture_output=True, text=True, timeout=600,
            check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"{argv}\n{proc.stdout}\n{proc.stderr}"
    return digestfile.read_text().strip()


def write_context(directory: Path, build_context: Callable[..., Path]) -> Path:
    files = {f"app/f{i:03}.txt": f"file {i}\n".encode() for i in range(50)}
    context = build_context(*INSTRUCTIONS, files=files)
    shutil.copytree(context, directory)
    return directory


def _can_run_as(user: str) -> str | None:
    """Why builds cannot run as ``user`` from here, or None."""
    if os.geteuid() != 0:
        return "needs root (to build as root and as an unprivileged user)"
    if shutil.which("runuser") is None:
        return "runuser is not installed"
    proc = subprocess.run(["id", "-u", user], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"no user {user} (scripts/test creates it)"
    if not hostinfo.subid_ranges(user, Path("/etc/subuid")):
        return f"{user} has no /etc/subuid range"
    return None


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory both root and the unprivileged user can reach (pytest's are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ocirel-repro-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_root_and_an_unprivileged_user_build_the_same_digest(
    build_context: Callable[..., Path], shared_dir: Path, require_engine: Callable[[str], None]
) -> None:
    require_engine("buildah")
    why_not = _can_run_as(ROOTLESS_USER)
    if why_not:
        pytest.skip(why_not)
    # root, in a directory of its own, with the storage ocirel chooses as root
    root_work = shared_dir / "root"
    root_work.mkdir()
    root_env = {"PATH": SAFE_PATH, "HOME": str(root_work),
                "CONTAINERS_STORAGE_CONF": str(storage_conf(root_work))}  # fmt: skip
    root_context = write_context(root_work / "context", build_context)
    as_root = build_and_export(
        root_context, root_work,
        choice_for(root_env, rootless=False, fuse_device=hostinfo.fuse_device_usable()),
        [], root_env,
    )  # fmt: skip

    # the unprivileged user, same source in a checkout of its own, ocirel's rootless choice
    user_work = shared_dir / "user"
    user_work.mkdir()
    user_context = write_context(user_work / "context", build_context)
    user_env = {"PATH": SAFE_PATH, "HOME": str(user_work),
                "CONTAINERS_STORAGE_CONF": str(storage_conf(user_work))}  # fmt: skip
    shutil.chown(user_work, ROOTLESS_USER, ROOTLESS_USER)
    subprocess.run(["chown", "-R", f"{ROOTLESS_USER}:", str(user_work)], check=True)
    prefix = [str(shutil.which("runuser")), "-u", ROOTLESS_USER, "--", "env", "-i",
              *(f"{k}={v}" for k, v in user_env.items())]  # fmt: skip
    fuse = (
        subprocess.run(
            [*prefix, "sh", "-c", "test -r /dev/fuse && test -w /dev/fuse"], check=False
        ).returncode
        == 0
    )
    user_choice = choice_for(user_env, rootless=True, fuse_device=fuse)
    as_user = build_and_export(user_context, user_work, user_choice, prefix, {})

    assert as_root == as_user, f"root: {as_root}, {ROOTLESS_USER} ({user_choice}): {as_user}"


def test_the_storage_ocirel_chooses_gives_the_same_digest_as_vfs(
    build_context: Callable[..., Path], tmp_path: Path, require_engine: Callable[[str], None]
) -> None:
    """In either lane: ocirel's choice here builds what vfs builds, and vfs builds the
    same as root and rootless (the previous test), so this lane matches the other."""
    require_engine("buildah")
    context = write_context(tmp_path / "context", build_context)
    digests = {}
    for name in ("chosen", "vfs"):
        work = tmp_path / name
        work.mkdir()
        env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage_conf(work))}
        choice = (
            choice_for(env, rootless=hostinfo.is_rootless(),
                       fuse_device=hostinfo.fuse_device_usable())
            if name == "chosen" else StorageChoice("vfs", "reference")
        )  # fmt: skip
        digests[name] = build_and_export(context, work, choice, [], env)
    assert digests["chosen"] == digests["vfs"], digests


def test_buildah_then_podman_publish_is_unchanged(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str,
    build_context: Callable[..., Path], require_engine: Callable[[str], None],
) -> None:  # fmt: skip
    require_engine("buildah")
    require_engine("podman")
    from ocirel.backends.podman import Podman  # noqa: PLC0415

    chosen = choice_for(
        dict(os.environ), rootless=hostinfo.is_rootless(),
        fuse_device=hostinfo.fuse_device_usable(),
    )  # fmt: skip
    podman_driver = Podman().store_driver()
    if podman_driver != chosen.driver:
        pytest.skip(
            f"podman's store uses {podman_driver} and ocirel chose {chosen.driver} for "
            "buildah: podman cannot switch drivers, so their layers differ (README: "
            "Reproducible builds)"
        )
    context = build_context(*INSTRUCTIONS, files={"app/a.txt": b"a\n"}, unique=True)
    repo = f"{registry.host}/{unique_repo}"
    runs: list[Run] = []
    for backend in ("buildah", "podman"):
        run = ocirel(
            "publish", "--image", repo, "--json", "--backend", backend, str(context),
            cwd=context, env={"SOURCE_DATE_EPOCH": str(EPOCH)},
        )  # fmt: skip
        assert run.returncode == 0, run.explain()
        runs.append(run)
    assert runs[1].json["unchanged"] is True, runs[1].explain()
    assert runs[1].json["tag"] == "v1"
    assert runs[1].json["digest"] == runs[0].json["digest"]
