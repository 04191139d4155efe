"""The ``ocirel`` command line: the typer app, thin commands over the use cases.

One module per command group registers nothing itself; this module puts them on
the app (:func:`make_app`; ``app`` is the app with every command):

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
inside the commands so ``ocirel --version`` and ``--help`` stay fast, and a command's
module is imported only when that command is put on the app. Nothing in
ocirel imports this package except :mod:`ocirel.entry`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from ocirel import __version__
from ocirel.cli.output import EXIT_CODES, PUBLISH_EXIT_CODES, out, state


def _typer() -> typer.Typer:
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
    app.callback()(_main)
    return app


def _version_callback(value: bool) -> None:
    if value:
        out(f"ocirel {__version__}")
        raise typer.Exit(0)


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


def _publish(app: typer.Typer) -> None:
    from ocirel.cli import publish  # noqa: PLC0415

    app.command(epilog=PUBLISH_EXIT_CODES)(publish.publish)


def _versions(name: str) -> Callable[[typer.Typer], None]:
    def register(app: typer.Typer) -> None:
        from ocirel.cli import versions  # noqa: PLC0415

        function = getattr(versions, "next_version" if name == "next" else name)
        app.command(name, epilog=EXIT_CODES)(function)

    return register


def _show(app: typer.Typer) -> None:
    from ocirel.cli import show  # noqa: PLC0415

    app.command(epilog=EXIT_CODES)(show.show)


def _deploy(name: str) -> Callable[[typer.Typer], None]:
    def register(app: typer.Typer) -> None:
        from ocirel.cli import deploy  # noqa: PLC0415

        if name == "lock":
            app.add_typer(deploy.lock_app, name="lock")
        else:  # pin and lint say their own exit codes
            app.command(name)(getattr(deploy, name))

    return register


def _verify(app: typer.Typer) -> None:
    from ocirel.cli import verify  # noqa: PLC0415

    app.command()(verify.verify)  # it says its own exit codes


def _bundle(app: typer.Typer) -> None:
    from ocirel.cli import bundle  # noqa: PLC0415

    app.add_typer(bundle.bundle_app, name="bundle")


def _doctor(app: typer.Typer) -> None:
    from ocirel.cli import doctor  # noqa: PLC0415

    app.command(epilog=EXIT_CODES)(doctor.doctor)


def _cache(app: typer.Typer) -> None:
    from ocirel.cli import cache  # noqa: PLC0415

    app.add_typer(cache.cache_app, name="cache")


#: Each command (or group) and how it is put on the app, in the order of
#: ``ocirel --help``. A command's module is imported only when it is registered.
COMMANDS: dict[str, Callable[[typer.Typer], None]] = {
    "publish": _publish,
    "tags": _versions("tags"),
    "next": _versions("next"),
    "digest": _versions("digest"),
    "show": _show,
    "lock": _deploy("lock"),
    "pin": _deploy("pin"),
    "lint": _deploy("lint"),
    "verify": _verify,
    "bundle": _bundle,
    "doctor": _doctor,
    "cache": _cache,
}


def command_named(argv: Sequence[str]) -> str | None:
    """The command ``argv`` (without the program name) runs, when it names one.

    The app's own options are all flags, so the first word that is not an option is
    the command; ``None`` when there is none or it is not a command of ours (then click
    lists the commands, or says which one was meant).
    """
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def make_app(argv: Sequence[str] | None = None) -> typer.Typer:
    """The typer app: every command, or only the one ``argv`` names.

    Building a command means reading its function's signature and annotations, and
    importing its module: for all twelve that is a third of ``ocirel next --help``'s
    start-up (``bench/startup.py``). Help, usage and errors of the one command come
    out the same either way; ``ocirel --help`` and shell completion get every command.
    """
    app = _typer()
    only = command_named(argv) if argv is not None else None
    for name, register in COMMANDS.items():
        if only is None or name == only:
            register(app)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # every command: what tests and embedders drive
        return make_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["COMMANDS", "app", "command_named", "make_app"]
