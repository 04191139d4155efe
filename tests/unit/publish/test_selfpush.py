"""The self-pushing publisher (docker's path) against an in-memory registry.

:class:`StubPusher` is a :class:`~ocirel.backends.base.SelfPusher`: its ``push``
writes the image straight into the :class:`~tests.unit.publish.test_publisher.Store`
(as ``docker push`` would) and reports the digest. The tag is chosen before the
build (labels go in at build time), checked absent right before the push, and the
settle period is at least as long as the push took.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

from ocirel.backends.base import BuildEnv, BuildSpec, StaleCache
from ocirel.errors import DigestMismatchError, TagConflictError
from ocirel.oci import OCI_CONFIG, OCI_MANIFEST, ImageConfig
from ocirel.publish import Planned, Published, Reused, SelfPushPublisher
from ocirel.reference import parse
from ocirel.registry import Registry
from tests.unit.fakeregistry import FakeRegistry, MakeTransport
from tests.unit.publish.test_publisher import (
    NAME,
    OCI_LAYER,
    Run,
    Store,
    StubRecords,
    _layer,
    descriptor,
    sha256,
)


@dataclass
class StubPusher:
    """Builds one small random layer with the build's labels; pushes into ``store``."""

    store: Store
    name: str = "stub"
    program: str = "stub"
    delivery: Final = "push"
    install_hint: str = "install the stub"
    reproducible: bool = True
    multi_platform: bool = False
    #: a config digest to claim instead of the one built (a builder that lies)
    claimed_config: str | None = None
    #: runs when the publisher asks for the image's config, after the build and
    #: before the tag check (a rival writing the tag meanwhile, say)
    before_check: Any = None
    calls: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.layer, diff_id = _layer(os.urandom(64))
        self.diff_ids = [diff_id]
        self.labels: dict[str, str] = {}

    def config(self) -> bytes:
        return json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/payload"], "Labels": self.labels},
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
        }).encode()  # fmt: skip

    def build_argv(self, spec: BuildSpec, env: BuildEnv) -> list[str]:
        return ["stub", "build", "--tag", str(spec.image), str(spec.context)]

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        assert spec.image is not None, "a self-pushing builder builds a named image"
        self.calls.append("build")
        self.labels = dict(spec.labels)
        return None

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        if self.before_check is not None:
            self.before_check()
        config: ImageConfig = json.loads(self.config())
        return config

    def stale_cache(self, image: str, timestamp: int, env: BuildEnv) -> StaleCache | None:
        return None

    def drop_stale(self, stale: StaleCache, env: BuildEnv) -> str | None:
        return None

    def push(self, image: str, target: str, env: BuildEnv, *, timeout: float) -> str | None:
        tag = target.rsplit(":", 1)[1]
        self.calls.append(f"push {tag}")
        config = self.config()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, self.layer)],
        }).encode()  # fmt: skip
        store = self.store
        with store._lock:
            store.blobs[sha256(config)] = config
            store.blobs[sha256(self.layer)] = self.layer
            store.manifests[sha256(manifest)] = (OCI_MANIFEST, manifest)
            store.tags[tag] = sha256(manifest)
        store.tag_puts.append(tag)
        self.pushed.append(sha256(manifest))
        return sha256(manifest)

    def config_digest(self, image: str) -> str | None:
        return self.claimed_config or sha256(self.config())

    def remove(self, image: str, env: BuildEnv) -> None:
        self.calls.append("remove")

    def version(self) -> str | None:
        return "0"

    def problem(self) -> str | None:
        return None


PushRun = Run[StubPusher]


@pytest.fixture
def publish(tmp_path: Path, fake: FakeRegistry, make_transport: MakeTransport) -> PushRun:
    store = Store(fake)
    return Run(tmp_path, store, StubPusher(store), make_transport,
               parse(f"{fake.address}/{NAME}"))  # fmt: skip


def test_the_builders_delivery_picks_the_self_push_publisher(publish: PushRun) -> None:
    assert isinstance(publish.publisher(), SelfPushPublisher)


def test_publish_checks_the_tag_then_pushes_settles_and_verifies(publish: PushRun) -> None:
    result = publish.run()
    assert (result.tag, result.outcome) == ("v1", Published(1))
    publish.assert_recorded_is_ours(result, "v1")
    assert publish.builder.calls == ["build", "push v1", "remove"]
    assert publish.store.requests_for("HEAD", "v1")  # absent before the push
    assert publish.sleeps == [0.02]  # max(settle_seconds, how long the push took)
    assert publish.stages == ["tags", "build", "compare", "push, verify", "lockfile"]


def test_a_slow_push_settles_as_long_as_it_took(publish: PushRun) -> None:
    publish.clock_step = 3.0
    publish.run()
    assert publish.sleeps == [3.0]


