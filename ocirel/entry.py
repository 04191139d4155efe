"""Console entry point, kept free of heavy imports.

``ocirel --version`` is answered here without importing typer; everything else goes
to the typer app in :mod:`ocirel.cli`.
"""

from __future__ import annotations

import os
import sys

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
