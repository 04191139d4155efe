"""The bundle's OCI layout, its readers and the progress line (no registry here; the
round trips are in tests/integration/test_bundle.py)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from ocirel.bundle.export import plan_image
from ocirel.bundle.importer import bundle_manifests
from ocirel.bundle.layout import (
    LOCK_NAME,
    Bundle,
    BundleError,
    Descriptor,
    LayoutWriter,
    children,
    write_tar,
)
from ocirel.bundle.transfer import Progress, VerifyingReader, run_all
from ocirel.errors import DigestMismatchError
from ocirel.lockfile import LockEntry
from ocirel.oci import OCI_INDEX, OCI_MANIFEST, Digest, ImageManifest
from ocirel.reference import parse_repository


def digest_of(data: bytes) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def make_layout(root: Path) -> tuple[Digest, bytes]:
    """A layout with one image (config + one layer); returns the layer's digest and bytes."""
    writer = LayoutWriter(root)
    layer, config = b"layer-bytes" * 100, b"{}"
    writer.write(digest_of(layer), len(layer), [layer[:7], layer[7:]])
    writer.write_bytes(digest_of(config), config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(layer), "size": len(layer)}],
    }).encode()  # fmt: skip
    writer.write_bytes(digest_of(manifest), manifest)
    top = Descriptor(OCI_MANIFEST, digest_of(manifest), len(manifest), {LOCK_NAME: "app"})
    writer.finish([top], '{"schema": 1, "images": {}}\n')
    return digest_of(layer), layer


def test_a_written_layout_reads_back_from_a_directory_and_a_tar(tmp_path: Path) -> None:
    layer_digest, layer = make_layout(tmp_path / "layout")
    assert json.loads((tmp_path / "layout" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }
    write_tar(tmp_path / "layout", tmp_path / "bundle.tar")
    for path in (tmp_path / "layout", tmp_path / "bundle.tar"):
        bundle = Bundle(path)
        (top,) = bundle.index()
        assert top.annotations[LOCK_NAME] == "app"
        manifest = bundle.manifest(top)
        _, blobs = children(manifest, "test")
        assert [b.digest for b in blobs][1] == layer_digest
        with bundle.open(f"blobs/sha256/{layer_digest[7:]}") as handle:
            assert handle.read() == layer
    assert not list((tmp_path).glob(".bundle.tar.*"))  # no temporary file left


def test_a_tar_made_with_dot_slash_names_is_read_too(tmp_path: Path) -> None:
    make_layout(tmp_path / "layout")
    with tarfile.open(tmp_path / "b.tar", "w") as tar:
        tar.add(tmp_path / "layout", arcname=".")
    (top,) = Bundle(tmp_path / "b.tar").index()
    assert top.media_type == OCI_MANIFEST


def test_a_blob_that_does_not_match_is_not_kept(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "layout")
    with pytest.raises(DigestMismatchError, match="nothing was kept"):
        writer.write(digest_of(b"right"), 5, [b"wrong"])
    assert list((tmp_path / "layout" / "blobs" / "sha256").iterdir()) == []


def test_a_non_layout_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not an OCI layout") as caught:
        LayoutWriter(tmp_path / "stuff")
    assert caught.value.hint
    with pytest.raises(BundleError, match="not an OCI image layout"):
        Bundle(tmp_path / "stuff")
    (tmp_path / "x.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BundleError, match="not an uncompressed tar"):
        Bundle(tmp_path / "x.tar")


def test_an_altered_manifest_is_refused(tmp_path: Path) -> None:
    make_layout(tmp_path / "layout")
    bundle = Bundle(tmp_path / "layout")
    (top,) = bundle.index()
    path = tmp_path / "layout" / "blobs" / "sha256" / top.digest[7:]
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    with pytest.raises(DigestMismatchError, match="altered or damaged"):
        bundle.manifest(top)


def test_an_index_lists_its_manifests_as_children() -> None:
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 9}],
    }).encode()  # fmt: skip
    manifests, blobs = children(ImageManifest(digest_of(body), OCI_INDEX, body), "x")
    assert ([m.digest for m in manifests], blobs) == (["sha256:" + "a" * 64], [])
    bad = body.replace(b'"size": 9', b'"size": -1')
    with pytest.raises(BundleError, match="no valid size"):
        children(ImageManifest(digest_of(bad), OCI_INDEX, bad), "x")


