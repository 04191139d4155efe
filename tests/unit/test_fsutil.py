"""ocirel.fsutil: stage everything, then replace everything; a failure changes nothing."""

from __future__ import annotations

import errno
import os
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


# ------------------------------------- issue 13 item 5: owner, group and extended attributes


def _xattrs_supported(path: Path) -> bool:
    try:
        os.setxattr(path, "user.probe", b"1")
    except OSError:
        return False
    os.removexattr(path, "user.probe")
    return True


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
@pytest.mark.parametrize("writer", ["write_atomic", "replace_all"])
def test_root_keeps_another_users_owner_group_and_mode(tmp_path: Path, writer: str) -> None:
    target = tmp_path / "deployment.yaml"
    target.write_text("old\n")
    os.chown(target, 1000, 1000)
    target.chmod(0o2640)  # set-group-ID too: a chown after fchmod would clear it
    if writer == "write_atomic":
        write_atomic(target, "new\n")
    else:
        replace_all([(target, "new\n")])
    info = target.stat()
    assert target.read_text() == "new\n"
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1000, 1000, 0o2640)


def test_extended_attributes_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "values.yaml"
    target.write_text("old\n")
    if not _xattrs_supported(target):
        pytest.skip("this file system has no user extended attributes")
    os.setxattr(target, "user.origin", b"chart/values.yaml")
    os.setxattr(target, "user.checksum", b"\x00\x01binary")
    replace_all([(target, "new\n")])
    assert {name: os.getxattr(target, name) for name in os.listxattr(target)} == {
        "user.origin": b"chart/values.yaml",
        "user.checksum": b"\x00\x01binary",
    }


def test_an_attribute_that_cannot_be_copied_does_not_fail_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "values.yaml"
    target.write_text("old\n")
    monkeypatch.setattr(os, "listxattr", lambda _path: ["security.selinux", "user.a"])
    monkeypatch.setattr(os, "getxattr", lambda _path, _name: b"x")

    def refuse(*_args: object) -> None:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "setxattr", refuse)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"


def test_a_user_who_may_not_chown_keeps_the_group_and_writes_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "values.yaml"
    target.write_text("old\n")
    calls: list[tuple[int, int]] = []

    def fchown(_fd: int, uid: int, gid: int) -> None:
        calls.append((uid, gid))
        if uid != -1:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "fchown", fchown)
    write_atomic(target, "new\n")
    info = target.stat()
    assert calls == [(info.st_uid, info.st_gid), (-1, info.st_gid)]
    assert target.read_text() == "new\n"
