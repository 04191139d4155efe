"""Multi-platform publishing, the parts without a builder or a registry: platforms,
binfmt_misc, which Containerfiles need emulation, the index, the lockfile entry, the
comparison with the latest index, the refusal of a self-pushing builder, platform pins
in manifests, and the doctor's emulation report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from ocirel import emulation, lockfile, settings
from ocirel.backends.base import BuildEnv, BuildSpec
from ocirel.backends.buildah import Buildah
from ocirel.containerfile import emulated_run_stages
from ocirel.deploy.scan import scan_text
from ocirel.deploy.verify import platform_pins
from ocirel.doctor import assess, emulation_status
from ocirel.doctor.verdict import WARNING
from ocirel.errors import ConfigError, EmulationError, LockfileError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Digest,
    ImageConfig,
    ImageManifest,
    OciImage,
    canonical_json,
    sha256_digest,
)
from ocirel.publish import PublishRequest, make_publisher
from ocirel.publish.index import (
    build_index,
    check_emulation,
    compare_index,
    index_platforms,
    same_platform,
)
from ocirel.publish.job import Job
from ocirel.publish.unchanged import Previous
from ocirel.reference import parse_repository
from ocirel.registry import Registry
from ocirel.versioning import make_scheme
from tests.unit.test_doctor import report

D1, D2, D3 = (Digest("sha256:" + c * 64) for c in "123")
AMD64, ARM64 = "linux/amd64", "linux/arm64"


# ------------------------------------------------------------------ platforms


def test_platforms_are_parsed_lower_case_and_checked() -> None:
    assert emulation.parse_platform(" Linux/ARM64 ") == ARM64
    assert emulation.parse_platform("linux/arm/v7") == "linux/arm/v7"
    for bad in ("arm64", "linux/", "linux/arm64/v8/x", "linux arm64"):
        with pytest.raises(ValueError, match="os/arch"):
            emulation.parse_platform(bad)


def test_the_platform_setting_reads_a_list_from_every_source(tmp_path: Path) -> None:
    from_env = settings.load({}, {"OCIREL_PLATFORM": "linux/amd64, linux/ARM64,linux/amd64"})
    assert from_env.build.platform == (AMD64, ARM64)  # each once, in the order given
    (tmp_path / "ocirel.toml").write_text('platform = ["linux/arm64"]\n')
    assert settings.load({}, {}, cwd=tmp_path).build.platform == (ARM64,)
    flag = settings.load({"platform": "linux/amd64,linux/arm64"}, {}, cwd=tmp_path)
    assert flag.build.platform == (AMD64, ARM64)
    with pytest.raises(ConfigError, match="invalid value for platform from OCIREL_PLATFORM"):
        settings.load({}, {"OCIREL_PLATFORM": "arm64"})


def test_host_platform_and_foreign_platforms() -> None:
    assert emulation.host_platform("x86_64") == AMD64
    assert emulation.host_platform("aarch64") == ARM64
    assert emulation.is_foreign(ARM64, AMD64)
    assert not emulation.is_foreign("linux/arm64/v8", ARM64)
    assert same_platform(ARM64, "linux/arm64/v8")
    assert not same_platform(ARM64, AMD64)


# ------------------------------------------------------------------ binfmt_misc


def binfmt(root: Path, **entries: str) -> Path:
    """A binfmt_misc directory: mounted (``status``), with ``qemu-*`` entries."""
    root.mkdir()
    (root / "status").write_text("enabled\n")
    (root / "register").write_text("")
    for name, text in entries.items():
        (root / name.replace("_", "-")).write_text(text)
    return root


ENTRY = "{state}\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\noffset 0\nmagic 7f454c46\n"


def test_emulation_reads_the_qemu_entry_of_the_platform(tmp_path: Path) -> None:
    root = binfmt(tmp_path / "on", qemu_aarch64=ENTRY.format(state="enabled"))
    found = emulation.emulation(ARM64, host=AMD64, root=root)
    assert (found.native, found.available) == (False, True)
    assert found.detail == "qemu-aarch64 registered (interpreter /usr/bin/qemu-aarch64-static)"
    assert emulation.emulation(AMD64, host=AMD64, root=root).native


def test_emulation_is_unavailable_when_disabled_missing_or_not_mounted(tmp_path: Path) -> None:
    disabled = binfmt(tmp_path / "off", qemu_aarch64=ENTRY.format(state="disabled"))
    state = emulation.emulation(ARM64, host=AMD64, root=disabled)
    assert not state.available
    assert "registered but disabled" in state.detail
    state = emulation.emulation("linux/s390x", host=AMD64, root=disabled)
    assert not state.available
    assert "qemu-s390x entry" in state.detail
    (tmp_path / "empty").mkdir()  # what /proc/sys/fs/binfmt_misc is when not mounted
    state = emulation.emulation(ARM64, host=AMD64, root=tmp_path / "empty")
    assert not state.available
    assert "not mounted" in state.detail


# -------------------------------------------------------- which stages need it


@pytest.mark.parametrize(
    ("text", "target", "stages"),
    [
        ("FROM scratch\nCOPY a /a\n", None, []),
        ("FROM alpine\nRUN apk add curl\n", None, ["0"]),
        ("FROM alpine\nRUN \\\n  true\n", None, ["0"]),
        ("# RUN in a comment\nFROM scratch\nADD a /a\n", None, []),
        (  # cross-compiled: the RUN stage runs natively, the final stage only copies
            "FROM --platform=$BUILDPLATFORM golang AS build\nRUN go build -o /app\n"
            "FROM scratch\nCOPY --from=build /app /app\n",
            None, [],
        ),
        ("FROM --platform=${BUILDPLATFORM} golang\nRUN make\nFROM scratch\n", None, []),
        (
            "FROM alpine AS tools\nRUN apk add x\nFROM scratch AS final\nCOPY --from=tools /x /x\n",
            None, ["tools"],
        ),
        ("FROM scratch AS base\nCOPY a /a\nFROM alpine AS later\nRUN true\n", "base", []),
        ("FROM --platform=linux/arm64 alpine\nRUN true\n", None, ["0"]),
    ],
)  # fmt: skip
def test_emulated_run_stages(text: str, target: str | None, stages: list[str]) -> None:
    assert emulated_run_stages(text, target) == stages


def request(tmp_path: Path, containerfile: str, *platforms: str) -> PublishRequest:
    (tmp_path / "Containerfile").write_text(containerfile)
    return PublishRequest(
        context=tmp_path, repository=parse_repository("r.example/app"), name="app",
        lockfile=tmp_path / "ocirel.lock.json", scheme=make_scheme("counter"),
        platforms=platforms,
    )  # fmt: skip


def test_a_foreign_run_step_without_an_emulator_fails_with_the_hint(tmp_path: Path) -> None:
    empty = tmp_path / "binfmt"
    empty.mkdir()
    req = request(tmp_path, "FROM alpine AS tools\nRUN apk add x\n", AMD64, ARM64)
    with pytest.raises(EmulationError) as caught:
        check_emulation(req, host=AMD64, root=empty)
    assert "RUN steps (stage tools)" in caught.value.message
    assert "linux/arm64 programs on this linux/amd64 host" in caught.value.message
    assert caught.value.hint is not None
    assert "qemu-user-static" in caught.value.hint
    assert "ocirel doctor" in caught.value.hint
    assert "--platform=$BUILDPLATFORM" in caught.value.hint


def test_no_emulation_is_needed_without_foreign_run_steps(tmp_path: Path) -> None:
    empty = tmp_path / "binfmt"
    empty.mkdir()
    check_emulation(request(tmp_path, "FROM scratch\nCOPY a /a\n", AMD64, ARM64), AMD64, empty)
    check_emulation(request(tmp_path, "FROM alpine\nRUN true\n", AMD64), AMD64, empty)
    cross = (
        "FROM --platform=$BUILDPLATFORM golang AS b\nRUN go build\n"
        "FROM scratch\nCOPY --from=b /x /x\n"
    )
    check_emulation(request(tmp_path, cross, ARM64), AMD64, empty)
    registered = binfmt(tmp_path / "on", qemu_aarch64=ENTRY.format(state="enabled"))
    check_emulation(request(tmp_path, "FROM alpine\nRUN true\n", ARM64), AMD64, registered)


# ------------------------------------------------------------------ the index


def image(arch: str, layer: str = "x") -> OciImage:
    config = canonical_json({
        "architecture": arch, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer.encode())]},
    })  # fmt: skip
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [],
    })  # fmt: skip
    return OciImage(ImageManifest(sha256_digest(manifest), OCI_MANIFEST, manifest), config, ())


def test_the_index_lists_each_platform_image_by_digest_and_size() -> None:
    amd64, arm64 = image("amd64"), image("arm64")
    index = build_index([amd64, arm64])
    document = json.loads(index.body)
    assert index.digest == sha256_digest(index.body)
    assert index.media_type == OCI_INDEX
    assert document["mediaType"] == OCI_INDEX
    assert document["schemaVersion"] == 2
    assert document["manifests"][1] == {
        "mediaType": OCI_MANIFEST, "digest": arm64.manifest.digest,
        "size": len(arm64.manifest.body), "platform": {"architecture": "arm64", "os": "linux"},
    }  # fmt: skip
    assert index_platforms(index) == {
        AMD64: amd64.manifest.digest, ARM64: arm64.manifest.digest,
    }  # fmt: skip
    assert build_index([amd64, arm64]) == index  # the same images, the same digest


class Served:
    """The two registry calls :func:`compare_index` makes, answered from images."""

    def __init__(self, *images: OciImage) -> None:
        self.images = {i.manifest.digest: i for i in images}

    def get_manifest(self, ref: Any) -> ImageManifest:
        return self.images[ref.digest].manifest

    def get_config(self, _repo: Any, manifest: ImageManifest) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(self.images[manifest.digest].config_bytes)
        return config


def test_an_index_is_reused_only_when_every_platform_is_the_same(tmp_path: Path) -> None:
    amd64, arm64 = image("amd64"), image("arm64")
    index = build_index([amd64, arm64])
    registry = cast("Registry", Served(amd64, arm64))
    req = request(tmp_path, "FROM scratch\n", AMD64, ARM64)
    previous = Previous("v1", index, {}, "is a multi-platform index")
    same = {AMD64: amd64.config, ARM64: arm64.config}
    decision, platforms = compare_index(registry, req, previous, same, print)
    assert not decision.new_version
    assert decision.previous_digest == index.digest
    assert platforms == index_platforms(index)

    changed = {AMD64: amd64.config, ARM64: image("arm64", "y").config}
    decision, platforms = compare_index(registry, req, previous, changed, print)
    assert decision.new_version
    assert platforms == {}
    (arm64_reason,) = [r for r in decision.reasons if r.startswith("linux/arm64: ")]
    assert "layer" in arm64_reason

    fewer = {AMD64: amd64.config}
    decision, _ = compare_index(registry, req, previous, fewer, print)
    assert decision.new_version
    assert "the platforms differ" in decision.reasons[1]

    single = Previous("v1", amd64.manifest, amd64.config, None)
    decision, _ = compare_index(registry, req, single, same, print)
    assert decision.new_version
    assert decision.reasons == ("v1 is a single-platform image; this build is an index",)


def test_a_self_pushing_builder_refuses_several_platforms(tmp_path: Path) -> None:
    from ocirel.backends.docker import Docker  # noqa: PLC0415

    req = request(tmp_path, "FROM scratch\n", AMD64, ARM64)
    with pytest.raises(ConfigError, match="docker cannot publish a multi-platform image") as caught:
        make_publisher(req, Docker(buildx=False), BuildEnv(), registry_factory=lambda: None)  # type: ignore[arg-type,return-value]
    assert caught.value.hint is not None
    assert "--backend buildah" in caught.value.hint


def test_several_platforms_are_refused_for_an_oci_layout_destination(tmp_path: Path) -> None:
    from ocirel.backends.buildah import Buildah  # noqa: PLC0415
    from ocirel.reference import parse_layout  # noqa: PLC0415

    req = replace(
        request(tmp_path, "FROM scratch\n", AMD64, ARM64),
        repository=parse_layout(f"oci:{tmp_path / 'out'}"),
    )
    with pytest.raises(ConfigError, match="cannot be published into an OCI layout yet"):
        make_publisher(req, Buildah(), BuildEnv(), registry_factory=lambda: None)  # type: ignore[arg-type,return-value]


def test_one_platform_is_passed_to_the_build_and_several_are_not(tmp_path: Path) -> None:
    from ocirel.backends.buildah import Buildah  # noqa: PLC0415

    def spec_platform(*platforms: str) -> str | None:
        job = Job(request(tmp_path, "FROM scratch\n", *platforms), Buildah(), BuildEnv(),
                  registry_factory=lambda: None)  # type: ignore[arg-type,return-value]  # fmt: skip
        return job.spec(named=False).platform

    assert spec_platform(ARM64) == ARM64
    assert spec_platform(AMD64, ARM64) is None  # the multi-platform publisher sets each
    assert spec_platform() is None


class CachingBuilder(Buildah):
    """buildah 1.28's cache for ``FROM scratch``: a build with the layer cache returns
    the image cached first (amd64), whatever platform was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.builds: list[tuple[str | None, bool]] = []

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        self.builds.append((spec.platform, spec.layers))
        return "cached-amd64" if spec.layers else f"fresh-{spec.platform}"

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        arch = "amd64" if image == "cached-amd64" else image.rsplit("/", 1)[-1]
        return {"os": "linux", "architecture": arch}


