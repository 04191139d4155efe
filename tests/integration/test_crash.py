"""Crash safety of the lockfile: SIGKILL, a full disk and I/O errors during ``publish``.

RELIABILITY item 33 (and 35/36 as far as a killed writer is concerned). What a
SIGKILL can and cannot leave behind, precisely:

* the lockfile is always whole: the old file or the new one (temporary file, fsync,
  ``os.replace``), never half of one, and other images' entries are kept;
* a kill between creating the temporary file ``.ocirel.lock.json.XXXXXXXX.tmp`` and
  renaming it leaves that file (nothing can run at SIGKILL); the next write removes
  it under the lock (``lockfile.store._remove_stale_temp_files``);
* the builder runs in its own session, so it outlives a SIGKILLed ocirel and finishes
  its current command by itself (a Ctrl-C or SIGTERM does end it: test_signals.py).

Random kills use real ``ocirel publish`` processes at stratified random delays over
a publish's duration. Targeted kills run the real CLI through a small wrapper that
stops the process dead at one point of the lockfile write (after ``mkstemp``, before
``fsync``, before or after ``os.replace``, while waiting for the lock) — the code
path is ocirel's own, only paused — and then SIGKILL it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocirel import lockfile
from ocirel.lockfile import LockEntry
from ocirel.oci import Digest
from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.builder, pytest.mark.slow]

LOCK_NAME = "ocirel.lock.json"
OTHER = LockEntry("other", "r.example/other", "v3", Digest("sha256:" + "3" * 64))
RANDOM_KILLS = 24
PHASES = ("pushing", "building")  # the last progress line ocirel printed before the kill

CRASH_WRAPPER = r'''
"""Run the ocirel CLI; at CRASH_AT in the lockfile write, write CRASH_MARKER and wait
to be killed — or, with CRASH_ERRNO, fail there with that OSError instead."""
import fcntl, os, runpy, sys, tempfile, time

POINT = os.environ["CRASH_AT"]
MARKER = os.environ["CRASH_MARKER"]
ERRNO = int(os.environ.get("CRASH_ERRNO") or 0)
NAME = "ocirel.lock.json"


def reached(point):
    if point != POINT:
        return
    if ERRNO:
        raise OSError(ERRNO, os.strerror(ERRNO))
    with open(MARKER, "w") as handle:
        handle.write(str(os.getpid()))
    while True:
        time.sleep(60)


def name_of(fd):
    try:
        return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return ""


def is_temp(name):
    return name.startswith(f".{NAME}.") and name.endswith(".tmp")


real_mkstemp, real_fsync, real_replace, real_flock = (
    tempfile.mkstemp, os.fsync, os.replace, fcntl.flock)


def mkstemp(*args, **kwargs):
    fd, path = real_mkstemp(*args, **kwargs)
    if is_temp(os.path.basename(path)):
        reached("after-mkstemp")
    return fd, path


def fsync(fd):
    if is_temp(name_of(fd)):
        reached("before-fsync")
    return real_fsync(fd)


def replace(src, dst, *args, **kwargs):
    ours = os.path.basename(os.fspath(dst)) == NAME
    if ours:
        reached("before-replace")
    result = real_replace(src, dst, *args, **kwargs)
    if ours:
        reached("after-replace")
    return result


def flock(fd, operation):
    if name_of(fd) == NAME + ".lock":
        reached("waiting-for-lock")
    return real_flock(fd, operation)


tempfile.mkstemp, os.fsync, os.replace, fcntl.flock = mkstemp, fsync, replace, flock
sys.argv = ["ocirel", *sys.argv[1:]]
runpy.run_module("ocirel", run_name="__main__", alter_sys=True)
'''


# ------------------------------------------------------------------- helpers


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of ``pid``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """pid → start time of every live descendant of ``root``."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def alive(recorded: dict[int, int]) -> list[int]:
    live = []
    for pid, start in recorded.items():
        stat = proc_stat(pid)
        if stat is not None and stat[0] != "Z" and stat[2] == start:
            live.append(pid)
    return live


