"""Every command test runs in its own directory, with no OCIREL_* settings from outside
and no retries (a fault shows at once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("OCIREL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OCIREL_RETRIES", "0")