def test_a_build_the_cache_gave_another_platform_is_made_again_without_it(
    tmp_path: Path,
) -> None:
    builder = CachingBuilder()
    said: list[str] = []
    job = Job(request(tmp_path, "FROM scratch\n", ARM64), builder, BuildEnv(),
              registry_factory=lambda: None, say=said.append)  # type: ignore[arg-type,return-value]  # fmt: skip
    job.build(job.spec(named=False))
    assert builder.builds == [(ARM64, True), (ARM64, False)]
    assert job.local_image == "fresh-linux/arm64"
    assert said == [
        "the layer cache gave a linux/amd64 step to the linux/arm64 build; "
        "building linux/arm64 again without the layer cache"
    ]
    builder.builds.clear()
    job = Job(request(tmp_path, "FROM scratch\n", AMD64), builder, BuildEnv(),
              registry_factory=lambda: None)  # type: ignore[arg-type,return-value]  # fmt: skip
    job.build(job.spec(named=False))
    assert builder.builds == [(AMD64, True)]  # the right platform: kept


# -------------------------------------------------------------- the lockfile


def index_entry(**changes: Any) -> LockEntry:
    entry = LockEntry("app", "r.example/app", "v1", D1, {AMD64: D2, ARM64: D3},
                      media_type=OCI_INDEX)  # fmt: skip
    return replace(entry, **changes)


