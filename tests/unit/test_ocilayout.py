"""OCI image layouts as a publish destination (``--image oci:PATH``): the reference,
the tags read from index.json, the blob and index writes and their lock, and what the
lockfile, verify, show, bundle export and bundle import make of a layout entry.
The builds themselves are in tests/integration/test_oci_layout.py."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import cast

import pytest

from ocirel import lockfile, ocilayout
from ocirel.bundle.export import export_bundle
from ocirel.bundle.importer import plan_import
from ocirel.bundle.layout import Bundle, BundleError
from ocirel.deploy.verify import Status, verify_lock
from ocirel.errors import (
    ConfigError,
    DigestMismatchError,
    InvalidReferenceError,
    LayoutError,
    LockfileError,
)
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import OCI_MANIFEST, Digest, ImageManifest
from ocirel.records.show import target_of
from ocirel.reference import (
    LayoutTarget,
    Reference,
    is_layout,
    parse_destination,
    parse_layout,
)
from ocirel.registry import Registry
from ocirel.versioning import make_scheme


def digest_of(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def add_image(root: Path, tag: str, *, name: str | None = "app", payload: bytes = b"x") -> Digest:
    """A one-layer image written with the destination's own functions, tagged ``tag``."""
    ocilayout.ensure_layout(root)
    layer, config = b"layer:" + payload, json.dumps({"architecture": "amd64", "os": "linux"})
    (root / "src").mkdir(exist_ok=True)
    source = root / "src" / f"layer-{tag}"
    source.write_bytes(layer)
    ocilayout.put_blob_file(root, digest_of(layer), source, len(layer))
    ocilayout.put_blob_bytes(root, digest_of(config.encode()), config.encode())
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_of(config.encode()), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer), "size": len(layer)}],
    }).encode()  # fmt: skip
    ocilayout.put_blob_bytes(root, digest_of(body), body)
    manifest = ImageManifest(digest_of(body), OCI_MANIFEST, body)
    with ocilayout.locked(root):
        ocilayout.add_tag(root, manifest, tag, name or "")
    if name is None:  # a layout written by another tool: no ocirel lock name
        index = json.loads((root / "index.json").read_text())
        index["manifests"][-1]["annotations"].pop(ocilayout.LOCK_NAME)
        (root / "index.json").write_text(json.dumps(index))
    return digest_of(body)


# ------------------------------------------------------------------ the reference


def test_oci_path_is_a_layout_made_absolute_against_the_working_directory() -> None:
    target = parse_layout("oci:build/../out/layout", cwd="/work/app")
    assert target == LayoutTarget("/work/app/out/layout")
    assert target.name == "oci:/work/app/out/layout"
    assert target.last_component == "layout"
    assert parse_layout("oci:/srv/My Images/", cwd="/x").last_component == "my-images"
    assert is_layout("oci:/a")
    assert not is_layout("registry.example.com/oci")


def test_a_destination_is_a_registry_repository_unless_it_starts_with_oci() -> None:
    assert parse_destination("registry.example.com/team/app") == Reference(
        "registry.example.com", "team/app"
    )
    assert isinstance(parse_destination("oci:/tmp/layout"), LayoutTarget)


@pytest.mark.parametrize("text", ["oci:", "oci: /padded", "oci:/layout:v1", "oci:a:b:c"])
def test_a_malformed_layout_reference_is_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_layout(text)
    assert "oci:PATH" in (caught.value.hint or "")


# --------------------------------------------------------------- tags and writes


def test_tags_are_the_ref_name_annotations_of_index_json(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    assert ocilayout.list_tags(root) == []  # no layout yet: no tags
    first = add_image(root, "v1", payload=b"1")
    second = add_image(root, "v2", payload=b"2")
    index = json.loads((root / "index.json").read_text())
    index["manifests"].append({"mediaType": OCI_MANIFEST, "digest": first, "size": 1})  # untagged
    (root / "index.json").write_text(json.dumps(index))
    assert ocilayout.list_tags(root) == ["v1", "v2"]
    assert ocilayout.tag_digest(root, "v2") == second
    assert ocilayout.read_manifest(root, "v1").digest == first
    assert make_scheme("counter").next_tag(set(ocilayout.list_tags(root))) == "v3"
    assert index["schemaVersion"] == 2
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_a_damaged_index_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    ocilayout.ensure_layout(root)
    (root / "index.json").write_text("{not json")
    with pytest.raises(LayoutError, match=r"index\.json"):
        ocilayout.list_tags(root)
    (root / "index.json").write_text(json.dumps({"manifests": [
        {"digest": "sha256:short", "size": 1, "annotations": {ocilayout.REF_NAME: "v1"}}
    ]}))  # fmt: skip
    with pytest.raises(LayoutError, match="malformed digest"):
        ocilayout.list_tags(root)


def test_a_non_empty_directory_that_is_not_a_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LayoutError) as caught:
        ocilayout.ensure_layout(tmp_path)
    assert "empty directory" in (caught.value.hint or "")
    assert not (tmp_path / "blobs").exists()


