"""Atomic file writes: one file (:func:`write_atomic`) or many at once (:func:`replace_all`).

Every write goes through :func:`stage`: the new text goes to a temporary file
``.<name>.XXXXXXXX.tmp`` in the target's directory, with the target's mode, owner,
group and extended attributes, and is fsynced. Then it is renamed over the target
(``os.replace``, atomic on POSIX) and the directory is fsynced (:func:`fsync_dir`).
A reader, or a crash at any moment, sees the old file or the new one, never a
half-written or empty one.

:func:`replace_all` works in two phases:

1. **stage** — every new text is staged. Staging runs on a few threads (fsync
   waits on the disk, not on Python). If any file cannot be staged (disk full,
   permissions), every temporary file is removed and no target has changed.
2. **commit** — each temporary file is renamed over its target, then each
   directory involved is fsynced once.

The renames of a batch are not one transaction: a crash in the middle of phase 2
can leave some files renamed and others not, each of them intact — running the same
command again finishes the job. One directory fsync per directory instead of one
per file is enough because the renames are only made durable together at the end.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STAGE_WORKERS = 8


class BatchWriteError(Exception):
    """A file could not be written. ``replaced`` lists targets already replaced."""

    def __init__(self, path: Path, reason: str, replaced: Sequence[Path] = ()) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason
        self.replaced = tuple(replaced)


def write_atomic(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` as UTF-8 via :func:`stage` and ``os.replace``.

    Raises :class:`OSError`; on any error the temporary file is removed and ``target``
    is left as it was.
    """
    tmp = stage(target, text)
    try:
        tmp.replace(target)
    except BaseException:
        _remove([tmp])
        raise
    fsync_dir(target.parent)


def stage(target: Path, text: str) -> Path:
    """A fsynced temporary file next to ``target`` holding ``text``, with ``target``'s mode.

    When ``target`` exists, the temporary file also gets its owner and group (run as
    root on someone else's file, the file stays theirs) and, best effort, its
    extended attributes (:data:`KEPT_XATTRS`: SELinux labels, ACLs, ``user.*``).
    Raises :class:`OSError`, after removing the temporary file.
    """
    try:
        info: os.stat_result | None = target.stat()
    except FileNotFoundError:
        info = None
    if info is not None:
        mode = stat.S_IMODE(info.st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            if info is not None:  # before fchmod: a chown clears set-user/group-ID bits
                _keep_owner(handle.fileno(), info)
            os.fchmod(handle.fileno(), mode)
            if info is not None:
                _copy_xattrs(target, handle.fileno())
            os.fsync(handle.fileno())
    except BaseException:
        _remove([tmp])
        raise
    return tmp


#: Extended attributes a rewritten file keeps (best effort): ``user.*``, ``security.*``
#: (SELinux, IMA, capabilities) and the POSIX ACL.
KEPT_XATTRS = ("user.", "security.", "system.posix_acl_access")


def _keep_owner(fd: int, info: os.stat_result) -> None:
    """Give ``fd`` the owner and group of ``info``; only the group if that is all we may."""
    with contextlib.suppress(OSError):
        try:
            os.fchown(fd, info.st_uid, info.st_gid)
        except PermissionError:  # not root: a group we are a member of can still be kept
            os.fchown(fd, -1, info.st_gid)


def _copy_xattrs(source: Path, fd: int) -> None:
    """Copy ``source``'s :data:`KEPT_XATTRS` to ``fd``; any it refuses are left out."""
    try:
        names = os.listxattr(source)
    except OSError:  # no xattr support on this file system
        return
    for name in names:
        if name.startswith(KEPT_XATTRS):
            with contextlib.suppress(OSError):
                os.setxattr(fd, name, os.getxattr(source, name))


def fsync_file(path: Path) -> None:
    """Flush the data of the file at ``path`` to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def flocked(path: Path, cannot_create: Callable[[OSError], Exception]) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created), held inside the ``with``; when
    the file cannot be created, ``cannot_create(error)`` is raised instead."""
    import fcntl  # noqa: PLC0415 - POSIX only, imported where used

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise cannot_create(exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def replace_all(files: Sequence[tuple[Path, str]], *, workers: int = STAGE_WORKERS) -> None:
    """Write each ``(target, text)`` as UTF-8: stage all, then replace all.

    ``target`` must be the real file (resolve symlinks first) so links stay links.
    Raises :class:`BatchWriteError`; when staging failed, nothing was changed.
    """
    if not files:
        return
    staged: list[Path | None] = [None] * len(files)

    def stage_one(index: int) -> None:
        target, text = files[index]
        try:
            staged[index] = stage(target, text)
        except OSError as exc:
            raise BatchWriteError(target, exc.strerror or str(exc)) from None

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(files)))) as pool:
            for future in [pool.submit(stage_one, index) for index in range(len(files))]:
                future.result()
    except BaseException:
        _remove(path for path in staged if path is not None)
        raise
    _commit([(target, tmp) for (target, _), tmp in zip(files, staged, strict=True) if tmp])


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


__all__ = ["BatchWriteError", "file_kind", "fsync_dir", "replace_all", "stage", "write_atomic"]


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def file_kind(mode: int, *, link: bool = False) -> str:
    """What a file that is not a regular one is, in words: ``"a FIFO (named pipe)"``,
    ``"a symbolic link to a socket"``."""
    what = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"a symbolic link to {what}" if link else what
