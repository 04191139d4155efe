"""ocirel.fsutil: stage everything, then replace everything; a failure changes nothing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ocirel.fsutil import BatchWriteError, replace_all, write_atomic


def test_replace_all_writes_exact_bytes_and_keeps_modes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "sub" / "b.yaml"
    b.parent.mkdir()
    a.write_text("old a\n")
    a.chmod(0o640)
    b.write_text("old b\n")
    replace_all([(a, "new a\r\n"), (b, "néw b\n")])
    assert a.read_bytes() == b"new a\r\n"
    assert b.read_bytes() == "néw b\n".encode()
    assert stat.S_IMODE(a.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.yaml", "b.yaml", "sub"]


def test_a_file_that_cannot_be_staged_changes_no_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("old\n")
    unwritable = tmp_path / "missing-dir" / "x.yaml"
    with pytest.raises(BatchWriteError) as info:
        replace_all([(good, "new\n"), (unwritable, "new\n")], workers=1)
    assert info.value.path == unwritable
    assert info.value.replaced == ()
    assert good.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["good.yaml"]  # no temporary file left


def test_nothing_to_write() -> None:
    replace_all([])


def test_write_atomic_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    target.write_text("old\n")
    target.chmod(0o600)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_write_atomic_into_a_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing" / "file.json", "new\n")
