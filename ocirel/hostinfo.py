"""Facts about this host that decide how to build: rootless, containerized, storage.

Pure reads of ``/proc``, ``/etc`` and the environment (no subprocess), so they are
cheap enough to run on every publish and easy to test with fake roots.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

NATIVE_ROOTLESS_OVERLAY_KERNEL = (5, 13)


@dataclass(frozen=True)
class StorageChoice:
    driver: str | None  # None: leave it to the builder's own configuration
    reason: str
    options: tuple[str, ...] = ()
    #: the user asked for ``driver`` (ocirel's ``storage_driver`` setting); an adapter
    #: that cannot honour it must fail instead of silently using another driver
    explicit: bool = False


def is_rootless() -> bool:
    return os.geteuid() != 0


def in_container(root: Path = Path("/")) -> bool:
    if (root / ".dockerenv").exists() or (root / "run/.containerenv").exists():
        return True
    try:
        cgroup = (root / "proc/1/cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"/(docker|kubepods|libpod|lxc|containerd)[/-]", cgroup))


def kernel_version(release: str | None = None) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release or platform.release())
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def overlay_in_kernel(root: Path = Path("/")) -> bool:
    try:
        return "overlay" in (root / "proc/filesystems").read_text(encoding="utf-8")
    except OSError:
        return False


def storage_conf_paths(env: Mapping[str, str], rootless: bool) -> list[Path]:
    """The storage.conf files containers/storage reads, highest priority first."""
    paths: list[Path] = []
    if env.get("CONTAINERS_STORAGE_CONF"):
        paths.append(Path(env["CONTAINERS_STORAGE_CONF"]))
    if rootless:
        config_home = Path(
            env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")).expanduser() / ".config"
        )
        paths.append(config_home / "containers" / "storage.conf")
    paths += [Path("/etc/containers/storage.conf"), Path("/usr/share/containers/storage.conf")]
    return paths


def configured_driver(env: Mapping[str, str], rootless: bool) -> tuple[str, str] | None:
    """The storage driver the user configured, and where; None when nothing is set."""
    if env.get("STORAGE_DRIVER"):
        return env["STORAGE_DRIVER"], "STORAGE_DRIVER"
    for path in storage_conf_paths(env, rootless):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        match = re.search(r'^\s*driver\s*=\s*"([^"]*)"', text, re.MULTILINE)
        if match and match.group(1):
            return match.group(1), str(path)
    return None


def graph_roots(env: Mapping[str, str], rootless: bool) -> list[Path]:
    """Where containers/storage keeps this user's images, most likely first, as it
    decides: root takes the first storage.conf's ``graphroot``; rootless, the user's own
    file's ``graphroot`` wins, then any file's ``rootless_storage_path`` (a system file's
    ``graphroot`` is ignored), then ``$XDG_DATA_HOME/containers/storage``. Variables
    are expanded as containers/storage does (``$UID``, then the environment). Only
    absolute paths are kept. A guess the caller verifies (:mod:`ocirel.backends.stored`);
    never raises."""
    roots: list[Path] = []
    for path in storage_conf_paths(env, rootless):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        system = path in (Path("/etc/containers/storage.conf"),
                          Path("/usr/share/containers/storage.conf"))  # fmt: skip
        keys = ("graphroot",) if not rootless else (
            ("rootless_storage_path",) if system else ("graphroot", "rootless_storage_path")
        )  # fmt: skip
        for key in keys:
            match = re.search(rf'^\s*{key}\s*=\s*"([^"]+)"', text, re.MULTILINE)
            if match:
                roots.append(Path(_expand(match.group(1), env)))
    if rootless:
        home = env.get("HOME", "")
        data = env.get("XDG_DATA_HOME") or (f"{home}/.local/share" if home else "")
        if data:
            roots.append(Path(data) / "containers" / "storage")
    else:
        roots.append(Path("/var/lib/containers/storage"))
    return [root for root in dict.fromkeys(roots) if root.is_absolute()]


def _expand(value: str, env: Mapping[str, str]) -> str:
    """``$UID``, then ``$NAME`` / ``${NAME}`` from ``env`` (unset: empty), like Go's
    ``os.ExpandEnv`` after containers/storage's own ``$UID``."""
    value = value.replace("$UID", str(os.getuid()))
    return re.sub(r"\$(\w+|\{\w+\})", lambda m: env.get(m.group(1).strip("{}"), ""), value)


def fuse_device_usable(device: Path = Path("/dev/fuse")) -> bool:
    """Whether this user may open ``/dev/fuse`` (fuse-overlayfs needs it read-write)."""
    return os.access(device, os.R_OK | os.W_OK)


