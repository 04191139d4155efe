"""Build records next to the image: push one as an OCI artifact, list those attached.

A record is an image manifest (OCI 1.1 artifact guidance)::

    {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": RECORD_TYPE,
     "config": EMPTY descriptor ("{}"), "layers": [the record JSON],
     "subject": the image's descriptor, "annotations": {created, version}}

pushed **by digest** with oras-py (:mod:`ocirel.records.orasclient`). A registry with
the referrers API answers the PUT with ``OCI-Subject`` and indexes it by itself.
Otherwise (distribution 2.8) ocirel keeps the **referrers tag schema**: the tag
``sha256-<hex of the subject>`` holds an OCI index listing the subject's referrers,
read, extended and written back, then read again after a settle wait and merged
again if a concurrent writer dropped our entry (:func:`_merge_referrers_tag`). Such
tags never parse as versions (no scheme accepts ``sha256-``;
:func:`ocirel.versioning.is_referrers_tag` names them).

Listing asks ``GET /v2/<name>/referrers/<digest>`` first and falls back to the tag.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ocirel.errors import RegistryError, RegistryNotFoundError
from ocirel.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    Digest,
    ImageManifest,
    ManifestInfo,
    canonical_json,
    sha256_digest,
)
from ocirel.records import orasclient
from ocirel.records.record import MAX_RECORD_SIZE, RECORD_TYPE, parse_record, record_bytes
from ocirel.reference import Reference, validate_digest
from ocirel.registry import Registry
from ocirel.transport import MANIFEST_MAX_BODY, raise_for_status
from ocirel.versioning import referrers_tag

EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
#: the referrers tag: the least settle wait after writing it, and how often to write it
MERGE_SETTLE = 0.02
MERGE_ATTEMPTS = 8
T = TypeVar("T")
_RACY_CODES = frozenset({"DIGEST_INVALID", "BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"})


@dataclass(frozen=True)
class Attached:
    """One build record found next to an image."""

    digest: Digest  # of the artifact manifest
    subject: str  # the digest its ``subject`` names
    record: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "subject": self.subject, "record": self.record}


def attach(registry: Registry, repo: Reference, subject: Digest, record: dict[str, Any]) -> Digest:
    """Push ``record`` as an artifact whose subject is ``repo@subject``; its digest.

    What does not depend on each other runs at once (the subject's descriptor, both
    blobs): the record costs about three round trips more than the slowest of those,
    not a dozen. Without the referrers API the ``sha256-<hex>`` tag is then merged
    (:func:`_merge_referrers_tag`)."""
    client = orasclient.make_client(registry.transport, repo.registry)
    with (
        tempfile.TemporaryDirectory(prefix="ocirel-record-") as workdir,
        ThreadPoolExecutor(max_workers=3) as pool,
    ):
        info = pool.submit(registry.resolve, repo.with_digest(subject))
        work = Path(workdir)
        config = pool.submit(
            _racy, lambda: orasclient.push_blob(client, repo, EMPTY_BLOB, EMPTY_TYPE, work)
        )
        data = record_bytes(record)
        layer = pool.submit(
            _racy, lambda: orasclient.push_blob(client, repo, data, RECORD_TYPE, work)
        )
        manifest = _artifact(record, info.result(), config.result(), layer.result())
    digest, response = _racy(lambda: orasclient.push_manifest(client, repo, manifest))
    if response.headers.get("OCI-Subject") != subject:  # no referrers API: keep the tag
        _merge_referrers_tag(registry, repo.with_tag(referrers_tag(subject)), manifest, digest)
    return digest


def _racy(call: Callable[[], T]) -> T:
    """``call()``, again after a growing random pause when distribution answers 500
    or 400 ``DIGEST_INVALID``/``BLOB_UNKNOWN``: what its filesystem storage says when
    another upload of the same blob (the ``{}`` config every record shares) commits at
    that instant. ocirel's transport does not retry a 500 by itself (it retries 429
    and 502-504, which are not retried again here)."""
    for attempt in range(MERGE_ATTEMPTS):
        try:
            return call()
        except RegistryError as exc:
            transient = exc.status == 500 or bool(_RACY_CODES.intersection(exc.codes))
            if not transient or attempt == MERGE_ATTEMPTS - 1:
                raise
        time.sleep(random.uniform(0, MERGE_SETTLE * 2**attempt))  # noqa: S311 - jitter
    raise AssertionError("unreachable")  # pragma: no cover


def _artifact(
    record: dict[str, Any], info: ManifestInfo, config: dict[str, Any], layer: dict[str, Any]
) -> dict[str, Any]:
    """The artifact manifest of ``record`` (OCI 1.1 artifact guidance)."""
    layer = {**layer, "annotations": {"org.opencontainers.image.title": "build-record.json"}}
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": RECORD_TYPE,
        "config": config,
        "layers": [layer],
        "subject": {"mediaType": info.media_type, "digest": info.digest, "size": _size(info.size)},
        "annotations": _annotations(record),
    }


def _size(size: int | None) -> int:
    if size is None:
        raise RegistryError("the registry did not say the size of the image manifest")
    return size


def _annotations(record: dict[str, Any]) -> dict[str, str]:
    subject = record.get("subject") or {}
    tag = subject.get("tag") if isinstance(subject, dict) else None
    return {"org.opencontainers.image.version": str(tag)} if tag else {}


def _merge_referrers_tag(
    registry: Registry,
    tagged: Reference,
    manifest: dict[str, Any],
    digest: Digest,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Add ``digest`` to the index at the referrers tag ``tagged``, and keep it there.

    The API has no conditional write, so two processes attaching to one subject at
    once may each read the index, add their entry and write it back: the later write
    drops the earlier entry. As with the tag claim (:mod:`ocirel.publish.claim`), the
    index is read right before it is written, and after a settle wait longer than that
    read→write gap (four times it, at least :data:`MERGE_SETTLE`) read again: a rival
    who read before our write has written by then. Our entry missing means it was
    overwritten: after a random, growing pause (rivals do not retry in step) read,
    merge and write again, at most :data:`MERGE_ATTEMPTS` rounds. A 500 in a round
    (distribution answers one for a tag read while another writer rewrites it) loses
    that round only. Then :class:`RegistryError`."""
    descriptor = _descriptor(manifest, digest)
    problem = "other processes attaching records to the same image at once"
    for attempt in range(MERGE_ATTEMPTS):
        try:
            start = clock()
            _put_index(registry, tagged, _tag_index(registry, tagged), descriptor)
            sleep(max(MERGE_SETTLE, 4 * (clock() - start)))
            if any(m.get("digest") == digest for m in _tag_index(registry, tagged)):
                return
        except RegistryError as exc:
            if exc.status != 500:  # 502-504 and 429: ocirel's transport retried them
                raise
            problem = str(exc)
        sleep(random.uniform(0, MERGE_SETTLE * 2**attempt))  # noqa: S311 - jitter
    raise RegistryError(
        f"the referrers tag {tagged} did not keep this record's entry "
        f"({MERGE_ATTEMPTS} rounds; last: {problem})"
    )


