"""``ocirel CMD`` builds only CMD (start-up time, ``bench/startup.py``), and what the
user sees is the same as from the app with every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import ocirel
from ocirel.cli import COMMANDS, command_named, make_app
from tests.unit.cli.test_help import ALL


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["next", "--help"], "next"),
        (["-v", "--debug", "publish", "."], "publish"),
        (["-q", "lock", "export"], "lock"),
        (["bundle", "import", "x"], "bundle"),
        (["--help"], None),
        ([], None),
        (["nxt"], None),  # a typo: click needs every command to suggest the right one
        (["--", "next"], None),
    ],
)
def test_command_named(argv: list[str], expected: str | None) -> None:
    assert command_named(argv) == expected


def test_only_the_named_command_is_built() -> None:
    group = typer.main.get_command(make_app(["-v", "next", "--help"]))
    assert list(group.commands) == ["next"]  # type: ignore[attr-defined]
    everything = typer.main.get_command(make_app())
    assert set(everything.commands) == set(COMMANDS)  # type: ignore[attr-defined]


@pytest.mark.parametrize("words", ALL, ids=" ".join)
def test_help_is_the_same_as_from_the_whole_app(words: tuple[str, ...]) -> None:
    argv = [*words, "--help"]
    alone = CliRunner().invoke(make_app(argv), argv)
    whole = CliRunner().invoke(make_app(), argv)
    assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output)


def test_usage_errors_are_the_same() -> None:
    argv = ["next", "--no-such-option"]
    alone = CliRunner().invoke(make_app(argv), argv)
    whole = CliRunner().invoke(make_app(), argv)
    assert alone.exit_code == whole.exit_code == 2
    assert alone.output == whole.output


def test_other_command_modules_are_not_imported() -> None:
    code = (
        "import sys; sys.argv = ['ocirel', 'next', '--help']\n"
        "from ocirel.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import json; print(json.dumps([m for m in sys.modules if m.startswith('ocirel.cli.')]))"
    )
    root = str(Path(ocirel.__file__).resolve().parents[1])  # this checkout's ocirel
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "ocirel.cli.versions" in loaded
    for other in ("publish", "deploy", "bundle", "doctor", "cache", "show"):
        assert f"ocirel.cli.{other}" not in loaded
