"""ocirel's cache: which compressed blob each layer has, and where a registry holds it.

It lives in ``$OCIREL_CACHE_DIR``, else ``$XDG_CACHE_HOME/ocirel``, else
``~/.cache/ocirel``, under ``layers/<registry>/<diff-id hex>.json``. Each entry is a
few hundred bytes: the blob's digest, size and media type, and the repositories of
that registry it was seen in, most recent first. No image content is ever cached.

The cache is a hint, never trusted: every blob it names is checked against the
registry (``HEAD``, or a mount that the registry may refuse) before it is used, so
a stale, pruned or half-updated cache costs time, never a wrong image.

* **Bounded**: at most ``max_bytes`` (default 16 MiB, ``OCIREL_CACHE_MAX_SIZE``) of
  disk, counted as the blocks each file takes (a 300-byte entry takes a 4 KiB block on
  most filesystems), never less than its length; past it, the least recently used
  entries go (reading an entry marks it used).
* **Shared safely**: every write is a new file renamed into place, so a reader sees
  a whole entry or none; two publishes writing one entry at the same moment lose at
  most one repository name from it; an entry deleted under a reader is a miss.
* ``ocirel cache prune`` trims it to the cap (``--all``: empties it), and removes the
  temporary files of writes that never finished (a crashed or killed publish) once
  they are :data:`STALE_TMP_SECONDS` old; a live writer's lives for milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ocirel.errors import ConfigError
from ocirel.oci import Digest
from ocirel.publish.reuse import KnownBlob
from ocirel.reference import is_valid_digest

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: repositories remembered per blob
MAX_REPOSITORIES = 8
#: after a prune, the cache is at most this share of the cap (room before the next one)
PRUNE_TO = 0.8
#: a temporary file (``.*.tmp``) this old belongs to a write that will never finish
STALE_TMP_SECONDS = 3600.0


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("OCIREL_CACHE_DIR"):
        return Path(env["OCIREL_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "ocirel"


def max_bytes_from(environ: Mapping[str, str] | None = None) -> int:
    """The cap from ``OCIREL_CACHE_MAX_SIZE`` (bytes, or with a K/M/G suffix)."""
    text = (os.environ if environ is None else environ).get("OCIREL_CACHE_MAX_SIZE", "")
    return parse_size(text) if text.strip() else DEFAULT_MAX_BYTES


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (text[:-1], text[-1]) if text and text[-1] in "KMG" else (text, "")
    try:
        value = float(number) * units[unit]
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"OCIREL_CACHE_MAX_SIZE={text!r} is not a size", hint="use bytes or e.g. 16M, 1G"
        )
    return int(value)


@dataclass(frozen=True)
class Usage:
    entries: int
    bytes: int


@dataclass
class LayerCache:
    root: Path
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def default(cls) -> LayerCache:
        return cls(cache_root() / "layers", max_bytes_from())

    def _dir(self, registry: str) -> Path:
        return self.root / quote(registry, safe="")

    def _entry(self, registry: str, diff_id: str) -> Path | None:
        algorithm, _, hexpart = diff_id.partition(":")
        if algorithm != "sha256" or not is_valid_digest(diff_id):
            return None
        return self._dir(registry) / f"{hexpart}.json"

    # -------------------------------------------------------------- read

    def lookup(self, registry: str, diff_ids: Iterable[Digest]) -> dict[Digest, KnownBlob]:
        """The known blobs of ``diff_ids`` on ``registry``; misses and unreadable
        entries are left out. Each hit counts as a use."""
        found: dict[Digest, KnownBlob] = {}
        for diff_id in diff_ids:
            path = self._entry(registry, diff_id)
            blob = _read(path) if path is not None else None
            if blob is not None and path is not None:
                found[diff_id] = blob
                with contextlib.suppress(OSError):
                    os.utime(path)
        return found

    # ------------------------------------------------------------- write

    def learn(self, registry: str, known: Mapping[Digest, KnownBlob]) -> None:
        """Remember ``known`` (best effort: a cache that cannot be written is skipped)."""
        try:
            directory = self._dir(registry)
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            for diff_id, blob in known.items():
                path = self._entry(registry, diff_id)
                if path is not None:
                    _write(path, _merged(_read(path), blob))
            self.trim()
        except OSError:
            return

    # ------------------------------------------------------------- prune

    def usage(self) -> Usage:
        files = list(self._files())
        return Usage(sum(not f.temporary for f in files), sum(f.size for f in files))

    def trim(self) -> int:
        """Evict the least recently used entries once over the cap (stale temporary
        files first); the count of entries removed."""
        files = _without_stale(list(self._files()))
        total = sum(f.size for f in files)
        if total <= self.max_bytes:
            return 0
        return self._evict(files, total, int(self.max_bytes * PRUNE_TO))

    def prune(self, *, everything: bool = False) -> int:
        """Trim to :data:`PRUNE_TO` of the cap (``everything``: remove every entry),
        after removing stale temporary files; the count of entries removed."""
        files = _without_stale(list(self._files()))
        total = sum(f.size for f in files)
        return self._evict(files, total, 0 if everything else int(self.max_bytes * PRUNE_TO))

    def _evict(self, files: list[CacheFile], total: int, goal: int) -> int:
        """Remove entries, least recently used first, until ``total`` is at most
        ``goal``; temporary files are left to :meth:`prune` (they may be live)."""
        removed = 0
        for cached in sorted((f for f in files if not f.temporary), key=lambda f: f.last_use):
            if total <= goal:
                break
            with contextlib.suppress(FileNotFoundError):
                cached.path.unlink()
                removed += 1
            total -= cached.size
        return removed

    def _files(self) -> Iterator[CacheFile]:
        """Every entry and temporary file; files vanishing meanwhile are skipped."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for registry in os.scandir(self.root):
                if not registry.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(registry.path):
                    temporary = entry.name.startswith(".") and entry.name.endswith(".tmp")
                    if not (temporary or entry.name.endswith(".json")):
                        continue
                    if entry.is_file(follow_symlinks=False):
                        with contextlib.suppress(FileNotFoundError):
                            info = entry.stat(follow_symlinks=False)
                            yield CacheFile(
                                Path(entry.path), on_disk(info), info.st_mtime, temporary
                            )


