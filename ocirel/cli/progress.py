"""The live display of a long command's stages, on a terminal.

``with stages("prepare") as display:`` … ``display.stage("build")`` …: on a terminal
(stderr a TTY, ``TERM`` not ``dumb``) the current stage is one line at the bottom,
rewritten in place (a spinner and its elapsed time, plus a detail such as a transfer's
rate); a finished stage stays as a line with its time (``✓ build  4.2s``, ``✗`` when
the command failed in it). Everything else written to stderr meanwhile — progress
notes, warnings, the builder's streamed output, ``-v`` logs — goes above that line:
the display clears it, lets the text through, and draws it again. Elsewhere (a CI
log, a pipe) nothing changes: the plain lines ocirel always printed, and no stage
lines. ``-q`` shows no progress at all. ``NO_COLOR`` (any non-empty value) leaves
out colour; the in-place updates (carriage return, erase to end of line) stay.

A daemon thread redraws the line ten times a second; it is stopped, and the line
cleared, when the ``with`` block ends, also on an error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, TextIO, cast

if TYPE_CHECKING:
    import logging

Mode = Literal["live", "plain", "off"]

TICK = 0.1
CLEAR = "\r\x1b[K"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ASCII_SPINNER = "-\\|/"
GREEN, RED, CYAN, RESET = "\x1b[32m", "\x1b[31m", "\x1b[36m", "\x1b[0m"


def choose_mode(stream: TextIO, environ: Mapping[str, str], *, quiet: bool) -> Mode:
    """``off`` with ``-q``; ``live`` on a terminal that is not ``TERM=dumb``; else ``plain``."""
    if quiet:
        return "off"
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):
        tty = False
    if not tty or environ.get("TERM", "") == "dumb":
        return "plain"
    return "live"


def wants_colour(environ: Mapping[str, str]) -> bool:
    """No colour when ``NO_COLOR`` is set to anything but the empty string (no-color.org)."""
    return not environ.get("NO_COLOR", "")


def elapsed_text(seconds: float) -> str:
    """``0.4s``, ``12.3s``, ``2m05s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 80


