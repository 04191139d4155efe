"""Host facts that decide how to build: storage driver, subids, containers, kernel."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from ocirel import hostinfo
from ocirel.hostinfo import StorageChoice, choose_storage

FUSE = "/usr/bin/fuse-overlayfs"
#: the real function (tests/unit/conftest.py stubs it for every other unit test)
graph_roots = hostinfo.graph_roots
SYSTEM_CONF = (Path("/etc/containers/storage.conf"), Path("/usr/share/containers/storage.conf"))


@pytest.fixture(autouse=True)
def no_system_storage_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the host's own /etc and /usr/share storage.conf out of these tests."""
    real = hostinfo.storage_conf_paths

    def user_paths_only(env: dict[str, str], rootless: bool) -> list[Path]:
        return [p for p in real(env, rootless) if p not in SYSTEM_CONF]

    monkeypatch.setattr(hostinfo, "storage_conf_paths", user_paths_only)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def write_storage_conf(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


# -- choose_storage --------------------------------------------------------------------

# (case, setting, extra env, rootless, kernel, overlay in kernel, fuse-overlayfs,
#  expected driver, expected options, words in the reason)
STORAGE_TABLE = [
    ("setting-wins", "vfs", {"STORAGE_DRIVER": "btrfs"}, True, (6, 1), True, FUSE,
     "vfs", (), "setting"),
    ("setting-wins-over-old-kernel", "overlay", {}, True, (4, 19), False, None,
     "overlay", (), "setting"),
    ("storage-driver-env", None, {"STORAGE_DRIVER": "btrfs"}, True, (6, 1), True, None,
     None, (), "STORAGE_DRIVER"),
    ("storage-driver-env-root", None, {"STORAGE_DRIVER": "vfs"}, False, (6, 1), True, None,
     None, (), "STORAGE_DRIVER"),
    # native overlay is never chosen by itself: its layers differ root vs rootless
    ("rootless-new-kernel-no-fuse", None, {}, True, (5, 13), True, None,
     "vfs", (), "fuse-overlayfs is not installed"),
    ("rootless-newer-kernel-fuse", None, {}, True, (6, 18), True, FUSE,
     "overlay", (f"overlay.mount_program={FUSE}",), "fuse-overlayfs"),
    ("rootless-old-kernel-fuse", None, {}, True, (5, 12), True, FUSE,
     "overlay", (f"overlay.mount_program={FUSE}",), "fuse-overlayfs"),
    ("rootless-ancient-kernel-fuse", None, {}, True, (4, 19), True, "/opt/bin/fuse-overlayfs",
     "overlay", ("overlay.mount_program=/opt/bin/fuse-overlayfs",), "fuse-overlayfs"),
    ("rootless-old-kernel-no-fuse", None, {}, True, (5, 12), True, None,
     "vfs", (), "vfs"),
    ("rootless-ancient-kernel-no-fuse", None, {}, True, (3, 10), True, None,
     "vfs", (), "vfs"),
    ("root-fuse", None, {}, False, (6, 1), True, FUSE,
     "overlay", (f"overlay.mount_program={FUSE}",), "same layers root and rootless"),
    ("root-no-fuse", None, {}, False, (6, 1), True, None,
     "vfs", (), "native overlay gives other layers"),
    ("root-old-kernel", None, {}, False, (4, 19), True, None,
     "vfs", (), "vfs"),
    ("no-overlay-root", None, {}, False, (6, 1), False, None,
     "vfs", (), "no overlay"),
    ("no-overlay-rootless", None, {}, True, (6, 1), False, None,
     "vfs", (), "no overlay"),
    ("no-overlay-rootless-fuse", None, {}, True, (4, 19), False, FUSE,
     "vfs", (), "no overlay"),
    ("empty-setting-is-unset", "", {}, False, (6, 1), True, FUSE,
     "overlay", (f"overlay.mount_program={FUSE}",), "fuse-overlayfs"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "extra_env", "rootless", "kernel", "overlay", "fuse", "driver", "options",
     "reason"),
    [row[1:] for row in STORAGE_TABLE],
    ids=[row[0] for row in STORAGE_TABLE],
)  # fmt: skip
def test_choose_storage(
    home: Path,
    setting: str | None,
    extra_env: dict[str, str],
    rootless: bool,
    kernel: tuple[int, int],
    overlay: bool,
    fuse: str | None,
    driver: str | None,
    options: tuple[str, ...],
    reason: str,
) -> None:
    env = {"HOME": str(home), **extra_env}
    choice = choose_storage(
        setting, env, rootless=rootless, kernel=kernel, overlay_available=overlay,
        fuse_overlayfs=fuse, fuse_device=True,
    )  # fmt: skip
    assert (choice.driver, choice.options) == (driver, options)
    assert reason in choice.reason


@pytest.mark.parametrize(
    ("conf_location", "rootless"),
    [("xdg", True), ("home", True), ("containers_storage_conf", True),
     ("containers_storage_conf", False)],
)  # fmt: skip
def test_storage_conf_driver_is_left_to_the_builder(
    tmp_path: Path, home: Path, conf_location: str, rootless: bool
) -> None:
    env = {"HOME": str(home)}
    if conf_location == "xdg":
        env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
        conf = tmp_path / "xdg" / "containers" / "storage.conf"
    elif conf_location == "home":
        conf = home / ".config" / "containers" / "storage.conf"
    else:
        conf = tmp_path / "custom-storage.conf"
        env["CONTAINERS_STORAGE_CONF"] = str(conf)
    write_storage_conf(conf, '[storage]\ndriver = "vfs"\nrunroot = "/run/x"\n')
    # whatever the kernel would allow, the user's configuration wins
    choice = choose_storage(
        None, env, rootless=rootless, kernel=(6, 1), overlay_available=True, fuse_overlayfs=FUSE
    )
    assert choice == StorageChoice(None, f"configured in {conf} (vfs)")


@pytest.mark.parametrize(
    "body",
    [
        '[storage]\ndriver = ""\n',
        '[storage]\n# driver = "vfs"\n',
        '[storage]\nrunroot = "/run/x"\n',
        "",
    ],
)
def test_storage_conf_without_a_driver_is_ignored(tmp_path: Path, home: Path, body: str) -> None:
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    write_storage_conf(tmp_path / "xdg" / "containers" / "storage.conf", body)
    choice = choose_storage(
        None, env, rootless=True, kernel=(6, 1), overlay_available=True, fuse_overlayfs=None
    )
    assert choice.driver == "vfs"


def test_root_ignores_the_users_storage_conf(tmp_path: Path, home: Path) -> None:
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    write_storage_conf(tmp_path / "xdg" / "containers" / "storage.conf", 'driver = "vfs"\n')
    choice = choose_storage(
        None, env, rootless=False, kernel=(6, 1), overlay_available=True, fuse_overlayfs=FUSE,
        fuse_device=True,
    )  # fmt: skip
    assert choice.options == (f"overlay.mount_program={FUSE}",)


@pytest.mark.parametrize("rootless", [True, False])
def test_fuse_overlayfs_without_a_usable_dev_fuse_is_vfs(home: Path, rootless: bool) -> None:
    choice = choose_storage(
        None, {"HOME": str(home)}, rootless=rootless, kernel=(6, 1), overlay_available=True,
        fuse_overlayfs=FUSE, fuse_device=False,
    )  # fmt: skip
    assert (choice.driver, choice.options) == ("vfs", ())
    assert "/dev/fuse is not usable" in choice.reason


def test_fuse_device_usable(tmp_path: Path) -> None:
    device = tmp_path / "fuse"
    assert not hostinfo.fuse_device_usable(device)
    device.write_text("")
    assert hostinfo.fuse_device_usable(device)


def test_configured_driver_prefers_containers_storage_conf(tmp_path: Path, home: Path) -> None:
    custom = write_storage_conf(tmp_path / "custom.conf", 'driver = "btrfs"\n')
    write_storage_conf(tmp_path / "xdg" / "containers" / "storage.conf", 'driver = "vfs"\n')
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "CONTAINERS_STORAGE_CONF": str(custom),
    }
    assert hostinfo.configured_driver(env, rootless=True) == ("btrfs", str(custom))
    assert hostinfo.configured_driver({**env, "STORAGE_DRIVER": "zfs"}, rootless=True) == (
        "zfs",
        "STORAGE_DRIVER",
    )


