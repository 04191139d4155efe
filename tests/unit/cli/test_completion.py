"""Shell completion (contrib/completion.md): the scripts the shells source, and
completions of commands and options, through the real console entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def ocirel(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocirel"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o default -F _ocirel_completion ocirel"), ("zsh", "#compdef ocirel"),
     ("fish", "complete --command ocirel")],
)  # fmt: skip
def test_each_shell_gets_a_script_to_source(shell: str, marker: str) -> None:
    result = ocirel({"_OCIREL_COMPLETE": f"source_{shell}"})
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout


def test_bash_completes_commands_and_options() -> None:
    commands = ocirel(
        {"_OCIREL_COMPLETE": "complete_bash", "COMP_WORDS": "ocirel pi", "COMP_CWORD": "1"}
    )
    assert commands.stdout.split() == ["pin"]
    options = ocirel(
        {"_OCIREL_COMPLETE": "complete_bash", "COMP_WORDS": "ocirel pin --he", "COMP_CWORD": "2"}
    )
    assert options.stdout.split() == ["--helm-digest-field", "--help"]
