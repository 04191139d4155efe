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
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ocirel.errors import BackendNotFoundError, CommandError, CommandTimeoutError
from ocirel.redact import redact

TAIL_LINES = 40
KILL_GRACE_SECONDS = 5.0
#: Never passed on to a child: builders get credentials through a private authfile.
SECRET_ENV = frozenset({"OCIREL_PASSWORD"})


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Interrupted(BaseException):
    """A terminating signal (SIGTERM, SIGHUP) arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def display(argv: Sequence[str]) -> str:
    """argv as one redacted, shell-like line, for messages and --dry-run plans."""
    import shlex  # noqa: PLC0415

    return redact(" ".join(shlex.quote(a) for a in argv))


_log = logging.getLogger(__name__)
#: Whether ``stream=True`` output (builder progress) is copied to our stderr; ``ocirel
#: -q`` turns it off. The last lines are kept either way, for error messages.
_echo = {"stream": True}


def set_echo(enabled: bool) -> None:
    """Copy streamed output to stderr (the default), or keep it to the error tail only."""
    _echo["stream"] = enabled


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
    leaves_first_grace: float = 0.0,
    on_line: Callable[[str], None] | None = None,
) -> Result:
    """Run ``argv``; return its :class:`Result`.

    ``stream=True`` copies the program's stdout and stderr to our stderr as it runs
    (builder progress) and keeps only the last lines; otherwise both are captured.
    ``check=True`` raises :class:`CommandError` on a non-zero exit.
    ``stdin_data`` is written to the program's stdin (secrets go here, never in argv).
    ``env`` (default: ours) is passed on without the variables in :data:`SECRET_ENV`.
    ``leaves_first_grace`` > 0: when the program must be stopped (timeout, Ctrl-C,
    SIGTERM), first end the *leaf* processes of its group (a builder's ``RUN`` step) and
    give the program that long to notice, clean up and exit by itself, before the group
    gets SIGTERM (see :func:`_kill_group`).
    ``on_line`` (with ``stream=True``) sees every output line as it is streamed, for
    facts only the log tells (which build steps came from the layer cache).
    """
    argv = tuple(argv)
    started = time.monotonic()
    proc = _start(argv, env=env, cwd=cwd, stdin_data=stdin_data, stream=stream, hint=install_hint)
    out_tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        stdout, stderr = _communicate(proc, stdin_data, stream, out_tail, timeout, on_line=on_line)
    except subprocess.TimeoutExpired:
        _kill_group(proc, leaves_first_grace)
        partial = "".join(out_tail) if stream else _leftover_output(proc)
        raise CommandTimeoutError(
            f"{argv[0]} did not finish within {timeout:g} s and was stopped",
            argv=[display(argv)],
            returncode=None,
            stderr_tail=tail(partial),
        ) from None
    except BaseException:
        _kill_group(proc, leaves_first_grace)
        raise
    result = Result(argv, proc.returncode, stdout, stderr)
    _log.info("%s: exit %s in %.2f s", display(argv), proc.returncode, time.monotonic() - started)
    if check and not result.ok:
        raise _failed(result)
    return result


def _failed(result: Result) -> CommandError:
    """The error for a program that exited non-zero: redacted argv and output tail."""
    return CommandError(
        f"{display(result.argv[:3])} … failed with exit code {result.returncode}",
        argv=[display(result.argv)],
        returncode=result.returncode,
        stderr_tail=tail(result.stderr or result.stdout),
    )


def _start(
    argv: tuple[str, ...],
    *,
    env: Mapping[str, str] | None,
    cwd: str | None,
    stdin_data: str | None,
    stream: bool,
    hint: str | None,
) -> subprocess.Popen[str]:
    """Start ``argv`` in a new session; a missing or non-executable program is a
    :class:`BackendNotFoundError` carrying ``hint``."""
    program = argv[0]
    if (
        os.sep not in program
        and shutil.which(program, path=(env or os.environ).get("PATH")) is None
    ):
        raise BackendNotFoundError(f"{program} is not installed or not on PATH", hint=hint)
    try:
        return subprocess.Popen(  # noqa: S603 - argv is built by ocirel, never a shell
            argv,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if stream else subprocess.PIPE,
            env=_child_env(env),
            cwd=cwd,
            start_new_session=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        raise BackendNotFoundError(f"cannot execute {program}: {exc.strerror}", hint=hint) from None


def _child_env(env: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (os.environ if env is None else env).items() if k not in SECRET_ENV}


def _leftover_output(proc: subprocess.Popen[str]) -> str:
    """What a killed, captured process printed before it died."""
    try:
        stdout, stderr = proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return ""
    return (stderr or "") + (stdout or "")


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return redact("\n".join(text.rstrip().splitlines()[-lines:]))


def _communicate(
    proc: subprocess.Popen[str],
    stdin_data: str | None,
    stream: bool,
    out_tail: collections.deque[str],
    timeout: float | None,
    *,
    on_line: Callable[[str], None] | None = None,
) -> tuple[str, str]:
    if not stream:
        stdout, stderr = proc.communicate(stdin_data, timeout=timeout)
        return stdout, stderr
    if stdin_data is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(stdin_data)
        proc.stdin.close()
    assert proc.stdout is not None
    pump = threading.Thread(target=_pump, args=(proc.stdout, out_tail, on_line), daemon=True)
    pump.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    # The pump ends at end-of-file, i.e. when the program (and whatever it started)
    # closed its output: normally the moment it exits. Waiting on that is immediate,
    # where Popen.wait(timeout) polls with sleeps of up to 50 ms.
    while True:
        pump.join(timeout=0.2)
        if not pump.is_alive():
            break
        if proc.poll() is not None:  # exited, but a detached child keeps the pipe open
            pump.join(timeout=1)
            break
        if deadline is not None and time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0)
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    proc.wait(timeout=remaining)
    text = "".join(out_tail)
    return "", text


def _pump(
    source: IO[str],
    out_tail: collections.deque[str],
    on_line: Callable[[str], None] | None = None,
) -> None:
    for line in source:
        out_tail.append(line)
        if on_line is not None:
            with contextlib.suppress(Exception):  # a faulty observer must not stall the pipe
                on_line(line)
        if _echo["stream"]:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(redact(line))
                sys.stderr.flush()


def _kill_group(proc: subprocess.Popen[str], leaves_first_grace: float = 0.0) -> None:
    """End the program and everything in its process group.

    1. With ``leaves_first_grace``: SIGTERM the group's leaf processes (the command of a
       builder's ``RUN`` step) and wait up to that long for the leader to exit on its
       own. A builder that sees its step fail removes its working containers; podman
       killed outright by SIGTERM leaves them behind in the shared storage.
    2. SIGTERM the whole group; after a grace period, SIGKILL whatever is left.

    A second Ctrl-C / SIGTERM / SIGHUP while this runs does not abort it (that would
    leave the group running): it skips the waiting and goes straight to SIGKILL.
    """
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = proc.pid
    with _signals_hurry() as hurry:
        if leaves_first_grace > 0:
            leaves = group_leaves(pgid, proc.pid)
            for pid in leaves:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)
            if leaves and _wait_group(proc, pgid, leaves_first_grace, hurry):
                return
        for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL if hurry.is_set() else sig)
            if _wait_group(proc, pgid, wait, hurry):
                return


def _wait_group(
    proc: subprocess.Popen[str], pgid: int, seconds: float, hurry: threading.Event
) -> bool:
    """Wait until the leader is reaped and the group is empty (True), the time is up or
    a further signal asks to hurry (False)."""
    end = time.monotonic() + seconds
    while True:
        if proc.poll() is not None and not _group_alive(pgid):
            return True
        if hurry.is_set() or time.monotonic() >= end:
            return False
        time.sleep(0.01)


@contextlib.contextmanager
def _signals_hurry() -> collections.abc.Iterator[threading.Event]:
    """While stopping a group: Ctrl-C, SIGTERM and SIGHUP set an event instead of raising."""
    hurry = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield hurry
        return

    def handler(_signum: int, _frame: object) -> None:
        hurry.set()

    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, handler) for s in watched}
    try:
        yield hurry
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def group_leaves(pgid: int, leader: int, proc_root: Path = Path("/proc")) -> list[int]:
    """Live members of process group ``pgid``, other than ``leader``, without children
    in the group: the innermost commands."""
    parents: dict[int, int] = {}
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) >= 3 and fields[0] != "Z" and fields[2] == str(pgid):
            parents[int(entry.name)] = int(fields[1])
    has_child = set(parents.values())
    return sorted(pid for pid in parents if pid != leader and pid not in has_child)


def _group_alive(pgid: int) -> bool:
    return _answers(os.killpg, pgid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (ours or not)."""
    return _answers(os.kill, pid)


def _answers(send: Callable[[int, int], None], ident: int) -> bool:
    try:
        send(ident, 0)  # signal 0: only asks whether the target exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
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