# -- storage_conf_paths (the real function, not the fixture's filter) --------------------


@pytest.mark.parametrize(
    ("env", "rootless", "expected"),
    [
        ({"HOME": "/home/u"}, False, list(SYSTEM_CONF)),
        ({"HOME": "/home/u"}, True, [Path("/home/u/.config/containers/storage.conf"),
                                     *SYSTEM_CONF]),
        ({"HOME": "/home/u", "XDG_CONFIG_HOME": "/x"}, True,
         [Path("/x/containers/storage.conf"), *SYSTEM_CONF]),
        ({"HOME": "/home/u", "XDG_CONFIG_HOME": "", "CONTAINERS_STORAGE_CONF": "/c.conf"}, True,
         [Path("/c.conf"), Path("/home/u/.config/containers/storage.conf"), *SYSTEM_CONF]),
        ({"CONTAINERS_STORAGE_CONF": "/c.conf"}, False, [Path("/c.conf"), *SYSTEM_CONF]),
    ],
)  # fmt: skip
def test_storage_conf_paths(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], rootless: bool, expected: list[Path]
) -> None:
    monkeypatch.undo()  # the autouse filter is not wanted here
    assert hostinfo.storage_conf_paths(env, rootless) == expected


# -- subid_ranges ----------------------------------------------------------------------

