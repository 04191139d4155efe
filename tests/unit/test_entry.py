"""ocirel.entry.run: the console script's quick exit keeps main's exit status and output,
and leaves the normal exit to a run that still has a thread working or a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import NoReturn

import pytest

import ocirel
from ocirel import entry

ROOT = str(Path(ocirel.__file__).resolve().parents[1])  # this checkout's ocirel


def ocirel_process(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "ocirel", *args], capture_output=True, text=True, env=env,
        timeout=60, check=False, **kwargs,
    )  # fmt: skip


def test_status_and_output_survive_the_quick_exit(tmp_path: Path) -> None:
    version = ocirel_process("--version")
    assert version.returncode == 0
    assert version.stdout == f"ocirel {ocirel.__version__}\n"
    usage = ocirel_process("no-such-command")
    assert usage.returncode == 2
    assert "No such command" in usage.stderr
    helped = ocirel_process("--help", cwd=tmp_path)  # a pipe: stdout is block-buffered
    assert helped.returncode == 0
    assert "Usage:" in helped.stdout
    assert "publish" in helped.stdout


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """How run() left: ("_exit", status) or ("sys.exit", code), recorded, not taken."""
    left: list[tuple[str, object]] = []

    def quick(status: int) -> NoReturn:
        left.append(("_exit", status))
        raise LeftError

    def normal(code: object = None) -> NoReturn:
        left.append(("sys.exit", code))
        raise LeftError

    monkeypatch.setattr(os, "_exit", quick)
    monkeypatch.setattr(sys, "exit", normal)
    return left


class LeftError(Exception):
    """run() called the (recorded) exit."""


def test_a_finished_run_leaves_quickly_with_mains_status(
    monkeypatch: pytest.MonkeyPatch, exits: list[tuple[str, object]]
) -> None:
    def fails() -> None:
        raise SystemExit(4)

    monkeypatch.setattr(entry, "main", fails)
    with pytest.raises(LeftError):
        entry.run()
    assert exits == [("_exit", 4)]


def test_a_message_exit_is_printed_and_gives_status_1(
    monkeypatch: pytest.MonkeyPatch,
    exits: list[tuple[str, object]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    def says() -> None:
        raise SystemExit("gave up")

    monkeypatch.setattr(entry, "main", says)
    with pytest.raises(LeftError):
        entry.run()
    assert exits == [("_exit", 1)]
    assert capsys.readouterr().err == "gave up\n"


def test_a_thread_still_working_gets_the_normal_exit(
    monkeypatch: pytest.MonkeyPatch, exits: list[tuple[str, object]]
) -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait, args=(10,), daemon=False)

    def leaves_a_thread() -> None:
        worker.start()
        raise SystemExit(0)

    monkeypatch.setattr(entry, "main", leaves_a_thread)
    try:
        with pytest.raises(LeftError):
            entry.run()
    finally:
        release.set()
        worker.join()
    assert exits == [("sys.exit", 0)]


def test_a_stream_that_cannot_be_flushed_gets_the_normal_exit(
    monkeypatch: pytest.MonkeyPatch, exits: list[tuple[str, object]]
) -> None:
    class ClosedPipe:
        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr(entry, "main", lambda: None)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    with pytest.raises(LeftError):
        entry.run()
    assert exits == [("sys.exit", 0)]