def test_an_index_entry_round_trips_with_its_media_type() -> None:
    text = lockfile.dumps(Lockfile({"app": index_entry()}))
    assert json.loads(text)["images"]["app"]["mediaType"] == OCI_INDEX
    loaded = lockfile.loads(text).entries["app"]
    assert loaded == index_entry()
    assert loaded.is_index


def test_older_lockfiles_load_and_say_index_by_their_digest() -> None:
    single = LockEntry("app", "r.example/app", "v1", D1, {AMD64: D1})
    text = lockfile.dumps(Lockfile({"app": single}))
    assert "mediaType" not in text  # a single image's entry is written as before
    assert not lockfile.loads(text).entries["app"].is_index
    older = json.loads(lockfile.dumps(Lockfile({"app": index_entry()})))
    del older["images"]["app"]["mediaType"]  # an index recorded before mediaType existed
    assert lockfile.loads(json.dumps(older)).entries["app"].is_index
    older["images"]["app"]["mediaType"] = "text/plain"
    with pytest.raises(LockfileError, match="unknown 'mediaType'"):
        lockfile.loads(json.dumps(older))


def test_the_schema_accepts_an_index_entry_and_refuses_an_unknown_media_type() -> None:
    import jsonschema  # type: ignore[import-untyped]  # noqa: PLC0415

    from tests.unit.test_lockfile_schema import validator  # noqa: PLC0415

    doc = json.loads(lockfile.dumps(Lockfile({"app": index_entry()})))
    validator().validate(doc)
    doc["images"]["app"]["mediaType"] = "text/plain"
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(doc)


