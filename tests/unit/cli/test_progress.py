"""The live stage display (ocirel/cli/progress.py) with a fake clock and stream."""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
from typing import TextIO, cast

import pytest

from ocirel.cli import progress
from ocirel.cli.output import state
from ocirel.cli.progress import Display, Mode, choose_mode, elapsed_text, stages, wants_colour

COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal:
    """A UTF-8 stream that says it is a terminal, and keeps what it was given."""

    def __init__(self, *, tty: bool = True, encoding: str = "utf-8") -> None:
        self.tty, self.encoding = tty, encoding
        self._buffer = io.StringIO()

    def write(self, text: str) -> int:
        return self._buffer.write(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty

    def getvalue(self) -> str:
        return self._buffer.getvalue()


def as_stream(terminal: Terminal) -> TextIO:
    return cast(TextIO, terminal)


def display(*, colour: bool = False, width: int = 100) -> tuple[Display, Terminal, Clock]:
    stream, clock = Terminal(), Clock()
    return (
        Display(as_stream(stream), colour=colour, clock=clock, width=lambda: width),
        stream,
        clock,
    )


def screen(written: str) -> list[str]:
    """What a terminal shows: each line as the last carriage return left it."""
    lines = []
    for line in written.split("\n"):
        shown = line.split("\r")[-1].replace("\x1b[K", "")
        lines.append(COLOUR.sub("", shown))
    return lines


def test_a_finished_stage_stays_as_a_line_with_its_time() -> None:
    shown, stream, clock = display()
    shown.stage("build")
    clock.now += 4.25
    shown.stage("push")
    clock.now += 0.5
    shown.finish(ok=True)
    lines = screen(stream.getvalue())
    assert lines == ["✓ build        4.2s", "✓ push         0.5s", ""]
    assert stream.getvalue().endswith("\n")


def test_the_current_stage_is_rewritten_in_place_as_time_passes() -> None:
    shown, stream, clock = display()
    shown.stage("verify")
    clock.now += 1.0
    shown.tick()
    clock.now += 1.0
    shown.tick()
    drawn = re.findall(r"\r(.) verify\s+(\d+\.\d)s\x1b\[K", stream.getvalue())
    assert [seconds for _frame, seconds in drawn] == ["0.0", "1.0", "2.0"]
    assert len({frame for frame, _seconds in drawn}) == 3  # the spinner turns
    assert "\n" not in stream.getvalue()  # all on one line so far


def test_text_goes_above_the_live_line_which_is_drawn_again() -> None:
    shown, stream, clock = display()
    shown.stage("build")
    shown.write("STEP 1/2: FROM scratch\n")
    clock.now += 2
    shown.write("ocirel: pushing\n")
    shown.finish(ok=True)
    lines = screen(stream.getvalue())
    assert lines == ["STEP 1/2: FROM scratch", "ocirel: pushing", "✓ build        2.0s", ""]


def test_a_partial_line_is_not_overdrawn_and_is_ended_before_the_stage_line() -> None:
    shown, stream, _clock = display()
    shown.stage("build")
    shown.write("Copying blob")
    shown.tick()  # the cursor is mid-line: no redraw
    shown.write(" done\n")
    shown.write("no newline at the end")
    shown.finish(ok=False)
    lines = screen(stream.getvalue())
    assert lines == ["Copying blob done", "no newline at the end", "✗ build        0.0s", ""]


def test_a_failed_stage_is_marked_and_red_with_colour() -> None:
    shown, stream, clock = display(colour=True)
    shown.stage("push")
    clock.now += 1
    shown.finish(ok=False)
    assert "\x1b[31m✗\x1b[0m push" in stream.getvalue()


def test_no_colour_means_no_colour_escape_at_all() -> None:
    shown, stream, _clock = display(colour=False)
    shown.stage("build")
    shown.tick()
    shown.detail("blobs 1/2")
    shown.finish(ok=True)
    shown.stage("x")
    shown.finish(ok=False)
    assert not COLOUR.search(stream.getvalue())
    assert "\r" in stream.getvalue()  # in-place updates stay


def test_the_detail_shows_on_the_line_and_stays_when_the_stage_ends() -> None:
    shown, stream, clock = display()
    shown.stage("import")
    shown.detail("blobs 3/9, 12.0 MB/40.0 MB")
    clock.now += 3
    shown.finish(ok=True)
    assert screen(stream.getvalue())[0] == "✓ import       3.0s  blobs 3/9, 12.0 MB/40.0 MB"


def test_the_live_line_never_wraps() -> None:
    shown, stream, _clock = display(colour=True, width=30)
    shown.stage("build")
    shown.detail("x" * 100)
    last = stream.getvalue().split("\r")[-1].replace("\x1b[K", "")
    assert len(COLOUR.sub("", last)) == 29


def test_elapsed_text() -> None:
    assert elapsed_text(0.04) == "0.0s"
    assert elapsed_text(12.34) == "12.3s"
    assert elapsed_text(125.0) == "2m05s"


def test_ascii_marks_on_a_terminal_that_is_not_utf8() -> None:
    stream = Terminal(encoding="latin-1")
    shown = Display(as_stream(stream), colour=False, clock=Clock(), width=lambda: 80)
    shown.stage("build")
    shown.finish(ok=True)
    assert stream.getvalue().isascii()
    assert screen(stream.getvalue())[0].startswith("+ build")


@pytest.mark.parametrize(
    ("tty", "environ", "quiet", "mode"),
    [
        (True, {"TERM": "xterm-256color"}, False, "live"),
        (True, {}, False, "live"),
        (True, {"TERM": "dumb"}, False, "plain"),
        (False, {"TERM": "xterm"}, False, "plain"),
        (True, {"TERM": "xterm"}, True, "off"),
    ],
)
def test_the_mode(tty: bool, environ: dict[str, str], quiet: bool, mode: str) -> None:
    assert choose_mode(as_stream(Terminal(tty=tty)), environ, quiet=quiet) == mode


def test_no_color_is_any_non_empty_value() -> None:
    assert wants_colour({})
    assert wants_colour({"NO_COLOR": ""})
    assert not wants_colour({"NO_COLOR": "1"})


def test_plain_and_off_displays_write_nothing_of_their_own() -> None:
    modes: tuple[Mode, ...] = ("plain", "off")
    for mode in modes:
        stream = Terminal(tty=False)
        shown = Display(as_stream(stream), mode=mode)
        shown.stage("build")
        shown.detail("x")
        shown.tick()
        shown.finish(ok=False)
        assert stream.getvalue() == ""


def fake_stderr(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    """A terminal as sys.stderr (set in the test itself: pytest's capture resets it
    between a fixture and the test)."""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", as_stream(terminal))
    monkeypatch.setitem(state, "quiet", False)
    monkeypatch.setattr(progress, "TICK", 0.01)
    return terminal


def test_stages_route_stderr_through_the_display_and_restore_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = fake_stderr(monkeypatch)
    with stages("prepare", environ={"TERM": "xterm"}) as shown:
        assert shown.live
        assert sys.stderr is not fake
        print("a warning", file=sys.stderr)
        shown.stage("build")
        assert "ocirel-progress" in [thread.name for thread in threading.enumerate()]
        threading.Event().wait(0.05)  # the ticker redraws meanwhile
    assert sys.stderr is fake
    assert "ocirel-progress" not in [thread.name for thread in threading.enumerate()]
    lines = screen(fake.getvalue())
    assert lines[0] == "a warning"
    assert lines[1].startswith("✓ prepare")
    assert lines[2].startswith("✓ build")
    assert lines[3] == ""
    assert fake.getvalue().count("\r") > 3


def test_stages_end_cleanly_on_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_stderr(monkeypatch)
    with (
        pytest.raises(KeyboardInterrupt),
        stages("build", environ={"TERM": "xterm", "NO_COLOR": "1"}),
    ):
        raise KeyboardInterrupt
    assert sys.stderr is fake
    assert screen(fake.getvalue()) == ["✗ build        0.0s", ""]
    assert "ocirel-progress" not in [thread.name for thread in threading.enumerate()]


def test_stages_with_quiet_or_no_terminal_leave_stderr_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = fake_stderr(monkeypatch)
    monkeypatch.setitem(state, "quiet", True)
    with stages("build", environ={"TERM": "xterm"}) as shown:
        assert not shown.live
        assert sys.stderr is fake
    fake.tty = False
    monkeypatch.setitem(state, "quiet", False)
    with stages("build", environ={"TERM": "xterm"}) as shown:
        assert shown.mode == "plain"
        assert sys.stderr is fake
    assert fake.getvalue() == ""


def test_the_verbose_log_goes_above_the_live_line_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """``-v`` binds ocirel's log handler to stderr before the command runs: while the
    display runs it writes through the display, and afterwards to stderr again."""
    fake = fake_stderr(monkeypatch)
    logger = logging.getLogger("ocirel.test-progress")
    handler = logging.StreamHandler(sys.stderr)
    parent = logging.getLogger("ocirel")
    parent.addHandler(handler)
    monkeypatch.setattr(parent, "level", logging.INFO)
    try:
        with stages("build", environ={"TERM": "xterm"}):
            logger.warning("a log line")
        assert handler.stream is fake
    finally:
        parent.removeHandler(handler)
    lines = screen(fake.getvalue())
    assert lines[0] == "a log line"
    assert lines[1].startswith("✓ build")


def test_stderr_is_restored_even_when_stopping_the_ticker_is_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second Ctrl-C while the ticker thread is joined must not leave stderr (and
    the log handlers) pointing at the display for the rest of the process."""
    fake = fake_stderr(monkeypatch)
    real_stop = progress._Ticker.stop

    def interrupted_stop(self: progress._Ticker) -> None:
        real_stop(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(progress._Ticker, "stop", interrupted_stop)
    with (
        pytest.raises(KeyboardInterrupt),
        stages("build", environ={"TERM": "xterm", "NO_COLOR": "1"}),
    ):
        pass
    assert sys.stderr is fake
    assert fake.getvalue().endswith("\n")  # the display still finished its line