def builders() -> list[int]:
    """pids of the running buildah and podman processes of this user."""
    found = []
    for entry in os.scandir("/proc"):
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and Path(entry.path).stat().st_uid == os.getuid():
                stat = proc_stat(int(entry.name))
                name = Path(entry.path, "comm").read_text().strip()
                if name in {"buildah", "podman"} and stat is not None and stat[0] != "Z":
                    found.append(int(entry.name))
    return found


def fuse_daemons() -> dict[int, str]:
    """pid → mount point of every fuse-overlayfs daemon of this user."""
    found: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(entry.path).stat().st_uid != os.getuid():
                continue
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"fuse-overlayfs") and len(argv) > 1:
                found[int(entry.name)] = os.fsdecode([a for a in argv if a][-1])
    return found


@pytest.fixture(autouse=True)
def _fuse_daemons_of_killed_builds_removed() -> Iterator[None]:
    """These tests SIGKILL ocirel mid-build on purpose. buildah then dies on its closed
    output pipe without unmounting, and with overlay through fuse-overlayfs (ocirel's
    reproducible default) the mount's daemon, which runs in a session of its own, is
    left running. A normal, interrupted (SIGTERM/Ctrl-C) or failed publish leaves none
    (tests/integration/test_signals.py, test_publish.py); this debris is the kills'
    own, and the test removes what it made: unmount, then end the daemon."""
    before = fuse_daemons()
    builders_before = set(builders())
    yield
    # a builder of a killed run may still be finishing by itself, on its mount: wait
    deadline = time.monotonic() + 120
    while set(builders()) - builders_before and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid, mountpoint in fuse_daemons().items():
        if pid in before:
            continue
        umount = ["umount", "-l", mountpoint] if os.getuid() == 0 else [
            "fusermount", "-u", "-z", mountpoint]  # fmt: skip
        subprocess.run(umount, check=False, capture_output=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def temp_files(directory: Path, name: str = LOCK_NAME) -> list[str]:
    """The temporary files of lockfile writes to ``directory/name``."""
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith(f".{name}.") and p.name.endswith(".tmp"))  # fmt: skip


