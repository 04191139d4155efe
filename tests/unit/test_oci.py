"""The OCI vocabulary: media types, label names, digests, configs, platforms, images."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from ocirel import oci
from ocirel.errors import RegistryError, UnsupportedManifestError
from ocirel.oci import (
    ImageManifest,
    Layer,
    OciImage,
    as_image_config,
    not_comparable,
    parse_image_config,
    platform_of,
    sha256_digest,
)


def test_sha256_digest_and_canonical_json() -> None:
    assert sha256_digest(b"x") == "sha256:" + hashlib.sha256(b"x").hexdigest()
    assert oci.canonical_json({"b": 1, "a": "é"}) == '{"b":1,"a":"é"}'.encode()


def test_one_definition_of_each_media_type_set() -> None:
    assert oci.ACCEPT_ALL.split(", ") == list(oci.MANIFEST_TYPES)
    assert set(oci.MANIFEST_TYPES) > oci.INDEX_TYPES
    assert not oci.SCHEMA1_TYPES & set(oci.MANIFEST_TYPES)
    assert {oci.LABEL_VERSION, oci.LABEL_CREATED, oci.LABEL_REVISION} == oci.RELEASE_LABELS
    assert oci.LABEL_SOURCE not in oci.RELEASE_LABELS


@pytest.mark.parametrize(
    ("config", "platform"),
    [
        ({}, "linux/unknown"),
        ({"os": "linux", "architecture": "amd64"}, "linux/amd64"),
        ({"os": "linux", "architecture": "arm64", "variant": "v8"}, "linux/arm64/v8"),
        ({"os": "windows", "architecture": "amd64", "variant": ""}, "windows/amd64"),
    ],
)
def test_platform_of(config: oci.ImageConfig, platform: str) -> None:
    assert platform_of(config) == platform


def test_image_configs_that_are_not_objects_read_as_empty() -> None:
    assert as_image_config([1]) == {}
    assert parse_image_config(b'{"os": "linux"}') == {"os": "linux"}
    assert parse_image_config(b"null") == {}
    with pytest.raises(ValueError):
        parse_image_config(b"\x00\xff binary")


def _manifest(document: Mapping[str, object], media_type: str = oci.OCI_MANIFEST) -> ImageManifest:
    body = json.dumps(document).encode()
    return ImageManifest(sha256_digest(body), media_type, body)


def test_not_comparable() -> None:
    image = {"config": {"mediaType": oci.OCI_CONFIG}}
    assert not_comparable(_manifest(image)) is None
    assert not_comparable(_manifest({"config": {"mediaType": oci.DOCKER_CONFIG}})) is None
    assert not_comparable(_manifest({}, oci.OCI_INDEX)) == "is a multi-platform index"
    sbom = {**image, "artifactType": "application/vnd.example.sbom"}
    assert "artifact (application/vnd.example.sbom)" in (not_comparable(_manifest(sbom)) or "")
    other = {"config": {"mediaType": "application/vnd.example.thing"}}
    assert "artifact (application/vnd.example.thing)" in (not_comparable(_manifest(other)) or "")


def test_a_manifest_that_is_not_an_object_has_an_empty_document() -> None:
    assert ImageManifest(sha256_digest(b"[]"), oci.OCI_MANIFEST, b"[]").document == {}


def test_oci_image_blobs_config_first_and_opened_by_digest(tmp_path: Path) -> None:
    layer_file = tmp_path / "layer"
    layer_file.write_bytes(b"layer bytes")
    config = b'{"os": "linux", "architecture": "arm64", "variant": "v8"}'
    layer = Layer(sha256_digest(b"layer bytes"), 11, layer_file)
    image = OciImage(_manifest({}), config, (layer,))
    assert image.blobs == ((sha256_digest(config), len(config)), (layer.digest, 11))
    assert image.platform == "linux/arm64/v8"
    assert image.open_blob(image.config_digest).read() == config
    with image.open_blob(layer.digest) as blob:
        assert blob.read() == b"layer bytes"
    with pytest.raises(KeyError):
        image.open_blob(sha256_digest(b"other"))


# ------------------------------------------------------------- parse_manifest

SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def _parse(body: bytes, served_as: str | None, accept: str = oci.ACCEPT_ALL) -> ImageManifest:
    return oci.parse_manifest(
        body, sha256_digest(body), served_as=served_as, accept=accept, what="r/app:v1"
    )


def test_parse_manifest_takes_the_type_inside_or_the_one_served_as() -> None:
    typed = json.dumps({"mediaType": oci.DOCKER_MANIFEST}).encode()
    assert _parse(typed, None).media_type == oci.DOCKER_MANIFEST
    untyped = b'{"schemaVersion": 2}'
    parsed = _parse(untyped, oci.OCI_MANIFEST + "; charset=utf-8")
    assert (parsed.media_type, parsed.digest, parsed.body) == (
        oci.OCI_MANIFEST,
        sha256_digest(untyped),
        untyped,
    )


@pytest.mark.parametrize(
    ("body", "served_as", "accept", "message"),
    [
        (b"\x00 not json", oci.OCI_MANIFEST, oci.ACCEPT_ALL, "is not valid JSON"),
        (b"[]", oci.OCI_MANIFEST, oci.ACCEPT_ALL, "is not a JSON object"),
        (
            json.dumps({"mediaType": oci.OCI_INDEX}).encode(),
            oci.OCI_MANIFEST,
            oci.ACCEPT_ALL,
            "refusing an ambiguous manifest",
        ),
        (b"{}", "application/octet-stream", oci.ACCEPT_ALL, "unsupported media type"),
        (b"{}", oci.OCI_MANIFEST, oci.OCI_INDEX, "refusing to take its digest"),
    ],
    ids=["not-json", "not-object", "ambiguous", "unknown-type", "not-asked-for"],
)
def test_manifests_ocirel_cannot_read_raise_unsupported_manifest_error(
    body: bytes, served_as: str, accept: str, message: str
) -> None:
    with pytest.raises(UnsupportedManifestError, match=message) as info:
        _parse(body, served_as, accept)
    assert isinstance(info.value, RegistryError)
    assert info.value.reason == f"is a manifest ocirel cannot read ({info.value})"
    assert info.value.status is None


@pytest.mark.parametrize("where", ["served-as", "inside"])
def test_a_schema1_manifest_says_so_in_its_reason(where: str) -> None:
    body = json.dumps({"schemaVersion": 1, "mediaType": SCHEMA1}).encode()
    with pytest.raises(UnsupportedManifestError, match="unsupported media type") as info:
        _parse(body if where == "inside" else b'{"schemaVersion": 1}', SCHEMA1)
    assert info.value.reason == "is a schema 1 manifest, which ocirel cannot compare"
