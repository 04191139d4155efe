"""The layout publisher against an in-memory registry: races and immutable tags, deterministic.

RELIABILITY items 25, 26, 27 (and 29 at the seam between builder and upload). The
publisher runs for real — real :class:`~ocirel.registry.Registry` and transport over
HTTP to a :class:`~tests.unit.fakeregistry.FakeRegistry` — with a stub builder whose
``export`` writes a small valid OCI layout. :class:`Store` turns the fake into a
one-repository registry (blobs, manifests, tags) and gives the tests the hooks a real
race needs: a rival tag written between listing and claim, during the settle period,
or a tag PUT refused because tags are immutable. ``sleep`` and ``clock`` are injected,
so nothing waits and the settle period can be checked exactly.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import os
import re
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import pytest
import typer

from ocirel import lockfile
from ocirel.backends.base import BuildEnv, BuildSpec, LayoutExporter, SelfPusher, StaleCache
from ocirel.cli.output import handle_errors
from ocirel.errors import (
    DigestMismatchError,
    LockfileError,
    RegistryError,
    TagConflictError,
    VersionError,
)
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import LABEL_VERSION, OCI_CONFIG, OCI_MANIFEST, Digest, ImageConfig
from ocirel.publish import Explained, Publisher, PublishRequest, PublishResult, make_publisher
from ocirel.reference import Reference, parse
from ocirel.registry import Registry
from ocirel.versioning import make_scheme
from tests.support.client import RandomImage
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    Request,
    Response,
    json_reply,
    oci_error,
)

NAME = "team/app"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the registry


TagHook = Callable[[str, str], Response | None]


class Store:
    """One repository in memory, served by ``fake``: enough of the distribution API
    for a publish (tag list, manifests by tag and digest, monolithic blob uploads).

    ``on_tag_put(tag, digest)`` runs before a manifest PUT *to a tag* is stored; a
    :class:`Response` it returns is sent instead (e.g. an immutable-tag refusal).
    """

    def __init__(self, fake: FakeRegistry) -> None:
        self.fake = fake
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.tags: dict[str, str] = {}
        self.tag_puts: list[str] = []
        self.on_tag_put: TagHook | None = None
        self._lock = threading.Lock()
        self._uploads = itertools.count(1)
        base = f"/v2/{NAME}"
        fake.route("GET", f"{base}/tags/list", self._tag_list)
        fake.route("GET", f"{base}/manifests/(.+)", self._get_manifest)
        fake.route("PUT", f"{base}/manifests/(.+)", self._put_manifest)
        fake.route("GET", f"{base}/blobs/(.+)", self._get_blob)
        fake.route("POST", f"{base}/blobs/uploads/", self._start_upload)
        fake.route("PUT", f"{base}/blobs/uploads/(.+)", self._finish_upload)

    # -- what tests do directly (another publisher, outside our HTTP session)

    def seed(self, tag: str, image: RandomImage | None = None) -> str:
        """Store a random image (or ``image``) and point ``tag`` at it; its digest."""
        image = image or RandomImage.create()
        with self._lock:
            self.blobs[sha256(image.config)] = image.config
            self.blobs[sha256(image.layer)] = image.layer
            self.manifests[image.digest] = (OCI_MANIFEST, image.manifest)
            self.tags[tag] = image.digest
        return image.digest

    def config_of(self, digest: str) -> dict[str, Any]:
        document = json.loads(self.manifests[digest][1])
        config: dict[str, Any] = json.loads(self.blobs[document["config"]["digest"]])
        return config

    def requests_for(self, method: str, tag: str) -> list[Request]:
        return self.fake.requests(f"/v2/{NAME}/manifests/{re.escape(tag)}", method)

    # -- handlers

    def _tag_list(self, _request: Request) -> Response:
        with self._lock:
            if not self.tags and not self.manifests:
                return oci_error(404, "NAME_UNKNOWN", "repository name not known to registry")
            return json_reply({"name": NAME, "tags": sorted(self.tags)})

    def _lookup(self, request: Request) -> tuple[str, tuple[str, bytes]] | None:
        ref = request.path.rsplit("/", 1)[1]
        with self._lock:
            digest = ref if ref.startswith("sha256:") else self.tags.get(ref)
            if digest is None or digest not in self.manifests:
                return None
            return digest, self.manifests[digest]

    def _get_manifest(self, request: Request) -> Response:
        found = self._lookup(request)
        if found is None:
            return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        digest, (media_type, body) = found
        return Response(200, {"Content-Type": media_type, "Docker-Content-Digest": digest}, body)

    def _put_manifest(self, request: Request) -> Response:
        ref = request.path.rsplit("/", 1)[1]
        digest = sha256(request.body)
        if not ref.startswith("sha256:"):
            self.tag_puts.append(ref)
            if self.on_tag_put is not None:
                refusal = self.on_tag_put(ref, digest)
                if refusal is not None:
                    return refusal
        elif ref != digest:
            return oci_error(400, "DIGEST_INVALID", "provided digest did not match content")
        media_type = request.header("Content-Type") or OCI_MANIFEST
        with self._lock:
            self.manifests[digest] = (media_type, request.body)
            if not ref.startswith("sha256:"):
                self.tags[ref] = digest
        return Response(201, {"Docker-Content-Digest": digest, "Location": request.path})

    def _get_blob(self, request: Request) -> Response:
        digest = request.path.rsplit("/", 1)[1]
        with self._lock:
            data = self.blobs.get(digest)
        if data is None:
            return oci_error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        return Response(200, {"Docker-Content-Digest": digest}, data)

    def _start_upload(self, _request: Request) -> Response:
        return Response(202, {"Location": f"/v2/{NAME}/blobs/uploads/{next(self._uploads)}"})

    def _finish_upload(self, request: Request) -> Response:
        digest = request.arg("digest") or ""
        if sha256(request.body) != digest:
            return oci_error(
                400, "DIGEST_INVALID", "provided digest did not match uploaded content"
            )
        with self._lock:
            self.blobs[digest] = request.body
        return Response(201, {"Docker-Content-Digest": digest})


# ----------------------------------------------------------------- the builder


def _layer(payload: bytes) -> tuple[bytes, str]:
    """A gzip layer holding ``/payload`` and its diff-id (digest of the plain tar)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("payload")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    plain = buffer.getvalue()
    return gzip.compress(plain, mtime=0), sha256(plain)


def descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


@dataclass
class StubBuilder:
    """A :class:`~ocirel.backends.base.LayoutExporter` whose image is one small random layer.

    ``export`` writes a valid OCI layout (index.json + blobs) and returns the manifest
    digest, or ``reported_digest`` when a test wants the builder to lie.
    ``before_push`` runs after the tag list was read and before anything is pushed
    (the publisher asks for the image's config right after the listing).
    """

    name: str = "stub"
    program: str = "stub"
    delivery: Final = "layout"
    install_hint: str = "install the stub"
    reproducible: bool = True
    multi_platform: bool = True
    reported_digest: str | None = None
    before_push: Callable[[], object] | None = None
    calls: list[str] = field(default_factory=list)
    #: what successive stale_cache calls answer (then None)
    stale: list[StaleCache | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.layer, diff_id = _layer(os.urandom(64))
        self.config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/payload"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "stub"}],
        }).encode()  # fmt: skip
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, self.config),
            "layers": [descriptor(OCI_LAYER, self.layer)],
        }).encode()  # fmt: skip

    @property
    def diff_ids(self) -> list[str]:
        ids: list[str] = json.loads(self.config)["rootfs"]["diff_ids"]
        return ids

    def build_argv(self, spec: BuildSpec, env: BuildEnv) -> list[str]:
        return ["stub", "build", str(spec.context)]

    def export_argv(self, image: str, layout: Path, digestfile: Path, env: BuildEnv) -> list[str]:
        return ["stub", "push", image, f"oci:{layout}"]

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        self.calls.append("build" if spec.layers else "build --no-cache")
        return "sha256:" + "b" * 64

    def stale_cache(self, image: str, timestamp: int, env: BuildEnv) -> StaleCache | None:
        self.calls.append(f"stale_cache {timestamp}")
        return self.stale.pop(0) if self.stale else None

    def export(self, image: str, layout: Path, env: BuildEnv, *, timeout: float) -> str:
        self.calls.append("export")
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)  # a planted layout exists already
        for data in (self.config, self.layer, self.manifest):
            (blobs / sha256(data).removeprefix("sha256:")).write_bytes(data)
        index = {"schemaVersion": 2, "manifests": [descriptor(OCI_MANIFEST, self.manifest)]}
        (layout / "index.json").write_text(json.dumps(index))
        (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        return self.reported_digest or sha256(self.manifest)

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        if self.before_push is not None:
            self.before_push()
        config: ImageConfig = json.loads(self.config)
        return config

    def image_annotations(self, image: str, env: BuildEnv) -> dict[str, str]:
        return {}

    def remove(self, image: str, env: BuildEnv) -> None:
        self.calls.append(f"remove {image}")

    def drop_stale(self, stale: StaleCache, env: BuildEnv) -> str | None:
        self.calls.append(f"drop {' '.join(stale.entries)}")
        return "could not remove abc" if "busy" in stale.entries else None

    def version(self) -> str | None:
        return "0"

    def problem(self) -> str | None:
        return None


# -------------------------------------------------------------------- fixtures


B = TypeVar("B", bound="LayoutExporter | SelfPusher")


@dataclass
class Run(Generic[B]):
    """One publish, ready to go: tweak ``builder``, ``store``, ``sleep_hook``, then ``run``."""

    tmp_path: Path
    store: Store
    builder: B
    make_transport: MakeTransport
    repo: Reference
    sleeps: list[float] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    sleep_hook: Callable[[], object] | None = None
    new_versions: list[str] = field(default_factory=list)  # what on_new_version heard
    stages: list[str] = field(default_factory=list)  # what stage heard (the live display)
    clock_step: float = 0.001
    attacher: Any = None  # the build record's (ocirel.publish.rider.Attacher)

    @property
    def lockfile(self) -> Path:
        return self.tmp_path / "ocirel.lock.json"

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.sleep_hook is not None:
            self.sleep_hook()

    def publisher(self, **options: Any) -> Publisher:
        options.setdefault("lockfile", self.lockfile)
        request = PublishRequest(
            context=self.tmp_path, repository=self.repo, name="app",
            scheme=make_scheme("counter"), **options,
        )  # fmt: skip
        ticks = itertools.count()
        return make_publisher(
            request, self.builder, BuildEnv(),
            registry_factory=lambda: Registry(self.make_transport()),
            say=self.said.append, sleep=self.sleep,
            clock=lambda: next(ticks) * self.clock_step,
            on_new_version=lambda: self.new_versions.append(str(request.repository)),
            stage=self.stages.append,
            attacher=self.attacher,
        )  # fmt: skip

    def run(self, **options: Any) -> PublishResult:
        return self.publisher(**options).run()

    def recorded(self) -> LockEntry:
        return lockfile.load(self.lockfile).entries["app"]

    def assert_recorded_is_ours(self, result: PublishResult, tag: str) -> None:
        """The lockfile holds ``tag`` and a digest the registry serves for it, and that
        digest is the image this run built (our layer, our version label)."""
        entry = self.recorded()
        assert (entry.tag, entry.digest) == (result.tag, result.digest) == (tag, result.digest)
        assert self.store.tags[tag] == entry.digest
        config = self.store.config_of(entry.digest)
        assert config["rootfs"]["diff_ids"] == getattr(self.builder, "diff_ids", None)
        assert config["config"]["Labels"][LABEL_VERSION] == tag


#: a publish through the layout publisher's stub builder
LayoutRun = Run[StubBuilder]


@pytest.fixture
def publish(tmp_path: Path, fake: FakeRegistry, make_transport: MakeTransport) -> LayoutRun:
    return Run(
        tmp_path, Store(fake), StubBuilder(), make_transport, parse(f"{fake.address}/{NAME}")
    )


EXISTING_LOCK = {"other": LockEntry("other", "r.example/other", "v3", Digest("sha256:" + "3" * 64))}


@pytest.fixture
def old_lockfile(publish: LayoutRun) -> bytes:
    """A lockfile with another image's entry; the bytes a failed publish must leave alone."""
    lockfile.write_atomic(publish.lockfile, lockfile.dumps(Lockfile(EXISTING_LOCK)))
    return publish.lockfile.read_bytes()


# ------------------------------------------------------------------- baseline


def test_publish_claims_the_first_tag_with_head_put_settle_verify(
    publish: LayoutRun,
) -> None:
    result = publish.run()
    assert result.tag == "v1"
    assert result.attempts == 1
    publish.assert_recorded_is_ours(result, "v1")
    tag_requests = [
        r.method for r in publish.store.fake.log if r.path == f"/v2/{NAME}/manifests/v1"
    ]
    assert tag_requests == ["HEAD", "PUT", "HEAD"]  # absent?, claim, still ours after settling
    assert publish.sleeps == [0.02]
    assert publish.stages == ["build", "compare", "export", "push", "verify", "lockfile"]


def test_an_unchanged_build_goes_from_compare_to_the_lockfile(publish: LayoutRun) -> None:
    publish.run()
    publish.stages.clear()
    publish.run()
    assert publish.stages == ["build", "compare", "lockfile"]


def test_r25_settle_wait_outlasts_the_head_to_put_gap(publish: LayoutRun) -> None:
    """A rival that also saw 404 sends its PUT within its own HEAD→PUT gap of ours; the
    settle wait is four times our gap (at least ``settle_seconds``) before the check."""
    publish.clock_step = 0.25  # HEAD→PUT took 0.25 s
    publish.run()
    assert publish.sleeps == [1.0]


# ------------------------------------------------- issue 10 item 8: stale layer cache


def test_a_stale_layer_cache_is_rebuilt_without_the_cache(publish: LayoutRun) -> None:
    publish.builder.stale = [
        StaleCache("cached layer abc was built for another time", entries=("abc", "def"))
    ]
    result = publish.run(timestamp=1700000000)
    assert result.tag == "v1"
    steps = [c for c in publish.builder.calls if c.startswith(("build", "stale", "drop"))]
    # the stale cached steps go after the rebuild, so the next build finds the new ones
    assert steps == ["build", "stale_cache 1700000000", "build --no-cache", "drop abc def"]
    assert any("without the layer cache" in line for line in publish.said)


def test_a_stale_step_that_cannot_go_is_said(publish: LayoutRun) -> None:
    publish.builder.stale = [StaleCache("cached layer abc was built earlier", entries=("busy",))]
    result = publish.run(timestamp=1700000000)
    assert result.tag == "v1"
    assert "could not remove abc" in publish.said


def test_a_fresh_layer_cache_is_kept(publish: LayoutRun) -> None:
    publish.run(timestamp=1700000000)
    builds = [c for c in publish.builder.calls if c.startswith(("build", "stale"))]
    assert builds == ["build", "stale_cache 1700000000"]


@pytest.mark.parametrize("options", [{}, {"timestamp": 1700000000, "no_cache": True}])
def test_no_timestamp_or_no_cache_needs_no_check(
    publish: LayoutRun, options: dict[str, Any]
) -> None:
    publish.builder.stale = [StaleCache("would be stale")]
    publish.run(**options)
    assert not any(c.startswith("stale") for c in publish.builder.calls)


# ------------------------------------------------------------------ item 26


def test_r26_tag_appearing_after_listing_is_never_overwritten(publish: LayoutRun) -> None:
    rival: dict[str, str] = {}
    publish.builder.before_push = lambda: rival.setdefault("v1", publish.store.seed("v1"))
    result = publish.run()
    assert result.tag == "v2"
    assert result.attempts == 2
    assert publish.store.requests_for("PUT", "v1") == []  # HEAD said 200: no PUT to it
    assert publish.store.tags["v1"] == rival["v1"]
    publish.assert_recorded_is_ours(result, "v2")
    assert any("already exists" in line for line in publish.said)


def test_r26_several_tags_appearing_are_all_skipped(publish: LayoutRun) -> None:
    publish.store.seed("v1")
    publish.builder.before_push = lambda: [publish.store.seed(t) for t in ("v2", "v3", "v4")]
    result = publish.run()
    assert result.tag == "v5"
    assert publish.store.tag_puts == ["v5"]
    publish.assert_recorded_is_ours(result, "v5")


def test_r26_explicit_existing_tag_fails_before_building(
    publish: LayoutRun, old_lockfile: bytes
) -> None:
    seeded = publish.store.seed("release-1")
    with pytest.raises(VersionError, match=r"already exists.*never overwrites"):
        publish.run(explicit_tag="release-1")
    assert "build" not in publish.builder.calls
    assert publish.store.tag_puts == []
    assert publish.store.tags == {"release-1": seeded}
    assert publish.lockfile.read_bytes() == old_lockfile


# ------------------------------------------------------------------ item 27


IMMUTABLE_REFUSALS = {
    "ecr": oci_error(400, "TAG_INVALID", "The image tag 'v1' already exists in the 'team/app' "
                     "repository and cannot be overwritten because the repository is immutable."),
    "harbor": oci_error(412, "PRECONDITION", "Failed to process request due to 'v1' configured "
                        "as immutable."),
    "conflict-409": oci_error(409, "DENIED", "tag v1 exists"),
    "immutable-code": oci_error(400, "MANIFEST_TAG_IMMUTABLE", "tag is immutable"),
    "immutable-message": oci_error(400, "DENIED", "cannot overwrite an IMMUTABLE tag"),
}  # fmt: skip


@pytest.mark.parametrize("refusal", IMMUTABLE_REFUSALS.values(), ids=IMMUTABLE_REFUSALS.keys())
def test_r27_immutable_tag_refusal_is_a_lost_race(publish: LayoutRun, refusal: Response) -> None:
    """A rival wrote v1 between our HEAD and our PUT; the registry refuses to overwrite it."""
    rival: dict[str, str] = {}

    def refuse_v1(tag: str, _digest: str) -> Response | None:
        if tag != "v1":
            return None
        rival["v1"] = publish.store.seed("v1")
        return refusal

    publish.store.on_tag_put = refuse_v1
    result = publish.run()
    assert result.tag == "v2"
    assert publish.store.tag_puts == ["v1", "v2"]
    assert publish.store.tags["v1"] == rival["v1"]
    publish.assert_recorded_is_ours(result, "v2")
    assert any("immutable" in line for line in publish.said)


def test_r27_other_refusals_are_not_mistaken_for_a_race(
    publish: LayoutRun, old_lockfile: bytes
) -> None:
    publish.store.on_tag_put = lambda _tag, _digest: oci_error(400, "MANIFEST_INVALID", "bad")
    with pytest.raises(RegistryError) as info:
        publish.run()
    assert not isinstance(info.value, TagConflictError)
    assert publish.store.tag_puts == ["v1"]  # not retried under another tag
    assert publish.lockfile.read_bytes() == old_lockfile


def test_r27_immutable_refusal_of_an_explicit_tag_fails_with_exit_4(
    publish: LayoutRun, old_lockfile: bytes
) -> None:
    publish.store.on_tag_put = lambda _tag, _digest: IMMUTABLE_REFUSALS["ecr"]
    with pytest.raises(TagConflictError, match="immutable") as info:
        publish.run(explicit_tag="release-1")
    assert info.value.exit_code == 4
    assert publish.store.tag_puts == ["release-1"]
    assert publish.lockfile.read_bytes() == old_lockfile


# ------------------------------------------------------------------ item 25


def test_r25_rival_put_during_settle_moves_us_to_the_next_version(
    publish: LayoutRun,
) -> None:
    """Another publisher overwrites our fresh v1 while we wait: we notice, take v2, and
    record only the digest we built — never the rival's, never our orphaned v1 image."""
    rival: dict[str, str] = {}

    def overwrite_once() -> None:
        if not rival:
            rival["v1"] = publish.store.seed("v1")

    publish.sleep_hook = overwrite_once
    result = publish.run()
    assert result.tag == "v2"
    assert result.attempts == 2
    assert publish.store.tag_puts == ["v1", "v2"]
    assert publish.store.tags["v1"] == rival["v1"]  # the rival keeps its tag
    publish.assert_recorded_is_ours(result, "v2")
    assert rival["v1"] not in publish.lockfile.read_text()
    assert any("raced" in line for line in publish.said)
    assert publish.stages[-5:] == ["push", "verify", "push", "verify", "lockfile"]


def test_r25_rival_during_settle_with_explicit_tag_fails(
    publish: LayoutRun, old_lockfile: bytes
) -> None:
    publish.sleep_hook = lambda: publish.store.seed("release-1")
    with pytest.raises(TagConflictError, match="another publisher raced us") as info:
        publish.run(explicit_tag="release-1")
    assert info.value.exit_code == 4
    assert publish.store.tag_puts == ["release-1"]
    assert publish.lockfile.read_bytes() == old_lockfile


def test_r25_max_attempts_exhausted_fails_and_leaves_the_lockfile(
    publish: LayoutRun, old_lockfile: bytes
) -> None:
    """Every tag we claim is overwritten while we settle: after ``max_attempts`` tags
    the run fails with the conflict error and records nothing."""
    publish.sleep_hook = lambda: publish.store.seed(publish.store.tag_puts[-1])
    with pytest.raises(TagConflictError, match="raced"):
        publish.run(max_attempts=3)
    assert publish.store.tag_puts == ["v1", "v2", "v3"]
    assert publish.lockfile.read_bytes() == old_lockfile


def test_r25_tag_conflict_maps_to_exit_code_4() -> None:
    @handle_errors
    def command() -> None:
        raise TagConflictError("tag v1 now points at sha256:…")

    with pytest.raises(typer.Exit) as info:
        command()
    assert info.value.exit_code == 4


# ------------------------------------------------------------------ item 29


def test_r29_export_digest_that_does_not_match_the_layout_pushes_nothing(
    publish: LayoutRun, old_lockfile: bytes
) -> None:
    publish.builder.reported_digest = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatchError, match="reported"):
        publish.run()
    assert not [r for r in publish.store.fake.log if r.method in ("PUT", "POST")]
    assert publish.lockfile.read_bytes() == old_lockfile


