"""The ``ocirel`` command line: the typer app, thin commands over the use cases.

One module per command group registers nothing itself; this module puts them on
:data:`app`:

* :mod:`~ocirel.cli.publish` — ``publish``;
* :mod:`~ocirel.cli.versions` — ``tags``, ``next``, ``digest``;
* :mod:`~ocirel.cli.deploy` — ``pin``, ``lint``, ``verify``, ``lock export``;
* :mod:`~ocirel.cli.bundle` — ``bundle export``, ``bundle import``;
* :mod:`~ocirel.cli.doctor` — ``doctor``.

Each command turns options into settings (:mod:`~ocirel.cli.options`), makes one
use-case call — put together from settings by :mod:`~ocirel.cli.wiring` — and
renders the result through :mod:`~ocirel.cli.output`, the only place that prints
or chooses exit codes. Heavy imports (requests, the registry client, YAML) happen
inside the commands so ``ocirel --version`` and ``--help`` stay fast. Nothing in
ocirel imports this package except :mod:`ocirel.entry`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ocirel import __version__
from ocirel.cli import bundle, cache, deploy, doctor, publish, versions
from ocirel.cli.output import out, state

app = typer.Typer(
    name="ocirel",
    help="Release container images safely: rootless build, next unique version tag, "
    "push, verify, digest lockfile.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        out(f"ocirel {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="log registry requests and show tracebacks")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="show the version"
        ),
    ] = False,
) -> None:
    state["debug"] = debug
    _debug_logging(debug)


def _debug_logging(debug: bool) -> None:
    """``--debug``: ocirel's loggers (registry requests among them) write to stderr.

    The handler is ocirel's own, bound to the current stderr, rather than the root
    logger's: other libraries stay quiet, and an embedding program's logging setup
    (or a test runner's) neither swallows nor doubles these lines.
    """
    import logging  # noqa: PLC0415

    logger = logging.getLogger("ocirel")
    for old in [h for h in logger.handlers if getattr(h, "ocirel_debug", False)]:
        logger.removeHandler(old)
    if not debug:
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    handler.ocirel_debug = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


# The order here is the order of ``ocirel --help``.
app.command()(publish.publish)
app.command()(versions.tags)
app.command("next")(versions.next_version)
app.command()(versions.digest)
app.add_typer(deploy.lock_app, name="lock")
app.command()(deploy.pin)
app.command()(deploy.lint)
app.command()(deploy.verify)
app.add_typer(bundle.bundle_app, name="bundle")
app.command()(doctor.doctor)
app.add_typer(cache.cache_app, name="cache")

__all__ = ["app"]