@pytest.mark.parametrize(
    ("data", "problem"), [(b"hello world", None), (b"hello WORLD", "hashes to"), (b"hello", "ends")]
)
def test_the_verifying_reader_refuses_before_the_last_byte(
    data: bytes, problem: str | None
) -> None:
    reader = VerifyingReader(io.BytesIO(data), digest_of(b"hello world"), 11, "bundle")
    assert len(reader) == 11
    if problem is None:
        assert reader.read(4) + reader.read() == b"hello world"
        return
    first = reader.read(5)
    assert first == data[:5]
    with pytest.raises(DigestMismatchError, match=problem):
        reader.read()  # the last bytes are never handed over


def test_progress_rewrites_one_line_on_a_terminal_and_logs_lines_elsewhere() -> None:
    tty, plain = io.StringIO(), io.StringIO()
    for stream, is_tty in ((tty, True), (plain, False)):
        progress = Progress(stream, tty=is_tty)
        progress.start(2, 3_000_000)
        progress.blob("sha256:" + "a" * 64, 1_000_000, moved=True, verb="uploaded")
        progress.blob("sha256:" + "b" * 64, 2_000_000, moved=False, verb="uploaded")
        progress.done()
    assert tty.getvalue().startswith("\rblobs 1/2, 1.0 MB/3.0 MB, ")
    assert "\rblobs 2/2, 3.0 MB/3.0 MB, " in tty.getvalue()
    assert tty.getvalue().endswith("\n")
    assert tty.getvalue().count("\n") == 1
    lines = plain.getvalue().splitlines()
    assert lines[0].startswith("uploaded: sha256:aaaaaaaaaaaa (1.0 MB) [blobs 1/2")
    assert lines[1].startswith("already there: sha256:bbbbbbbbbbbb (2.0 MB) [blobs 2/2")


def test_progress_with_a_live_display_hands_it_the_line_and_writes_nothing() -> None:
    stream, shown = io.StringIO(), list[str]()
    progress = Progress(stream, tty=True, live=shown.append)
    progress.start(2, 3_000_000)
    progress.blob("sha256:" + "a" * 64, 1_000_000, moved=True, verb="downloaded")
    progress.blob("sha256:" + "b" * 64, 2_000_000, moved=True, verb="downloaded")
    progress.done()
    assert [line.split(", ")[:2] for line in shown] == [
        ["blobs 1/2", "1.0 MB/3.0 MB"],
        ["blobs 2/2", "3.0 MB/3.0 MB"],
    ]
    assert stream.getvalue() == ""


def test_run_all_raises_the_first_failure_and_starts_nothing_more() -> None:
    started: list[int] = []

    def work(item: int) -> None:
        started.append(item)
        if item == 0:
            raise DigestMismatchError("boom")

    with pytest.raises(DigestMismatchError, match="boom"):
        run_all(work, range(50), workers=1)
    assert len(started) < 50


def test_a_lockfile_platform_missing_from_the_index_is_refused(tmp_path: Path) -> None:
    make_layout(tmp_path / "layout")
    bundle = Bundle(tmp_path / "layout")
    (top,) = bundle.index()
    repo = parse_repository("registry.example.com/team/app")
    entry = LockEntry("app", repo.name, "v1", top.digest, {"linux/arm64": "sha256:" + "e" * 64})
    with pytest.raises(BundleError, match="does not contain"):
        plan_image(entry, repo, bundle_manifests(bundle), top)
    plan = plan_image(LockEntry("app", repo.name, "v1", top.digest), repo, bundle_manifests(bundle))
    assert [m.digest for m in plan.manifests] == [top.digest]
    assert len(plan.blobs) == 2