def test_an_export_whose_layers_are_not_the_compared_ones_pushes_nothing(
    publish: LayoutRun, old_lockfile: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unchanged decision is made on the config read before the export (the storage's
    files, or inspect): an export with other layers than that config stops the publish."""
    other: ImageConfig = json.loads(publish.builder.config)
    other["rootfs"]["diff_ids"] = ["sha256:" + "e" * 64]
    monkeypatch.setattr(publish.builder, "image_config", lambda image, env: other)
    with pytest.raises(DigestMismatchError, match="other layers"):
        publish.run()
    assert not [r for r in publish.store.fake.log if "/manifests/" in r.path and r.method == "PUT"]
    assert publish.lockfile.read_bytes() == old_lockfile


# ------------------------------------------------------ round two: item 42 (issue 9.4)


def _record_in_lockfile(publish: LayoutRun, tag: str, issued: str | None = None) -> None:
    """The lockfile says ``app`` was released as ``tag`` (and, optionally, that the
    highest version ever issued for the repository is ``issued``)."""
    lock = Lockfile({"app": LockEntry("app", publish.repo.name, tag, Digest("sha256:" + "3" * 64))})
    if issued is not None:
        lock = lock.with_issued(publish.repo.name, issued)
    lockfile.write_atomic(publish.lockfile, lockfile.dumps(lock))


def test_r42_a_tag_deleted_from_the_registry_is_not_issued_again(publish: LayoutRun) -> None:
    """v3 was yanked from the registry; the lockfile still knows it: the next is v4."""
    publish.store.seed("v1")
    publish.store.seed("v2")
    _record_in_lockfile(publish, "v3")
    result = publish.run()
    assert result.tag == "v4"
    assert publish.store.tag_puts == ["v4"]
    publish.assert_recorded_is_ours(result, "v4")
    warnings = [line for line in publish.said if line.startswith("warning:")]
    assert any("v3" in line and "registry" in line for line in warnings), publish.said


def test_r42_a_registry_that_lost_every_tag_does_not_restart_at_v1(
    publish: LayoutRun,
) -> None:
    """Distribution answers ``{"tags": null}`` once every tag is deleted."""
    publish.store.fake.route(
        "GET", f"/v2/{NAME}/tags/list", json_reply({"name": NAME, "tags": None})
    )
    _record_in_lockfile(publish, "v3")
    result = publish.run()
    assert result.tag == "v4"
    publish.assert_recorded_is_ours(result, "v4")
    assert any(line.startswith("warning:") and "v3" in line for line in publish.said)


def test_r42_the_floor_survives_the_entry_moving_on(publish: LayoutRun) -> None:
    """The entry now says v2 (an unchanged build reused it), but v5 was issued once."""
    publish.store.seed("v1")
    publish.store.seed("v2")
    _record_in_lockfile(publish, "v2", issued="v5")
    result = publish.run()
    assert result.tag == "v6"
    assert lockfile.load(publish.lockfile).issued == {publish.repo.name: "v6"}


def test_r42_publishing_records_the_highest_issued_version(publish: LayoutRun) -> None:
    first = publish.run()
    assert first.tag == "v1"
    assert lockfile.load(publish.lockfile).issued == {publish.repo.name: "v1"}


def test_r42_an_explicit_tag_the_lockfile_recorded_is_refused(publish: LayoutRun) -> None:
    _record_in_lockfile(publish, "v2", issued="v5")
    before = publish.lockfile.read_bytes()
    for tag in ("v2", "v4", "v5"):
        with pytest.raises(VersionError, match="lockfile"):
            publish.run(explicit_tag=tag)
    assert "build" not in publish.builder.calls
    assert publish.store.tag_puts == []
    assert publish.lockfile.read_bytes() == before


def test_r42_dry_run_applies_the_floor(publish: LayoutRun) -> None:
    _record_in_lockfile(publish, "v3")
    assert publish.run(dry_run=True).tag == "v4"


# ----------------------------------------------------- round two: item 55 (issue 9.17)


def test_r55_lockfile_with_duplicate_keys_stops_publish_before_building(
    publish: LayoutRun,
) -> None:
    entry = json.dumps(
        LockEntry("app", publish.repo.name, "v1", Digest("sha256:" + "1" * 64)).to_json()
    )
    other = json.dumps(
        LockEntry("app", "r.example/other", "v9", Digest("sha256:" + "9" * 64)).to_json()
    )
    publish.lockfile.write_text(f'{{"schema": 1, "images": {{"app": {entry}, "app": {other}}}}}')
    before = publish.lockfile.read_bytes()
    with pytest.raises(LockfileError, match=r"'app' more than once"):
        publish.run()
    assert publish.builder.calls == []
    assert publish.store.tag_puts == []
    assert publish.lockfile.read_bytes() == before


# ------------------------------------------ round two: items 49 and 59 (issue 9.11, 9.21)


@pytest.mark.timeout(20)
def test_r49_fifo_as_lockfile_stops_publish_before_building(publish: LayoutRun) -> None:
    os.mkfifo(publish.lockfile)
    with pytest.raises(LockfileError, match="not a regular file"):
        publish.run()
    assert publish.builder.calls == []
    assert publish.store.tag_puts == []


def test_r59_unwritable_lockfile_stops_publish_before_building(publish: LayoutRun) -> None:
    """A lockfile that does not exist yet, where it cannot be created: found out before
    the build, not after the push (``cannot create lock file …``)."""
    with pytest.raises(LockfileError, match=r"cannot write .*deploy/ocirel.lock.json"):
        publish.run(lockfile=publish.tmp_path / "deploy" / "ocirel.lock.json")
    assert publish.builder.calls == []
    assert not [r for r in publish.store.fake.log if r.method in ("PUT", "POST")]


def test_r59_unwritable_lock_sibling_stops_publish_before_building(
    publish: LayoutRun,
) -> None:
    (publish.tmp_path / "ocirel.lock.json.lock").mkdir()
    with pytest.raises(LockfileError, match=r"ocirel.lock.json.lock"):
        publish.run()
    assert publish.builder.calls == []
    assert publish.store.tag_puts == []


# ----------------------------------------------------- round two: item 56 (issue 9.18)


def _lagging(publish: LayoutRun, tag: str, misses: int) -> None:
    """After the PUT to ``tag``, the registry answers 404 for it ``misses`` more times
    (an S3-backed or CDN-fronted registry that has not caught up yet)."""
    lag = {"left": 0}

    def after_put(put_tag: str, _digest: str) -> None:
        if put_tag == tag:
            lag["left"] = misses

    def manifest(request: Request) -> Response:
        if lag["left"] > 0:
            lag["left"] -= 1
            return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        return publish.store._get_manifest(request)

    publish.store.on_tag_put = after_put
    publish.store.fake.route("GET", f"/v2/{NAME}/manifests/{re.escape(tag)}", manifest)


def test_r56_a_new_tag_that_answers_404_for_a_while_is_waited_for(
    publish: LayoutRun,
) -> None:
    _lagging(publish, "v1", misses=3)
    result = publish.run(verify_timeout=10.0)
    assert result.tag == "v1"
    publish.assert_recorded_is_ours(result, "v1")
    settle, *backoff = publish.sleeps
    assert settle == 0.02
    assert len(backoff) == 3
    assert backoff == sorted(backoff)  # growing waits
    assert sum(backoff) <= 10.0


def test_r56_a_tag_that_never_shows_up_fails_saying_what_is_where(
    publish: LayoutRun, old_lockfile: bytes
) -> None:
    _lagging(publish, "v1", misses=10**6)
    with pytest.raises(RegistryError) as info:
        publish.run(verify_timeout=3.0)
    message = f"{info.value} {info.value.hint}"
    digest = publish.store.tags["v1"]
    assert f"{publish.repo.name}@{digest}" in message  # what is in the registry
    assert ":v1" in message  # under which tag
    assert "not recorded" in message
    assert "publish again" in message  # how to recover
    assert 0 < sum(publish.sleeps[1:]) <= 3.0 + 2.0  # bounded (one last wait may overrun)
    assert publish.lockfile.read_bytes() == old_lockfile


# ------------------------------------------------------ round two: item 46 (issue 9.8)

SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def _seed_raw(store: Store, tag: str, media_type: str, manifest: bytes, *blobs: bytes) -> None:
    with store._lock:
        for blob in blobs:
            store.blobs[sha256(blob)] = blob
        store.manifests[sha256(manifest)] = (media_type, manifest)
        store.tags[tag] = sha256(manifest)


def _artifact(config_type: str, config: bytes) -> tuple[bytes, bytes]:
    layer = os.urandom(32)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom.v1",
        "config": descriptor(config_type, config),
        "layers": [descriptor("application/octet-stream", layer)],
    }).encode()  # fmt: skip
    return manifest, layer


LATEST_KINDS = {
    "artifact-binary-config": "application/vnd.example.thing.config.v1+octet",
    "binary-config-claiming-image": OCI_CONFIG,
    "empty-config": "application/vnd.oci.empty.v1+json",
}


@pytest.mark.parametrize("config_type", LATEST_KINDS.values(), ids=LATEST_KINDS.keys())
def test_r46_latest_version_is_an_artifact_comparison_skipped(
    publish: LayoutRun, config_type: str
) -> None:
    config = b"{}" if "empty" in config_type else b"\x00\xff\xfe binary \x80"
    manifest, layer = _artifact(config_type, config)
    _seed_raw(publish.store, "v1", OCI_MANIFEST, manifest, config, layer)
    result = publish.run()
    assert result.tag == "v2"
    assert not result.unchanged
    publish.assert_recorded_is_ours(result, "v2")
    assert any("v1" in line and "comparison skipped" in line for line in publish.said)
    assert "comparison skipped" in result.explanation[0]


def test_r46_latest_version_is_a_schema1_manifest_comparison_skipped(
    publish: LayoutRun,
) -> None:
    manifest = json.dumps({
        "schemaVersion": 1, "name": NAME, "tag": "v1", "architecture": "amd64",
        "fsLayers": [{"blobSum": "sha256:" + "a" * 64}],
        "history": [{"v1Compatibility": "{}"}],
        "signatures": [{"header": {"alg": "ES256"}, "signature": "x", "protected": "y"}],
    }, indent=3).encode()  # fmt: skip
    _seed_raw(publish.store, "v1", SCHEMA1, manifest)
    result = publish.run()
    assert result.tag == "v2"
    publish.assert_recorded_is_ours(result, "v2")
    assert any("schema 1" in line and "comparison skipped" in line for line in publish.said)


def test_r46_explain_says_why_the_comparison_was_skipped(publish: LayoutRun) -> None:
    manifest, layer = _artifact(LATEST_KINDS["artifact-binary-config"], b"\x00\x01")
    _seed_raw(publish.store, "v1", OCI_MANIFEST, manifest, b"\x00\x01", layer)
    result = publish.run(explain=True)
    assert isinstance(result.outcome, Explained)
    assert not result.unchanged
    assert "artifact" in result.explanation[0]
    assert publish.store.tag_puts == []


def test_r46_latest_version_with_a_config_that_is_not_json_comparison_skipped(
    publish: LayoutRun,
) -> None:
    config, layer = b"\x00\xff\xfe binary \x80", os.urandom(32)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor("application/octet-stream", layer)],
    }).encode()  # fmt: skip
    _seed_raw(publish.store, "v1", OCI_MANIFEST, manifest, config, layer)
    result = publish.run()
    assert result.tag == "v2"
    publish.assert_recorded_is_ours(result, "v2")
    assert "configuration that is not JSON" in result.explanation[0]


def test_on_new_version_is_told_once_before_the_push_and_never_for_explain(
    publish: LayoutRun,
) -> None:
    """The build record's prefetch starts here (cli.wiring), so that it overlaps the
    push and an --explain or unchanged run never pays for it."""
    publish.run(explain=True)
    assert publish.new_versions == []
    publish.store.on_tag_put = lambda _tag, _digest: publish.new_versions.append("put")
    publish.run()
    assert publish.new_versions == [publish.repo.name, "put"]


# --------------------------------------------- issue 15: the record rides the claim


@dataclass
class StubRecords:
    """An :class:`~ocirel.publish.rider.Attacher` that notes what the publish had done
    when it started a record and when it finished (joined) each."""

    publish: LayoutRun
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def start(self, registry: Registry, entry: LockEntry, source: object) -> StubRide:
        store = self.publish.store
        heads = store.requests_for("HEAD", entry.tag)
        self.events.append(("start", entry, store.tags.get(entry.tag), len(heads),
                            len(self.publish.sleeps)))  # fmt: skip
        return StubRide(self, entry)


@dataclass
class StubRide:
    records: StubRecords
    entry: LockEntry

    def finish(self, *, kept: bool) -> None:
        lock = self.records.publish.lockfile
        text = lock.read_text() if lock.exists() else ""
        self.records.events.append(("finish", self.entry.tag, kept, self.entry.digest in text))


def test_the_record_starts_once_the_tag_is_written_and_is_joined_before_publish_returns(
    publish: LayoutRun,
) -> None:
    """Started after the claim's PUT, before the settle wait and the check (so it runs
    while the tag settles), naming the entry the lockfile then gets; finished as kept
    once the lockfile is written, before ``run`` returns."""
    publish.attacher = records = StubRecords(publish)
    result = publish.run()
    [start, finish] = records.events
    _, entry, tagged, heads, sleeps = start
    assert tagged == result.digest  # the tag already points at the image
    assert (heads, sleeps) == (1, 0)  # the absence check only; not settled, not verified
    assert entry == publish.recorded()  # the record names exactly the lockfile's entry
    assert finish == ("finish", "v1", True, True)  # joined after the lockfile was written


def test_a_record_started_for_a_lost_claim_is_finished_as_an_orphan(publish: LayoutRun) -> None:
    """A rival overwrites v1 while it settles: the v1 record (its subject now untagged)
    is finished as not kept, the v2 record as kept."""
    publish.attacher = records = StubRecords(publish)
    rival: dict[str, str] = {}

    def overwrite_once() -> None:
        if not rival:
            rival["v1"] = publish.store.seed("v1")

    publish.sleep_hook = overwrite_once
    result = publish.run()
    assert result.tag == "v2"
    assert [e[0] for e in records.events] == ["start", "start", "finish", "finish"]
    assert records.events[2:] == [("finish", "v1", False, False), ("finish", "v2", True, True)]


def test_a_publish_that_fails_after_the_record_started_still_joins_it(
    publish: LayoutRun, old_lockfile: bytes
) -> None:
    publish.attacher = records = StubRecords(publish)
    publish.sleep_hook = lambda: publish.store.seed(publish.store.tag_puts[-1])
    with pytest.raises(TagConflictError):
        publish.run(max_attempts=2)
    finished = [e for e in records.events if e[0] == "finish"]
    assert finished == [("finish", "v1", False, False), ("finish", "v2", False, False)]
    assert publish.lockfile.read_bytes() == old_lockfile


def test_no_record_is_started_without_a_push(publish: LayoutRun) -> None:
    publish.attacher = records = StubRecords(publish)
    publish.run()
    again = publish.run()  # unchanged: reused, nothing pushed
    assert again.tag == "v1"
    assert [e[0] for e in records.events] == ["start", "finish"]


def test_ctrl_c_during_the_settle_does_not_wait_for_the_record_and_still_cleans_up(
    publish: LayoutRun,
) -> None:
    """The record's thread is a daemon: an interrupted publish neither joins it (that
    could hang on a slow registry) nor skips removing the local image."""
    publish.attacher = records = StubRecords(publish)

    def interrupt() -> None:
        raise KeyboardInterrupt

    publish.sleep_hook = interrupt
    with pytest.raises(KeyboardInterrupt):
        publish.run(no_cache=True)  # --no-cache: the local image is removed
    assert [e[0] for e in records.events] == ["start"]  # started, never joined
    assert any(call.startswith("remove ") for call in publish.builder.calls)