def test_a_tag_taken_after_listing_means_a_rebuild_with_the_next_version(
    publish: PushRun,
) -> None:
    """A rival takes v1 while we build: HEAD says 200, so we never push to it."""
    rival: dict[str, str] = {}
    publish.builder.before_check = lambda: rival.setdefault("v1", publish.store.seed("v1"))
    result = publish.run()
    assert (result.tag, result.attempts) == ("v2", 2)
    assert publish.store.tags["v1"] == rival["v1"]
    assert publish.builder.calls == ["build", "build", "push v2", "remove"]
    publish.assert_recorded_is_ours(result, "v2")
    assert any("already exists" in line for line in publish.said)


def test_a_rival_overwrite_during_settle_moves_on(publish: PushRun) -> None:
    rival: dict[str, str] = {}

    def overwrite_once() -> None:
        if not rival:
            rival["v1"] = publish.store.seed("v1")

    publish.sleep_hook = overwrite_once
    result = publish.run()
    assert (result.tag, result.attempts) == ("v2", 2)
    assert publish.builder.calls.count("build") == 2  # the labels changed: rebuilt
    assert publish.store.tags["v1"] == rival["v1"]
    publish.assert_recorded_is_ours(result, "v2")


def test_an_explicit_tag_lost_in_a_race_fails(publish: PushRun) -> None:
    publish.sleep_hook = lambda: publish.store.seed("release-1")
    with pytest.raises(TagConflictError, match="raced"):
        publish.run(explicit_tag="release-1")
    assert not publish.lockfile.exists()


def test_a_served_config_other_than_the_built_one_is_refused(publish: PushRun) -> None:
    publish.builder.claimed_config = "sha256:" + "c" * 64
    with pytest.raises(DigestMismatchError, match="carries config"):
        publish.run()
    assert not publish.lockfile.exists()


def test_an_unchanged_build_reuses_the_latest_version_without_pushing(
    publish: PushRun,
) -> None:
    first = publish.run()
    assert publish.new_versions == [publish.repo.name]
    publish.builder.calls.clear()
    again = publish.run()
    assert (again.tag, again.digest, again.outcome) == ("v1", first.digest, Reused())
    assert publish.builder.calls == ["build", "remove"]
    assert publish.store.tag_puts == ["v1"]
    assert publish.new_versions == [publish.repo.name]  # no new version: not told again


def test_dry_run_plans_the_builders_own_push(publish: PushRun) -> None:
    result = publish.run(dry_run=True)
    assert isinstance(result.outcome, Planned)
    assert result.tag == "v1"
    assert f"stub push {publish.repo.name}:v1 (the builder pushes)" in result.outcome.steps
    assert publish.builder.calls == []


def test_a_builder_that_pushes_by_itself_cannot_publish_into_an_oci_layout(
    tmp_path: Path, fake: FakeRegistry
) -> None:
    from ocirel.errors import ConfigError  # noqa: PLC0415
    from ocirel.publish import PublishRequest, make_publisher  # noqa: PLC0415
    from ocirel.reference import parse_layout  # noqa: PLC0415
    from ocirel.versioning import make_scheme  # noqa: PLC0415

    request = PublishRequest(
        context=tmp_path, repository=parse_layout(f"oci:{tmp_path}/layout"), name="app",
        lockfile=tmp_path / "ocirel.lock.json", scheme=make_scheme("counter"),
    )  # fmt: skip
    with pytest.raises(ConfigError, match="cannot write an OCI layout") as caught:
        make_publisher(request, StubPusher(Store(fake)), BuildEnv(), registry_factory=never)
    assert "buildah or podman" in (caught.value.hint or "")
    assert not (tmp_path / "layout").exists()


def never() -> Registry:
    raise AssertionError("an OCI layout publish asked for a registry")


def test_the_record_starts_once_the_builder_pushed_and_is_joined_as_kept(
    publish: PushRun,
) -> None:
    """Issue 15: the builder's push resolved, the record starts before the settle wait
    (naming the entry the lockfile gets), and is joined once the lockfile is written."""
    publish.attacher = records = StubRecords(publish)  # type: ignore[arg-type]
    result = publish.run()
    [start, finish] = records.events
    _, entry, tagged, _heads, sleeps = start
    assert (tagged, sleeps) == (result.digest, 0)
    assert entry == publish.recorded()
    assert finish == ("finish", "v1", True, True)


def test_a_record_of_a_push_a_rival_overwrote_is_an_orphan(publish: PushRun) -> None:
    publish.attacher = records = StubRecords(publish)  # type: ignore[arg-type]
    rival: dict[str, str] = {}

    def overwrite_once() -> None:
        if not rival:
            rival["v1"] = publish.store.seed("v1")

    publish.sleep_hook = overwrite_once
    assert publish.run().tag == "v2"
    finished = [e for e in records.events if e[0] == "finish"]
    assert finished == [("finish", "v1", False, False), ("finish", "v2", True, True)]
