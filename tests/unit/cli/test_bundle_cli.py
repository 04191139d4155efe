"""``ocirel bundle export`` / ``import``: bad input fails clearly and writes nothing
(the round trips against real registries are in tests/integration/test_bundle.py)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.cli.invoke import run
from tests.unit.test_bundle_layout import make_layout


def test_export_without_a_lockfile_is_a_config_error(tmp_path: Path) -> None:
    result = run("bundle", "export", "-o", str(tmp_path / "out"), code=2)
    assert "no lockfile at" in result.output
    assert not (tmp_path / "out").exists()


def test_import_of_something_that_is_not_a_bundle_names_it(tmp_path: Path) -> None:
    result = run("bundle", "import", str(tmp_path / "nope"), "--to", "mirror.local:5000", code=1)
    assert f"no bundle at {tmp_path / 'nope'}" in result.output
    assert "hint:" in result.output
    assert not (tmp_path / "ocirel.lock.json").exists()


def test_import_to_an_invalid_target_is_refused(tmp_path: Path) -> None:
    make_layout(tmp_path / "layout")
    result = run("bundle", "import", str(tmp_path / "layout"), "--to", "Mirror/UP", code=2)
    assert "--to: invalid prefix 'Mirror/UP'" in result.output
    assert "hint: write REGISTRY[/PREFIX]" in result.output
