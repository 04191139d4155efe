"""The build-record look-up ``ocirel verify --provenance`` passes to
:func:`ocirel.deploy.verify.verify_lock` (deploy never imports the registry)."""

from __future__ import annotations

from ocirel.deploy.verify import Revisions
from ocirel.oci import Digest
from ocirel.records.record import record_revision
from ocirel.records.referrers import build_records
from ocirel.reference import Reference
from ocirel.registry import Registry


def record_revisions(registry: Registry) -> Revisions:
    """The source revisions named by the build records attached to ``repo@digest``."""

    def revisions(ref: Reference) -> list[str | None]:
        if ref.digest is None:
            raise ValueError(f"{ref} has no digest")
        found = build_records(registry, ref.repo_only(), Digest(ref.digest))
        return [record_revision(attached.record) for attached in found]

    return revisions
