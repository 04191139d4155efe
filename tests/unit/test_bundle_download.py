"""Ranged blob downloads against the scripted fake registry: ranges are asked for
and stitched, and a registry that ignores ``Range`` still works."""

from __future__ import annotations

import hashlib
import re

import pytest

from ocirel.bundle import transfer
from ocirel.errors import RegistryError
from ocirel.oci import Digest
from ocirel.reference import Reference
from ocirel.registry import Registry
from tests.unit.fakeregistry import FakeRegistry, Request, Response

BLOB = bytes(range(256)) * 40  # 10240 bytes
DIGEST = Digest("sha256:" + hashlib.sha256(BLOB).hexdigest())
PATH = f"/v2/team/app/blobs/{DIGEST}"


def ranged(request: Request) -> Response:
    match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.header("Range") or "")
    if match is None:
        return Response(200, {}, BLOB)
    start, end = int(match[1]), int(match[2])
    return Response(
        206, {"Content-Range": f"bytes {start}-{end}/{len(BLOB)}"}, BLOB[start : end + 1]
    )


@pytest.fixture(autouse=True)
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "RANGE_SIZE", 4096)


def test_a_large_blob_comes_in_ranges(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("GET", PATH, ranged)
    assert b"".join(transfer.download(registry, repo, DIGEST, len(BLOB))) == BLOB
    asked = [r.header("Range") for r in fake.log if r.path == PATH]
    assert asked == ["bytes=0-4095", "bytes=4096-8191", "bytes=8192-10239"]


def test_a_registry_that_ignores_range_is_read_whole(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("GET", PATH, Response(200, {}, BLOB))
    assert b"".join(transfer.download(registry, repo, DIGEST, len(BLOB))) == BLOB
    asked = [r.header("Range") for r in fake.log if r.path == PATH]
    assert asked == ["bytes=0-4095", None]


def test_a_short_range_is_an_error(fake: FakeRegistry, registry: Registry, repo: Reference) -> None:
    fake.route("GET", PATH, Response(206, {}, BLOB[:100]))
    with pytest.raises(RegistryError, match="answered bytes 0-4095"):
        b"".join(transfer.download(registry, repo, DIGEST, len(BLOB)))
