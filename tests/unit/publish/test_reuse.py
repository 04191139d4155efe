"""Layer reuse (ocirel.publish.reuse): what is known, planting, substituting, and the
two-pass export when a known blob cannot be made present in the target repository."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ocirel.errors import DigestMismatchError, OcirelError, RegistryError
from ocirel.image import read_layout
from ocirel.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Digest,
    ImageConfig,
    ImageManifest,
    Layer,
    OciImage,
    canonical_json,
    sha256_digest,
)
from ocirel.publish.reuse import (
    BASE_DIGEST,
    BASE_NAME,
    KnownBlob,
    base_image,
    export_reusing,
    layers_of,
    merge,
    plant,
    substitute,
)

DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
ENCRYPTED = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"


def digest_of(char: str) -> Digest:
    return Digest("sha256:" + char * 64)


def descriptor(media_type: str, digest: Any, size: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size}


def image_parts(
    layers: Sequence[dict[str, Any]], diff_ids: Sequence[Any]
) -> tuple[ImageManifest, ImageConfig]:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, digest_of("c"), 2),
        "layers": list(layers),
    }
    body = canonical_json(document)
    config: ImageConfig = {"rootfs": {"type": "layers", "diff_ids": list(diff_ids)}}
    return ImageManifest(sha256_digest(body), OCI_MANIFEST, body), config


# ------------------------------------------------------------------ layers_of


def test_layers_of_pairs_diff_ids_with_layer_descriptors() -> None:
    manifest, config = image_parts(
        [
            descriptor(OCI_LAYER_GZIP, digest_of("1"), 100),
            descriptor(OCI_LAYER_ZSTD, digest_of("2"), 200),
        ],
        [digest_of("a"), digest_of("b")],
    )
    assert layers_of(manifest, config, "team/app") == {
        digest_of("a"): KnownBlob(digest_of("1"), 100, OCI_LAYER_GZIP, ("team/app",)),
        digest_of("b"): KnownBlob(digest_of("2"), 200, OCI_LAYER_ZSTD, ("team/app",)),
    }


def test_layers_of_writes_a_docker_gzip_layer_as_an_oci_gzip_layer() -> None:
    manifest, config = image_parts([descriptor(DOCKER_GZIP, digest_of("1"), 5)], [digest_of("a")])
    assert layers_of(manifest, config, "base")[digest_of("a")].media_type == OCI_LAYER_GZIP


@pytest.mark.parametrize(
    "bad",
    [
        descriptor(FOREIGN, digest_of("1"), 5),
        descriptor(ENCRYPTED, digest_of("1"), 5),
        descriptor(OCI_LAYER, digest_of("1"), 5),  # uncompressed: not what a push writes
        descriptor("application/x-unknown", digest_of("1"), 5),
        {"digest": digest_of("1"), "size": 5},
        descriptor(OCI_LAYER_GZIP, "sha256:nothex", 5),
        descriptor(OCI_LAYER_GZIP, 42, 5),
        descriptor(OCI_LAYER_GZIP, digest_of("1"), True),
        descriptor(OCI_LAYER_GZIP, digest_of("1"), -1),
        descriptor(OCI_LAYER_GZIP, digest_of("1"), "5"),
        "not a descriptor",
    ],
    ids=[
        "foreign", "encrypted", "uncompressed", "unknown", "no-type", "bad-digest",
        "digest-not-str", "bool-size", "negative-size", "str-size", "not-a-dict",
    ],
)  # fmt: skip
def test_layers_of_leaves_out_a_layer_that_cannot_be_reused(bad: Any) -> None:
    good = descriptor(OCI_LAYER_GZIP, digest_of("2"), 7)
    manifest, config = image_parts([bad, good], [digest_of("a"), digest_of("b")])
    known = layers_of(manifest, config, "team/app")
    assert list(known) == [digest_of("b")]
    assert known[digest_of("b")].digest == digest_of("2")


@pytest.mark.parametrize("diff_id", ["sha256:short", 7, None], ids=["invalid", "int", "none"])
def test_layers_of_leaves_out_a_layer_with_an_invalid_diff_id(diff_id: Any) -> None:
    manifest, config = image_parts(
        [
            descriptor(OCI_LAYER_GZIP, digest_of("1"), 5),
            descriptor(OCI_LAYER_GZIP, digest_of("2"), 6),
        ],
        [diff_id, digest_of("b")],
    )
    assert list(layers_of(manifest, config, "team/app")) == [digest_of("b")]


def test_layers_of_gives_nothing_when_the_counts_disagree() -> None:
    manifest, config = image_parts(
        [
            descriptor(OCI_LAYER_GZIP, digest_of("1"), 5),
            descriptor(OCI_LAYER_GZIP, digest_of("2"), 6),
        ],
        [digest_of("a")],
    )
    assert layers_of(manifest, config, "team/app") == {}
    manifest, config = image_parts(
        [descriptor(OCI_LAYER_GZIP, digest_of("1"), 5)], [digest_of("a"), digest_of("b")]
    )
    assert layers_of(manifest, config, "team/app") == {}


@pytest.mark.parametrize(
    "config",
    [{}, {"rootfs": "layers"}, {"rootfs": {"diff_ids": "sha256:x"}}, {"rootfs": {}}],
    ids=["no-rootfs", "rootfs-not-dict", "diff-ids-not-list", "no-diff-ids"],
)
def test_layers_of_gives_nothing_without_diff_ids(config: ImageConfig) -> None:
    manifest, _ = image_parts([descriptor(OCI_LAYER_GZIP, digest_of("1"), 5)], [digest_of("a")])
    assert layers_of(manifest, config, "team/app") == {}


def test_layers_of_gives_nothing_without_layers() -> None:
    body = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": "none"})
    manifest = ImageManifest(sha256_digest(body), OCI_MANIFEST, body)
    config: ImageConfig = {"rootfs": {"diff_ids": [digest_of("a")]}}
    assert layers_of(manifest, config, "team/app") == {}


# ---------------------------------------------------------------------- merge


def test_merge_first_source_wins_and_pools_repositories_of_the_same_blob() -> None:
    x = KnownBlob(digest_of("1"), 10, OCI_LAYER_GZIP, ("team/app",))
    x_elsewhere = KnownBlob(digest_of("1"), 10, OCI_LAYER_GZIP, ("library/base", "team/app"))
    y = KnownBlob(digest_of("9"), 11, OCI_LAYER_ZSTD, ("other/repo",))  # same content, recompressed
    z = KnownBlob(digest_of("2"), 20, OCI_LAYER_GZIP, ("library/base",))
    z_more = KnownBlob(digest_of("2"), 20, OCI_LAYER_GZIP, ("cached/one",))
    merged = merge(
        {digest_of("a"): x},
        {digest_of("b"): z, digest_of("a"): x_elsewhere},
        {digest_of("a"): y, digest_of("b"): z_more},
    )
    assert list(merged) == [digest_of("a"), digest_of("b")]
    assert merged[digest_of("a")] == KnownBlob(
        digest_of("1"), 10, OCI_LAYER_GZIP, ("team/app", "library/base")
    )
    assert merged[digest_of("b")].repositories == ("library/base", "cached/one")


def test_merge_of_nothing_is_empty_and_does_not_change_its_sources() -> None:
    source = {digest_of("a"): KnownBlob(digest_of("1"), 1, OCI_LAYER_GZIP, ("r",))}
    assert merge() == {}
    merged = merge(source, {digest_of("a"): KnownBlob(digest_of("1"), 1, OCI_LAYER_GZIP, ("s",))})
    assert merged[digest_of("a")].repositories == ("r", "s")
    assert source[digest_of("a")].repositories == ("r",)


# ----------------------------------------------------------------- base_image


def test_base_image_from_the_builder_annotations() -> None:
    annotations = {BASE_NAME: "registry.test/library/base:1", BASE_DIGEST: digest_of("d")}
    assert base_image(annotations) == ("registry.test/library/base:1", digest_of("d"))


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {BASE_NAME: "registry.test/base"},
        {BASE_DIGEST: "sha256:" + "d" * 64},
        {BASE_NAME: "registry.test/base", BASE_DIGEST: "sha256:short"},
        {BASE_NAME: "registry.test/base", BASE_DIGEST: ""},
        {BASE_NAME: "", BASE_DIGEST: "sha256:" + "d" * 64},
    ],
    ids=["none", "no-digest", "no-name", "invalid-digest", "empty-digest", "empty-name"],
)
def test_base_image_is_none_without_a_name_and_a_valid_digest(annotations: dict[str, str]) -> None:
    assert base_image(annotations) is None


# ---------------------------------------------------------------------- plant


def test_plant_creates_a_layout_with_an_empty_file_per_sha256_diff_id(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    plant(layout, [digest_of("a"), digest_of("b"), Digest("sha512:" + "e" * 128)])
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    blobs = layout / "blobs" / "sha256"
    assert sorted(p.name for p in blobs.iterdir()) == ["a" * 64, "b" * 64]
    assert all(p.stat().st_size == 0 for p in blobs.iterdir())
    assert not (layout / "blobs" / "sha512").exists()


def test_plant_with_nothing_known_is_an_empty_layout(tmp_path: Path) -> None:
    plant(tmp_path / "layout", [])
    assert (tmp_path / "layout" / "oci-layout").is_file()
    assert list((tmp_path / "layout" / "blobs" / "sha256").iterdir()) == []


# ------------------------------------------------------- a builder's export


def tar_bytes(name: str) -> bytes:
    """Stand-in for an uncompressed layer tar: what matters is that it has a diff-id."""
    return (name.encode() * 64)[:1024]


def empty_file(directory: Path) -> Path:
    """A planted placeholder, as the builder leaves it when it skips that layer."""
    path = directory / "empty"
    path.touch()
    return path


def write_blob(layout: Path, data: bytes) -> Digest:
    digest = sha256_digest(data)
    (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    return digest


def write_layout(layout: Path, contents: Sequence[bytes]) -> OciImage:
    """Export like buildah into ``layout`` (already planted, or not yet created): a layer
    whose diff-id blob exists is skipped and listed as an empty uncompressed blob."""
    blobs = layout / "blobs" / "sha256"
    if not layout.exists():
        blobs.mkdir(parents=True)
        (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descriptors = []
    diff_ids = []
    planted = {
        d for d in map(sha256_digest, contents) if (blobs / d.removeprefix("sha256:")).exists()
    }
    # buildah 1.28 lists a skipped layer with size 0, or, when it skipped every layer,
    # with its uncompressed size
    every = len(planted) == len(contents)
    for data in contents:
        diff_id = sha256_digest(data)
        diff_ids.append(diff_id)
        if diff_id in planted:
            descriptors.append(descriptor(OCI_LAYER, diff_id, len(data) if every else 0))
        else:
            compressed = gzip.compress(data, mtime=0)
            descriptors.append(
                descriptor(OCI_LAYER_GZIP, write_blob(layout, compressed), len(compressed))
            )
    config = canonical_json(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    )
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, write_blob(layout, config), len(config)),
        "layers": descriptors,
    }
    body = canonical_json(document)
    manifest = descriptor(OCI_MANIFEST, write_blob(layout, body), len(body))
    index = {"schemaVersion": 2, "manifests": [manifest]}
    (layout / "index.json").write_text(json.dumps(index))
    return read_layout(layout, planted=planted)


BASE, APP = tar_bytes("base"), tar_bytes("app")
BASE_ID, APP_ID = sha256_digest(BASE), sha256_digest(APP)
BASE_BLOB = KnownBlob(digest_of("1"), 4321, OCI_LAYER_GZIP, ("library/base", "team/app"))
APP_BLOB = KnownBlob(digest_of("2"), 1234, OCI_LAYER_ZSTD, ("team/app",))


def test_substitute_replaces_a_planted_layer_by_its_known_blob(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    plant(layout, [BASE_ID])
    image = write_layout(layout, [BASE, APP])
    assert image.layers[0].size == 0  # the builder skipped it

    result = substitute(image, {BASE_ID: BASE_BLOB})

    document = json.loads(result.manifest.body)
    assert document["layers"][0] == descriptor(OCI_LAYER_GZIP, BASE_BLOB.digest, BASE_BLOB.size)
    assert document["layers"][1] == json.loads(image.manifest.body)["layers"][1]
    assert document["config"] == json.loads(image.manifest.body)["config"]
    assert result.manifest.body == canonical_json(document)
    assert result.manifest.digest == sha256_digest(result.manifest.body)
    assert result.manifest.digest != image.manifest.digest
    assert result.manifest.media_type == image.manifest.media_type
    assert result.config_bytes == image.config_bytes
    assert result.layers[0] == Layer(BASE_BLOB.digest, BASE_BLOB.size, None, BASE_BLOB.repositories)
    assert result.layers[1] is image.layers[1]
    assert result.layers[1].path is not None


def test_substitute_accepts_the_docker_uncompressed_type(tmp_path: Path) -> None:
    body = canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": descriptor(OCI_CONFIG, digest_of("c"), 2),
         "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar", BASE_ID, 0)]}
    )  # fmt: skip
    image = OciImage(
        ImageManifest(sha256_digest(body), OCI_MANIFEST, body),
        b"{}",
        (Layer(BASE_ID, 0, empty_file(tmp_path)),),
    )
    result = substitute(image, {BASE_ID: BASE_BLOB})
    assert result.layers == (Layer(BASE_BLOB.digest, BASE_BLOB.size, None, BASE_BLOB.repositories),)
    assert json.loads(result.manifest.body)["layers"][0]["mediaType"] == OCI_LAYER_GZIP


@pytest.mark.parametrize("media_type", [OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_GZIP])
def test_substitute_refuses_a_planted_layer_exported_compressed_and_empty(
    tmp_path: Path, media_type: str
) -> None:
    body = canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": descriptor(OCI_CONFIG, digest_of("c"), 2),
         "layers": [descriptor(media_type, BASE_ID, 0)]}
    )  # fmt: skip
    image = OciImage(
        ImageManifest(sha256_digest(body), OCI_MANIFEST, body),
        b"{}",
        (Layer(BASE_ID, 0, empty_file(tmp_path)),),
    )
    with pytest.raises(RegistryError, match="empty blob"):
        substitute(image, {BASE_ID: BASE_BLOB})


def test_substitute_leaves_layers_that_were_not_planted(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout", [BASE, APP])
    assert substitute(image, {}) is image
    assert substitute(image, {digest_of("f"): BASE_BLOB}) is image  # not in this image
    # known, but the builder exported it for real (not planted, or the plant ignored)
    assert substitute(image, {BASE_ID: BASE_BLOB}) is image


# ------------------------------------------------------------ export_reusing


class FakeBuilder:
    """``export(layout)``: records which diff-ids were planted when it ran."""

    def __init__(self, contents: Sequence[bytes]) -> None:
        self.contents = contents
        self.calls: list[tuple[Path, set[str]]] = []

    def __call__(self, layout: Path) -> OciImage:
        blobs = layout / "blobs" / "sha256"
        planted = {"sha256:" + p.name for p in blobs.iterdir()} if blobs.is_dir() else set()
        self.calls.append((layout, planted))
        return write_layout(layout, self.contents)


def ensurer(
    answer: Callable[[KnownBlob], bool],
) -> tuple[Callable[[KnownBlob], bool], list[Digest]]:
    seen: list[Digest] = []
    lock = threading.Lock()

    def ensure(blob: KnownBlob) -> bool:
        with lock:
            seen.append(blob.digest)
        return answer(blob)

    return ensure, seen


def test_export_reusing_exports_once_when_every_known_blob_is_ensured(tmp_path: Path) -> None:
    builder = FakeBuilder([BASE, APP])
    ensure, seen = ensurer(lambda blob: True)
    known = {BASE_ID: BASE_BLOB}

    outcome = export_reusing(builder, tmp_path, known, ensure)

    assert builder.calls == [(tmp_path / "layout", {BASE_ID})]
    assert seen == [BASE_BLOB.digest]
    assert outcome.reused == (BASE_ID,)
    assert outcome.refused == ()
    assert outcome.image.layers[0] == Layer(
        BASE_BLOB.digest, BASE_BLOB.size, None, BASE_BLOB.repositories
    )
    assert outcome.image.layers[1].path is not None
    assert outcome.image.layers[1].path.parent == tmp_path / "layout" / "blobs" / "sha256"
    assert (
        outcome.image.config_bytes
        == (tmp_path / "layout")
        .joinpath("blobs", "sha256", outcome.image.config_digest.removeprefix("sha256:"))
        .read_bytes()
    )


def refuse_base(blob: KnownBlob) -> bool:
    return blob.digest != BASE_BLOB.digest


def raise_for_base(blob: KnownBlob) -> bool:
    if blob.digest == BASE_BLOB.digest:
        raise RegistryError("the registry said 500 to the HEAD")
    return True


def crash_for_base(blob: KnownBlob) -> bool:
    if blob.digest == BASE_BLOB.digest:
        raise RuntimeError("a bug in the ensure callable")
    return True


def os_error_for_base(blob: KnownBlob) -> bool:
    if blob.digest == BASE_BLOB.digest:
        raise ConnectionResetError("the connection broke")
    return True


@pytest.mark.parametrize(
    "answer",
    [refuse_base, raise_for_base, os_error_for_base],
    ids=["false", "ocirel-error", "os-error"],
)
def test_export_reusing_exports_again_without_a_refused_blob(
    tmp_path: Path, answer: Callable[[KnownBlob], bool]
) -> None:
    builder = FakeBuilder([BASE, APP])
    ensure, seen = ensurer(answer)
    known = {BASE_ID: BASE_BLOB, APP_ID: APP_BLOB}

    outcome = export_reusing(builder, tmp_path, known, ensure)

    assert sorted(seen) == sorted([BASE_BLOB.digest, APP_BLOB.digest])
    assert builder.calls == [
        (tmp_path / "layout", {BASE_ID, APP_ID}),
        (tmp_path / "layout-again", {APP_ID}),
    ]
    assert outcome.refused == (BASE_ID,)
    assert outcome.reused == (APP_ID,)
    base_layer, app_layer = outcome.image.layers
    assert app_layer == Layer(APP_BLOB.digest, APP_BLOB.size, None, APP_BLOB.repositories)
    # the refused layer is the blob the second export really wrote
    assert base_layer.path is not None
    assert base_layer.path.parent == tmp_path / "layout-again" / "blobs" / "sha256"
    assert gzip.decompress(base_layer.path.read_bytes()) == BASE
    assert base_layer.digest == sha256_digest(base_layer.path.read_bytes())
    assert base_layer.size == base_layer.path.stat().st_size > 0
    layers = json.loads(outcome.image.manifest.body)["layers"]
    assert layers[0] == descriptor(OCI_LAYER_GZIP, base_layer.digest, base_layer.size)
    assert layers[1] == descriptor(OCI_LAYER_ZSTD, APP_BLOB.digest, APP_BLOB.size)


def test_export_reusing_logs_why_a_known_blob_was_not_reused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    builder = FakeBuilder([BASE, APP])
    ensure, _ = ensurer(raise_for_base)
    with caplog.at_level(logging.DEBUG, logger="ocirel.publish.reuse"):
        export_reusing(builder, tmp_path, {BASE_ID: BASE_BLOB, APP_ID: APP_BLOB}, ensure)
    assert [r.getMessage() for r in caplog.records] == [
        f"layer {BASE_BLOB.digest[:19]} cannot be reused, it is exported: "
        "the registry said 500 to the HEAD"
    ]


def test_export_reusing_raises_a_bug_in_the_ensure_callable(tmp_path: Path) -> None:
    """Only registry and I/O failures mean "not present, export it"; a bug is not
    hidden behind the slow path."""
    builder = FakeBuilder([BASE, APP])
    ensure, _ = ensurer(crash_for_base)
    with pytest.raises(RuntimeError, match="a bug in the ensure callable"):
        export_reusing(builder, tmp_path, {BASE_ID: BASE_BLOB, APP_ID: APP_BLOB}, ensure)


def test_export_reusing_with_every_blob_refused_exports_everything(tmp_path: Path) -> None:
    builder = FakeBuilder([BASE, APP])
    ensure, _ = ensurer(lambda blob: False)
    outcome = export_reusing(builder, tmp_path, {BASE_ID: BASE_BLOB, APP_ID: APP_BLOB}, ensure)
    assert [planted for _, planted in builder.calls] == [{BASE_ID, APP_ID}, set()]
    assert set(outcome.refused) == {BASE_ID, APP_ID}
    assert outcome.reused == ()
    assert all(layer.path is not None for layer in outcome.image.layers)


def test_export_reusing_propagates_a_failed_export(tmp_path: Path) -> None:
    def export(layout: Path) -> OciImage:
        raise OcirelError("the builder failed")

    ensure, _ = ensurer(lambda blob: True)
    with pytest.raises(OcirelError, match="the builder failed"):
        export_reusing(export, tmp_path, {BASE_ID: BASE_BLOB}, ensure)


def test_substitute_when_the_builder_skipped_every_layer(tmp_path: Path) -> None:
    """buildah then lists the layers with their uncompressed sizes; the files are the
    empty placeholders, which read_layout accepts only for planted digests."""
    layout = tmp_path / "layout"
    plant(layout, [BASE_ID, APP_ID])
    image = write_layout(layout, [BASE, APP])
    assert [layer.size for layer in image.layers] == [len(BASE), len(APP)]
    with pytest.raises(DigestMismatchError):
        read_layout(layout)  # not planted: an empty file of the wrong size is refused

    result = substitute(image, {BASE_ID: BASE_BLOB, APP_ID: APP_BLOB})

    document = json.loads(result.manifest.body)
    assert [x["digest"] for x in document["layers"]] == [BASE_BLOB.digest, APP_BLOB.digest]
    assert [x["size"] for x in document["layers"]] == [BASE_BLOB.size, APP_BLOB.size]
    assert all(layer.path is None for layer in result.layers)


class IgnoringBuilder(FakeBuilder):
    """A builder that lists a planted layer as a gzip blob (it did not skip it as a
    layout writer should): the export must be done again with nothing planted."""

    def __call__(self, layout: Path) -> OciImage:
        image = super().__call__(layout)
        if layout.name != "layout":
            return image
        document = json.loads(image.manifest.body)
        for descriptor in document["layers"]:
            if descriptor["mediaType"] == OCI_LAYER:
                descriptor["mediaType"] = OCI_LAYER_GZIP
        body = canonical_json(document)
        return replace(image, manifest=ImageManifest(sha256_digest(body), OCI_MANIFEST, body))


def test_export_reusing_exports_without_plants_when_the_builder_ignores_one(
    tmp_path: Path,
) -> None:
    builder = IgnoringBuilder([BASE, APP])
    ensure, _seen = ensurer(lambda blob: True)
    outcome = export_reusing(builder, tmp_path, {BASE_ID: BASE_BLOB}, ensure)
    assert [layout.name for layout, _ in builder.calls] == ["layout", "layout-plain"]
    assert builder.calls[1][1] == set()  # nothing planted the second time
    assert outcome.refused == (BASE_ID,)
    assert all(layer.path is not None and layer.size > 0 for layer in outcome.image.layers)
