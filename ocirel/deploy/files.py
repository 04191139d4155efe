"""Finding the deployment YAML files to scan, and reading their exact text.

:func:`collect_paths` turns the command line's paths into files: files as given,
directories walked recursively for every name kustomize and compose recognise
(:data:`WALKED_NAMES`: ``Kustomization`` as well as ``*.yaml``/``*.yml``).
:func:`read_text` reads a file as exact bytes decoded as UTF-8 (no newline
translation), so CRLF line endings and a BOM survive pinning byte for byte.

Only regular files are read (a symbolic link to one is followed). A FIFO, a socket,
a device, a link to one of those or a dangling link is reported through
``on_skip`` and skipped, never opened: the walk classifies each candidate with one
``stat`` (the directory entry's type costs nothing) and :func:`read_text` opens with
``O_NONBLOCK`` and checks the opened file again, so an entry swapped for a FIFO
between the two cannot make it hang. A file larger than ``max_size`` is an error
naming the file, its size and ``--max-file-size``. A directory or file that cannot
be read is an error naming it, never a silent skip.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ocirel.errors import ManifestError
from ocirel.fsutil import file_kind

YAML_SUFFIXES = (".yaml", ".yml")
#: Names a walk takes besides ``*.yaml``/``*.yml``: kustomize's ``Kustomization``
#: (``kustomization.y[a]ml``, ``compose.y[a]ml`` and ``docker-compose.y[a]ml`` are
#: already ``*.yaml``/``*.yml``).
WALKED_NAMES = frozenset({"Kustomization"})
#: Default cap on one file's size; the largest real manifests (generated installs,
#: ``helm template`` of a platform) are around 50 MB.
DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024
MAX_SIZE_HINT = "raise the limit with --max-file-size (or max_file_size in ocirel.toml)"

#: Called with a skipped path and what it is (``"a FIFO (named pipe)"``).
OnSkip = Callable[[Path, str], None]


@dataclass(frozen=True)
class FileOptions:
    """How files are selected: the size cap, and who hears about skipped entries."""

    max_size: int = DEFAULT_MAX_FILE_SIZE
    on_skip: OnSkip | None = None

    def skip(self, path: Path, what: str) -> None:
        if self.on_skip is not None:
            self.on_skip(path, what)


def skip_message(path: Path, what: str) -> str:
    """The warning line for a skipped entry."""
    return f"{path}: skipped: {what}, not a regular file"


def read_text(path: Path) -> str:
    """The file's exact text: bytes decoded as UTF-8, without newline translation.

    Raises :class:`ManifestError` if ``path`` cannot be opened or is not a regular
    file (it is opened with ``O_NONBLOCK``: a FIFO never blocks the read).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise _cannot_read(path, exc) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ManifestError(f"{path}: {file_kind(info.st_mode)}, not a regular file")
        data = _read_all(fd, info.st_size)
    except OSError as exc:
        raise _cannot_read(path, exc) from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(f"{path}:{line}: not UTF-8 text") from None


def _read_all(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while chunk := os.read(fd, max(size + 1, 1 << 16)):
        chunks.append(chunk)
    return b"".join(chunks)


def _cannot_read(path: Path, exc: OSError, what: str = "") -> ManifestError:
    denied = exc.errno in (errno.EACCES, errno.EPERM)
    hint = "give ocirel read access to it, or leave it out" if denied else None
    return ManifestError(f"cannot read {what}{path}: {exc.strerror or exc}", hint=hint)


def collect_paths(paths: Iterable[Path], options: FileOptions | None = None) -> list[Path]:
    """The YAML files named by ``paths``: files as given, directories recursively.

    Walking a directory skips hidden entries (``.git``, ``.venv``, ``.gitlab-ci.yml``),
    does not follow links to directories and, everywhere, skips the ``templates/`` of
    a Helm chart (Go templates, not YAML). The result is deduplicated and in a stable
    order. Entries that are not regular files are passed to ``options.on_skip``.
    """
    options = options or FileOptions()
    found: list[Path] = []
    for path in paths:
        info = _stat(path, "")
        if info is None:
            raise ManifestError(f"{path}: no such file or directory")
        if stat.S_ISDIR(info.st_mode):
            found.extend(_walk_directory(path, options))
        elif _is_regular(path, info, options):
            found.append(path)
    unique: dict[str, Path] = {}
    for path in found:
        if not _is_chart_template(path):
            unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def _stat(path: Path | os.DirEntry[str], what: str) -> os.stat_result | None:
    """``path``'s status, following links; None if it (or a link's target) is missing."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _cannot_read(Path(path), exc, what) from None


def _is_regular(path: Path, info: os.stat_result, options: FileOptions) -> bool:
    """True for a regular file within the size cap; others are reported and skipped."""
    if not stat.S_ISREG(info.st_mode):
        options.skip(path, file_kind(info.st_mode, link=path.is_symlink()))
        return False
    if info.st_size > options.max_size:
        raise ManifestError(
            f"{path}: {_size(info.st_size)} is larger than the "
            f"{_size(options.max_size)} limit for one file",
            hint=MAX_SIZE_HINT,
        )
    return True


def _walk_directory(root: Path, options: FileOptions) -> Iterator[Path]:
    """Files first, then subdirectories, each sorted by name (``os.walk``'s order)."""
    pending = [root]
    while pending:
        directory = pending.pop()
        files, subdirs = _list_directory(directory)
        for entry in files:
            info = _stat(entry, "")
            path = Path(directory, entry.name)
            if info is None:  # a dangling link (a file deleted since the listing is gone)
                if entry.is_symlink():
                    options.skip(path, "a dangling symbolic link")
            elif not stat.S_ISDIR(info.st_mode) and _is_regular(path, info, options):
                yield path
        pending.extend(Path(directory, name) for name in reversed(subdirs))


def _list_directory(directory: Path) -> tuple[list[os.DirEntry[str]], list[str]]:
    """The candidate files (by name) and the subdirectories (not links) of ``directory``."""
    files: list[os.DirEntry[str]] = []
    subdirs: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.name)
                elif entry.name.endswith(YAML_SUFFIXES) or entry.name in WALKED_NAMES:
                    files.append(entry)
    except OSError as exc:
        raise _cannot_read(directory, exc, "directory ") from None
    files.sort(key=lambda entry: entry.name)
    subdirs.sort()
    return files, subdirs


def _size(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size} bytes"


def _is_chart_template(path: Path) -> bool:
    return any(
        parent.name == "templates" and (parent.parent / "Chart.yaml").is_file()
        for parent in (Path.cwd() / path).parents
    )


__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "WALKED_NAMES",
    "YAML_SUFFIXES",
    "FileOptions",
    "collect_paths",
    "read_text",
    "skip_message",
]
