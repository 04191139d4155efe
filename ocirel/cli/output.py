"""What the user sees: stdout for results, stderr for progress, and the one error handler.

Every command prints through :func:`out`, :func:`out_json`, :func:`write` (results,
on stdout) and :func:`err` (progress, warnings, errors, on stderr, redacted), and
runs under :func:`handle_errors`, which maps exceptions to exit codes: an
:class:`~ocirel.errors.OcirelError` to its own (1, or 2 for configuration), Ctrl-C
to 130, a terminating signal to 128 + its number, anything else to 3.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ocirel.errors import CommandError, OcirelError

F = TypeVar("F", bound=Callable[..., Any])

#: The exit codes every command shares, at the end of each ``--help`` (README: Exit codes).
EXIT_CODES = (
    "Exit codes: 0 success; 1 an error (the message says what to do); 2 bad usage "
    "or configuration; 3 a bug in ocirel (--debug shows the traceback); 130/143 "
    "interrupted/terminated."
)
PUBLISH_EXIT_CODES = EXIT_CODES + (
    " 4 every candidate tag was taken by other publishers (--max-attempts), or --tag lost a race."
)

#: set by ``--debug``, ``-q`` and ``-v`` (the app's callback) before any command runs
state: dict[str, bool] = {"debug": False, "quiet": False, "verbose": False}


def note(message: str) -> None:
    """A progress or summary line on stderr; ``-q`` leaves it out (never a warning)."""
    if not state["quiet"]:
        err(message)


def err(message: str) -> None:
    from ocirel.redact import redact  # noqa: PLC0415

    sys.stderr.write(redact(message) + "\n")
    sys.stderr.flush()


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def out_json(data: object) -> None:
    out(json.dumps(data, indent=2, sort_keys=True))


def write(text: str) -> None:
    """Write ``text`` to stdout exactly (it carries its own newlines)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def render_error(exc: OcirelError) -> None:
    err(f"error: {exc}")
    if isinstance(exc, CommandError):
        if exc.stderr_tail:
            err("--- last output ---\n" + exc.stderr_tail.rstrip() + "\n---")
        if state["debug"] and exc.argv:
            err("command: " + " ".join(exc.argv))
    if exc.hint:
        err(f"hint: {exc.hint}")


def handle_errors(func: F) -> F:
    """The one error handler: exceptions → message and exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ocirel.runner import Interrupted, terminating_signals_raise  # noqa: PLC0415

        try:
            with terminating_signals_raise():
                return func(*args, **kwargs)
        except typer.Exit:
            raise
        except OcirelError as exc:
            render_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None
        except Interrupted as exc:
            err(f"terminated by signal {exc.signum}")
            raise typer.Exit(128 + exc.signum) from None
        except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into exit 3
            if state["debug"]:
                import traceback  # noqa: PLC0415

                traceback.print_exc()
            err(f"internal error: {type(exc).__name__}: {exc}")
            err("hint: this is a bug in ocirel; run with --debug for the traceback and report it")
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]
