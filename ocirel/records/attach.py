"""Attach a build record during a publish: started once the image is at the candidate
tag, pushed while the tag settles, reported once the lockfile is written. A failure
is a warning, never a failed publish: the image and the lockfile are right, and
``ocirel verify --provenance`` reports the gap.

:class:`RecordAttacher` is the publish's :class:`~ocirel.publish.rider.Attacher`; each
record runs in its own thread and hands back only its outcome (the record's digest,
or why it was not attached) through :meth:`PendingRecord.finish`, on the main thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocirel import lockfile, reference
from ocirel.errors import OcirelError
from ocirel.gitinfo import SourceInfo
from ocirel.oci import Digest
from ocirel.publish.background import Background
from ocirel.records.prefetch import Prefetch
from ocirel.records.record import BuildFacts, build_record
from ocirel.reference import Reference

if TYPE_CHECKING:  # the registry client imports requests: loaded by the publish's thread
    from ocirel.registry import Registry


@dataclass(frozen=True)
class AttachRequest:
    """What the publish knew, handed over once it is done."""

    entry: lockfile.LockEntry
    source: SourceInfo
    backend: str
    backend_version: str | None
    build_args: tuple[tuple[str, str], ...]
    bases: Sequence[str]
    source_date_epoch: int | None


def base_digests(
    registry: Registry, target: Reference, bases: Sequence[str]
) -> dict[str, str | None]:
    """Each base image with its digest: the one it is pinned to, else resolved when it
    lives on ``target``'s registry (no other host is contacted during a publish)."""
    found: dict[str, str | None] = {}
    for base in bases:
        try:
            ref = reference.parse(base)
        except OcirelError:
            found[base] = None
            continue
        if ref.digest:
            found[base] = ref.digest
        elif ref.registry == target.registry:
            with contextlib.suppress(OcirelError):
                found[base] = registry.resolve(ref).digest
        found.setdefault(base, None)
    return found


def attach_after_publish(
    registry: Registry, request: AttachRequest, warn: Callable[[str], None]
) -> Digest | None:
    """Push the build record of ``request.entry``; its digest, or None after a warning."""
    outcome = try_attach(registry, request)
    if isinstance(outcome, Failed):
        warn(outcome.message)
        return None
    return outcome


@dataclass(frozen=True)
class Failed:
    """Why a record was not attached (the warning's text)."""

    message: str


def try_attach(registry: Registry, request: AttachRequest) -> Digest | Failed:
    """Push the build record of ``request.entry``: its digest, or why it failed."""
    from ocirel.records.referrers import attach  # noqa: PLC0415 - oras-py, requests

    entry = request.entry
    try:
        repo = reference.parse_repository(entry.repository)
        facts = BuildFacts(
            source=request.source,
            backend=request.backend,
            backend_version=request.backend_version,
            build_args=request.build_args,
            base_images=base_digests(registry, repo, request.bases),
            source_date_epoch=request.source_date_epoch,
        )
        return attach(registry, repo, entry.digest, build_record(entry, facts))
    except (OcirelError, ValueError, OSError) as exc:  # oras-py raises ValueError
        return Failed(f"the build record of {entry.reference} was not attached: {exc}")


# ------------------------------------------------------------ during the publish


@dataclass(frozen=True)
class RecordAttacher:
    """What every record of one publish shares; :meth:`start` (the publish's
    :class:`~ocirel.publish.rider.Attacher`) pushes one in the background."""

    backend: str
    prefetch: Prefetch
    build_args: tuple[tuple[str, str], ...]
    bases: Sequence[str]
    source_date_epoch: int | None
    say: Callable[[str], None]
    warn: Callable[[str], None]

    def start(
        self, registry: Registry, entry: lockfile.LockEntry, source: SourceInfo
    ) -> PendingRecord:
        def work() -> Digest | Failed:
            request = AttachRequest(
                entry=entry, source=source, backend=self.backend,
                backend_version=self.prefetch.backend_version(), build_args=self.build_args,
                bases=self.bases, source_date_epoch=self.source_date_epoch,
            )  # fmt: skip
            return try_attach(registry, request)

        return PendingRecord(entry, Background(work), self.say, self.warn)


@dataclass(frozen=True)
class PendingRecord:
    """One record being pushed (:class:`~ocirel.publish.rider.Ride`)."""

    entry: lockfile.LockEntry
    work: Background[Digest | Failed]
    say: Callable[[str], None]
    warn: Callable[[str], None]

    def finish(self, *, kept: bool) -> None:
        """Wait for the push. Kept: say what was attached, or warn why not. Not kept
        (a lost claim, a failed publish): a record that made it names a digest no tag
        of this run points at; harmless, and said as such."""
        try:
            outcome = self.work.result()
        except Exception as exc:  # noqa: BLE001 - a record never fails the publish
            outcome = Failed(f"the build record of {self.entry.reference} was not attached: {exc}")
        if kept:
            if isinstance(outcome, Failed):
                self.warn(outcome.message)
            else:
                self.say(f"attached build record {outcome} to {self.entry.reference}")
        elif not isinstance(outcome, Failed):
            self.say(
                f"build record {outcome} stays attached to {self.entry.repository}@"
                f"{self.entry.digest}, which this run did not record (harmless)"
            )
