"""The subprocess choke point: results, errors, redaction, timeouts, process groups, signals."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from ocirel import runner
from ocirel.errors import BackendNotFoundError, CommandError, CommandTimeoutError
from ocirel.redact import register_secret
from ocirel.runner import Interrupted, Result, run, terminating_signals_raise

# Two sleepers in one process group: a background child and the shell itself (exec'd).
# Their pids go to a file so that the test can check that both are gone afterwards.
TWO_SLEEPERS = 'sleep 60 & echo $! >> "$1"; echo $$ >> "$1"; exec sleep 60'
TWO_STUBBORN_SLEEPERS = 'trap "" TERM; ' + TWO_SLEEPERS
# The same, but the shell reaps its child when the group's SIGTERM arrives. If only the
# shell got the signal, its `wait` would block on the live child and the test would fail;
# when the whole group gets it, nothing is left for init to reap, which keeps tests fast.
REAPING_SLEEPERS = 'trap "wait; exit 143" TERM; sleep 60 & echo $! >> "$1"; echo $$ >> "$1"; wait'


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_pids(pidfile: Path, count: int, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pidfile.exists():
            pids = [int(p) for p in pidfile.read_text(encoding="utf-8").split()]
            if len(pids) >= count:
                return pids
        time.sleep(0.02)
    raise AssertionError(f"{pidfile} did not list {count} pids")


def assert_all_gone(pids: list[int], timeout: float = 3.0) -> None:
    # the killed processes are reaped by init, which may take a moment
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [p for p in pids if alive(p)] == []


@pytest.fixture
def secret() -> str:
    value = "s3cr3t-" + secrets.token_hex(8)
    register_secret(value)
    return value


# -- results ---------------------------------------------------------------------------


def test_captures_stdout_and_stderr() -> None:
    result = run(["sh", "-c", "echo out; echo err >&2"])
    assert result == Result(("sh", "-c", "echo out; echo err >&2"), 0, "out\n", "err\n")
    assert result.ok


def test_passes_env_and_cwd(tmp_path: Path) -> None:
    result = run(
        ["sh", "-c", 'echo "$OCIREL_TEST_VAR"; pwd'],
        env={"OCIREL_TEST_VAR": "from-env", "PATH": os.environ["PATH"]},
        cwd=str(tmp_path),
    )
    assert result.stdout.splitlines() == ["from-env", str(tmp_path)]


def test_runs_in_its_own_process_group() -> None:
    result = run([sys.executable, "-c", "import os; print(os.getpgid(0) == os.getpid())"])
    assert result.stdout.strip() == "True"


def test_undecodable_output_does_not_crash() -> None:
    result = run(["sh", "-c", r"printf 'a\377b\n'"])
    assert result.stdout.startswith("a")
    assert result.stdout.rstrip().endswith("b")


# -- non-zero exit ---------------------------------------------------------------------


@pytest.mark.parametrize("code", [1, 2, 42, 125])
def test_non_zero_exit_raises_command_error(code: int) -> None:
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", f"echo starting; echo 'it broke' >&2; exit {code}"])
    error = info.value
    assert not isinstance(error, CommandTimeoutError)
    assert error.returncode == code
    assert error.stderr_tail == "it broke"
    assert f"exit code {code}" in str(error)
    assert "sh" in error.argv[0]


def test_stderr_tail_keeps_only_the_last_lines() -> None:
    script = "i=1; while [ $i -le 100 ]; do echo line-$i >&2; i=$((i+1)); done; exit 1"
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", script])
    lines = info.value.stderr_tail.splitlines()
    assert len(lines) == runner.TAIL_LINES
    assert lines[-1] == "line-100"
    assert "line-10" not in lines


def test_stdout_is_the_tail_when_stderr_is_empty() -> None:
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", "echo only-stdout; exit 3"])
    assert info.value.stderr_tail == "only-stdout"


def test_check_false_returns_the_failed_result() -> None:
    result = run(["sh", "-c", "echo bad >&2; exit 7"], check=False)
    assert (result.returncode, result.stderr, result.ok) == (7, "bad\n", False)


def test_error_message_and_tail_are_redacted(secret: str) -> None:
    script = f"echo 'token is {secret}' >&2; echo password=hunter2 >&2; exit 1"
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", script, "--creds", f"user:{secret}"])
    error = info.value
    for text in (str(error), error.message, error.stderr_tail, *error.argv):
        assert secret not in text
        assert "hunter2" not in text
    assert "token is ***" in error.stderr_tail
    assert "password=***" in error.stderr_tail


def test_display_quotes_and_redacts(secret: str) -> None:
    assert runner.display(["buildah", "build", "--label", "a b"]) == "buildah build --label 'a b'"
    assert secret not in runner.display(["x", f"--password={secret}"])


# -- missing or unusable programs ------------------------------------------------------


def test_missing_program_on_path() -> None:
    hint = "install it (apt-get install ocirel-missing)"
    with pytest.raises(BackendNotFoundError) as info:
        run(["ocirel-no-such-program-7f3a"], install_hint=hint)
    assert info.value.hint == hint
    assert "ocirel-no-such-program-7f3a" in str(info.value)
    assert "not installed" in str(info.value)


def test_missing_program_by_path(tmp_path: Path) -> None:
    with pytest.raises(BackendNotFoundError) as info:
        run([str(tmp_path / "nope")], install_hint="the hint")
    assert info.value.hint == "the hint"


def test_missing_program_respects_the_given_path(tmp_path: Path) -> None:
    with pytest.raises(BackendNotFoundError):
        run(["sh", "-c", "true"], env={"PATH": str(tmp_path)})


@pytest.mark.parametrize("by_name", [True, False])
def test_non_executable_file(tmp_path: Path, by_name: bool) -> None:
    program = tmp_path / "buildah"
    program.write_text("#!/bin/sh\necho should not run\n", encoding="utf-8")
    program.chmod(0o644)
    argv = ["buildah"] if by_name else [str(program)]
    with pytest.raises(BackendNotFoundError) as info:
        run(argv, env={"PATH": str(tmp_path)}, install_hint="install buildah")
    assert info.value.hint == "install buildah"


def test_directory_is_not_a_program(tmp_path: Path) -> None:
    with pytest.raises(BackendNotFoundError):
        run([str(tmp_path)])


# -- timeouts and process groups -------------------------------------------------------


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(CommandTimeoutError) as info:
        run(["sh", "-c", TWO_SLEEPERS, "sh", str(pidfile)], timeout=0.3)
    elapsed = time.monotonic() - started
    assert_all_gone(wait_for_pids(pidfile, 2))
    assert info.value.returncode is None
    assert "0.3 s" in str(info.value)
    assert elapsed < 30  # stopped, not waited out (the sleepers would take 60 s)


def test_timeout_escalates_to_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "KILL_GRACE_SECONDS", 0.3)
    pidfile = tmp_path / "pids"
    with pytest.raises(CommandTimeoutError):
        run(["sh", "-c", TWO_STUBBORN_SLEEPERS, "sh", str(pidfile)], timeout=0.3)
    assert_all_gone(wait_for_pids(pidfile, 2))


def test_timeout_in_stream_mode_kills_the_group_and_keeps_the_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pidfile = tmp_path / "pids"
    script = "echo progress-line; " + REAPING_SLEEPERS
    with pytest.raises(CommandTimeoutError) as info:
        run(["sh", "-c", script, "sh", str(pidfile)], timeout=0.3, stream=True)
    assert_all_gone(wait_for_pids(pidfile, 2))
    assert "progress-line" in info.value.stderr_tail
    assert "progress-line" in capsys.readouterr().err


def test_timeout_keeps_the_captured_tail() -> None:
    with pytest.raises(CommandTimeoutError) as info:
        run(["sh", "-c", "echo progress-line >&2; exec sleep 60"], timeout=0.3)
    assert "progress-line" in info.value.stderr_tail


def test_fast_program_is_not_affected_by_a_timeout() -> None:
    assert run(["sh", "-c", "echo quick"], timeout=30).stdout == "quick\n"


# -- streaming -------------------------------------------------------------------------


def test_stream_writes_to_stderr_and_keeps_the_tail(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(["sh", "-c", "echo step-1; echo step-2 >&2; echo step-3"], stream=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert [line for line in captured.err.splitlines() if line.startswith("step-")] == [
        "step-1",
        "step-2",
        "step-3",
    ]
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["step-1", "step-2", "step-3"]


def test_stream_tail_is_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    script = "i=1; while [ $i -le 100 ]; do echo line-$i; i=$((i+1)); done; exit 4"
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", script], stream=True)
    lines = info.value.stderr_tail.splitlines()
    assert len(lines) == runner.TAIL_LINES
    assert lines[-1] == "line-100"
    assert info.value.returncode == 4
    assert "line-1\n" in capsys.readouterr().err  # everything was shown while it ran


def test_stream_output_is_redacted(secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CommandError) as info:
        run(["sh", "-c", f"echo 'login with {secret}'; exit 1"], stream=True)
    shown = capsys.readouterr().err
    assert "login with ***" in shown
    assert secret not in shown
    assert secret not in info.value.stderr_tail


# -- stdin -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_stdin_data_reaches_the_program(stream: bool, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(["sh", "-c", "read line; echo got:$line"], stdin_data="hello\n", stream=stream)
    output = result.stderr if stream else result.stdout
    assert "got:hello" in output


def test_without_stdin_data_the_program_reads_eof() -> None:
    result = run(["cat"], timeout=10)
    assert result.stdout == ""


def test_large_stdin_data() -> None:
    data = "x" * 1_000_000 + "\n"
    result = run(["wc", "-c"], stdin_data=data, timeout=30)
    assert result.stdout.strip() == str(len(data))


# -- signals ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_terminating_signals_raise_interrupted(signum: signal.Signals) -> None:
    before = signal.getsignal(signum)

    def deliver() -> None:
        signal.raise_signal(signum)
        time.sleep(1)  # the handler runs before this ends

    with pytest.raises(Interrupted) as info, terminating_signals_raise():
        deliver()
    assert info.value.signum == signum
    assert signal.getsignal(signum) == before


def test_interrupted_is_not_an_ordinary_exception() -> None:
    assert not issubclass(Interrupted, Exception)


def test_sigterm_during_run_ends_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"

    def send_sigterm_once_started() -> None:
        wait_for_pids(pidfile, 2)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=send_sigterm_once_started, daemon=True)
    killer.start()
    started = time.monotonic()
    with pytest.raises(Interrupted) as info, terminating_signals_raise():
        run(["sh", "-c", REAPING_SLEEPERS, "sh", str(pidfile)], timeout=30)
    killer.join(5)
    assert info.value.signum == signal.SIGTERM
    assert_all_gone(wait_for_pids(pidfile, 2))
    assert time.monotonic() - started < 30  # stopped, not waited out


def test_signal_handlers_are_left_alone_outside_the_main_thread() -> None:
    errors: list[BaseException] = []
    before = signal.getsignal(signal.SIGTERM)

    def body() -> None:
        try:
            with terminating_signals_raise():
                pass
        except BaseException as exc:  # pragma: no cover - the failure path
            errors.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(5)
    assert errors == []
    assert signal.getsignal(signal.SIGTERM) == before


# -- ocirel -q and -v ------------------------------------------------------------------


def test_quiet_keeps_streamed_output_off_stderr_but_in_the_error_tail(
    capfd: pytest.CaptureFixture[str],
) -> None:
    script = "import sys; print('step 1/2'); print('step 2/2: boom', file=sys.stderr); sys.exit(3)"
    runner.set_echo(False)
    try:
        with pytest.raises(CommandError) as info:
            run([sys.executable, "-c", script], stream=True)
    finally:
        runner.set_echo(True)
    assert "step" not in capfd.readouterr().err
    assert "step 2/2: boom" in info.value.stderr_tail
    run([sys.executable, "-c", "print('step 1/1')"], stream=True)
    assert "step 1/1" in capfd.readouterr().err  # echoed again by default


def test_each_command_is_logged_with_its_exit_code_and_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="ocirel.runner"):
        run([sys.executable, "-c", "pass"])
    [record] = [r for r in caplog.records if r.name == "ocirel.runner"]
    assert record.getMessage().startswith(f"{sys.executable} -c pass: exit 0 in ")
