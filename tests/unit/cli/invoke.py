"""Running a command through typer's CliRunner."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from ocirel.cli import app


def run(*args: str, code: int = 0) -> Result:
    """``ocirel ARGS…``; the exit code must be ``code`` (the output is the failure message)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}"
    return result
