"""Every command's --help says its exit codes (issue 16: exit codes documented in
--help and the README)."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main

from ocirel.cli import app
from tests.unit.cli.invoke import run


def commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            found += commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


ALL = commands(typer.main.get_command(app))


def test_every_command_is_listed() -> None:
    assert {("publish",), ("pin",), ("lock", "export"), ("cache", "prune")} <= set(ALL)


@pytest.mark.parametrize("words", ALL, ids=" ".join)
def test_help_ends_with_the_exit_codes(words: tuple[str, ...]) -> None:
    text = " ".join(run(*words, "--help").output.split())
    assert "Exit codes: 0 " in text
    assert " 1 " in text.split("Exit codes:")[-1]


def test_publish_names_the_race_exit_code() -> None:
    text = " ".join(run("publish", "--help").output.split())
    assert "4 every candidate tag was taken" in text
