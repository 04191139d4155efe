"""The configuration reference (README.md, "Configuration") is checked against the
code: every key ocirel reads is in the table, with the default the code has, and the
table names no key ocirel does not read."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from ocirel.backends.base import BuildEnv
from ocirel.coercers import COERCERS
from ocirel.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def table_rows() -> dict[str, str]:
    """key -> its default cell, from the table under '## Configuration'."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.startswith("| `"):
            continue
        keys = re.findall(r"`([a-z_]+)`", cells[0])
        defaults = [d.strip() for d in cells[1].split(",")]
        for index, key in enumerate(keys):
            rows[key] = defaults[index] if len(defaults) == len(keys) else cells[1]
    return rows


def test_every_key_is_documented_and_nothing_else() -> None:
    assert sorted(table_rows()) == sorted(COERCERS)


def _defaults() -> dict[str, object]:
    settings = Settings()
    values: dict[str, object] = {}
    for group in (settings.registry, settings.build, settings.publish, settings.deploy):
        values.update((f.name, getattr(group, f.name)) for f in fields(group))
    return values


@pytest.mark.parametrize(
    ("key", "written"),
    [
        ("scheme", "`counter`"),
        ("bump", "`patch`"),
        ("lockfile", "`ocirel.lock.json`"),
        ("backend", "`auto`"),
        ("isolation", "`chroot`"),
        ("reproducible", "`true`"),
        ("keep_image", "`false`"),
        ("insecure", "`false`"),
        ("helm_digest_field", "`auto`"),
        ("retries", "4"),
        ("max_attempts", "5"),
        ("connect_timeout", "10 s"),
        ("read_timeout", "60 s"),
        ("max_retry_wait", "30 s"),
        ("build_timeout", "3600 s"),
        ("push_timeout", "1800 s"),
        ("verify_timeout", "30 s"),
        ("settle_seconds", "0.02 s"),
        ("max_file_size", "`64M`"),
    ],
)
def test_the_documented_default_is_the_codes(key: str, written: str) -> None:
    assert table_rows()[key] == written
    value = _defaults()[key]
    text = written.strip("`").removesuffix(" s")
    if key == "max_file_size":
        assert value == 64 * 1024 * 1024
    elif key == "isolation":  # unset means chroot; doctor tells "unset" from "set"
        assert value is None
        assert BuildEnv().isolation == text
    elif isinstance(value, bool):
        assert str(value).lower() == text
    elif isinstance(value, int | float):
        assert float(value) == float(text)
    else:
        assert str(value) == text
