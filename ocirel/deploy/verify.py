"""The ``ocirel verify`` use case: does the registry still serve what the lockfile says?

For every lockfile entry two questions go to the registry, all of them in parallel
over one keep-alive session:

* ``HEAD /v2/<repo>/manifests/<digest>`` — does the locked digest still exist?
* ``HEAD /v2/<repo>/manifests/<tag>`` — does the tag still point to that digest?

Each entry gets one :class:`Status`, the most serious fact found winning:

``missing``
    the digest is gone (404). Deploys pinned to it cannot pull. The detail says
    what became of the tag.
``drifted``
    the digest exists but the tag points elsewhere, or is gone: someone re-pushed or
    deleted the tag. Pinned deploys still work; anyone using the tag gets another image.
``unreachable``
    no definite answer: connection refused, TLS, 401/403, 5xx, a malformed reply.
    Nothing is known about the entry.
``ok``
    both answers came back and agree with the lockfile.

With ``--provenance`` a third question: does a build record (issue 15) attached to the
locked digest name the lockfile's source revision? The answer is the entry's
``provenance``: ``ok``, ``could not check: …`` (like ``unreachable``), or what is wrong
(no record, another revision). The look-up is passed in (:data:`Revisions`).

An entry in an OCI image layout (``oci:/path``, ``publish --image oci:PATH``) is
checked on disk: the manifest blob is there, and the layout's ``ref.name`` annotation
for the tag names the digest; it has no build records (``--provenance`` skips it).

Given manifests (``ocirel verify PATH…``), a fourth look, offline: a reference pinned
to one platform's manifest of an image the lockfile records as a multi-platform index
(:func:`platform_pins`) runs only on that platform's nodes; it is warned about.

Each registry host is contacted once first (:class:`ocirel.deploy.resolvers.HostGate`): when
it is down, every entry on it is ``unreachable`` at once, without a retry per entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from ocirel import ocilayout, reference
from ocirel.deploy.resolvers import DEFAULT_WORKERS, Contact, HostGate
from ocirel.deploy.scan import ScannedFile
from ocirel.errors import OcirelError, RegistryNotFoundError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.reference import Reference

T = TypeVar("T")

DigestExists = Callable[[Reference], bool]
TagDigest = Callable[[Reference], str]
#: the source revisions named by the build records attached to ``repo@digest``
Revisions = Callable[[Reference], Sequence[str | None]]
PROVENANCE_OK = "ok"
PROVENANCE_UNCHECKED = "could not check"


class Status(StrEnum):
    OK = "ok"
    DRIFTED = "drifted"
    MISSING = "missing"
    UNREACHABLE = "unreachable"


#: Most serious first: what a run as a whole is judged by.
SEVERITY = (Status.MISSING, Status.DRIFTED, Status.UNREACHABLE, Status.OK)


@dataclass(frozen=True)
class EntryCheck:
    """The verdict on one lockfile entry.

    ``tag_digest`` is what the tag points to now (None when the tag is gone or could
    not be checked); ``digest_exists`` is None when that could not be checked.
    """

    entry: LockEntry
    status: Status
    detail: str
    digest_exists: bool | None
    tag_digest: str | None
    provenance: str | None = None  # None: not asked (no --provenance)

    @property
    def provenance_failed(self) -> bool:
        return self.provenance is not None and self.provenance != PROVENANCE_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.entry.name,
            "repository": self.entry.repository,
            "tag": self.entry.tag,
            "digest": self.entry.digest,
            "reference": self.entry.reference,
            "status": str(self.status),
            "detail": self.detail,
            "digest_exists": self.digest_exists,
            "tag_digest": self.tag_digest,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class _Outcome(Generic[T]):
    value: T | None = None
    error: OcirelError | None = None


def verify_lock(
    lock: Lockfile,
    *,
    digest_exists: DigestExists,
    tag_digest: TagDigest,
    contact: Contact | None = None,
    workers: int = DEFAULT_WORKERS,
    revisions: Revisions | None = None,
) -> list[EntryCheck]:
    """Check every entry of ``lock`` (sorted by name); never raises for registry errors."""
    entries = [lock.entries[name] for name in sorted(lock.entries)]
    if not entries:
        return []
    gate = HostGate(contact) if contact is not None else None
    with ThreadPoolExecutor(max_workers=min(workers, 2 * len(entries))) as pool:
        pending: list[tuple[LockEntry, Future[_Outcome[bool]], Future[_Outcome[str]]]] = []
        records: dict[str, Future[_Outcome[Sequence[str | None]]]] = {}
        for entry in entries:
            if reference.is_layout(entry.repository):  # an OCI layout: read from disk
                pending.append((entry, *_in_layout(pool, entry)))
                continue
            repo = reference.parse(entry.repository)
            by_digest = repo.with_digest(entry.digest)
            by_tag = repo.with_tag(entry.tag)
            pending.append((
                entry,
                pool.submit(_probe, gate, digest_exists, by_digest),
                pool.submit(_probe, gate, tag_digest, by_tag),
            ))  # fmt: skip
            if revisions is not None:  # build records live in registries only
                records[entry.name] = pool.submit(_probe, gate, revisions, by_digest)
        checks = [judge(entry, d.result(), t.result()) for entry, d, t in pending]
    return [
        replace(c, provenance=provenance_of(c.entry, records[c.entry.name].result()))
        if c.entry.name in records
        else c
        for c in checks
    ]


def _in_layout(
    pool: ThreadPoolExecutor, entry: LockEntry
) -> tuple[Future[_Outcome[bool]], Future[_Outcome[str]]]:
    """The two questions asked of an OCI layout entry (``oci:/path``): is the manifest
    blob there, and which digest does the ``ref.name`` annotation name now?"""
    root = Path(reference.parse_layout(entry.repository, cwd="/").path)

    def ask(question: Callable[[Path, str], T], arg: str) -> _Outcome[T]:
        try:
            return _Outcome(value=question(root, arg))
        except OcirelError as exc:
            return _Outcome(error=exc)

    return (
        pool.submit(ask, ocilayout.has_manifest, entry.digest),
        pool.submit(ask, ocilayout.tag_digest, entry.tag),
    )


def provenance_of(entry: LockEntry, found: _Outcome[Sequence[str | None]]) -> str:
    """``ok`` when a record names the lockfile's revision, else what is wrong."""
    if found.error is not None:
        return f"{PROVENANCE_UNCHECKED}: {found.error}"
    wanted = entry.source.get("revision")
    revisions = list(found.value or ())
    if not revisions:
        return f"no build record is attached to {entry.digest}"
    if wanted in revisions:
        return PROVENANCE_OK
    named = ", ".join(sorted({str(r) for r in revisions}))
    return f"the build records name revision {named}, the lockfile {wanted or 'none'}"


