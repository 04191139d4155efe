"""The ``ocirel`` command line: the typer app, thin commands over the use cases.

One module per command group registers nothing itself; this module puts them on
:data:`app`:

* :mod:`~ocirel.cli.publish` — ``publish``;
* :mod:`~ocirel.cli.versions` — ``tags``, ``next``, ``digest``;
* :mod:`~ocirel.cli.show` — ``show``;
* :mod:`~ocirel.cli.deploy` — ``pin``, ``lint``, ``lock export``;
* :mod:`~ocirel.cli.verify` — ``verify``;
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
from ocirel.cli import bundle, cache, deploy, doctor, publish, show, verify, versions
from ocirel.cli.output import EXIT_CODES, PUBLISH_EXIT_CODES, out, state

app = typer.Typer(
    name="ocirel",
    help="Release container images safely: rootless build, next unique version tag, "
    "push, verify, digest lockfile.",
    no_args_is_help=True,
    epilog="Each command's --help ends with its exit codes; the README has the table.",
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
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="also log each builder command and how long it took"),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="only results, warnings and errors: no progress lines, no builder output",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="show the version"
        ),
    ] = False,
) -> None:
    if quiet and (verbose or debug):
        raise typer.BadParameter("--quiet cannot go with --verbose or --debug")
    state.update(debug=debug, verbose=verbose or debug, quiet=quiet)
    # The runner is imported only when it must be told (its subprocess machinery costs
    # start-up time): to go quiet, or to speak again in a process that ran -q before.
    if quiet or "ocirel.runner" in sys.modules:
        from ocirel import runner  # noqa: PLC0415

        runner.set_echo(not quiet)
    _logging("debug" if debug else "verbose" if verbose else None)


def _logging(level: str | None) -> None:
    """``--debug``/``-v``: ocirel's loggers write to stderr (``-v``: each builder
    command and its time; ``--debug``: registry requests too).

    The handler is ocirel's own, bound to the current stderr, rather than the root
    logger's: other libraries stay quiet, and an embedding program's logging setup
    (or a test runner's) neither swallows nor doubles these lines.
    """
    if level is None and "logging" not in sys.modules:
        return  # nothing was set up in this process: spare the import (start-up time)
    import logging  # noqa: PLC0415

    logger = logging.getLogger("ocirel")
    for old in [h for h in logger.handlers if getattr(h, "ocirel_debug", False)]:
        logger.removeHandler(old)
    if level is None:
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{level}: %(name)s: %(message)s"))
    handler.ocirel_debug = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if level == "debug" else logging.INFO)
    logger.propagate = False


# The order here is the order of ``ocirel --help``.
app.command(epilog=PUBLISH_EXIT_CODES)(publish.publish)
app.command(epilog=EXIT_CODES)(versions.tags)
app.command("next", epilog=EXIT_CODES)(versions.next_version)
app.command(epilog=EXIT_CODES)(versions.digest)
app.command(epilog=EXIT_CODES)(show.show)
app.add_typer(deploy.lock_app, name="lock")
app.command()(deploy.pin)  # pin, lint and verify say their own exit codes
app.command()(deploy.lint)
app.command()(verify.verify)
app.add_typer(bundle.bundle_app, name="bundle")
app.command(epilog=EXIT_CODES)(doctor.doctor)
app.add_typer(cache.cache_app, name="cache")

__all__ = ["app"]
