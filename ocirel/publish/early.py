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
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ocirel.oci import Digest
from ocirel.reference import is_valid_digest

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
WORKERS = 3
#: gzip, zstd: the only blobs worth sending before the export ends
LAYER_MAGIC = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd")

Upload = Callable[[Digest, Path, int], None]


class EarlyUploads:
    """``with EarlyUploads(layout, upload) as early: export()``; then ``early.started``
    maps each digest sent early to its upload's future."""

    def __init__(self, layout: Path, upload: Upload, *, poll: float = POLL_SECONDS) -> None:
        self._blobs = layout / "blobs" / "sha256"
        self._upload = upload
        self._poll = poll
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ocirel-early")
        self.started: dict[Digest, Future[None]] = {}
        self._watcher = threading.Thread(target=self._watch, name="ocirel-watch", daemon=True)

    def __enter__(self) -> EarlyUploads:
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watcher.join()
        if exc[0] is not None:  # the export failed (or Ctrl-C): drop what has not started
            for future in self.started.values():
                future.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)
            return
        self._pool.shutdown(wait=False)

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            for digest, path, size in self._finished():
                log.debug("layer %s is written; uploading it while the export goes on", digest)
                self.started[digest] = self._pool.submit(self._upload, digest, path, size)

    def _finished(self) -> Iterator[tuple[Digest, Path, int]]:
        with contextlib.suppress(OSError):
            for entry in os.scandir(self._blobs):
                digest = Digest("sha256:" + entry.name)
                if not is_valid_digest(digest) or digest in self.started:
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                size = entry.stat(follow_symlinks=False).st_size
                if size > 0 and _is_compressed_layer(Path(entry.path)):
                    yield digest, Path(entry.path), size


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