SUBUID = """\
alice:100000:65536
bob:165536:65536
alice:300000:1000
1234:400000:500
carol:abc:65536
alice:500000
alice:1:2:3

  alice:600000:10  
# alice:700000:10
"""  # noqa: W291 - the padded line is on purpose


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("alice", [(100000, 65536), (300000, 1000), (400000, 500), (600000, 10)]),
        ("bob", [(165536, 65536), (400000, 500)]),
        ("carol", [(400000, 500)]),  # only its malformed line, plus the uid line
        ("dave", [(400000, 500)]),
    ],
)
def test_subid_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: str, expected: list[tuple[int, int]]
) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text(SUBUID, encoding="utf-8")
    monkeypatch.setattr(os, "getuid", lambda: 1234)  # lines may name the numeric uid
    assert hostinfo.subid_ranges(user, subuid) == expected


def test_subid_ranges_missing_file(tmp_path: Path) -> None:
    assert hostinfo.subid_ranges("alice", tmp_path / "nope") == []


# -- in_container ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, False),
        ({".dockerenv": ""}, True),
        ({"run/.containerenv": 'engine="podman-4.3.1"\n'}, True),
        ({"proc/1/cgroup": "0::/init.scope\n"}, False),
        ({"proc/1/cgroup": "0::/\n"}, False),
        ({"proc/1/cgroup": "12:pids:/docker/0123abcd\n11:memory:/docker/0123abcd\n"}, True),
        ({"proc/1/cgroup": "0::/kubepods/besteffort/pod1234/0123abcd\n"}, True),
        ({"proc/1/cgroup": "0::/kubepods.slice/kubepods-burstable.slice/"
                           "kubepods-burstable-pod1.slice/cri-containerd-0123.scope\n"}, True),
        ({"proc/1/cgroup": "0::/machine.slice/libpod-0123abcd.scope/container\n"}, True),
        ({"proc/1/cgroup": "0::/system.slice/docker-0123abcd.scope\n"}, True),
        ({"proc/1/cgroup": "0::/lxc/ct100\n"}, True),
        ({"proc/1/cgroup": "0::/containerd/x\n"}, True),
        ({"proc/1/cgroup": "1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n"},
         False),
        ({"proc/1/cgroup": "0::/system.slice/dockerd.service\n"}, False),
    ],
)  # fmt: skip
def test_in_container(tmp_path: Path, files: dict[str, str], expected: bool) -> None:
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    assert hostinfo.in_container(tmp_path) is expected