def _probe(gate: HostGate | None, ask: Callable[[Reference], T], ref: Reference) -> _Outcome[T]:
    try:
        if gate is not None:
            gate.check(ref.registry)
        return _Outcome(value=ask(ref))
    except OcirelError as exc:
        return _Outcome(error=exc)


def judge(entry: LockEntry, by_digest: _Outcome[bool], by_tag: _Outcome[str]) -> EntryCheck:
    """The verdict from the two answers (see the module docstring for the order)."""
    exists = by_digest.value if by_digest.error is None else None
    tag_gone = isinstance(by_tag.error, RegistryNotFoundError)
    tag_known = by_tag.error is None or tag_gone
    now = by_tag.value if by_tag.error is None else None
    tag_text = _tag_text(entry, now, tag_gone, by_tag.error)
    if exists is False:
        detail = f"{entry.digest} no longer exists in {entry.repository}; {tag_text}"
        return EntryCheck(entry, Status.MISSING, detail, exists, now)
    if tag_known and now != entry.digest:
        return EntryCheck(entry, Status.DRIFTED, tag_text, exists, now)
    if exists is None or not tag_known:
        error = by_digest.error or by_tag.error
        return EntryCheck(entry, Status.UNREACHABLE, f"could not check: {error}", exists, now)
    return EntryCheck(entry, Status.OK, "", exists, now)


def _tag_text(entry: LockEntry, now: str | None, gone: bool, error: OcirelError | None) -> str:
    if gone:
        return f"tag {entry.tag} no longer exists"
    if now is None:
        return f"tag {entry.tag} could not be checked: {error}"
    if now == entry.digest:
        return f"tag {entry.tag} still points to it"
    return f"tag {entry.tag} now points to {now}"


@dataclass(frozen=True)
class PlatformPin:
    """A manifest reference pinned to one platform of a lockfile index."""

    path: str
    line: int
    column: int
    entry: LockEntry
    platform: str
    digest: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}:{self.column}: pins {self.digest} ({self.platform} only) "
            f"of {self.entry.name}; the lockfile has the index {self.entry.digest} for "
            f"{', '.join(sorted(self.entry.platforms))}: run ocirel pin on it to pin the index"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "line": self.line, "column": self.column,
            "name": self.entry.name, "platform": self.platform, "digest": self.digest,
            "index": self.entry.digest, "message": str(self),
        }  # fmt: skip


def platform_pins(lock: Lockfile, scanned: Iterable[ScannedFile]) -> list[PlatformPin]:
    """References in ``scanned`` whose digest is one platform's manifest of an entry
    whose locked digest is an index over several (the same repository or not: a
    mirror keeps the digests)."""
    by_digest = {
        digest: (entry, platform)
        for entry in lock.entries.values() if entry.is_index
        for platform, digest in entry.platforms.items()
    }  # fmt: skip
    found: list[PlatformPin] = []
    for one in scanned:
        for occ in one.occurrences:
            digest = occ.reference.digest
            if digest is not None and digest in by_digest:
                entry, platform = by_digest[digest]
                found.append(PlatformPin(occ.path, occ.line, occ.column, entry, platform, digest))
    return found


def summarize(checks: Iterable[EntryCheck]) -> Mapping[Status, int]:
    """How many entries got each status (every status present, maybe 0)."""
    counts = dict.fromkeys(Status, 0)
    for check in checks:
        counts[check.status] += 1
    return counts


__all__ = [
    "SEVERITY", "EntryCheck", "PlatformPin", "Revisions", "Status", "judge", "platform_pins",
    "provenance_of", "summarize", "verify_lock",
]  # fmt: skip
