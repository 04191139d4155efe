"""Replace many files at once: every file or none, each one atomically.

:func:`replace_all` works in two phases:

1. **stage** — each new text goes to a temporary file in its target's directory,
   with the target's mode, and is fsynced. Staging runs on a few threads (fsync
   waits on the disk, not on Python). If any file cannot be staged (disk full,
   permissions), every temporary file is removed and no target has changed.
2. **commit** — each temporary file is renamed over its target (``os.replace``,
   atomic on POSIX), then each directory involved is fsynced once.

What this buys, and what it does not: a reader, or a crash at any moment, sees every
file either whole-old or whole-new, never a half-written or empty one (the data is
on disk before the rename). The renames of a batch are not one transaction: a crash
in the middle of phase 2 can leave some files renamed and others not, each of them
intact — running the same command again finishes the job. One directory fsync per
directory instead of one per file is enough because the renames are only made
durable together at the end anyway.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ocirel.lockfile import fsync_dir

STAGE_WORKERS = 8


class BatchWriteError(Exception):
    """A file could not be written. ``replaced`` lists targets already replaced."""

    def __init__(self, path: Path, reason: str, replaced: Sequence[Path] = ()) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason
        self.replaced = tuple(replaced)


def replace_all(files: Sequence[tuple[Path, str]], *, workers: int = STAGE_WORKERS) -> None:
    """Write each ``(target, text)`` as UTF-8: stage all, then replace all.

    ``target`` must be the real file (resolve symlinks first) so links stay links.
    Raises :class:`BatchWriteError`; when staging failed, nothing was changed.
    """
    if not files:
        return
    staged: list[Path | None] = [None] * len(files)

    def stage(index: int) -> None:
        target, text = files[index]
        staged[index] = _stage(target, text)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(files)))) as pool:
            for future in [pool.submit(stage, index) for index in range(len(files))]:
                future.result()
    except BaseException:
        _remove(path for path in staged if path is not None)
        raise
    _commit([(target, tmp) for (target, _), tmp in zip(files, staged, strict=True) if tmp])


def _stage(target: Path, text: str) -> Path:
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as exc:
        raise BatchWriteError(target, exc.strerror or str(exc)) from None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise BatchWriteError(target, exc.strerror or str(exc)) from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
    except OSError as exc:
        _remove([tmp])
        raise BatchWriteError(target, exc.strerror or str(exc)) from None
    return tmp


def _commit(pairs: Sequence[tuple[Path, Path]]) -> None:
    replaced: list[Path] = []
    for index, (target, tmp) in enumerate(pairs):
        try:
            tmp.replace(target)
        except OSError as exc:
            _remove(t for _, t in pairs[index:])
            raise BatchWriteError(target, exc.strerror or str(exc), replaced) from None
        replaced.append(target)
    for directory in sorted({target.parent for target, _ in pairs}):
        fsync_dir(directory)


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


__all__ = ["BatchWriteError", "replace_all"]
