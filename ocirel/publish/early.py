"""Early uploads: each layer the builder finishes goes to the registry while the
builder still compresses the next one.

The builder writes a blob into its OCI layout under a temporary name and renames it
to ``blobs/sha256/<digest>`` once it is complete, so a file that shows up there is
final. A watcher thread lists that directory while the export runs and hands each new
compressed layer (gzip or zstd magic; never the config or the manifest, which are
JSON, nor the empty files :mod:`ocirel.publish.reuse` planted) to an upload pool. The
upload itself checks the registry first and sends ``?digest=``, which the registry
verifies, so an early upload can only put a correct blob, never a wrong image; a
failed one is simply done again by the normal upload.

A layer can go out sooner still, while the builder compresses it (``stream``): the
builder writes each blob into a temporary file (``oci-put-blob*``, containers/image's
OCI layout writer) at the layout's top and renames it once complete. A watched
temporary file that starts like a compressed layer is streamed to the registry as it
grows (:class:`GrowingFile`), as a registry push overlaps compression and upload;
when the file is renamed, its name is its digest, which the upload's final ``PUT``
names and the registry checks. A stream that fails for any reason falls back to the
upload of the finished file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from ocirel.errors import OcirelError
from ocirel.oci import Digest
from ocirel.reference import is_valid_digest

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
WORKERS = 3
#: gzip, zstd: the only blobs worth sending before the export ends
LAYER_MAGIC = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")

#: the temporary files containers/image's OCI layout writer puts blobs in
TEMPORARY_PREFIX = "oci-put-blob"

Upload = Callable[[Digest, Path, int], None]
#: streams ``body`` to the registry, asks the digest once it has ended, returns it
Stream = Callable[[IO[bytes], Callable[[], Digest]], Digest]


class EarlyUploads:
    """``with EarlyUploads(layout, upload, stream) as early: export()``; then
    ``early.started`` maps each digest sent early to its upload's future."""

    def __init__(
        self, layout: Path, upload: Upload, stream: Stream | None = None, *,
        poll: float = POLL_SECONDS,
    ) -> None:  # fmt: skip
        self._layout = layout
        self._blobs = layout / "blobs" / "sha256"
        self._upload = upload
        self._stream = stream
        self._poll = poll
        self._stop = threading.Event()
        self._failed = False
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ocirel-early")
        self.started: dict[Digest, Future[None]] = {}
        #: streams under way, by the inode of the file they read; temporary files seen
        self._streams: dict[int, Future[None]] = {}
        self._seen: set[str] = set()
        self._watcher = threading.Thread(target=self._watch, name="ocirel-watch", daemon=True)

    def __enter__(self) -> EarlyUploads:
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._failed = exc[0] is not None
        self._stop.set()
        self._watcher.join()
        if self._failed:  # the export failed (or Ctrl-C): drop what has not started
            for future in [*self.started.values(), *self._streams.values()]:
                future.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)
            return
        self._pool.shutdown(wait=False)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            self._scan()
        if not self._failed:  # streamed blobs renamed since the last look: name them
            self._scan(last=True)

    def _scan(self, *, last: bool = False) -> None:
        """Start streams and early uploads; ``last`` (the export has ended): only name
        the streams whose blob was renamed since (the rest is uploaded by the push,
        after the layout is checked)."""
        if self._stream is not None and not last:
            self._start_streams()
        for digest, path, size, inode in self._finished():
            streamed = self._streams.get(inode)
            if streamed is not None:
                log.debug("layer %s is written; it was streamed while the builder wrote it", digest)
                self.started[digest] = streamed
                continue
            if last:
                continue
            log.debug("layer %s is written; uploading it while the export goes on", digest)
            self.started[digest] = self._pool.submit(self._upload, digest, path, size)

    def _finished(self) -> Iterator[tuple[Digest, Path, int, int]]:
        with contextlib.suppress(OSError):
            for entry in os.scandir(self._blobs):
                digest = Digest("sha256:" + entry.name)
                if not is_valid_digest(digest) or digest in self.started:
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                size = entry.stat(follow_symlinks=False).st_size
                if size > 0 and _is_compressed_layer(Path(entry.path)):
                    yield digest, Path(entry.path), size, entry.inode()

    # ------------------------------------------------------------- streaming

    def _start_streams(self) -> None:
        """A stream for each new temporary file that holds the start of a layer."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self._layout):
                if entry.name in self._seen or not entry.name.startswith(TEMPORARY_PREFIX):
                    continue
                try:
                    handle = Path(entry.path).open("rb", buffering=0)  # noqa: SIM115
                except OSError:  # renamed meanwhile: the finished blob is uploaded instead
                    self._seen.add(entry.name)
                    continue
                try:
                    head = os.pread(handle.fileno(), 4, 0)
                    inode = os.fstat(handle.fileno()).st_ino
                except OSError:
                    handle.close()
                    raise
                if len(head) < 4 or not head.startswith(LAYER_MAGIC):
                    handle.close()
                    if len(head) >= 4:  # the config or the manifest: not worth a stream
                        self._seen.add(entry.name)
                    continue
                self._seen.add(entry.name)
                body = GrowingFile(handle, Path(entry.path), self._stop, self._poll)
                log.debug("streaming %s to the registry while the builder writes it", entry.name)
                self._streams[inode] = self._pool.submit(self._send_stream, body, inode)

    def _send_stream(self, body: GrowingFile, inode: int) -> None:
        """Stream ``body``; after a failure, upload the finished blob the usual way."""
        assert self._stream is not None
        try:
            self._stream(cast(IO[bytes], body), lambda: self._final(inode)[0])
        except (OcirelError, OSError) as exc:
            if self._stop.is_set() and self._failed:  # the export failed: no fallback upload
                return
            log.debug("streaming a layer failed (%s); uploading the finished blob", exc)
            body.wait_until_renamed()
            digest, path = self._final(inode)
            self._upload(digest, path, path.stat().st_size)
        finally:
            body.close()

    def _final(self, inode: int) -> tuple[Digest, Path]:
        """The digest and path the builder gave the blob written into ``inode``."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self._blobs):
                if entry.inode() == inode and is_valid_digest("sha256:" + entry.name):
                    return Digest("sha256:" + entry.name), Path(entry.path)
        raise OSError("the builder did not keep the blob it was writing")


