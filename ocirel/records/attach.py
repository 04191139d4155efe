"""Attach a build record after a publish: one call, after the tag is claimed and the
lockfile written. A failure is a warning, never a failed publish: the image and the
lockfile are already right, and ``ocirel verify --provenance`` reports the gap."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ocirel import lockfile, reference
from ocirel.errors import OcirelError
from ocirel.gitinfo import SourceInfo
from ocirel.oci import Digest
from ocirel.records.record import BuildFacts, build_record
from ocirel.records.referrers import attach
from ocirel.reference import Reference
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
        warn(f"the build record of {entry.reference} was not attached: {exc}")
        return None