# -- kernel, overlay, namespaces -------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("6.1.0-18-amd64", (6, 1)),
        ("5.15.0-1051-azure", (5, 15)),
        ("5.13.0", (5, 13)),
        ("4.19.0-26-cloud-amd64", (4, 19)),
        ("6.18.44-fc-v669", (6, 18)),
        ("3.10.0-1160.el7.x86_64", (3, 10)),
        ("10.0", (10, 0)),
        ("6", (0, 0)),
        ("garbage", (0, 0)),
        ("v6.1", (0, 0)),
    ],
)
def test_kernel_version(release: str, expected: tuple[int, int]) -> None:
    assert hostinfo.kernel_version(release) == expected


def test_kernel_version_defaults_to_this_host() -> None:
    assert hostinfo.kernel_version() == hostinfo.kernel_version(platform.release())
    assert hostinfo.kernel_version() > (2, 0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("nodev\tsysfs\nnodev\toverlay\n\text4\n", True),
        ("nodev\tsysfs\n\text4\n", False),
        (None, False),
    ],
)
def test_overlay_in_kernel(tmp_path: Path, content: str | None, expected: bool) -> None:
    if content is not None:
        (tmp_path / "proc").mkdir()
        (tmp_path / "proc" / "filesystems").write_text(content, encoding="utf-8")
    assert hostinfo.overlay_in_kernel(tmp_path) is expected


@pytest.mark.parametrize(
    ("content", "expected"), [("15000\n", 15000), ("0\n", 0), ("many\n", None), (None, None)]
)
def test_max_user_namespaces(tmp_path: Path, content: str | None, expected: int | None) -> None:
    if content is not None:
        path = tmp_path / "proc" / "sys" / "user" / "max_user_namespaces"
        path.parent.mkdir(parents=True)
        path.write_text(content, encoding="utf-8")
    assert hostinfo.max_user_namespaces(tmp_path) == expected


@pytest.mark.parametrize(("euid", "rootless"), [(0, False), (1000, True)])
def test_is_rootless(monkeypatch: pytest.MonkeyPatch, euid: int, rootless: bool) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    assert hostinfo.is_rootless() is rootless


def fake_proc(root: Path, *, init_ns: str, own_ns: str, mountinfo: str | None = None) -> Path:
    for pid, ns in (("1", init_ns), ("self", own_ns)):
        (root / "proc" / pid / "ns").mkdir(parents=True)
        (root / "proc" / pid / "ns" / "mnt").symlink_to(ns)
    if mountinfo is not None:
        (root / "proc/self/mountinfo").write_text(mountinfo)
    return root


MOUNTINFO_HOST = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
MOUNTINFO_CHROOT = "40 22 0:5 / /proc rw,nosuid - proc proc rw\n"  # "/" is out of reach


def test_chroot_evidence_same_root_as_init(tmp_path: Path) -> None:
    root = fake_proc(tmp_path / "root", init_ns="mnt:[1]", own_ns="mnt:[1]")
    (root / "proc/1/root").symlink_to(root)
    assert hostinfo.chroot_evidence(root) is None


def test_chroot_evidence_another_root_than_init(tmp_path: Path) -> None:
    root = fake_proc(tmp_path / "root", init_ns="mnt:[1]", own_ns="mnt:[1]")
    (tmp_path / "host").mkdir()
    (root / "proc/1/root").symlink_to(tmp_path / "host")
    assert hostinfo.chroot_evidence(root) == "the root directory is not pid 1's (/proc/1/root)"


@pytest.mark.parametrize(
    ("mountinfo", "expected"),
    [
        (MOUNTINFO_HOST, None),
        (MOUNTINFO_HOST + MOUNTINFO_CHROOT, None),
        (MOUNTINFO_CHROOT, "nothing is mounted on / (/proc/self/mountinfo)"),
        ("", None),  # nothing to judge by
    ],
)
def test_chroot_evidence_from_mountinfo(
    tmp_path: Path, mountinfo: str, expected: str | None
) -> None:
    """pid 1 in another mount namespace (or /proc/1/root unreadable): mountinfo decides."""
    root = fake_proc(tmp_path / "root", init_ns="mnt:[1]", own_ns="mnt:[2]", mountinfo=mountinfo)
    assert hostinfo.chroot_evidence(root) == expected


def test_chroot_evidence_without_proc(tmp_path: Path) -> None:
    assert hostinfo.chroot_evidence(tmp_path) == "/proc is not mounted"


