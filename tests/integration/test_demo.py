"""``scripts/demo`` as a user runs it: it works, says how it built, and leaves nothing running.

The demo starts a registry and builds with buildah; when it ends, no process of it may
remain (the registry above all), and its last lines say how to run the ``ocirel`` it
used. Its heading says "rootless" only when it runs rootless.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.builder, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> dict[int, str]:
    """Live processes whose command line contains ``text``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def test_the_demo_publishes_twice_and_leaves_no_process_behind(
    require_engine: Callable[[str], None], tmp_path: Path
) -> None:
    require_engine("buildah")
    require_engine("docker-registry")
    if not (REPO / ".venv" / "bin" / "ocirel").exists():
        pytest.skip("no .venv/bin/ocirel: the demo would create a venv (run scripts/test)")
    demo_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCIREL_")}
    env["DEMO_DIR"] = str(demo_dir)
    run = subprocess.run(
        [str(REPO / "scripts" / "demo")], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert (demo_dir / "work" / "ocirel.lock.json").is_file()
    assert '"tag": "v2"' in run.stdout, output
    if os.geteuid() == 0:
        assert "builds with buildah as root" in run.stdout, output
        assert "rootless" not in run.stdout, output
    else:
        assert "builds with buildah rootless" in run.stdout, output
    assert f"{REPO}/.venv/bin/ocirel --help" in run.stdout, output
    assert f". {REPO}/.venv/bin/activate" in run.stdout, output
    # the registry (and anything else started for the demo) is gone
    deadline = time.monotonic() + 10
    while processes_mentioning(str(demo_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(demo_dir)) == {}
