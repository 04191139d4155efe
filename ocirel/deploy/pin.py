"""The ``ocirel pin`` use case: compute every pinned file, then write them all or none.

:func:`plan_pins` finds the files (:mod:`ocirel.deploy.files`), scans them (in
parallel, :func:`ocirel.deploy.scan.scan_files`), decides for every image reference
which digest to write (:mod:`ocirel.deploy.resolvers`) and computes the new text of
every file (:mod:`ocirel.deploy.splice`) — it writes nothing. :func:`apply_plan` then
writes the changed files through :func:`ocirel.deploy.splice.write_results` (staged,
all or none).

Which digest a reference gets:

1. the **lockfile** (:func:`ocirel.deploy.resolvers.lock_resolver`): a reference whose
   repository has an entry is pinned to the locked tag and digest, even if it
   already carries another digest (the lockfile is what was released); with a
   registry map (``--registry-map OLD=NEW``) it is also moved to the mirror, and a
   reference already naming the mirror is matched too;
2. with a registry ``lookup`` (``--resolve``), **the registry**: every other
   reference with a tag (a missing tag means ``latest``, as in Kubernetes) is
   resolved to the digest its tag points to now — including a reference already
   pinned, so a tag that moved is re-pinned. References written as
   ``repo@digest`` (no tag) have nothing to resolve and stay as they are.

Each distinct ``repo:tag`` is looked up once, on a thread pool, starting as soon as
the file that names it is scanned, so lookups overlap with parsing. A reference
that cannot be resolved fails the whole run, naming it and every ``file:line`` it
appears at; nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ocirel.deploy.files import FileOptions, collect_paths
from ocirel.deploy.helm import HelmOptions
from ocirel.deploy.regmap import RegistryMap
from ocirel.deploy.resolvers import (
    Contact,
    Lookup,
    ParallelLookup,
    Resolver,
    chain,
    lock_resolver,
    tag_resolver,
)
from ocirel.deploy.scan import ScannedFile, scan_files
from ocirel.deploy.sites import ManifestKind, Skipped
from ocirel.deploy.splice import Change, PinResult, pin_file, write_results
from ocirel.errors import (
    ManifestError,
    OcirelError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
)
from ocirel.lockfile import Lockfile
from ocirel.reference import Reference

#: How many ``file:line`` places an unresolved reference's message lists.
MAX_PLACES = 3
#: How many unresolved references the message lists (the count is always given).
MAX_LISTED = 20


@dataclass(frozen=True)
class PinPlan:
    """What pinning would do: every scanned file's result, nothing written yet."""

    results: tuple[PinResult, ...]
    resolved: Mapping[Reference, str] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()

    @property
    def changed(self) -> tuple[PinResult, ...]:
        return tuple(result for result in self.results if result.changed)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(change for result in self.results for change in result.changes)


def plan_pins(
    paths: Sequence[Path],
    lock: Lockfile,
    *,
    digest_only: bool = False,
    lookup: Lookup | None = None,
    contact: Contact | None = None,
    kind: ManifestKind | None = None,
    scan_workers: int | None = None,
    files: FileOptions | None = None,
    helm: HelmOptions | None = None,
    registry_map: RegistryMap | None = None,
) -> PinPlan:
    """Scan ``paths`` and compute every pinned file; raise before anything is written.

    ``lookup`` turns a ``repo:tag`` into its digest (``--resolve``); without it only
    the lockfile pins. ``contact`` is called once per registry host before its
    first lookup (see :class:`ocirel.deploy.resolvers.HostGate`). ``files`` sets the
    size cap and hears about entries that are not regular files. ``helm`` says which
    key of a Helm image map gets the digest (:mod:`ocirel.deploy.helm`).
    ``registry_map`` pins lockfile images at their mirrored location
    (:mod:`ocirel.deploy.regmap`).
    """
    found = collect_paths(paths, files)
    from_lock = lock_resolver(lock, registry_map)
    resolved: Mapping[Reference, str] = {}
    if lookup is None:
        scanned = scan_files(found, kind=kind, workers=scan_workers, helm=helm)
        resolver = from_lock
    else:
        scanned, resolved = _scan_and_resolve(
            found, from_lock, lookup, contact=contact, kind=kind, scan_workers=scan_workers,
            helm=helm,
        )  # fmt: skip
        resolver = chain(from_lock, tag_resolver(resolved))
    return _pin_all(scanned, resolver, digest_only, resolved)


def apply_plan(plan: PinPlan) -> list[Path]:
    """Write every changed file (all or none); returns the paths written."""
    return write_results(plan.results)


def registry_references(scanned_file: ScannedFile, from_lock: Resolver) -> set[Reference]:
    """The ``repo:tag`` references of ``scanned_file`` that the lockfile does not answer."""
    return {
        replace(occ.reference, digest=None)
        for occ in scanned_file.occurrences
        if occ.reference.tag is not None and from_lock(occ.reference) is None
    }