# ------------------------------------------------------------------ verify


def test_a_manifest_pinned_to_one_platform_of_an_index_is_found() -> None:
    lock = Lockfile({
        "app": index_entry(),
        "single": LockEntry("single", "r.example/single", "v1", D3, {AMD64: D3}),
    })  # fmt: skip
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        f"    - {{name: a, image: 'r.example/app@{D3}'}}\n"
        f"    - {{name: b, image: 'r.example/app:v1@{D1}'}}\n"
        f"    - {{name: c, image: 'mirror.example/app@{D2}'}}\n"
    )
    pins = platform_pins(lock, [scan_text(text, filename="pod.yaml")])
    assert [(p.line, p.platform, p.digest) for p in pins] == [(6, ARM64, D3), (8, AMD64, D2)]
    assert str(pins[0]).startswith("pod.yaml:6:")
    assert f"pins {D3} (linux/arm64 only) of app; the lockfile has the index {D1}" in str(pins[0])


# ------------------------------------------------------------------ doctor


def test_doctor_reports_each_platform_and_warns_for_configured_ones(tmp_path: Path) -> None:
    root = binfmt(tmp_path / "binfmt")
    states = emulation_status(("linux/s390x",), root)
    host = emulation.host_platform()
    assert [s.platform for s in states] == list(dict.fromkeys((host, AMD64, ARM64, "linux/s390x")))
    assert states[0].native
    base = report()
    unconfigured = replace(base, emulation=states)
    assert not any("RUN steps" in p.message for p in assess(unconfigured))
    configured = replace(base, emulation=states, platforms=("linux/s390x",))
    (problem,) = [p for p in assess(configured) if "RUN steps" in p.message]
    assert problem.severity is WARNING
    assert "linux/s390x" in problem.message
    assert "qemu-user-static" in problem.fix
    assert configured.to_json()["emulation"][-1]["platform"] == "linux/s390x"
