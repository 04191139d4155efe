"""Console entry point, kept free of heavy imports.

``ocirel --version`` is answered here without importing typer; everything else goes
to the typer app in :mod:`ocirel.cli`.
"""

from __future__ import annotations

import sys

from ocirel import __version__


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(f"ocirel {__version__}\n")
        return
    from ocirel.cli import app  # noqa: PLC0415

    app(prog_name="ocirel")