@dataclass
class Workspace:
    """A build context with a lockfile, a repository, and a private TMPDIR."""

    context: Path
    tmpdir: Path
    repo: str
    registry: RegistryServer
    repository: str  # the repository path inside the registry

    @property
    def lock(self) -> Path:
        return self.context / LOCK_NAME

    @property
    def name(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    def env(self, **extra: str) -> dict[str, str]:
        # PYTHONPATH: a worktree under test, run with the venv of another checkout
        keep = ("PATH", "LANG", "LC_ALL", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "HOME",
                "PYTHONPATH")  # fmt: skip
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(TMPDIR=str(self.tmpdir), SOURCE_DATE_EPOCH="1700000000", **extra)
        return env

    def argv(
        self, *, lockfile_path: Path | None = None, always_new_version: bool = True
    ) -> list[str]:
        return ["publish", "--image", self.repo, "--backend", "buildah", "--json",
                "--lockfile", str(lockfile_path or self.lock), str(self.context),
                *(["--always-new-version"] if always_new_version else [])]  # fmt: skip

    def start(self, prefix: list[str], **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*prefix, *self.argv()], cwd=self.context, env=self.env(**env),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def publish(
        self, *, lockfile_path: Path | None = None, always_new_version: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(lockfile_path=lockfile_path, always_new_version=always_new_version)
        return subprocess.run(
            [sys.executable, "-m", "ocirel", *argv],
            cwd=self.context, env=self.env(), capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip

    def entry(self) -> LockEntry:
        """The lockfile must parse, keep the other image, and hold our entry."""
        lock = lockfile.load(self.lock)
        assert set(lock.entries) == {"other", self.name}, lock.entries
        assert lock.entries["other"] == OTHER
        return lock.entries[self.name]

    def resolves(self, entry: LockEntry) -> bool:
        with self.registry.client() as client:
            return client.manifest_digest(self.repository, entry.tag) == entry.digest


def explain(proc: subprocess.CompletedProcess[str] | subprocess.Popen[str], out: str = "",
            err: str = "") -> str:  # fmt: skip
    if isinstance(proc, subprocess.CompletedProcess):
        out, err = proc.stdout, proc.stderr
    return f"exit {proc.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


@pytest.fixture
def workspace(
    tmp_path: Path,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
    require_engine: Callable[[str], None],
) -> Workspace:
    """A workspace whose lockfile already holds a published entry and another image."""
    require_engine("buildah")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    space = Workspace(build_context("RUN echo crash-test > /crash"), tmpdir,
                      f"{registry.host}/{unique_repo}", registry, unique_repo)  # fmt: skip
    lockfile.upsert(space.lock, OTHER)
    first = space.publish()
    assert first.returncode == 0, explain(first)
    assert space.resolves(space.entry())
    return space


def kill_and_reap(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL ``proc``; wait until the builders it started have finished by themselves."""
    children = descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    deadline = time.monotonic() + 120
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(children)
    for pid in left:  # started by this test (through ocirel); should have ended by now
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"builder processes still running 120 s after ocirel was killed: {left}"
    return out, err


# ------------------------------------------------------------- random kills


def test_r33_sigkill_at_random_points_keeps_the_old_or_the_new_entry(
    workspace: Workspace,
) -> None:
    start = time.monotonic()
    timed = workspace.publish()
    duration = time.monotonic() - start
    assert timed.returncode == 0, explain(timed)
    previous = workspace.entry()
    rng = random.Random()  # kill times, not secrets
    span = duration * 1.1  # a little past the end: some runs finish, some die at the last step
    delays = [span * (i + rng.random()) / RANDOM_KILLS for i in range(RANDOM_KILLS)]
    outcomes: list[str] = []
    for delay in delays:
        proc = workspace.start([sys.executable, "-m", "ocirel"])
        time.sleep(delay)
        finished = proc.poll() is not None
        out, err = kill_and_reap(proc)
        context = f"killed after {delay:.2f} s of ~{duration:.2f} s\n{explain(proc, out, err)}"
        entry = workspace.entry()  # parses, other entry kept
        if entry == previous:
            outcome = "old"
        else:
            assert workspace.resolves(entry), context  # a new entry is always a real one
            assert int(entry.tag[1:]) > int(previous.tag[1:]), context
            outcome = "new"
        if finished:  # it ended before the kill: a complete publish
            assert (proc.returncode, outcome) == (0, "new"), context
        leftovers = temp_files(workspace.context)
        assert len(leftovers) <= 1, context  # at most the one of the killed writer
        phase = next((p for p in PHASES if f"ocirel: {p}" in err), "starting")
        outcomes.append(f"{delay:.2f}s:{'done' if finished else 'killed while ' + phase}:"
                        f"{outcome}{':tmp' if leftovers else ''}")  # fmt: skip
        previous = entry
    # every kill left a whole lockfile; the next write clears any stale temporary file
    final = workspace.publish()
    assert final.returncode == 0, explain(final)
    entry = workspace.entry()
    assert entry.tag == json.loads(final.stdout)["tag"]
    assert workspace.resolves(entry)
    assert temp_files(workspace.context) == [], outcomes
    phases = {o.split(":")[1] for o in outcomes if o.split(":")[1].startswith("killed")}
    assert len(phases) >= 2, outcomes  # the kills did land in different stages of a publish


# ------------------------------------------------------------ targeted kills


@pytest.fixture
def wrapper(tmp_path: Path) -> Path:
    path = tmp_path / "crashpoint.py"
    path.write_text(CRASH_WRAPPER)
    return path


def run_until(workspace: Workspace, wrapper: Path, point: str) -> tuple[str, str]:
    """Run publish through the wrapper until it reaches ``point``, then SIGKILL it."""
    marker = workspace.tmpdir / f"reached-{point}"
    proc = workspace.start([sys.executable, str(wrapper)], CRASH_AT=point,
                           CRASH_MARKER=str(marker))  # fmt: skip
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not marker.exists():
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"never reached {point}\n{explain(proc, out, err)}")
    return kill_and_reap(proc)


# point → (entry afterwards, a temporary file is left)
CRASH_POINTS = {
    "waiting-for-lock": ("old", False),
    "after-mkstemp": ("old", True),
    "before-fsync": ("old", True),
    "before-replace": ("old", True),
    "after-replace": ("new", False),
}


@pytest.mark.parametrize(("point", "expected"), CRASH_POINTS.items(), ids=CRASH_POINTS.keys())
def test_r33_sigkill_during_the_lockfile_write(
    point: str, expected: tuple[str, bool], workspace: Workspace, wrapper: Path
) -> None:
    outcome, leaves_temp = expected
    before = workspace.entry()
    old_bytes = workspace.lock.read_bytes()
    holder = None
    if point == "waiting-for-lock":  # another writer holds the lock meanwhile
        holder = os.open(workspace.context / f"{LOCK_NAME}.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        run_until(workspace, wrapper, point)
    finally:
        if holder is not None:
            os.close(holder)
    after = workspace.entry()
    if outcome == "old":
        assert workspace.lock.read_bytes() == old_bytes
    else:
        assert after != before
        assert workspace.resolves(after)
    leftovers = temp_files(workspace.context)
    assert len(leftovers) == (1 if leaves_temp else 0), leftovers
    if not leaves_temp:
        return
    # the documented residue: the killed writer's temporary file, never the lockfile...
    content = (workspace.context / leftovers[0]).read_text()
    if point == "before-replace":
        assert json.loads(content)["images"][workspace.name]["tag"] != before.tag
    # ...which the next write removes
    again = workspace.publish()
    assert again.returncode == 0, explain(again)
    assert temp_files(workspace.context) == []
    assert workspace.resolves(workspace.entry())


def test_r33_stale_temp_files_removed_only_under_the_lock(tmp_path: Path) -> None:
    """A writer's temporary file is never removed while it holds the lock; afterwards the
    next writer removes leftovers of our own pattern only."""
    lock = tmp_path / LOCK_NAME
    lockfile.upsert(lock, OTHER)
    stale = tmp_path / f".{LOCK_NAME}.k1ll3d_x.tmp"
    stale.write_text("{")
    not_ours = [f".{LOCK_NAME}.tmp", f"{LOCK_NAME}.abcdefgh.tmp", ".other.json.abcdefgh.tmp",
                f".{LOCK_NAME}.abcdefghi.tmp", f".{LOCK_NAME}.ABCDEFGH.tmp"]  # fmt: skip
    for name in not_ours:
        (tmp_path / name).write_text("x")
    (tmp_path / f".{LOCK_NAME}.dir_____.tmp").mkdir()
    # a live writer: holds the lock, has its temporary file
    holder = os.open(tmp_path / f"{LOCK_NAME}.lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    live = tmp_path / f".{LOCK_NAME}.l1vewrtr.tmp"
    live.write_text(lockfile.dumps(lockfile.Lockfile({"other": OTHER})))
    entry = LockEntry("app", "r.example/app", "v1", Digest("sha256:" + "1" * 64))
    writer = threading.Thread(target=lockfile.upsert, args=(lock, entry), daemon=True)
    try:
        writer.start()
        time.sleep(0.3)
        assert writer.is_alive()  # waits for the lock...
        assert live.exists()  # ...and touches nothing meanwhile
        assert stale.exists()
        live.replace(lock)
    finally:
        os.close(holder)
    writer.join(10)
    assert not stale.exists()
    assert set(lockfile.load(lock).entries) == {"other", "app"}
    for name in not_ours:
        assert (tmp_path / name).exists(), name
    assert (tmp_path / f".{LOCK_NAME}.dir_____.tmp").is_dir()


# ------------------------------------------------------- disk full, I/O error


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Write zeros into ``directory/filler`` until the file system has no byte left."""
    filler = directory / "filler"
    for size in (4096, 1):  # pages, then whatever is left
        with filler.open("ab", buffering=0) as handle:
            try:
                while handle.write(b"\0" * size):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


def test_r33_disk_full_keeps_the_old_lockfile_and_says_what_was_pushed(
    workspace: Workspace, tiny_fs: Path
) -> None:
    lock = tiny_fs / LOCK_NAME
    lockfile.upsert(lock, OTHER)
    old = lock.read_bytes()
    filler = fill(tiny_fs)
    run = workspace.publish(lockfile_path=lock)
    assert run.returncode == 1, explain(run)
    error = next(line for line in run.stderr.splitlines() if line.startswith("error: "))
    assert "the disk is full; the old file is unchanged" in error, explain(run)
    assert "is in the registry but not recorded" in error, explain(run)
    assert "hint: fix that and publish again" in run.stderr, explain(run)
    assert lock.read_bytes() == old
    assert {p.name for p in tiny_fs.iterdir()} == {LOCK_NAME, f"{LOCK_NAME}.lock", "filler"}
    # the hint holds: with space again, the same build is recorded without a new push
    tags_before = registry_tags(workspace)
    filler.unlink()
    again = workspace.publish(lockfile_path=lock, always_new_version=False)
    assert again.returncode == 0, explain(again)
    assert json.loads(again.stdout)["unchanged"] is True
    assert registry_tags(workspace) == tags_before
    recorded = lockfile.load(lock).entries[workspace.name]
    assert recorded.tag == max(tags_before, key=lambda t: int(t[1:]))
    assert workspace.resolves(recorded)


def registry_tags(workspace: Workspace) -> list[str]:
    with workspace.registry.client() as client:
        return sorted(client.tags(workspace.repository))


def test_r33_io_error_keeps_the_old_lockfile(workspace: Workspace, wrapper: Path) -> None:
    old = workspace.lock.read_bytes()
    proc = workspace.start([sys.executable, str(wrapper)], CRASH_AT="before-fsync",
                           CRASH_MARKER=str(workspace.tmpdir / "unused"),
                           CRASH_ERRNO=str(errno.EIO))  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, explain(proc, out, err)
    assert f"{os.strerror(errno.EIO)}; the old file is unchanged" in err, explain(proc, out, err)
    assert "Traceback" not in err
    assert workspace.lock.read_bytes() == old
    assert temp_files(workspace.context) == []


# ------------------------------------------------------- identity (item 36)


def test_r36_publish_keeps_mode_and_symlink_and_same_inputs_give_identical_bytes(
    workspace: Workspace, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    target = shared / "team.lock.json"
    workspace.lock.replace(target)
    target.chmod(0o640)
    workspace.lock.symlink_to(os.path.relpath(target, workspace.context))
    new = workspace.publish()  # a new version: the lockfile is rewritten
    assert new.returncode == 0, explain(new)
    assert workspace.lock.is_symlink()
    assert target.stat().st_mode & 0o777 == 0o640
    assert workspace.entry().tag == json.loads(new.stdout)["tag"]
    written = target.read_bytes()
    assert written == lockfile.dumps(lockfile.load(target)).encode()  # canonical
    same = workspace.publish(always_new_version=False)  # same inputs: same entry, same bytes
    assert same.returncode == 0, explain(same)
    assert json.loads(same.stdout)["unchanged"] is True
    assert target.read_bytes() == written
    assert temp_files(workspace.context) == temp_files(shared, target.name) == []