def _scan_and_resolve(
    files: Sequence[Path],
    from_lock: Resolver,
    lookup: Lookup,
    *,
    contact: Contact | None,
    kind: ManifestKind | None,
    scan_workers: int | None,
    helm: HelmOptions | None,
) -> tuple[list[ScannedFile], Mapping[Reference, str]]:
    with ParallelLookup(lookup, contact) as lookups:

        def feed(scanned_file: ScannedFile) -> None:
            lookups.submit_all(registry_references(scanned_file, from_lock))

        scanned = scan_files(files, kind=kind, on_file=feed, workers=scan_workers, helm=helm)
        outcome = lookups.wait()
    if outcome.failures:
        raise unresolved_error(outcome.failures, scanned)
    return scanned, outcome.digests


def _pin_all(
    scanned: Iterable[ScannedFile],
    resolver: Resolver,
    digest_only: bool,
    resolved: Mapping[Reference, str],
) -> PinPlan:
    scanned = list(scanned)
    refuse_malformed(scanned)
    results = tuple(pin_file(f, resolver, digest_only=digest_only) for f in scanned)
    skipped = tuple(s for f in scanned for s in f.skipped)
    return PinPlan(results, resolved, skipped)


def refuse_malformed(scanned: Iterable[ScannedFile]) -> None:
    """Raise when an entry that only names an image is malformed (see
    :attr:`ocirel.deploy.sites.Skipped.malformed`): pinning around it would report
    "nothing to pin" for a file that cannot deploy."""
    bad = [s for f in scanned for s in f.skipped if s.malformed]
    if not bad:
        return
    lines = [f"{s.path}:{s.line}:{s.column}: {s.text!r}: {s.reason}" for s in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        lines.append(f"... and {len(bad) - MAX_LISTED} more")
    raise ManifestError(
        f"cannot pin: {len(bad)} malformed image entr{'y' if len(bad) == 1 else 'ies'}; "
        "no file was written:\n  " + "\n  ".join(lines),
        hint="fix the entry (a digest is sha256: and 64 hex digits; a tag is letters, "
        "digits, '_', '.' and '-'), or remove it",
    )


def places(scanned: Iterable[ScannedFile]) -> dict[Reference, list[str]]:
    """``file:line`` of every occurrence, keyed by its ``repo:tag`` (digest stripped),
    in the order the references first appear."""
    found: dict[Reference, list[str]] = {}
    for scanned_file in scanned:
        for occ in scanned_file.occurrences:
            key = replace(occ.reference, digest=None)
            found.setdefault(key, []).append(f"{occ.path}:{occ.line}")
    return found


def unresolved_error(
    failures: Mapping[Reference, OcirelError], scanned: Sequence[ScannedFile]
) -> RegistryError:
    """One error naming every reference that did not resolve and where it is used."""
    where = places(scanned)  # in file order: the first reference found comes first
    rank = {ref: index for index, ref in enumerate(where)}
    ordered = sorted(failures.items(), key=lambda item: rank.get(item[0], len(rank)))
    lines = [f"{ref} ({_format_places(where.get(ref, []))}): {error}" for ref, error in ordered]
    first = ordered[0][1]
    if len(lines) == 1:
        return _same_kind(first, f"cannot resolve {lines[0]}; no file was written")
    listed = lines[:MAX_LISTED]
    if len(lines) > MAX_LISTED:
        listed.append(f"... and {len(lines) - MAX_LISTED} more")
    message = f"cannot resolve {len(lines)} image references; no file was written:\n  " + (
        "\n  ".join(listed)
    )
    return _same_kind(first, message)


def _format_places(found: Sequence[str]) -> str:
    shown = ", ".join(found[:MAX_PLACES])
    return shown + (f" and {len(found) - MAX_PLACES} more" if len(found) > MAX_PLACES else "")


def _same_kind(first: OcirelError, message: str) -> RegistryError:
    """A registry error of the first failure's class, carrying its hint."""
    if isinstance(first, RegistryNotFoundError):
        hint = first.hint or "check the tag exists ('ocirel tags REPOSITORY'), or fix the manifest"
        return RegistryNotFoundError(message, status=first.status, codes=first.codes, hint=hint)
    if isinstance(first, RegistryAuthError):
        return RegistryAuthError(message, status=first.status, codes=first.codes, hint=first.hint)
    if isinstance(first, RegistryError):
        return RegistryError(
            message, status=first.status, codes=first.codes, temporary=first.temporary,
            hint=first.hint,
        )  # fmt: skip
    return RegistryError(message, hint=first.hint)


__all__ = [
    "PinPlan",
    "apply_plan",
    "places",
    "plan_pins",
    "refuse_malformed",
    "registry_references",
    "unresolved_error",
]
