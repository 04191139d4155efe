"""Scan deployment YAML for image references: one text, one file, or many files in parallel.

Approach: *locate with a parser, edit the text*. :mod:`ocirel.deploy.compose` composes
each file into nodes (:mod:`ocirel.deploy.nodes`), one document at a time (libyaml,
ruamel.yaml where libyaml refuses): every scalar node carries the character offsets
of its source text, its quoting style, and anchors/aliases resolve to the very same
node. The recognisers (:mod:`ocirel.deploy.kinds`) turn those into occurrences and
sites (:mod:`ocirel.deploy.sites`); :mod:`ocirel.deploy.splice` later builds small
edits from the offsets and splices them into the original string. Nothing is ever
re-dumped, so comments, key order, quoting, indentation, flow style, anchors, CRLF
line endings, a BOM and every unrelated byte stay as they were. Files are read as
exact bytes decoded as UTF-8 (no newline translation).

A file that is not valid YAML is a :class:`~ocirel.errors.ManifestError` naming file,
line and column.

Large files: only one document's nodes are alive at a time, and a Kubernetes document
that cannot hold an image (no container key in its text: CRDs, RBAC, ConfigMaps) is
not walked, so a 50 MB ``install.yaml`` costs little more than libyaml's parse.

Many files: with libyaml a tree of 1,000 manifests of 30 lines costs about 0.6 s of
reading and parsing in one process (ruamel.yaml alone took 2-3 ms per file), so the
pool pays off only with several CPUs. :func:`scan_files` forks a small pool
(``fork``: the children inherit the imported modules, so a worker starts in
milliseconds) and hands it chunks of paths; below
:data:`PARALLEL_THRESHOLD` files it scans in this process, where forking would cost
more than it saves. Results come back as they are ready, through ``on_file``, so a
caller can start work on a file (registry lookups for its references) while others
are still being parsed. Where no process pool can be made (no ``fork``, no
``/dev/shm``), files are scanned in this process. The returned list is in the order
of ``paths``, whatever order the workers finished in. A file that cannot be read or
parsed does not stop the others: every error is collected and one
:class:`~ocirel.errors.ManifestError` names the first (in path order) and lists the
rest in its hint.

Workers ignore SIGINT and take the default action on SIGTERM/SIGHUP: Ctrl-C reaches
the parent, which shuts the pool down.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ocirel.deploy.compose import compose
from ocirel.deploy.files import read_text
from ocirel.deploy.helm import HelmOptions, helm_file
from ocirel.deploy.kinds import CONTAINER_KEYS, DocumentScanner, classify, kind_from_filename
from ocirel.deploy.nodes import Node
from ocirel.deploy.sites import ImageOccurrence, ManifestKind, Skipped
from ocirel.errors import ManifestError

#: Fewer files than this are scanned in the calling process.
PARALLEL_THRESHOLD = 48
#: Paths per task handed to a worker: small enough to balance, large enough to amortize.
CHUNK_SIZE = 16
MAX_WORKERS = 8


@dataclass(frozen=True)
class ScannedFile:
    """One scanned file: its exact text and what was found in it."""

    path: str
    text: str
    occurrences: tuple[ImageOccurrence, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    file: Path | None = None


def scan_text(
    text: str,
    *,
    filename: str = "<string>",
    kind: ManifestKind | None = None,
    file: Path | None = None,
    helm: HelmOptions | None = None,
) -> ScannedFile:
    """Parse ``text`` once and find every image reference in it.

    ``filename`` is used for messages and to recognise ``kustomization.yaml`` and
    ``values*.yaml``; ``kind`` forces the kind of every document. ``helm`` says where a
    Helm values file's digests go; its chart is looked for next to ``file``.
    """
    hint = kind or kind_from_filename(Path(filename).name)
    values = helm_file(helm or HelmOptions(), file) if hint is ManifestKind.HELM else None

    def scan(documents: Iterable[Node]) -> DocumentScanner:
        scanner = DocumentScanner(text, filename, values)
        for doc in documents:
            doc_kind = classify(doc, hint)
            if doc_kind is not None and not _cannot_hold_images(text, doc, doc_kind):
                scanner.scan_document(doc, doc_kind)
        return scanner

    scanner = compose(text, filename, scan)
    return ScannedFile(
        path=filename,
        text=text,
        occurrences=tuple(sorted(scanner.occurrences, key=lambda o: (o.line, o.column))),
        skipped=tuple(sorted(scanner.skipped, key=lambda s: (s.line, s.column))),
        file=file,
    )


def _cannot_hold_images(text: str, doc: Node, kind: ManifestKind) -> bool:
    """A Kubernetes document whose text has no container key cannot hold an image.

    Kubernetes images are found only under ``containers``, ``initContainers`` or
    ``ephemeralContainers``; a key spells one of them in the document's own text (an
    alias points into the same document) unless it is written with escapes, which
    need a backslash. So a document (a CustomResourceDefinition with its long schema,
    a ConfigMap, RBAC) that spells none of them and has no ``\\`` is not walked.
    """
    if kind is not ManifestKind.KUBERNETES:
        return False
    start, end = doc.start_mark.index, doc.end_mark.index
    return text.find("\\", start, end) < 0 and not any(
        text.find(key, start, end) >= 0 for key in CONTAINER_KEYS
    )


def scan_file(
    path: Path, *, kind: ManifestKind | None = None, helm: HelmOptions | None = None
) -> ScannedFile:
    """Read ``path`` as exact UTF-8 text (CRLF kept) and scan it."""
    return scan_text(read_text(path), filename=str(path), kind=kind, file=path, helm=helm)


@dataclass(frozen=True, slots=True)
class _Failure:
    """A :class:`ManifestError` in a form that survives pickling (its hint included)."""

    message: str
    hint: str | None


_Outcome = ScannedFile | _Failure


def scan_files(
    paths: Sequence[Path],
    *,
    kind: ManifestKind | None = None,
    on_file: Callable[[ScannedFile], None] | None = None,
    workers: int | None = None,
    helm: HelmOptions | None = None,
) -> list[ScannedFile]:
    """Scan every path; raise one :class:`ManifestError` if any file is bad.

    ``on_file`` is called in this process (never concurrently) once per good
    file, as soon as its scan is back. ``workers`` defaults to the CPUs this process
    may use; 1 forces a scan in this process.
    """
    count = worker_count(len(paths), workers)
    outcomes: list[_Outcome | None] = [None] * len(paths)

    def deliver(index: int, outcome: _Outcome) -> None:
        outcomes[index] = outcome
        if on_file is not None and isinstance(outcome, ScannedFile):
            on_file(outcome)

    pool = _make_pool(count) if count > 1 else None
    if pool is None:
        for index, path in enumerate(paths):
            deliver(index, _scan_one(path, kind, helm))
    else:
        _scan_in_pool(pool, paths, kind, helm, deliver)
    return _collect(outcomes)


def worker_count(files: int, requested: int | None = None) -> int:
    """How many processes to scan ``files`` files with (1: no pool)."""
    if requested is not None:
        return max(1, min(requested, files))
    if files < PARALLEL_THRESHOLD or not hasattr(os, "fork"):
        return 1
    return max(1, min(_cpus(), MAX_WORKERS, files // CHUNK_SIZE))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not every platform has it
        return os.cpu_count() or 1


def _make_pool(workers: int) -> ProcessPoolExecutor | None:
    """A forking pool, or None where the platform cannot make one (no /dev/shm, ...)."""
    try:
        context = multiprocessing.get_context("fork")
        return ProcessPoolExecutor(workers, mp_context=context, initializer=_quiet_signals)
    except (OSError, ImportError, NotImplementedError, ValueError):
        return None


def _scan_in_pool(
    pool: ProcessPoolExecutor,
    paths: Sequence[Path],
    kind: ManifestKind | None,
    helm: HelmOptions | None,
    deliver: Callable[[int, _Outcome], None],
) -> None:
    total = len(paths)
    chunks = [range(start, min(start + CHUNK_SIZE, total)) for start in range(0, total, CHUNK_SIZE)]
    with pool:
        futures: dict[Future[list[_Outcome]], range] = {
            pool.submit(_scan_chunk, [paths[i] for i in chunk], kind, helm): chunk
            for chunk in chunks
        }
        try:
            for future in as_completed(futures):
                for index, outcome in zip(futures[future], future.result(), strict=True):
                    deliver(index, outcome)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _quiet_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _scan_chunk(
    paths: list[Path], kind: ManifestKind | None, helm: HelmOptions | None
) -> list[_Outcome]:
    return [_scan_one(path, kind, helm) for path in paths]


def _scan_one(path: Path, kind: ManifestKind | None, helm: HelmOptions | None) -> _Outcome:
    try:
        return scan_file(path, kind=kind, helm=helm)
    except ManifestError as exc:
        return _Failure(exc.message, exc.hint)


def _collect(outcomes: Sequence[_Outcome | None]) -> list[ScannedFile]:
    scanned = [o for o in outcomes if isinstance(o, ScannedFile)]
    failures = [o for o in outcomes if isinstance(o, _Failure)]
    if failures:
        first, others = failures[0], [f.message for f in failures[1:]]
        hint = first.hint or (f"{len(others)} more: " + "; ".join(others) if others else None)
        raise ManifestError(first.message, hint=hint)
    return scanned


__all__ = [
    "CHUNK_SIZE",
    "PARALLEL_THRESHOLD",
    "ScannedFile",
    "scan_file",
    "scan_files",
    "scan_text",
    "worker_count",
]
