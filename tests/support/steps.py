"""Waiting for a build step to start, without waiting in vain.

A test that interrupts a long ``RUN`` step must first see the step running. When the
builder cannot start (no user namespaces, no storage, a missing engine) or exits
early, ocirel exits too, and waiting out the full timeout only hides the reason:
:func:`wait_for_step` fails at once with ocirel's output, which carries the
builder's stderr.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def wait_for_step(
    proc: subprocess.Popen[bytes],
    started: Callable[[], object],
    log: Path,
    *,
    timeout: float,
    interval: float = 0.2,
) -> object:
    """The first true value of ``started()``; fail if ``proc`` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = started()
        if value:
            return value
        returncode = proc.poll()
        if returncode is not None:
            pytest.fail(
                f"the builder exited before the step started (ocirel exit code {returncode});"
                f" its output:\n{_tail(log)}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"the step did not start within {timeout:g} s; ocirel's output so far:\n"
                f"{_tail(log)}",
                pytrace=False,
            )
        time.sleep(interval)


def _tail(log: Path, lines: int = 40) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError as exc:
        return f"(no output: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"
