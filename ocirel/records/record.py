"""The build record: what an image was built from, as one JSON document. Pure.

Media type ``application/vnd.ocirel.build-record.v1+json`` (:data:`RECORD_TYPE`); the
members, all always present (``null`` when unknown):

``schemaVersion``
    1.
``ocirelVersion``
    the ocirel that built and pushed the image.
``subject``
    ``{"repository", "tag", "digest"}``: the image the record describes.
``lock``
    the lockfile entry written for the image (``LockEntry.to_json()``).
``source``
    ``{"url", "revision", "dirty"}`` from git (:mod:`ocirel.gitinfo`).
``backend``
    ``{"name", "version"}``.
``buildArgs``
    ``KEY → value``; the value of a key that looks secret (``*PASSWORD*``, ``*TOKEN*``,
    ``*SECRET*``, ``*KEY*``, ``*CREDENTIAL*``, ``*AUTH*``, ``*PRIVATE*``, ``*PASS*``,
    ``*CERT*``, ``*SIGNATURE*``), and any value :func:`ocirel.redact.redact` would hide,
    is ``"***"``.
``baseImages``
    ``[{"ref", "digest"}]``: the ``FROM`` images, with the digest each resolved to
    (``null`` when it was not resolved).
``sourceDateEpoch``
    the build timestamp (``SOURCE_DATE_EPOCH``) or ``null`` (wall clock).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ocirel import __version__
from ocirel.errors import RegistryError
from ocirel.gitinfo import SourceInfo
from ocirel.lockfile import LockEntry
from ocirel.redact import redact

RECORD_TYPE = "application/vnd.ocirel.build-record.v1+json"
REDACTED = "***"
_SECRET_KEY = re.compile(
    r"(?i)(pass|pwd|secret|token|key|credential|auth|private|cert|signature|session|cookie)"
)
MAX_RECORD_SIZE = 1024 * 1024


def is_secret_key(key: str) -> bool:
    """Whether a build-arg name says its value is a secret."""
    return bool(_SECRET_KEY.search(key))


def redact_build_args(args: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Build args with the values of secret-looking keys (or known secrets) masked."""
    safe: dict[str, str] = {}
    for key, value in args:
        hidden = is_secret_key(key) or redact(value) != value
        safe[key] = REDACTED if hidden else value
    return safe


@dataclass(frozen=True)
class BuildFacts:
    """What the publish knew about the build, beyond the lockfile entry."""

    source: SourceInfo = field(default_factory=SourceInfo)
    backend: str | None = None
    backend_version: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    base_images: Mapping[str, str | None] = field(default_factory=dict)
    source_date_epoch: int | None = None


def build_record(entry: LockEntry, facts: BuildFacts) -> dict[str, Any]:
    """The record document for ``entry`` (the image just published)."""
    return {
        "schemaVersion": 1,
        "mediaType": RECORD_TYPE,
        "ocirelVersion": __version__,
        "subject": {"repository": entry.repository, "tag": entry.tag, "digest": entry.digest},
        "lock": entry.to_json(),
        "source": {
            "url": facts.source.url,
            "revision": facts.source.revision,
            "dirty": facts.source.dirty,
        },
        "backend": {"name": facts.backend, "version": facts.backend_version},
        "buildArgs": redact_build_args(facts.build_args),
        "baseImages": [{"ref": ref, "digest": d} for ref, d in facts.base_images.items()],
        "sourceDateEpoch": facts.source_date_epoch,
    }


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes pushed: sorted keys, indented, so that the same facts give one digest."""
    return (json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def parse_record(data: bytes, *, what: str) -> dict[str, Any]:
    """A record read back; raises :class:`RegistryError` when it is not one."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise RegistryError(f"{what} is not JSON; not an ocirel build record") from None
    if not isinstance(document, dict) or document.get("mediaType") != RECORD_TYPE:
        raise RegistryError(f"{what} is not an ocirel build record ({RECORD_TYPE})")
    return document


def record_revision(record: Mapping[str, Any]) -> str | None:
    source = record.get("source")
    revision = source.get("revision") if isinstance(source, dict) else None
    return revision if isinstance(revision, str) else None
