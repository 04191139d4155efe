"""The live progress display on a real terminal: ``ocirel publish`` with its stderr on
a pseudo-terminal (stdlib ``pty``), real buildah, the real distribution registry.

The terminal's output processing is switched off (no ``\\n`` → ``\\r\\n``), so the
bytes read back are exactly what ocirel wrote.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocirel import lockfile
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.integration.conftest import OcirelRunner, ocirel_env
from tests.support.localimages import private_storage_env
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder

COLOUR = re.compile(r"\x1b\[[0-9;]*m")
#: a stage finished: "✓ build        4.2s" (the mark coloured, or not)
DONE = r"(?:\x1b\[32m)?✓(?:\x1b\[0m)? {stage}\s+\d+(?:\.\d|m\d\ds)s?"
#: the live line drawn in place: "\r⠙ build        1.3s\x1b[K"
LIVE = re.compile(r"\r(?:\x1b\[36m)?([⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏])(?:\x1b\[0m)? (\w[\w, ]*?)\s+(\d+\.\d)s")


@pytest.fixture(autouse=True)
def _buildah(require_engine: Callable[[str], None]) -> None:
    require_engine("buildah")


@dataclass
class TtyRun:
    returncode: int
    terminal: str  # everything written to the terminal (stderr)
    stdout: str

    def explain(self) -> str:
        shown = self.terminal if len(self.terminal) < 4000 else "…" + self.terminal[-4000:]
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- terminal\n{shown!r}"


def run_on_terminal(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 300,
    interrupt_at: str | None = None,
) -> TtyRun:
    """``python -m ocirel ARGS`` with stderr on a 120x30 pty and stdout on a pipe;
    SIGINT (a terminal's Ctrl-C) to ocirel once ``interrupt_at`` has been shown."""
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # the bytes as written: no \n → \r\n
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocirel", *args], cwd=cwd, env=dict(env),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    stdout: list[bytes] = []
    reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
            if interrupt_at is not None and interrupt_at in b"".join(chunks).decode(
                errors="replace"
            ):
                os.kill(proc.pid, signal.SIGINT)
                interrupt_at = None
        returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        reader.join(timeout=10)
    return TtyRun(returncode, b"".join(chunks).decode(), b"".join(stdout).decode())


@pytest.fixture
def publish_on_terminal(
    ocirel_home: Path, registry: RegistryServer, unique_repo: str
) -> Callable[..., TtyRun]:
    def publish(
        context: Path,
        *extra: str,
        env: Mapping[str, str] | None = None,
        quiet: bool = False,
        interrupt_at: str | None = None,
    ) -> TtyRun:
        image = f"{registry.host}/{unique_repo}"
        args = [*(["-q"] if quiet else []), "publish", "--image", image, "--backend", "buildah",
                *extra, str(context)]  # fmt: skip
        return run_on_terminal(
            args, cwd=context, env=ocirel_env(ocirel_home, {"TERM": "xterm", **(env or {})}),
            interrupt_at=interrupt_at,
        )  # fmt: skip

    return publish


def screen(written: str) -> list[str]:
    """The lines a terminal shows: each as the last carriage return left it, no colour."""
    return [
        COLOUR.sub("", line.split("\r")[-1].replace("\x1b[K", "")) for line in written.split("\n")
    ]


def assert_finished_cleanly(run: TtyRun) -> None:
    """Exit 0, the last live line erased and the output ending at the start of a line."""
    assert run.returncode == 0, run.explain()
    text = run.terminal
    assert text.endswith("\n"), run.explain()
    last = text.rfind("\r")
    assert last >= 0
    assert text.startswith("\r\x1b[K", last), run.explain()  # the live line was cleared
    assert "\r" not in text[last + 1 :]
    assert text.rfind("\x1b[?25l") <= text.rfind("\x1b[?25h")  # the cursor is not hidden


def test_publish_on_a_terminal_shows_each_stage_live_and_finishes_cleanly(
    publish_on_terminal: Callable[..., TtyRun],
    build_context: Callable[..., Path],
) -> None:
    context = build_context("RUN echo one > /version.txt", unique=True)
    run = publish_on_terminal(context, "--json")
    assert_finished_cleanly(run)
    assert json.loads(run.stdout)["tag"] == "v1"  # stdout: the JSON alone
    text = run.terminal
    for stage in ("prepare", "build", "compare", "export", "push", "verify", "lockfile", "record"):
        assert re.search(DONE.format(stage=stage) + r"\n", text), (stage, run.explain())
    # the stages in order, each once
    order = [m.group(1) for m in re.finditer(r"✓(?:\x1b\[0m)? (\w+)", text)]
    assert order == ["prepare", "build", "compare", "export", "push", "verify", "lockfile",
                     "record"]  # fmt: skip
    # the current stage's line was rewritten in place as time passed
    drawn = LIVE.findall(text)
    build = [(frame, seconds) for frame, stage, seconds in drawn if stage == "build"]
    assert len(set(build)) >= 2, run.explain()
    assert any(float(seconds) > 0 for _frame, seconds in build)
    # the progress notes and the builder's output are still there, as whole lines
    lines = screen(text)
    assert any(re.match(r"ocirel: building .* with buildah", line) for line in lines)
    assert any(line.startswith("STEP 2/") for line in lines), lines
    assert any(line.startswith("ocirel: pushing sha256:") for line in lines), lines
    assert "\x1b[32m" in text  # the finished marks are green (no NO_COLOR here)


def test_no_color_on_a_terminal_writes_no_colour_escape(
    publish_on_terminal: Callable[..., TtyRun],
    build_context: Callable[..., Path],
) -> None:
    run = publish_on_terminal(build_context(unique=True), env={"NO_COLOR": "1"})
    assert_finished_cleanly(run)
    assert not COLOUR.search(run.terminal), run.explain()
    assert LIVE.search(run.terminal)  # still updated in place
    assert re.search(DONE.format(stage="build"), run.terminal)


@pytest.fixture
def own_storage(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A containers storage of this test's own (vfs: nothing mounted), emptied after it:
    an interrupted build must not leave its working containers, or their fuse-overlayfs
    mounts, in the storage the other tests and the run's leftover check share."""
    root = tmp_path / "storage"
    env = private_storage_env(root, driver="vfs")
    yield env
    full = {**os.environ, **env}
    for argv in (["buildah", "rm", "--all"], ["buildah", "rmi", "--all", "--force"]):
        subprocess.run(argv, env=full, capture_output=True, timeout=120, check=False)


def test_ctrl_c_during_the_build_leaves_the_terminal_clean(
    publish_on_terminal: Callable[..., TtyRun],
    build_context: Callable[..., Path],
    own_storage: dict[str, str],
) -> None:
    """The live line is erased, the stage marked failed, then "interrupted"; exit 130."""
    context = build_context("RUN sleep 47", unique=True)
    run = publish_on_terminal(context, env=own_storage, interrupt_at=": RUN sleep 47\n")
    assert run.returncode == 130, run.explain()
    text = run.terminal
    assert text.endswith("\n"), run.explain()
    last = text.rfind("\r")
    assert text.startswith("\r\x1b[K", last), run.explain()
    assert "\r" not in text[last + 1 :]
    lines = screen(text)
    assert re.fullmatch(r"✗ build\s+\d+\.\ds", lines[-3]), lines
    assert lines[-2:] == ["interrupted", ""]


def test_term_dumb_and_quiet_get_no_live_display(
    publish_on_terminal: Callable[..., TtyRun],
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    dumb = publish_on_terminal(context, env={"TERM": "dumb"})
    assert dumb.returncode == 0, dumb.explain()
    assert "ocirel: building" in dumb.terminal
    assert "\r" not in dumb.terminal
    assert "\x1b" not in dumb.terminal
    assert "✓" not in dumb.terminal
    quiet = publish_on_terminal(context, quiet=True)
    assert quiet.returncode == 0, quiet.explain()
    assert quiet.terminal == "", quiet.explain()  # unchanged: nothing but the result on stdout
    assert quiet.stdout.startswith("unchanged, reusing ")


def test_stderr_that_is_no_terminal_gets_the_plain_lines(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    run = ocirel(
        "publish", "--image", f"{registry.host}/{unique_repo}", "--backend", "buildah",
        str(context), cwd=context, env={"TERM": "xterm"},
    )  # fmt: skip
    assert run.returncode == 0, run.explain()
    assert "ocirel: building" in run.stderr
    assert "ocirel: pushing sha256:" in run.stderr
    assert "\r" not in run.stderr
    assert "\x1b" not in run.stderr
    assert "✓" not in run.stderr


def test_bundle_export_and_import_show_the_blob_count_on_their_stage_line(
    ocirel_home: Path, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    """The bundle commands' transfer progress lives on the display's stage line."""
    with registry.client() as client:
        digest = client.push_random_image(unique_repo, "v1", layer_size=2000)
    entry = LockEntry("app", f"{registry.host}/{unique_repo}", "v1", Digest(digest))
    lock = tmp_path / "ocirel.lock.json"
    lock.write_text(lockfile.dumps(Lockfile({"app": entry})), encoding="utf-8")
    env = ocirel_env(ocirel_home, {"TERM": "xterm", "NO_COLOR": "1"})
    export = run_on_terminal(["bundle", "export", "-o", "out"], cwd=tmp_path, env=env)
    assert_finished_cleanly(export)
    lines = screen(export.terminal)
    assert any(re.fullmatch(r"✓ export\s+\d+\.\ds  blobs 2/2, .*/s", line) for line in lines), lines
    assert any(line.startswith("exported 1 image(s), 2 blob(s)") for line in lines), lines
    (tmp_path / "target").mkdir()
    imported = run_on_terminal(
        ["bundle", "import", str(tmp_path / "out"), "--to", f"{registry.host}/mirror"],
        cwd=tmp_path / "target", env=env,
    )  # fmt: skip
    assert_finished_cleanly(imported)
    lines = screen(imported.terminal)
    assert any(re.fullmatch(r"✓ import\s+\d+\.\ds  blobs 2/2, .*/s", line) for line in lines)
    assert any(re.fullmatch(r"✓ lockfile\s+\d+\.\ds", line) for line in lines), lines
