"""The lockfile on disk: read it, lock it, change it, replace it atomically.

Writes take an exclusive ``flock`` on a sibling ``<file>.lock``, re-read the file
under the lock, apply the change, write a temporary file in the same directory,
fsync it and ``os.replace`` it over the old one, so readers see the old or the new
file and never half of one; two writers never lose each other's entries. The file's
mode is kept, and when the path is a symlink its target is replaced, so the link
stays. A corrupt, truncated or unknown-schema file is an error and is never rewritten.

A writer killed outright (SIGKILL, power loss) between creating its temporary file
``.<file>.XXXXXXXX.tmp`` and renaming it cannot remove it; the lockfile itself is
intact. The next write removes such leftovers: it holds the lock, and every writer
creates its temporary file only while holding the lock, so none of them is in use.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from ocirel import fsutil
from ocirel.errors import LockfileError
from ocirel.lockfile.document import LockEntry, Lockfile, dumps, loads


def load(path: Path) -> Lockfile:
    """Read ``path``; a missing file is an empty lockfile.

    Only a regular file is read: a FIFO would block the read forever, a device or a
    socket is never a lockfile. The file is opened without blocking and checked again
    once open, so it cannot be swapped for a FIFO in between.
    """
    try:
        if not _is_regular(path):
            return Lockfile()
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            _refuse_special(path, os.fstat(handle.fileno()).st_mode)
            text = handle.read().decode("utf-8")
    except FileNotFoundError:
        return Lockfile()
    except UnicodeDecodeError:
        raise LockfileError(f"{path} is not UTF-8 text; it was left untouched") from None
    except OSError as exc:
        raise LockfileError(f"cannot read {path}: {exc.strerror}") from None
    return loads(text, where=str(path))


def _refuse_special(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = fsutil.file_kind(mode)
    raise LockfileError(
        f"{path} is not a regular file ({kind}); a lockfile must be a regular file, "
        "and nothing was read or written",
        hint="point --lockfile at a file (it is created if missing)",
    )


def _is_regular(path: Path) -> bool:
    """True for a regular file (symlinks followed), False when missing; refuse the rest."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    _refuse_special(path, mode)
    return True


def check_writable(path: Path) -> None:
    """Fail now, not after a push, when :func:`update` could not write ``path``: the
    file must be a regular file (or missing), its ``.lock`` sibling must open for
    writing, and its directory must take a new (temporary) file. The probe is a real
    create and unlink, so it holds for root (who ignores permissions but not a
    read-only file system or a missing directory) and for everyone else alike."""
    target = _real_target(path)
    with contextlib.suppress(OSError):  # a missing or unusable directory: the probe says
        _is_regular(target)
    lock_path = target.with_name(target.name + ".lock")
    if lock_path.exists():
        try:
            os.close(os.open(lock_path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC))
        except OSError as exc:
            raise LockfileError(
                f"cannot open lock file {lock_path}: {exc.strerror}; {target} could not be updated",
                hint="remove it or fix its permissions, or choose another --lockfile",
            ) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise LockfileError(
            f"cannot write {target}: cannot create a file in {target.parent}: {_reason(exc)}",
            hint="choose a --lockfile in a directory you can write, or fix its permissions",
        ) from None
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):  # a writer under the lock may remove it
        Path(probe).unlink()


def _locked(target: Path) -> contextlib.AbstractContextManager[None]:
    lock_path = target.with_name(target.name + ".lock")
    return fsutil.flocked(
        lock_path, lambda exc: LockfileError(f"cannot create lock file {lock_path}: {exc.strerror}")
    )


def _real_target(path: Path) -> Path:
    """Where to write: the symlink's final target, so the link itself survives."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def update(path: Path, change: Callable[[Lockfile], Lockfile]) -> Lockfile:
    """Apply ``change`` to the lockfile at ``path`` under its lock and write it atomically."""
    target = _real_target(path)
    with _locked(target):
        _remove_stale_temp_files(target)
        current = load(target)
        new = change(current)
        text = dumps(new)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            return new
        write_atomic(target, text)
        return new


def _remove_stale_temp_files(target: Path) -> None:
    """Remove temporary files that killed writers left next to ``target``.

    Call only under the lock: then no live writer owns a file of this pattern (the
    ``tempfile.mkstemp`` name :func:`write_atomic` uses: 8 random ``[a-z0-9_]``).
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for item in entries:
            if pattern.fullmatch(item.name) and item.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    Path(item.path).unlink()


def upsert(path: Path, entry: LockEntry) -> Lockfile:
    """Insert or replace ``entry``; entries for other names are kept."""
    return update(path, lambda lock: lock.with_entry(entry))


def write_atomic(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` via a fsynced temporary file and ``os.replace``.

    On any error the temporary file is removed and ``target`` is left as it was.
    """
    try:
        fsutil.write_atomic(target, text)
    except OSError as exc:
        raise LockfileError(
            f"cannot write {target}: {_reason(exc)}; the old file is unchanged"
        ) from None


def _reason(exc: OSError) -> str:
    return "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
