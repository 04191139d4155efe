"""Ctrl-C / SIGTERM during a long ``RUN`` step: nothing of the build is left behind.

The step is ``RUN sleep 313.<nonce>``, a duration no other test uses, so its process
is recognisable in ``/proc``. When it runs, the test records every descendant of
``ocirel`` (with start times, so a reused pid does not count), signals ocirel only
(as a terminal's Ctrl-C reaches ocirel's process group, not the builders' own
sessions), and then expects: exit code 130 / 143, none of those processes and no
``sleep 313.<nonce>`` anywhere, the lockfile unchanged, nothing in the registry.

buildah and podman run on a private storage (``CONTAINERS_STORAGE_CONF``), so the
test can also check that the interrupted build left no working container behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.localimages import private_storage_env
from tests.support.registry import RegistryServer
from tests.support.steps import wait_for_step

pytestmark = [pytest.mark.builder, pytest.mark.slow]

LOCK_BEFORE = '{\n  "images": {},\n  "schema": 1\n}\n'
_KEEP = ("PATH", "LANG", "LC_ALL", "TMPDIR", "BUSYBOX", "XDG_RUNTIME_DIR", "XDG_DATA_HOME",
         "DOCKER_HOST")  # fmt: skip


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of ``pid``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def descendants(root: int) -> dict[int, int]:
    """pid → start time of every live descendant of ``root``."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append(pid)
            starts[pid] = stat[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def still_alive(recorded: dict[int, int]) -> dict[int, str]:
    alive = {}
    for pid, start in recorded.items():
        stat = proc_stat(pid)
        if stat is not None and stat[0] != "Z" and stat[2] == start:
            alive[pid] = cmdline(pid)
    return alive


def with_marker(marker: str) -> dict[int, str]:
    return {pid: cmd for pid in all_pids() if marker in (cmd := cmdline(pid))
            and (stat := proc_stat(pid)) is not None and stat[0] != "Z"}  # fmt: skip


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def containers_tool() -> list[str] | None:
    """A CLI that lists every working container of a containers storage, if any is here."""
    if shutil.which("buildah"):
        return ["buildah", "containers", "--all", "--quiet"]
    if shutil.which("podman"):
        return ["podman", "ps", "--all", "--external", "--quiet"]
    return None


@pytest.fixture
def private_storage(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment with its own containers storage (graph root under tmp_path)."""
    root = tmp_path / "storage"
    env = private_storage_env(root, driver="overlay")
    yield env
    full = {**os.environ, **env}
    for program in ("buildah", "podman"):
        if shutil.which(program) and root.exists():
            for argv in ([program, "rm", "--all", "--force"], [program, "rmi", "--all", "--force"]):
                subprocess.run(argv, env=full, capture_output=True, timeout=120, check=False)
            break


def working_containers(env: dict[str, str]) -> list[str]:
    argv = containers_tool()
    assert argv is not None
    proc = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    return proc.stdout.split()


def ocirel_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """What the ``ocirel`` fixture gives a run (its own HOME), plus ``extra``."""
    env = {k: os.environ[k] for k in _KEEP if k in os.environ}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    if os.geteuid() != 0 and "XDG_DATA_HOME" not in env:
        env["XDG_DATA_HOME"] = str(Path.home() / ".local" / "share")
    env.update(extra)
    return env


@pytest.mark.parametrize("builder", ["buildah", "podman", "docker"])
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_signal_during_a_long_run_step_leaves_nothing_behind(
    builder: str, signum: signal.Signals, code: int, require_engine: Callable[[str], None],
    registry: RegistryServer, unique_repo: str, build_context: Callable[..., Path],
    ocirel_home: Path, private_storage: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    require_engine(builder)
    marker = f"sleep 313.{secrets.randbelow(10**6):06d}"
    context = build_context(f"RUN {marker}", unique=True)
    lockfile = context / "ocirel.lock.json"
    lockfile.write_text(LOCK_BEFORE)
    env = ocirel_env(ocirel_home, private_storage if builder != "docker" else {})
    log = tmp_path / "ocirel.log"
    with log.open("w") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ocirel", "publish", "--image", f"{registry.host}/{unique_repo}",
             "--backend", builder, str(context)],
            cwd=context, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # fails at once, with the builder's stderr, if the build ends before the step
        wait_for_step(proc, lambda: with_marker(marker), log, timeout=300)
        recorded = descendants(proc.pid)
        assert recorded, "ocirel has no child processes while building"
        proc.send_signal(signum)
        returncode = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output_text = log.read_text()
    assert returncode == code, output_text
    # docker's daemon ends the step's container after the client has gone: allow it time
    wait_for(lambda: not still_alive(recorded) and not with_marker(marker), timeout=60)
    assert still_alive(recorded) == {}, output_text
    assert with_marker(marker) == {}, output_text
    assert lockfile.read_text() == LOCK_BEFORE
    with registry.client() as client:
        assert client.tags(unique_repo) == []
    if builder != "docker":
        assert working_containers(private_storage) == [], output_text


@pytest.mark.parametrize("builder", ["buildah", "podman", "docker"])
def test_build_timeout_stops_the_builder(
    builder: str, require_engine: Callable[[str], None], registry: RegistryServer,
    unique_repo: str, build_context: Callable[..., Path], ocirel_home: Path,
    private_storage: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    """``build_timeout`` (OCIREL_BUILD_TIMEOUT) is honoured by every builder: the build is
    stopped with its whole process group, and the run fails with a clear message."""
    require_engine(builder)
    marker = f"sleep 313.{secrets.randbelow(10**6):06d}"
    context = build_context(f"RUN {marker}", unique=True)
    extra = {"OCIREL_BUILD_TIMEOUT": "20"}
    if builder != "docker":
        extra.update(private_storage)
    log = tmp_path / "ocirel.log"
    started = time.monotonic()
    with log.open("w") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ocirel", "publish", "--image", f"{registry.host}/{unique_repo}",
             "--backend", builder, str(context)],
            cwd=context, env=ocirel_env(ocirel_home, extra), stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    recorded: dict[int, int] = {}
    try:
        while proc.poll() is None and time.monotonic() - started < 200:
            if not recorded and with_marker(marker):
                recorded = descendants(proc.pid)
            time.sleep(0.2)
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert returncode == 1, text
    assert f"error: {builder} build failed: {builder} did not finish within 20 s" in text, text
    wait_for(lambda: not still_alive(recorded) and not with_marker(marker), timeout=60)
    assert still_alive(recorded) == {}, text
    assert with_marker(marker) == {}, text
    assert not (context / "ocirel.lock.json").exists()
    if builder != "docker":
        assert working_containers(private_storage) == [], text
