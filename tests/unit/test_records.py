"""Build records: the document, oras-py over ocirel's transport, the referrers API path.

The distribution 2.8 path (referrers tag) runs against real registries in
tests/integration/test_records.py; here a scripted registry plays one with the
referrers API, and one that fails, which a real one does not do on demand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ocirel.deploy.verify import PROVENANCE_OK, _Outcome, provenance_of
from ocirel.errors import RegistryError, VersionError
from ocirel.gitinfo import SourceInfo
from ocirel.lockfile import LockEntry
from ocirel.oci import OCI_INDEX, OCI_MANIFEST, Digest, sha256_digest
from ocirel.records import orasclient
from ocirel.records.record import (
    RECORD_TYPE,
    BuildFacts,
    build_record,
    parse_record,
    record_bytes,
    redact_build_args,
)
from ocirel.records.referrers import attach, build_records
from ocirel.redact import register_secret
from ocirel.reference import Reference
from ocirel.registry import Registry
from ocirel.versioning import (
    check_explicit_tag,
    is_referrers_tag,
    make_scheme,
    referrers_tag,
)
from tests.unit.fakeregistry import FakeRegistry, Request, Response, json_reply, status

IMAGE = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
IMAGE_DIGEST = sha256_digest(IMAGE)
ENTRY = LockEntry("app", "127.0.0.1:5000/team/app", "v3", IMAGE_DIGEST,
                  source={"revision": "abc", "dirty": False})  # fmt: skip


# ----------------------------------------------------------------- the document


def test_secret_looking_build_args_and_known_secrets_are_redacted() -> None:
    register_secret("registered-secret-value")
    args = [
        ("NPM_TOKEN", "t0k"), ("db_password", "pw"), ("AWS_SECRET_ACCESS_KEY", "k"),
        ("SSH_PRIVATE", "x"), ("HARMLESS", "registered-secret-value"), ("VERSION", "1.2"),
    ]  # fmt: skip
    assert redact_build_args(args) == {
        "NPM_TOKEN": "***", "db_password": "***", "AWS_SECRET_ACCESS_KEY": "***",
        "SSH_PRIVATE": "***", "HARMLESS": "***", "VERSION": "1.2",
    }  # fmt: skip


def test_record_holds_every_fact_and_its_bytes_are_stable() -> None:
    facts = BuildFacts(SourceInfo("abc", True, "https://example.com/app"), "podman", "4.3",
                       (("TOKEN", "s3cr3t"),), {"alpine:3": None}, 42)  # fmt: skip
    record = build_record(ENTRY, facts)
    assert record["mediaType"] == RECORD_TYPE
    assert record["subject"] == {"repository": ENTRY.repository, "tag": "v3",
                                 "digest": IMAGE_DIGEST}  # fmt: skip
    assert record["lock"] == ENTRY.to_json()
    assert record["source"] == {"url": "https://example.com/app", "revision": "abc",
                                "dirty": True}  # fmt: skip
    assert record["backend"] == {"name": "podman", "version": "4.3"}
    assert record["buildArgs"] == {"TOKEN": "***"}
    assert record["baseImages"] == [{"ref": "alpine:3", "digest": None}]
    assert record["sourceDateEpoch"] == 42
    assert record["ocirelVersion"]
    assert b"s3cr3t" not in record_bytes(record)
    assert record_bytes(record) == record_bytes(build_record(ENTRY, facts))
    assert parse_record(record_bytes(record), what="x") == record


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"mediaType": "other"}'])
def test_a_blob_that_is_not_a_record_is_refused(data: bytes) -> None:
    with pytest.raises(RegistryError, match="build record"):
        parse_record(data, what="blob")


# ------------------------------------------------------------ referrers tags


def test_referrers_tags_are_never_versions() -> None:
    tag = referrers_tag(IMAGE_DIGEST)
    assert tag == "sha256-" + IMAGE_DIGEST[7:]
    assert is_referrers_tag(tag)
    assert is_referrers_tag(tag + ".sig")
    assert not is_referrers_tag("v1")
    assert not is_referrers_tag("sha256-abc")
    digits = "sha256-" + "1" * 64  # all digits: still not a counter, whatever the prefix
    for name in ("counter", "semver", "calver"):
        scheme = make_scheme(name, prefix="sha256-")
        assert scheme.parse(digits) is None
        assert scheme.parse(tag) is None
    assert make_scheme("counter").next_tag(["v1", tag, tag + ".sig"]) == "v2"
    with pytest.raises(VersionError, match="referrers tag"):
        check_explicit_tag(tag, [])


# --------------------------------------------------------- oras over transport


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v2/team/app/manifests/v1", "repository:team/app:pull"),
        ("HEAD", "/v2/a/b/c/blobs/sha256:00", "repository:a/b/c:pull"),
        ("POST", "/v2/team/app/blobs/uploads/", "repository:team/app:pull,push"),
        ("PUT", "/v2/team/app/manifests/sha256:00", "repository:team/app:pull,push"),
        ("GET", "/v2/", None),
        ("GET", "/token", None),
    ],
)
def test_each_oras_request_gets_the_scope_of_its_path(method: str, path: str, scope: str) -> None:
    assert orasclient.scope_for(method, path) == scope


class MiniRegistry:
    """Just enough of a registry for one record, with the referrers API or not."""

    def __init__(self, fake: FakeRegistry, *, referrers_api: bool) -> None:
        self.blobs: dict[str, bytes] = {}
        image = (OCI_MANIFEST, IMAGE)
        self.manifests: dict[str, tuple[str, bytes]] = {"v3": image, IMAGE_DIGEST: image}
        self.referrers_api = referrers_api
        fake.route("GET", "/v2/team/app/manifests/(.+)", self.get_manifest)
        fake.route("PUT", "/v2/team/app/manifests/(.+)", self.put_manifest)
        fake.route("GET", "/v2/team/app/blobs/(sha256:.+)", self.get_blob)
        fake.route("POST", "/v2/team/app/blobs/uploads/", status(202, Location="/upload/1"))
        fake.route("PUT", "/upload/1", self.put_blob)
        fake.route("GET", "/v2/team/app/referrers/(.+)", self.referrers)

    def get_manifest(self, request: Request) -> Response:
        found = self.manifests.get(request.path.rsplit("/", 1)[1])
        if found is None:
            return status(404)
        media_type, body = found
        return Response(200, {"Content-Type": media_type,
                              "Docker-Content-Digest": sha256_digest(body)}, body)  # fmt: skip

    def put_manifest(self, request: Request) -> Response:
        media_type = request.header("Content-Type") or ""
        self.manifests[request.path.rsplit("/", 1)[1]] = (media_type, request.body)
        self.manifests[sha256_digest(request.body)] = (media_type, request.body)
        headers = {"Docker-Content-Digest": sha256_digest(request.body)}
        subject = json.loads(request.body).get("subject")
        if self.referrers_api and subject:
            headers["OCI-Subject"] = subject["digest"]
        return Response(201, headers)

    def get_blob(self, request: Request) -> Response:
        body = self.blobs.get(request.path.rsplit("/", 1)[1])
        return Response(200, {}, body) if body is not None else status(404)

    def put_blob(self, request: Request) -> Response:
        self.blobs[request.arg("digest") or ""] = request.body
        return status(201)

    def referrers(self, request: Request) -> Response:
        if not self.referrers_api:
            return status(404)
        subject = request.path.rsplit("/", 1)[1]
        found = []
        for digest, (media_type, body) in self.manifests.items():
            document: dict[str, Any] = json.loads(body)
            if (
                digest.startswith("sha256:")
                and (document.get("subject") or {}).get("digest") == subject
            ):
                found.append({"mediaType": media_type, "digest": digest, "size": len(body),
                              "artifactType": document.get("artifactType")})  # fmt: skip
        return json_reply({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found},
                          headers={"Content-Type": OCI_INDEX})  # fmt: skip


def test_with_the_referrers_api_no_referrers_tag_is_written(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    mini = MiniRegistry(fake, referrers_api=True)
    record = build_record(ENTRY, BuildFacts())
    digest = attach(registry, repo, IMAGE_DIGEST, record)
    assert referrers_tag(IMAGE_DIGEST) not in mini.manifests
    [found] = build_records(registry, repo, IMAGE_DIGEST)
    assert found.digest == digest
    assert found.subject == IMAGE_DIGEST
    assert found.record == record
    manifest = json.loads(mini.manifests[digest][1])
    assert manifest["artifactType"] == RECORD_TYPE
    assert manifest["subject"] == {"mediaType": OCI_MANIFEST, "digest": IMAGE_DIGEST,
                                   "size": len(IMAGE)}  # fmt: skip


def test_without_it_the_referrers_tag_lists_each_record_once(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    mini = MiniRegistry(fake, referrers_api=False)
    first = attach(registry, repo, IMAGE_DIGEST, build_record(ENTRY, BuildFacts()))
    again = attach(registry, repo, IMAGE_DIGEST, build_record(ENTRY, BuildFacts()))
    other = attach(registry, repo, IMAGE_DIGEST, build_record(ENTRY, BuildFacts(backend="x")))
    assert first == again != other
    media_type, body = mini.manifests[referrers_tag(IMAGE_DIGEST)]
    assert media_type == OCI_INDEX
    listed = [m["digest"] for m in json.loads(body)["manifests"]]
    assert listed == [first, other]
    assert [r.digest for r in build_records(registry, repo, IMAGE_DIGEST)] == [first, other]


def test_a_failing_registry_is_retried_by_ocirel_not_by_oras(
    fake: FakeRegistry, registry: Registry, repo: Reference, sleeps: list[float]
) -> None:
    """oras-py's decorator would sleep 2 + 3**n seconds, ~131 s in all: ocirel's one
    retry loop (bounded, its sleeps recorded here) is the only one."""
    MiniRegistry(fake, referrers_api=False)
    fake.route("POST", "/v2/team/app/blobs/uploads/", status(503))
    started = time.monotonic()
    with pytest.raises(RegistryError, match="503"):
        attach(registry, repo, IMAGE_DIGEST, build_record(ENTRY, BuildFacts()))
    assert time.monotonic() - started < 10
    # both blobs (uploaded at once): 4 attempts each, ocirel's 3 short sleeps between
    assert len(fake.requests("/v2/team/app/blobs/uploads/", method="POST")) == 8
    assert len(sleeps) == 6
    assert max(sleeps) < 5


def test_a_forged_index_entry_is_not_taken_for_a_record(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    """An index entry whose manifest names another subject is skipped."""
    mini = MiniRegistry(fake, referrers_api=False)
    other = Digest("sha256:" + "0" * 64)
    digest = attach(registry, repo, IMAGE_DIGEST, build_record(ENTRY, BuildFacts()))
    _, body = mini.manifests[referrers_tag(IMAGE_DIGEST)]
    mini.manifests[referrers_tag(other)] = (OCI_INDEX, body)  # copied under another subject
    assert build_records(registry, repo, other) == []
    assert [r.digest for r in build_records(registry, repo, IMAGE_DIGEST)] == [digest]


# -------------------------------------------------------------------- provenance


def test_provenance_verdicts() -> None:
    assert provenance_of(ENTRY, _Outcome(value=["zzz", "abc"])) == PROVENANCE_OK
    assert "no build record" in provenance_of(ENTRY, _Outcome(value=[]))
    assert "revision zzz" in provenance_of(ENTRY, _Outcome(value=["zzz"]))
    unreadable = provenance_of(ENTRY, _Outcome(error=RegistryError("boom")))
    assert unreadable.startswith("could not check: boom")


def test_show_renders_a_foreign_record_without_failing_or_escape_sequences() -> None:
    from ocirel.cli.show import _printable, _record_lines  # noqa: PLC0415

    lines = _record_lines({"source": "x", "baseImages": ["y", {"ref": "a"}], "buildArgs": [1]})
    assert lines[0] == "source          - @ -"
    assert "base image      a (digest unknown)" in lines
    assert _printable("rev \x1b[2J\x07") == "rev \\x1b[2J\\x07"


def test_the_prefetch_waits_for_a_new_version() -> None:
    """Nothing is fetched for a publish that pushes nothing (an unchanged re-publish)."""
    from ocirel.records.prefetch import Prefetch  # noqa: PLC0415

    asked: list[str] = []

    def version() -> str:
        asked.append("version")
        return "1.28.2"

    prefetch = Prefetch(version)
    assert asked == []
    prefetch.start()
    prefetch.start()
    assert prefetch.backend_version() == "1.28.2"
    assert asked == ["version"]
    assert Prefetch(lambda: "2.0").backend_version() == "2.0"  # never started: fetched then


def test_an_entry_a_concurrent_writer_dropped_from_the_referrers_tag_is_merged_back(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    """A rival that read the index before our write writes it back without our entry
    during our settle wait: the re-read misses it, and the merge writes both."""
    from ocirel.records import referrers  # noqa: PLC0415

    mini = MiniRegistry(fake, referrers_api=False)
    tag = referrers_tag(IMAGE_DIGEST)
    rival = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "e" * 64, "size": 1}
    rival_index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [rival]})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        if not waits:  # the rival's write lands while we settle
            mini.manifests[tag] = (OCI_INDEX, rival_index.encode())
        waits.append(seconds)

    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "annotations": {"a": "b"}}
    ours = Digest(sha256_digest(json.dumps(manifest).encode()))
    referrers._merge_referrers_tag(registry, repo.with_tag(tag), manifest, ours, sleep=sleep)
    listed = [m["digest"] for m in json.loads(mini.manifests[tag][1])["manifests"]]
    assert listed == [rival["digest"], ours]
    assert len([r for r in fake.log if r.method == "PUT" and r.path.endswith(tag)]) == 2
    assert waits[0] >= referrers.MERGE_SETTLE


def test_a_referrers_tag_that_keeps_losing_our_entry_fails_after_bounded_rounds(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    from ocirel.records import referrers  # noqa: PLC0415

    mini = MiniRegistry(fake, referrers_api=False)
    tag = referrers_tag(IMAGE_DIGEST)
    empty = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()

    def sleep(_seconds: float) -> None:
        mini.manifests[tag] = (OCI_INDEX, empty)  # every write overwritten at once

    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    with pytest.raises(RegistryError, match="did not keep"):
        referrers._merge_referrers_tag(
            registry, repo.with_tag(tag), manifest, IMAGE_DIGEST, sleep=sleep
        )
    puts = [r for r in fake.log if r.method == "PUT" and r.path.endswith(tag)]
    assert len(puts) == referrers.MERGE_ATTEMPTS


def test_making_the_prefetch_loads_no_http_client() -> None:
    """publish makes its Prefetch before the build starts: that must not import the
    registry client (requests, ~130 ms that delayed every build's start)."""
    code = (
        "import sys\n"
        "from ocirel.cli import wiring\n"
        "class Builder:\n"
        "    version = staticmethod(lambda: None)\n"
        "wiring._prefetch(Builder())\n"
        "heavy = ('requests', 'urllib3', 'ocirel.transport', 'ocirel.registry', 'oras')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == ""