def choose_storage(
    setting: str | None,
    env: Mapping[str, str],
    *,
    rootless: bool,
    kernel: tuple[int, int],
    overlay_available: bool,
    fuse_overlayfs: str | None,
    fuse_device: bool | None = None,
) -> StorageChoice:
    """What to pass as ``--storage-driver``: the user's choice, else a driver whose layers
    are the same as root and rootless (docs in the README, "Reproducible builds").

    Native kernel overlay is the fastest, but its layers differ from every other
    driver's: containers/storage diffs its upper directory, which holds directories
    that were only copied up (e.g. ``/run`` after a ``RUN`` step), and rootless, where
    overlay keeps its bookkeeping in ``user.overlay.*`` extended attributes, it writes
    those into the layer tars (containers/storage 1.44, buildah 1.28). vfs and overlay
    through fuse-overlayfs both compare file trees instead and give the same layers,
    root or rootless. So: fuse-overlayfs when it can run here, else vfs.
    ``fuse_device``: whether ``/dev/fuse`` is usable (None: look).
    """
    del kernel  # native rootless overlay (kernel 5.13+) is not chosen: see above
    if setting:
        return StorageChoice(setting, "set by ocirel's storage_driver setting", explicit=True)
    configured = configured_driver(env, rootless)
    if configured:
        return StorageChoice(None, f"configured in {configured[1]} ({configured[0]})")
    if not overlay_available:
        return StorageChoice("vfs", "the kernel has no overlay filesystem")
    if fuse_device is None:
        fuse_device = fuse_device_usable()
    if fuse_overlayfs and fuse_device:
        return StorageChoice(
            "overlay",
            "overlay through fuse-overlayfs (same layers root and rootless)",
            (f"overlay.mount_program={fuse_overlayfs}",),
        )
    missing = "/dev/fuse is not usable" if fuse_overlayfs else "fuse-overlayfs is not installed"
    return StorageChoice(
        "vfs",
        f"vfs: {missing}, and native overlay gives other layers as root than rootless "
        '(set storage_driver = "overlay" for speed over reproducibility)',
    )


def subid_ranges(user: str, path: Path) -> list[tuple[int, int]]:
    """The (start, count) ranges of ``user`` in /etc/subuid or /etc/subgid."""
    ranges: list[tuple[int, int]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return ranges
    uid = str(os.getuid())
    for line in lines:
        parts = line.strip().split(":")
        if (
            len(parts) == 3
            and parts[0] in (user, uid)
            and parts[1].isdigit()
            and parts[2].isdigit()
        ):
            ranges.append((int(parts[1]), int(parts[2])))
    return ranges


def max_user_namespaces(root: Path = Path("/")) -> int | None:
    try:
        return int((root / "proc/sys/user/max_user_namespaces").read_text().strip())
    except (OSError, ValueError):
        return None


def _proc_int(root: Path, name: str) -> int | None:
    try:
        return int((root / "proc/sys" / name).read_text().strip())
    except (OSError, ValueError):
        return None


def unprivileged_userns_clone(root: Path = Path("/")) -> int | None:
    """``kernel.unprivileged_userns_clone`` (Debian's older kernels; absent elsewhere)."""
    return _proc_int(root, "kernel/unprivileged_userns_clone")


def apparmor_restricts_userns(root: Path = Path("/")) -> bool:
    """Ubuntu 23.10+: AppArmor refuses unprivileged user namespaces to unconfined programs."""
    return _proc_int(root, "kernel/apparmor_restrict_unprivileged_userns") == 1


def chroot_evidence(root: Path = Path("/")) -> str | None:
    """Why this process looks chrooted (its root is not its mount namespace's), or None.

    The kernel refuses user namespaces to a chrooted process (and buildah cannot remount
    ``/`` there), whatever the sysctls say. Two reads, no subprocess:

    * when pid 1 is in the same mount namespace and ``/proc/1/root`` is readable (root),
      a root directory other than pid 1's is a chroot;
    * otherwise ``/proc/self/mountinfo`` lists only mounts reachable from this root:
      without one mounted on ``/`` the namespace's root is out of reach;
    * no ``/proc`` at all is what a bare chroot looks like.
    """
    proc = root / "proc"
    try:
        same_namespace = (proc / "1/ns/mnt").readlink() == (proc / "self/ns/mnt").readlink()
    except OSError:
        same_namespace = False
    if same_namespace:
        try:
            init_root = (proc / "1/root").stat()
            own_root = root.stat()
        except OSError:
            pass
        else:
            if (init_root.st_dev, init_root.st_ino) != (own_root.st_dev, own_root.st_ino):
                return "the root directory is not pid 1's (/proc/1/root)"
            return None
    try:
        mountinfo = (proc / "self/mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        if not (proc / "self").exists():
            return "/proc is not mounted"
        return None
    mount_points = [fields[4] for line in mountinfo.splitlines() if len(fields := line.split()) > 4]
    if mount_points and "/" not in mount_points:
        return "nothing is mounted on / (/proc/self/mountinfo)"
    return None
