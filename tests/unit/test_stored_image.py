"""ocirel.backends.stored: a built image's config read from containers/storage's files
only when it verifies (its digest is the image ID, an OCI manifest names it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ocirel import hostinfo, runner
from ocirel.backends import buildah
from ocirel.backends.base import BuildEnv
from ocirel.backends.stored import MAX_BYTES, big_data_name, read_stored_image
from ocirel.oci import OCI_CONFIG, OCI_MANIFEST

CONFIG = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}


def store(
    root: Path,
    config: dict[str, Any] | bytes = CONFIG,
    *,
    driver: str = "overlay",
    manifest: dict[str, Any] | None = None,
) -> str:
    """An image directory as containers/storage writes it; the image ID."""
    body = config if isinstance(config, bytes) else json.dumps(config).encode()
    hexid = hashlib.sha256(body).hexdigest()
    directory = root / f"{driver}-images" / hexid
    directory.mkdir(parents=True)
    (directory / big_data_name(f"sha256:{hexid}")).write_bytes(body)
    if manifest is None:
        manifest = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{hexid}", "size": len(body)},
            "layers": [], "annotations": {"org.opencontainers.image.base.name": "r/base:1"},
        }  # fmt: skip
    (directory / "manifest").write_text(json.dumps(manifest))
    return hexid


def test_key_names_follow_containers_storage() -> None:
    assert big_data_name("manifest") == "manifest"
    assert big_data_name("sha256:ab") == "=c2hhMjU2OmFi"
    assert big_data_name("Manifest") == "=TWFuaWZlc3Q="


def test_a_verified_image_is_read_from_any_driver_and_root(tmp_path: Path) -> None:
    hexid = store(tmp_path / "second", driver="vfs")
    found = read_stored_image(f"sha256:{hexid}", [tmp_path / "missing", tmp_path / "second"])
    assert found is not None
    assert found.config == CONFIG
    assert found.annotations == {"org.opencontainers.image.base.name": "r/base:1"}
    assert read_stored_image(hexid, [tmp_path / "second"]) == found


def test_a_config_that_does_not_hash_to_the_id_is_not_trusted(tmp_path: Path) -> None:
    hexid = store(tmp_path)
    config_file = tmp_path / "overlay-images" / hexid / big_data_name(f"sha256:{hexid}")
    config_file.write_bytes(json.dumps({**CONFIG, "os": "windows"}).encode())
    assert read_stored_image(hexid, [tmp_path]) is None


@pytest.mark.parametrize(
    "change",
    [
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json"},
        {"config": {"mediaType": "application/vnd.docker.container.image.v1+json"}},
        {"config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + "0" * 64}},
        {"config": "not an object"},
    ],
)
def test_only_an_oci_manifest_naming_the_config_vouches_for_it(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    hexid = store(tmp_path)
    manifest_file = tmp_path / "overlay-images" / hexid / "manifest"
    manifest = json.loads(manifest_file.read_text())
    if isinstance(change.get("config"), dict) and "digest" not in change["config"]:
        change = {"config": {**manifest["config"], **change["config"]}}
    manifest_file.write_text(json.dumps({**manifest, **change}))
    assert read_stored_image(hexid, [tmp_path]) is None


def test_missing_broken_or_huge_files_and_names_that_are_not_ids_give_none(
    tmp_path: Path,
) -> None:
    assert read_stored_image("localhost/app:1", [tmp_path]) is None
    hexid = store(tmp_path)
    (tmp_path / "overlay-images" / hexid / "manifest").write_text("{not json")
    assert read_stored_image(hexid, [tmp_path]) is None
    (tmp_path / "overlay-images" / hexid / "manifest").unlink()
    assert read_stored_image(hexid, [tmp_path]) is None
    huge = store(tmp_path / "big", b" " * (MAX_BYTES + 1))
    assert read_stored_image(huge, [tmp_path / "big"]) is None
    not_object = store(tmp_path / "list", b"[]")
    assert read_stored_image(not_object, [tmp_path / "list"]) is None


def test_buildah_reads_the_storage_before_running_inspect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hexid = store(tmp_path)
    monkeypatch.setattr(hostinfo, "graph_roots", lambda env, rootless: [tmp_path])
    ran: list[list[str]] = []

    def no_inspect(argv: list[str], **_kwargs: Any) -> Any:
        ran.append(argv)
        raise AssertionError("inspect ran")

    monkeypatch.setattr(runner, "run", no_inspect)
    backend = buildah.Buildah()
    assert backend.image_config(f"sha256:{hexid}", BuildEnv()) == CONFIG
    assert backend.image_annotations(hexid, BuildEnv()) == {
        "org.opencontainers.image.base.name": "r/base:1"
    }
    assert ran == []
    with pytest.raises(AssertionError, match="inspect ran"):  # a name: the inspect path
        backend.image_config("localhost/app:1", BuildEnv())
    assert ran
    assert "inspect" in ran[0]


def test_the_store_of_the_builders_driver_is_read_first(tmp_path: Path) -> None:
    """The same image in two drivers' stores (ocirel once used another): the manifest
    of the driver in use is the one to trust for annotations."""
    hexid = store(tmp_path, driver="overlay")
    vfs = tmp_path / "vfs-images" / hexid
    vfs.mkdir(parents=True)
    for item in (tmp_path / "overlay-images" / hexid).iterdir():
        (vfs / item.name).write_bytes(item.read_bytes())
    manifest = json.loads((vfs / "manifest").read_text())
    manifest["annotations"] = {"org.opencontainers.image.base.name": "r/newer:2"}
    (vfs / "manifest").write_text(json.dumps(manifest))
    found = read_stored_image(hexid, [tmp_path], "vfs")
    assert found is not None
    assert found.annotations == {"org.opencontainers.image.base.name": "r/newer:2"}
    found = read_stored_image(hexid, [tmp_path], "overlay")
    assert found is not None
    assert found.annotations == {"org.opencontainers.image.base.name": "r/base:1"}