class GrowingFile(io.RawIOBase):
    """A blob file the builder is still writing, read as it grows: a read waits for
    more bytes until the file has been renamed (complete: the builder renames it after
    its last write), then reads to its end. A read while the export has stopped and
    the file was never renamed fails (the builder died halfway)."""

    def __init__(self, handle: io.FileIO, temporary: Path, stopped: threading.Event,
                 poll: float) -> None:  # fmt: skip
        super().__init__()
        self._handle = handle
        self._temporary = temporary
        self._stopped = stopped
        self._poll = poll
        self._complete = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while True:
            count = self._handle.readinto(buffer)
            if count:
                return int(count)
            if self._complete:
                return 0
            if not self._temporary.exists():
                self._complete = True  # renamed: what was written before is all of it
            elif self._stopped.is_set():
                raise OSError(f"{self._temporary.name} was never finished")
            else:
                time.sleep(self._poll / 4)

    def wait_until_renamed(self) -> None:
        while self._temporary.exists() and not self._stopped.is_set():
            time.sleep(self._poll)

    def close(self) -> None:
        self._handle.close()
        super().close()


def _is_compressed_layer(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(LAYER_MAGIC)


def wait_for(started: dict[Digest, Future[None]], digest: Digest) -> bool:
    """Whether ``digest`` was uploaded early (waiting for it if still under way)."""
    future = started.get(digest)
    if future is None:
        return False
    try:
        future.result()
    except Exception:  # noqa: BLE001 - the normal upload does it again and reports
        return False
    return True