def _descriptor(manifest: dict[str, Any], digest: Digest) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(canonical_json(manifest)),
        "artifactType": RECORD_TYPE,
    }
    if manifest.get("annotations"):
        descriptor["annotations"] = manifest["annotations"]
    return descriptor


def _put_index(
    registry: Registry,
    tagged: Reference,
    listed: list[dict[str, Any]],
    descriptor: dict[str, Any],
) -> None:
    """Write the referrers tag: what it ``listed`` (read just before), plus
    ``descriptor`` (once: a second attach of the same record lists it once)."""
    manifests = [m for m in listed if m.get("digest") != descriptor["digest"]]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*manifests, descriptor]}
    body = canonical_json(index)
    registry.put_manifest(tagged, ImageManifest(sha256_digest(body), OCI_INDEX, body))


def _tag_index(registry: Registry, tagged: Reference) -> list[dict[str, Any]]:
    """The descriptors the referrers tag lists ([] when there is no such tag)."""
    try:
        document = registry.get_manifest(tagged, accept=OCI_INDEX).document
    except RegistryNotFoundError:
        return []
    manifests = document.get("manifests")
    return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []


# ---------------------------------------------------------------------- listing


def referrers(registry: Registry, repo: Reference, subject: Digest) -> list[dict[str, Any]]:
    """The descriptors of the artifacts attached to ``repo@subject`` (any type)."""
    validate_digest(subject)
    reply = registry.transport.request(
        "GET",
        repo.registry,
        f"/v2/{repo.repository}/referrers/{subject}",
        scope=f"repository:{repo.repository}:pull",
        headers={"Accept": OCI_INDEX},
        max_body=MANIFEST_MAX_BODY,
    )
    if reply.status == 200 and (reply.header("Content-Type") or "").startswith(OCI_INDEX):
        manifests = reply.json().get("manifests")
        return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []
    if reply.status not in (404, 405, 400):  # 404: no referrers API (distribution 2.8)
        raise_for_status(reply, what=f"listing the referrers of {repo.name}@{subject[:19]}")
    return _tag_index(registry, repo.with_tag(referrers_tag(subject)))


def build_records(registry: Registry, repo: Reference, subject: Digest) -> list[Attached]:
    """The build records attached to ``repo@subject``, read with oras-py, each checked:
    its manifest's subject must be ``subject`` (a stale or forged index entry is skipped)."""
    found = [d for d in referrers(registry, repo, subject) if d.get("artifactType") == RECORD_TYPE]
    if not found:
        return []
    client = orasclient.make_client(registry.transport, repo.registry)
    records = []
    for descriptor in found:
        digest = Digest(validate_digest(str(descriptor.get("digest", ""))))
        manifest = orasclient.pull_manifest(client, repo, digest, [OCI_MANIFEST])
        named = (manifest.get("subject") or {}).get("digest")
        if named != subject or manifest.get("artifactType") != RECORD_TYPE:
            continue
        layers = [x for x in manifest.get("layers", []) if x.get("mediaType") == RECORD_TYPE]
        if not layers or int(layers[0].get("size", 0)) > MAX_RECORD_SIZE:
            continue
        blob = orasclient.pull_blob(client, repo, str(layers[0]["digest"]))
        record = parse_record(blob, what=f"the build record {digest[:19]} of {repo.name}")
        records.append(Attached(digest, named, record))
    return records
