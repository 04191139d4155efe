"""Integration helpers: run the real ``ocirel`` CLI as a subprocess, isolated.

Each run gets its own HOME and XDG directories (so no credentials leak in from the
machine), no ``OCIREL_*`` variables unless a test passes them, and the working
directory the test chooses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_KEEP = (
    "PATH", "LANG", "LC_ALL", "TMPDIR", "TESTCONTAINERS_RYUK_DISABLED", "BUSYBOX",
    "DOCKER_HOST",  # scripts/test runs a private Docker engine
    "PYTHONPATH",  # a worktree under test, with the venv of another checkout
)  # fmt: skip


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def explain(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.returncode}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


OcirelRunner = Callable[..., Run]


@pytest.fixture
def ocirel_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    return home


@pytest.fixture
def ocirel(ocirel_home: Path) -> OcirelRunner:
    """``ocirel("publish", "--image", repo, str(ctx), cwd=ctx, env={...})`` → :class:`Run`."""

    def run(
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> Run:
        argv = [sys.executable, "-m", "ocirel", *args]
        proc = subprocess.run(
            argv, cwd=cwd, env=ocirel_env(ocirel_home, env), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        return Run(argv, proc.returncode, proc.stdout, proc.stderr)

    return run


def ocirel_env(home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an isolated ocirel run: its own HOME and XDG config, the
    variables in ``_KEEP``, the builders' storage locations, then ``env``."""
    base = {k: os.environ[k] for k in _KEEP if k in os.environ}
    base.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    # rootless builders keep their storage under XDG_DATA_HOME / the real home
    for key in ("XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        if key in os.environ:
            base[key] = os.environ[key]
    if os.geteuid() != 0 and "XDG_DATA_HOME" not in base:
        base["XDG_DATA_HOME"] = str(Path.home() / ".local" / "share")
    base.update(env or {})
    return base