class Display:
    """The stages of one command (see the module). Thread-safe: the builder's output
    pump, background warnings and the ticker all write through it."""

    def __init__(
        self,
        stream: TextIO,
        *,
        mode: Mode = "live",
        colour: bool = True,
        clock: Callable[[], float] = time.monotonic,
        width: Callable[[], int] | None = None,
    ) -> None:
        self.stream, self.mode, self.colour, self.clock = stream, mode, colour, clock
        self.width = width or (lambda: _terminal_width(stream))
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.unicode = encoding == "utf8"
        self._lock = threading.RLock()
        self._stage: str | None = None
        self._started = 0.0
        self._detail = ""
        self._frame = 0
        self._drawn = False  # the live line is on the screen
        self._midline = False  # text without its newline yet: the cursor is not at column 0

    @property
    def live(self) -> bool:
        return self.mode == "live"

    # ---------------------------------------------------------------- stages

    def stage(self, name: str) -> None:
        """The previous stage is done (its line stays); ``name`` starts now."""
        if not self.live:
            return
        with self._lock:
            self._end_stage(ok=True)
            self._stage, self._started, self._detail = name, self.clock(), ""
            self._draw()

    def detail(self, text: str) -> None:
        """What the current stage is at (e.g. ``blobs 3/9, 12 MB/40 MB``): shown on its line."""
        if not self.live:
            return
        with self._lock:
            self._detail = text
            self._draw()

    def finish(self, *, ok: bool) -> None:
        """The command ended: the current stage gets its line (``✗`` unless ``ok``)."""
        if not self.live:
            return
        with self._lock:
            self._end_stage(ok=ok)
            self._end_midline()
            self.stream.flush()

    def _end_stage(self, *, ok: bool) -> None:
        if self._stage is None:
            return
        self._clear()
        self._end_midline()
        mark = ("✓" if ok else "✗") if self.unicode else ("+" if ok else "x")
        colour = GREEN if ok else RED
        self._write_line(self._line(self._paint(mark, colour)) + "\n")
        self._stage = None

    # ---------------------------------------------------------------- output

    def write(self, text: str) -> int:
        """Text for stderr: written above the live line, which is then drawn again."""
        if not text:
            return 0
        with self._lock:
            self._clear()
            self.stream.write(text)
            self._midline = not text.endswith("\n")
            self._draw()
        return len(text)

    def tick(self) -> None:
        """Advance the spinner and the elapsed time (the ticker thread calls this)."""
        with self._lock:
            self._frame += 1
            self._draw()

    def live_line(self) -> str:
        """The current stage's line, as drawn (without the carriage return)."""
        frames = SPINNER if self.unicode else ASCII_SPINNER
        return self._line(self._paint(frames[self._frame % len(frames)], CYAN))

    def _line(self, mark: str) -> str:
        seconds = elapsed_text(self.clock() - self._started)
        text = f"{mark} {self._stage or '':<10} {seconds:>6}"
        return f"{text}  {self._detail}" if self._detail else text

    def _paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{RESET}" if self.colour else text

    def _draw(self) -> None:
        if self._stage is None or self._midline:
            return
        line = self.live_line()
        # never wider than the terminal: a wrapped line cannot be rewritten in place
        visible = len(line) - (len(CYAN) + len(RESET) if self.colour else 0)  # the spinner's
        room = max(self.width() - 1, 10)
        if visible > room:
            line = line[: len(line) - (visible - room)]
        self._write_line("\r" + line + "\x1b[K")
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self._write_line(CLEAR)
            self._drawn = False

    def _end_midline(self) -> None:
        """A streamed line left without its newline gets one (before a line of ours)."""
        if self._midline:
            self.stream.write("\n")
            self._midline = False

    def _write_line(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


class _Stderr:
    """What ``sys.stderr`` is while a live display runs: writes go through the display."""

    def __init__(self, display: Display, real: TextIO) -> None:
        self._display, self._real = display, real
        self.encoding = real.encoding

    def write(self, text: str) -> int:
        return self._display.write(text)

    def flush(self) -> None:
        self._real.flush()

    def isatty(self) -> bool:
        return self._real.isatty()

    def fileno(self) -> int:
        return self._real.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _Ticker:
    """Calls ``display.tick()`` every :data:`TICK` seconds until stopped."""

    def __init__(self, display: Display) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(display,), name="ocirel-progress", daemon=True
        )
        self._thread.start()

    def _run(self, display: Display) -> None:
        while not self._stop.wait(TICK):
            try:
                display.tick()
            except (OSError, ValueError):  # the terminal went away: stop drawing
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@contextmanager
def stages(
    first: str | None = None, *, environ: Mapping[str, str] | None = None
) -> Iterator[Display]:
    """The display for one command on the current stderr (see the module); ``first``
    is the stage it starts in. Plain or off: a display whose calls do nothing."""
    from ocirel.cli.output import state  # noqa: PLC0415

    environ = os.environ if environ is None else environ
    real = sys.stderr
    mode = choose_mode(real, environ, quiet=state["quiet"])
    display = Display(real, mode=mode, colour=wants_colour(environ))
    if not display.live:
        yield display
        return
    proxy = cast(TextIO, _Stderr(display, real))
    handlers = _retarget_log_handlers(real, proxy)
    ok, ticker = False, None
    try:
        sys.stderr = proxy
        ticker = _Ticker(display)
        if first is not None:
            display.stage(first)
        yield display
        ok = True
    finally:
        # stderr and the log handlers first: nothing below (a second Ctrl-C in the
        # ticker's join, a terminal that is gone) may leave them pointing at the proxy
        sys.stderr = real
        for handler in handlers:
            handler.setStream(real)
        try:
            if ticker is not None:
                ticker.stop()
        finally:
            with contextlib.suppress(OSError, ValueError):  # the terminal may be gone
                display.finish(ok=ok)


def _retarget_log_handlers(real: TextIO, proxy: TextIO) -> list[logging.StreamHandler[Any]]:
    """ocirel's ``-v``/``--debug`` log handler writes to the stderr it was given: while
    the display runs, it writes through the display too."""
    if "logging" not in sys.modules:
        return []
    import logging  # noqa: PLC0415

    moved = []
    for handler in logging.getLogger("ocirel").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is real:
            handler.setStream(proxy)
            moved.append(handler)
    return moved


__all__ = ["Display", "choose_mode", "elapsed_text", "stages", "wants_colour"]
