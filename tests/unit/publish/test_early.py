"""publish.early: layers the builder has written are uploaded while the export goes on."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO

import pytest

from ocirel.errors import RegistryError
from ocirel.oci import Digest
from ocirel.publish.early import EarlyUploads, wait_for


def _write_blob(blobs: Path, data: bytes) -> Digest:
    """As the builder does: a temporary file, renamed to its digest when complete."""
    digest = hashlib.sha256(data).hexdigest()
    tmp = blobs.parent.parent / "oci-put-blob123"
    tmp.write_bytes(data)
    tmp.rename(blobs / digest)
    return Digest("sha256:" + digest)


@pytest.fixture
def blobs(tmp_path: Path) -> Path:
    path = tmp_path / "layout" / "blobs" / "sha256"
    path.mkdir(parents=True)
    return path


def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)


def test_compressed_layers_are_uploaded_and_json_and_planted_files_are_not(blobs: Path) -> None:
    sent: list[tuple[Digest, int]] = []
    lock = threading.Lock()

    def upload(digest: Digest, path: Path, size: int) -> None:
        assert path.read_bytes()[:2] in (b"\x1f\x8b", b"\x28\xb5")
        with lock:
            sent.append((digest, size))

    with EarlyUploads(blobs.parent.parent, upload, poll=0.005) as early:
        layer = gzip.compress(b"layer" * 1000)
        first = _write_blob(blobs, layer)
        _write_blob(blobs, json.dumps({"config": {}}).encode())  # the config: JSON
        (blobs / ("a" * 64)).touch()  # a planted placeholder: empty
        (blobs / "not-a-digest").write_bytes(gzip.compress(b"x"))
        zstd_like = _write_blob(blobs, b"\x28\xb5\x2f\xfd" + b"z" * 100)
        _until(lambda: len(early.started) >= 2)
    assert set(early.started) == {first, zstd_like}
    assert wait_for(early.started, first)
    assert wait_for(early.started, zstd_like)
    assert sorted(sent) == sorted([(first, len(layer)), (zstd_like, 104)])


def test_a_failed_early_upload_is_left_to_the_normal_upload(blobs: Path) -> None:
    def upload(digest: Digest, path: Path, size: int) -> None:
        raise OSError("connection reset")

    with EarlyUploads(blobs.parent.parent, upload, poll=0.005) as early:
        digest = _write_blob(blobs, gzip.compress(b"data"))
        _until(lambda: digest in early.started)
    assert digest in early.started
    assert wait_for(early.started, digest) is False
    assert wait_for(early.started, Digest("sha256:" + "0" * 64)) is False


def test_a_failed_export_cancels_what_has_not_started(blobs: Path) -> None:
    gate = threading.Event()
    calls: list[Digest] = []

    def upload(digest: Digest, path: Path, size: int) -> None:
        calls.append(digest)
        gate.wait(5)

    watcher = EarlyUploads(blobs.parent.parent, upload, poll=0.005)

    def failing_export() -> None:
        with watcher:
            digests = [_write_blob(blobs, gzip.compress(bytes([n]) * 50)) for n in range(8)]
            _until(lambda: len(watcher.started) == len(digests))
            gate.set()
            raise RuntimeError("the builder failed")

    with pytest.raises(RuntimeError):
        failing_export()
    early, digests = watcher, list(watcher.started)
    assert len(digests) == 8  # every layer written was handed to the pool
    cancelled = [f for f in early.started.values() if f.cancelled()]
    assert len(calls) + len(cancelled) == len(digests)


def test_wait_for_waits_for_an_upload_under_way() -> None:
    future: Future[None] = Future()
    digest = Digest("sha256:" + "1" * 64)
    threading.Timer(0.05, lambda: future.set_result(None)).start()
    assert wait_for({digest: future}, digest) is True


# ----------------------------------------------------------------- streaming


def _write_slowly(layout: Path, data: bytes, *, rename: bool = True) -> Digest:
    """As containers/image writes a blob: a temporary file at the layout's top, written
    in pieces, then renamed to its digest under blobs/sha256."""
    temporary = layout / "oci-put-blob42"
    with temporary.open("wb") as handle:
        for start in range(0, len(data), len(data) // 5 + 1):
            handle.write(data[start : start + len(data) // 5 + 1])
            handle.flush()
            time.sleep(0.03)
    digest = hashlib.sha256(data).hexdigest()
    if rename:
        temporary.rename(layout / "blobs" / "sha256" / digest)
    return Digest("sha256:" + digest)


def test_a_layer_being_written_is_streamed_and_named_by_its_final_digest(blobs: Path) -> None:
    layout = blobs.parent.parent
    data = gzip.compress(os.urandom(300_000))
    streamed: list[tuple[bytes, Digest]] = []
    uploads: list[Digest] = []

    def stream(body: IO[bytes], digest: Callable[[], Digest]) -> Digest:
        received = body.read()  # to its end: after the rename
        streamed.append((received, digest()))
        return digest()

    with EarlyUploads(layout, lambda d, p, s: uploads.append(d), stream, poll=0.005) as early:
        written = _write_slowly(layout, data)
        _until(lambda: written in early.started)
    assert wait_for(early.started, written)
    assert streamed == [(data, written)]
    assert uploads == []  # not uploaded a second time once renamed


def test_a_failed_stream_uploads_the_finished_blob(blobs: Path) -> None:
    layout = blobs.parent.parent
    data = gzip.compress(os.urandom(100_000))
    uploads: list[tuple[Digest, Path, int]] = []

    def stream(body: IO[bytes], digest: Callable[[], Digest]) -> Digest:
        body.read(10)
        raise RegistryError("the registry broke the PATCH")

    def upload(digest: Digest, path: Path, size: int) -> None:
        uploads.append((digest, path, size))

    with EarlyUploads(layout, upload, stream, poll=0.005) as early:
        written = _write_slowly(layout, data)
        _until(lambda: written in early.started)
    assert wait_for(early.started, written)
    assert uploads == [(written, blobs / written.removeprefix("sha256:"), len(data))]


def test_a_stream_of_a_blob_the_builder_never_finished_fails(blobs: Path) -> None:
    layout = blobs.parent.parent
    seen: list[bytes] = []

    def stream(body: IO[bytes], digest: Callable[[], Digest]) -> Digest:
        seen.append(body.read())  # the export ends without a rename: the read fails
        return digest()

    early = EarlyUploads(layout, lambda d, p, s: None, stream, poll=0.005)
    with early:
        _write_slowly(layout, gzip.compress(os.urandom(50_000)), rename=False)
        _until(lambda: bool(early._streams))
    (future,) = early._streams.values()
    with pytest.raises(OSError, match="did not keep the blob"):
        future.result(timeout=5)
    assert seen == []