@dataclass(frozen=True)
class CacheFile:
    """One file of the cache: its disk use, last use (mtime), and whether it is the
    temporary file of a write (renamed into place when the write finishes)."""

    path: Path
    size: int
    last_use: float
    temporary: bool = False


def _without_stale(files: list[CacheFile]) -> list[CacheFile]:
    """Remove the temporary files older than :data:`STALE_TMP_SECONDS` (left by a write
    that never finished: a crashed publish); the files that are left."""
    stale = time.time() - STALE_TMP_SECONDS
    kept = []
    for cached in files:
        if cached.temporary and cached.last_use < stale:
            with contextlib.suppress(FileNotFoundError):
                cached.path.unlink()
        else:
            kept.append(cached)
    return kept


def on_disk(info: os.stat_result) -> int:
    """The bytes a file takes on disk: its allocated blocks (512 bytes each, as
    ``st_blocks`` counts them), never less than its length."""
    blocks = getattr(info, "st_blocks", 0)
    return max(info.st_size, blocks * 512)


def _read(path: Path) -> KnownBlob | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        blob = KnownBlob(
            Digest(data["digest"]), int(data["size"]), str(data["mediaType"]),
            tuple(str(r) for r in data["repositories"]),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return blob if is_valid_digest(blob.digest) and blob.size >= 0 else None


def _merged(old: KnownBlob | None, new: KnownBlob) -> KnownBlob:
    repos = new.repositories
    if old is not None and old.digest == new.digest:
        repos = tuple(dict.fromkeys((*new.repositories, *old.repositories)))
    return KnownBlob(new.digest, new.size, new.media_type, repos[:MAX_REPOSITORIES])


def _write(path: Path, blob: KnownBlob) -> None:
    text = json.dumps(
        {"digest": blob.digest, "size": blob.size, "mediaType": blob.media_type,
         "repositories": list(blob.repositories)},
        separators=(",", ":"),
    )  # fmt: skip
    fd, name = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(name).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(name).unlink()
        raise
