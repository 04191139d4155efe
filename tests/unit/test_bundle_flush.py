"""Blobs are fsynced off the download path, and named by their digest only once they
are on disk (:mod:`ocirel.bundle.flush`)."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ocirel import fsutil
from ocirel.bundle import flush
from ocirel.bundle.flush import Flusher
from ocirel.bundle.layout import LayoutWriter
from ocirel.oci import Digest


def digest_of(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


class HeldFsync:
    """``fsutil.fsync_file`` that records what it flushed and waits until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.flushed: list[str] = []
        self.real = fsutil.fsync_file

    def __call__(self, path: Path) -> None:
        self.flushed.append(path.name)
        assert self.release.wait(10)
        self.real(path)


def test_a_blob_gets_its_name_only_after_its_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldFsync()
    monkeypatch.setattr(fsutil, "fsync_file", held)
    writer = LayoutWriter(tmp_path / "layout")
    data = b"layer" * 1000
    writer.write(digest_of(data), len(data), [data])  # returns before the flush ends
    target = writer.path(digest_of(data))
    assert not target.exists()
    assert not writer.has(digest_of(data), len(data))
    held.release.set()
    writer.finish([], "{}\n")
    assert target.read_bytes() == data
    assert len(held.flushed) == 1
    assert ".partial-" in held.flushed[0]  # the temporary file, before its rename
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_finish_waits_for_every_flush_before_index_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldFsync()
    monkeypatch.setattr(fsutil, "fsync_file", held)
    writer = LayoutWriter(tmp_path / "layout")
    blobs = [bytes([n]) * 5000 for n in range(5)]
    for data in blobs:
        writer.write(digest_of(data), len(data), [data])
    finishing = threading.Thread(target=writer.finish, args=([], "{}\n"))
    finishing.start()
    finishing.join(0.3)
    assert finishing.is_alive()
    assert not (tmp_path / "layout" / "index.json").exists()
    held.release.set()
    finishing.join(10)
    assert (tmp_path / "layout" / "index.json").exists()
    assert all(writer.has(digest_of(data), len(data)) for data in blobs)
    assert len(held.flushed) == len(blobs)


def test_a_failed_fsync_is_raised_and_leaves_no_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsutil, "fsync_file", broken)
    writer = LayoutWriter(tmp_path / "layout")
    data = b"x" * 100
    writer.write(digest_of(data), len(data), [data])
    with pytest.raises(OSError, match="Input/output error"):
        writer.finish([], "{}\n")
    assert list(writer.path(digest_of(data)).parent.iterdir()) == []
    assert not (tmp_path / "layout" / "index.json").exists()


def test_a_temporary_layout_is_not_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(path: Path) -> None:
        raise AssertionError("fsync of a throw-away layout")

    monkeypatch.setattr(fsutil, "fsync_file", forbidden)
    data = b"y" * 100
    with LayoutWriter(tmp_path / "layout", durable=False) as writer:
        writer.write(digest_of(data), len(data), [data])
        assert writer.has(digest_of(data), len(data))  # renamed at once


def test_leaving_the_writer_on_an_error_waits_and_keeps_that_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldFsync()
    monkeypatch.setattr(fsutil, "fsync_file", held)
    data = b"z" * 100
    held.release.set()
    writer = LayoutWriter(tmp_path / "layout")

    def failing_export() -> None:
        with writer:
            writer.write(digest_of(data), len(data), [data])
            raise KeyError("the export failed")

    with pytest.raises(KeyError):
        failing_export()
    assert writer.has(digest_of(data), len(data))  # the flush finished before the exit
    Flusher().wait()  # nothing pending: a no-op, no pool started


def test_blobs_settled_from_many_threads_share_one_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Download workers hand blobs over at the same moment: one pool is made, so no
    pool (and its threads) is left behind, and every blob is in place after wait()."""
    made: list[object] = []
    real_pool = ThreadPoolExecutor

    def counting_pool(*args: Any, **kwargs: Any) -> Any:
        threading.Event().wait(0.01)  # widen the window between the check and the set
        pool = real_pool(*args, **kwargs)
        made.append(pool)
        return pool

    monkeypatch.setattr(flush, "ThreadPoolExecutor", counting_pool)
    flusher = Flusher()
    blobs = [(tmp_path / f"t{n}", tmp_path / f"b{n}") for n in range(8)]
    for tmp, _ in blobs:
        tmp.write_bytes(b"x")
    threads = [threading.Thread(target=flusher.settle, args=pair) for pair in blobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flusher.wait()
    assert len(made) == 1
    assert all(target.exists() and not tmp.exists() for tmp, target in blobs)
