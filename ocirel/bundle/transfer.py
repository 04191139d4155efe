"""Moving blobs: ranged downloads, verified uploads, a worker pool, progress.

The registry client reads a reply whole, so a large blob is downloaded in ranges of
:data:`RANGE_SIZE` bytes (``Range: bytes=a-b``, answered ``206`` by every registry
that serves blobs from files or object storage): memory stays bounded, and each piece
is hashed as it arrives (:meth:`LayoutWriter.write` checks the digest before the file
is kept). A registry that ignores ``Range`` (answers ``200`` with the whole blob) is
detected on the first range, and the blob is then fetched in one reply.

Uploads read the bundle through :class:`VerifyingReader`, which refuses to hand over
the last bytes of a blob whose content does not match its digest, so the registry
never completes a tampered upload.
"""

from __future__ import annotations

import hashlib
import io
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, TextIO, TypeVar

from ocirel.bundle.layout import Readable
from ocirel.errors import DigestMismatchError, RegistryError
from ocirel.oci import Digest
from ocirel.reference import Reference
from ocirel.registry import Registry
from ocirel.transport import raise_for_status

RANGE_SIZE = 32 * 1024 * 1024
WORKERS = 4

T = TypeVar("T")


def download(registry: Registry, repo: Reference, digest: Digest, size: int) -> Iterator[bytes]:
    """The bytes of blob ``digest`` of ``repo``, in ranges (the caller verifies them)."""
    path = f"/v2/{repo.repository}/blobs/{digest}"
    scope = f"repository:{repo.repository}:pull"
    if size <= RANGE_SIZE:
        yield from download_whole(registry, repo, digest, size)
        return
    start = 0
    while start < size:
        end = min(start + RANGE_SIZE, size) - 1
        try:
            reply = registry.transport.request(
                "GET", repo.registry, path, scope=scope,
                headers={"Range": f"bytes={start}-{end}"}, max_body=end - start + 1,
            )  # fmt: skip
        except RegistryError as exc:
            if start or exc.status != 200:
                raise
            # the whole blob instead of a range: a registry that ignores Range; take it whole
            yield from download_whole(registry, repo, digest, size)
            return
        raise_for_status(reply, what=f"downloading blob {digest[:19]} of {repo.name}", ok=(206,))
        if len(reply.body) != end - start + 1:
            raise RegistryError(
                f"{repo.registry} answered bytes {start}-{end} of blob {digest[:19]} with "
                f"{len(reply.body)} bytes",
                temporary=True,
            )
        yield reply.body
        start = end + 1


def download_whole(
    registry: Registry, repo: Reference, digest: Digest, size: int
) -> Iterator[bytes]:
    """The blob in one reply (held in memory: for small blobs, and for registries
    that answer a range request with the whole blob)."""
    reply = registry.transport.request(
        "GET", repo.registry, f"/v2/{repo.repository}/blobs/{digest}",
        scope=f"repository:{repo.repository}:pull", max_body=size,
    )  # fmt: skip
    raise_for_status(reply, what=f"downloading blob {digest[:19]} of {repo.name}")
    yield reply.body


class VerifyingReader(io.RawIOBase):
    """Reads ``size`` bytes of ``handle`` and checks them against ``digest`` before the
    last byte is returned: a mismatch raises :class:`DigestMismatchError`, so an upload
    fed from here never completes with the wrong content. ``len()`` is ``size``."""

    def __init__(self, handle: Readable, digest: Digest, size: int, what: str) -> None:
        super().__init__()
        self._handle, self._digest, self._size, self._what = handle, digest, size, what
        self._hasher = hashlib.sha256()
        self._position = 0

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._position)
        if want <= 0:
            return 0
        got = int(self._handle.readinto(view[:want]) or 0)
        if not got:
            self._refuse(f"ends after {self._position} of {self._size} bytes")
        self._hasher.update(view[:got])
        self._position += got
        if self._position == self._size:
            actual = "sha256:" + self._hasher.hexdigest()
            if actual != self._digest:
                self._refuse(f"hashes to {actual[:19]}…")
        return got

    def _refuse(self, problem: str) -> None:
        raise DigestMismatchError(
            f"{self._what}: blob {self._digest} {problem}; the bundle was altered or "
            "damaged, and nothing was tagged",
            hint="export the bundle again from the source registry",
        )

    def close(self) -> None:
        self._handle.close()
        super().close()


def run_all(work: Callable[[T], None], items: Iterable[T], workers: int = WORKERS) -> None:
    """``work(item)`` for every item on a thread pool; the first failure cancels what
    has not started and is raised once the running ones end."""
    todo = list(items)
    if not todo:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))))
    futures = [pool.submit(work, item) for item in todo]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if not f.cancelled() and f.exception() is not None]
        if failed:
            error = failed[0].exception()
            assert error is not None
            raise error
    finally:  # also on Ctrl-C in this thread: nothing new starts, the running ones end
        pool.shutdown(wait=True, cancel_futures=True)


class Progress:
    """Blobs and bytes moved, and the rate: one rewritten line on a terminal, a plain
    line per blob elsewhere (a CI log). Thread-safe. ``verb`` is "uploaded" or
    "downloaded".

    With ``live`` the summary line goes there instead, after each blob (the CLI's live
    display shows it on its stage line) and nothing is written to ``stream``."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        live: Callable[[str], None] | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = live
        self.tty = live is None and (self.stream.isatty() if tty is None else tty)
        self._lock = threading.Lock()
        self.total_blobs = self.total_bytes = 0
        self.blobs = self.bytes = self.moved = self.moved_bytes = self.skipped = 0
        self._start = time.monotonic()
        self._last = 0.0

    def start(self, blobs: int, size: int) -> None:
        with self._lock:
            self.total_blobs, self.total_bytes = blobs, size
            self._start = time.monotonic()

    def blob(self, digest: str, size: int, *, moved: bool, verb: str) -> None:
        """One blob is in place: ``moved`` (its bytes were sent) or already there."""
        with self._lock:
            self.blobs += 1
            self.bytes += size
            self.moved += moved
            self.moved_bytes += size if moved else 0
            self.skipped += not moved
            if self.live is not None:
                self.live(self.line())
            elif self.tty:
                now = time.monotonic()
                if now - self._last >= 0.1 or self.blobs == self.total_blobs:
                    self._last = now
                    self.stream.write("\r" + self.line() + "\033[K")
                    self.stream.flush()
            else:
                what = verb if moved else "already there"
                self.stream.write(f"{what}: {digest[:19]} ({human(size)}) [{self.line()}]\n")

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-6)
        return (
            f"blobs {self.blobs}/{self.total_blobs}, {human(self.bytes)}/"
            f"{human(self.total_bytes)}, {human(self.moved_bytes / elapsed)}/s"
        )

    def done(self) -> None:
        if self.tty and self.blobs:
            self.stream.write("\n")
            self.stream.flush()


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


__all__ = ["RANGE_SIZE", "Progress", "VerifyingReader", "download", "human", "run_all"]