def test_chroot_evidence_on_this_host() -> None:
    """The test machine is not a chroot (scripts/fresh-machine-check enters with pivot_root)."""
    assert hostinfo.chroot_evidence() is None


@pytest.mark.parametrize(("content", "expected"), [("0\n", 0), ("1\n", 1), (None, None)])
def test_unprivileged_userns_clone(
    tmp_path: Path, content: str | None, expected: int | None
) -> None:
    if content is not None:
        (tmp_path / "proc/sys/kernel").mkdir(parents=True)
        (tmp_path / "proc/sys/kernel/unprivileged_userns_clone").write_text(content)
    assert hostinfo.unprivileged_userns_clone(tmp_path) == expected


@pytest.mark.parametrize(("content", "expected"), [("1\n", True), ("0\n", False), (None, False)])
def test_apparmor_restricts_userns(tmp_path: Path, content: str | None, expected: bool) -> None:
    if content is not None:
        (tmp_path / "proc/sys/kernel").mkdir(parents=True)
        (tmp_path / "proc/sys/kernel/apparmor_restrict_unprivileged_userns").write_text(content)
    assert hostinfo.apparmor_restricts_userns(tmp_path) is expected


# -- graph_roots -------------------------------------------------------------------------


def test_graph_roots_root_reads_graphroot_then_the_default(tmp_path: Path, home: Path) -> None:
    conf = write_storage_conf(tmp_path / "c.conf", '[storage]\ngraphroot = "/srv/graph"\n')
    env = {"HOME": str(home), "CONTAINERS_STORAGE_CONF": str(conf)}
    assert graph_roots(env, rootless=False) == [
        Path("/srv/graph"), Path("/var/lib/containers/storage"),
    ]  # fmt: skip
    assert graph_roots({"HOME": str(home)}, rootless=False) == [Path("/var/lib/containers/storage")]


def test_graph_roots_rootless_follows_containers_storage(tmp_path: Path, home: Path) -> None:
    """The user's own graphroot wins, then rootless_storage_path (``$UID`` and the
    environment expanded, unset variables empty), then the XDG data default."""
    conf = write_storage_conf(
        tmp_path / "xdg" / "containers" / "storage.conf",
        '[storage]\nrootless_storage_path = "${HOME}/st/$USER/$UNSET"\ngraphroot = "/g"\n',
    )
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(conf.parent.parent), "USER": "ann"}
    assert graph_roots(env, rootless=True) == [
        Path("/g"), home / "st" / "ann", home / ".local" / "share" / "containers" / "storage",
    ]  # fmt: skip
    env = {"HOME": str(home), "XDG_DATA_HOME": "/data"}
    assert graph_roots(env, rootless=True) == [Path("/data/containers/storage")]


def test_graph_roots_rootless_ignores_a_system_graphroot(monkeypatch: pytest.MonkeyPatch) -> None:
    system = Path("/etc/containers/storage.conf")
    monkeypatch.setattr(hostinfo, "storage_conf_paths", lambda env, rootless: [system])
    text = (
        '[storage]\ngraphroot = "/var/lib/containers/storage"\nrootless_storage_path = "/r/$UID"\n'
    )
    monkeypatch.setattr(Path, "read_text", lambda self, **kw: text)
    uid = os.getuid()
    assert graph_roots({"HOME": "/h"}, rootless=True) == [
        Path(f"/r/{uid}"), Path("/h/.local/share/containers/storage"),
    ]  # fmt: skip
    assert graph_roots({}, rootless=False) == [Path("/var/lib/containers/storage")]


def test_graph_roots_never_raises_and_keeps_only_absolute_paths(tmp_path: Path, home: Path) -> None:
    latin1 = tmp_path / "latin1.conf"
    latin1.write_bytes('[storage]\n# caf\xe9\ngraphroot = "relative/graph"\n'.encode("latin-1"))
    env = {"CONTAINERS_STORAGE_CONF": str(latin1)}
    assert graph_roots(env, rootless=False) == [Path("/var/lib/containers/storage")]
    assert graph_roots(env, rootless=True) == []  # no HOME, no XDG_DATA_HOME
