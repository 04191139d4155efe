"""Console entry point, kept free of heavy imports.

``ocirel --version`` is answered here without importing typer; everything else goes
to the typer app in :mod:`ocirel.cli`. :func:`run` (the console script and
``python -m ocirel``) is :func:`main` and a quick exit.
"""

from __future__ import annotations

import os
import sys
import threading

from ocirel import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"ocirel {__version__}\n")
        return
    if "_OCIREL_COMPLETE" in os.environ:
        # Shell completion (contrib/completion.md): typer registers its shells only
        # when asked, so that every other start-up stays free of that cost. Where
        # typer defines it (typer.completion re-exports it implicitly); typer < 0.29.
        from typer._completion_classes import completion_init  # noqa: PLC0415

        completion_init()
        argv = None  # completion lists every command
    else:
        argv = sys.argv[1:]  # build only the command that runs (start-up time)
    from ocirel.cli import make_app  # noqa: PLC0415

    make_app(argv)(prog_name="ocirel")


def run() -> None:
    """:func:`main`, then leave without the interpreter's teardown.

    By its end a publish has loaded about 500 modules, and tearing them down took
    80-130 ms after the work was done (bench/README.md, publish_overhead). Everything
    ocirel writes is closed by then (the lockfile and layouts fsynced and renamed), so
    once stdout and stderr are flushed the process ends with :func:`os._exit`. When a
    non-daemon thread is still running, or a stream cannot be flushed (a closed pipe),
    the normal exit runs instead, exactly as before."""
    code: str | int | None = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")  # what sys.exit does with a message
        code = 1
    try:
        if "logging" in sys.modules:
            sys.modules["logging"].shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code or 0)