def test_layers_are_hard_linked_and_small_blobs_checked(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    ocilayout.ensure_layout(root)
    source = tmp_path / "layer"
    source.write_bytes(b"layer bytes")
    digest = digest_of(b"layer bytes")
    ocilayout.put_blob_file(root, digest, source, len(b"layer bytes"))
    assert ocilayout.blob_path(root, digest).stat().st_ino == source.stat().st_ino
    with pytest.raises(DigestMismatchError):
        ocilayout.put_blob_bytes(root, digest, b"other bytes")
    assert [p.name for p in (root / "blobs" / "sha256").iterdir()] == [digest[7:]]


def test_two_writers_under_the_lock_never_take_the_same_tag(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    manifests = [add_image(root, f"seed-{i}", payload=str(i).encode()) for i in range(2)]
    taken: list[str] = []

    def writer(digest: Digest) -> None:
        body = ocilayout.read_blob(root, digest)
        with ocilayout.locked(root):
            tags = set(ocilayout.list_tags(root))
            tag = make_scheme("counter").next_tag(tags)
            time.sleep(0.2)  # both would read the same tags without the lock
            ocilayout.add_tag(root, ImageManifest(digest, OCI_MANIFEST, body), tag, "app")
            taken.append(tag)

    threads = [threading.Thread(target=writer, args=(d,)) for d in manifests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == ["v1", "v2"]
    assert ocilayout.list_tags(root) == ["seed-0", "seed-1", *taken]


# ------------------------------------------------------- lockfile and deploy side


def layout_entry(root: Path, tag: str, digest: Digest) -> LockEntry:
    return LockEntry("app", f"oci:{root}", tag, digest)


def test_the_lockfile_records_a_layout_as_oci_and_an_absolute_path(tmp_path: Path) -> None:
    entry = layout_entry(tmp_path, "v1", digest_of(b"m"))
    text = lockfile.dumps(Lockfile({"app": entry}, {f"oci:{tmp_path}": "v1"}))
    loaded = lockfile.loads(text)
    assert loaded.entries["app"] == entry
    assert loaded.entries["app"].reference == f"oci:{tmp_path}:v1@{digest_of(b'm')}"
    assert loaded.known_tags(f"oci:{tmp_path}") == {"v1"}
    relative = text.replace(f"oci:{tmp_path}", "oci:layout")
    with pytest.raises(LockfileError, match="absolute"):
        lockfile.loads(relative)


def never(ref: Reference) -> str:
    raise AssertionError(f"a layout entry went to the registry: {ref}")


def test_verify_reads_a_layout_entry_from_disk(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    first = add_image(root, "v1", payload=b"1")

    def check(entry: LockEntry) -> Status:
        lock = Lockfile({"app": entry})
        checks = verify_lock(lock, digest_exists=lambda r: bool(never(r)), tag_digest=never)
        return checks[0].status

    assert check(layout_entry(root, "v1", first)) is Status.OK
    second = add_image(root, "v1", payload=b"2")  # v1 now names another manifest
    assert check(layout_entry(root, "v1", first)) is Status.DRIFTED
    ocilayout.blob_path(root, first).unlink()
    assert check(layout_entry(root, "v1", first)) is Status.MISSING
    assert check(layout_entry(root, "v1", second)) is Status.OK


def test_show_and_bundle_export_refuse_a_layout_entry_saying_why(tmp_path: Path) -> None:
    entry = layout_entry(tmp_path, "v1", digest_of(b"m"))
    lock_path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(lock_path, entry)
    with pytest.raises(ConfigError, match="build records live in registries") as caught:
        target_of("app", lock_path)
    assert caught.value.hint == f"inspect it with: skopeo inspect oci:{tmp_path}:v1"
    with pytest.raises(BundleError, match="not in a registry") as refused:
        export_bundle(cast("Registry", None), Lockfile({"app": entry}), tmp_path / "out")
    assert "bundle import" in (refused.value.hint or "")


def test_a_layout_without_a_lockfile_imports_every_tag_under_its_name(tmp_path: Path) -> None:
    root = tmp_path / "Layout"
    v1 = add_image(root, "v1", payload=b"1")
    v2 = add_image(root, "v2", payload=b"2")
    other = add_image(root, "1.0.0", name=None, payload=b"3")  # another tool's tag
    plans = plan_import(Bundle(root), "mirror.test:5000/air")
    found = [(p.repo.name, p.entry.tag, p.entry.digest) for p in plans]
    assert found == [
        ("mirror.test:5000/air/app", "v1", v1),
        ("mirror.test:5000/air/app", "v2", v2),
        ("mirror.test:5000/air/layout", "1.0.0", other),  # the directory's name
    ]
    assert all(p.entry.repository == f"oci:{root}" for p in plans)
    assert all(len(p.blobs) == 2 for p in plans)


def test_a_layout_without_tagged_images_has_nothing_to_import(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    ocilayout.ensure_layout(root)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": []}))
    with pytest.raises(BundleError, match="nothing to import"):
        plan_import(Bundle(root), "mirror.test:5000/air")
