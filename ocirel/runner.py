"""The single subprocess choke point.

``run(argv)`` starts the program in its own process group (a new session), so that a
timeout, Ctrl-C or SIGTERM can end the program *and everything it started*: the
group gets SIGTERM, then SIGKILL after a grace period. Output can be streamed to our
stderr while the last lines are kept for error messages. A missing or
non-executable program is a :class:`BackendNotFoundError` naming what to install.

Success is the exit code. Callers decide what else proves success (a digest file);
text on stdout/stderr is only read after a failure, to add a hint.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from ocirel.errors import BackendNotFoundError, CommandError, CommandTimeoutError
from ocirel.redact import redact

TAIL_LINES = 40
KILL_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Interrupted(BaseException):  # noqa: N818 - mirrors KeyboardInterrupt
    """A terminating signal (SIGTERM, SIGHUP) arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def display(argv: Sequence[str]) -> str:
    """argv as one redacted, shell-like line, for messages and --dry-run plans."""
    import shlex  # noqa: PLC0415

    return redact(" ".join(shlex.quote(a) for a in argv))


def which(program: str) -> str | None:
    return shutil.which(program)


def run(
    argv: Sequence[str],
    *,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin_data: str | None = None,
    stream: bool = False,
    check: bool = True,
    install_hint: str | None = None,
) -> Result:
    """Run ``argv``; return its :class:`Result`.

    ``stream=True`` copies the program's stdout and stderr to our stderr as it runs
    (builder progress) and keeps only the last lines; otherwise both are captured.
    ``check=True`` raises :class:`CommandError` on a non-zero exit.
    ``stdin_data`` is written to the program's stdin (secrets go here, never in argv).
    """
    argv = tuple(argv)
    program = argv[0]
    if os.sep not in program and shutil.which(program, path=(env or os.environ).get("PATH")) is None:
        raise BackendNotFoundError(
            f"{program} is not installed or not on PATH", hint=install_hint
        )
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv is built by ocirel, never a shell
            argv,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stream else subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        raise BackendNotFoundError(
            f"cannot execute {program}: {exc.strerror}", hint=install_hint
        ) from None
    out_tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        stdout, stderr = _communicate(proc, stdin_data, stream, out_tail, timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise CommandTimeoutError(
            f"{program} did not finish within {timeout:g} s and was stopped",
            argv=[display(argv)],
            returncode=None,
            stderr_tail=redact("".join(out_tail)),
        ) from None
    except BaseException:
        _kill_group(proc)
        raise
    result = Result(argv, proc.returncode, stdout, stderr)
    if check and not result.ok:
        raise CommandError(
            f"{display(argv[:3])} … failed with exit code {result.returncode}",
            argv=[display(argv)],
            returncode=result.returncode,
            stderr_tail=tail(result.stderr or result.stdout),
        )
    return result


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return redact("\n".join(text.rstrip().splitlines()[-lines:]))


def _communicate(
    proc: subprocess.Popen[str],
    stdin_data: str | None,
    stream: bool,
    out_tail: collections.deque[str],
    timeout: float | None,
) -> tuple[str, str]:
    if not stream:
        stdout, stderr = proc.communicate(stdin_data, timeout=timeout)
        return stdout, stderr
    if stdin_data is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(stdin_data)
        proc.stdin.close()
    assert proc.stdout is not None
    pump = threading.Thread(target=_pump, args=(proc.stdout, out_tail), daemon=True)
    pump.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(proc.args, timeout or 0) from None
    pump.join(timeout=5)
    text = "".join(out_tail)
    return "", text


def _pump(source: IO[str], out_tail: collections.deque[str]) -> None:
    for line in source:
        out_tail.append(line)
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(redact(line))
            sys.stderr.flush()


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after a grace."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = proc.pid
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        try:
            proc.wait(timeout=wait)
            if not _group_alive(pgid):
                return
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone but children may linger: give them the same grace
        end = time.monotonic() + wait
        while _group_alive(pgid) and time.monotonic() < end:
            time.sleep(0.05)
        if not _group_alive(pgid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def terminating_signals_raise() -> collections.abc.Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Interrupted` so cleanup code runs.

    Ctrl-C already raises KeyboardInterrupt. Only installed in the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
