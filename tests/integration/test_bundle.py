"""``ocirel bundle export`` / ``import`` against real distribution registries.

Registry A (plain HTTP, private to each test, stopped before the import) holds a
two-platform index and a single-platform image; registry B is TLS with a private CA
and Basic auth, or token auth. Images are seeded through the registry API, no builder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ocirel import lockfile
from ocirel.bundle import transfer
from ocirel.bundle.export import export_bundle
from ocirel.bundle.importer import import_bundle
from ocirel.bundle.layout import Bundle
from ocirel.bundle.transfer import Progress
from ocirel.cli.wiring import make_registry
from ocirel.errors import DigestMismatchError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import OCI_INDEX, Digest
from ocirel.reference import parse_repository
from ocirel.settings import RegistryOptions
from tests.integration.conftest import OcirelRunner, Run
from tests.support.client import RandomImage, RegistryClient, sha256_digest
from tests.support.registry import RegistryServer

UPLOADED = re.compile(
    r'"PUT /v2/([^ ]+)/blobs/uploads/[^ ]*digest=(sha256[^ &]*)[^ ]* HTTP/1.1" 201 '
)


def push_platform_image(client: RegistryClient, repo: str, arch: str, size: int) -> RandomImage:
    image = RandomImage.create(size)
    config = json.loads(image.config)
    assert config["architecture"] == "amd64"  # RandomImage's; the index says the platform
    client.upload_blob(repo, image.config)
    client.upload_blob(repo, image.layer)
    client.put_manifest(repo, image.digest, image.manifest)
    return image


def push_index(client: RegistryClient, repo: str, tag: str) -> tuple[str, dict[str, str]]:
    """A two-platform OCI index under ``repo:tag``; returns its digest and platforms."""
    platforms = {}
    entries = []
    for arch, size in (("amd64", 3000), ("arm64", 5000)):
        image = push_platform_image(client, repo, arch, size)
        platforms[f"linux/{arch}"] = image.digest
        entries.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.digest, "size": len(image.manifest),
            "platform": {"architecture": arch, "os": "linux"},
        })  # fmt: skip
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    digest = client.put_manifest(repo, tag, body, OCI_INDEX)
    assert digest == sha256_digest(body)
    return digest, platforms


@pytest.fixture
def source(
    registry_factory: Callable[..., RegistryServer], unique_repo: str, tmp_path: Path
) -> RegistryServer:
    """Registry A with ``web`` (an index, v3) and ``worker`` (one platform, v1), and a
    lockfile naming them in ``tmp_path/src``."""
    server = registry_factory()
    with server.client() as client:
        web, platforms = push_index(client, f"{unique_repo}/web", "v3")
        worker = client.push_random_image(f"{unique_repo}/worker", "v1", layer_size=2000)
    entries = [
        LockEntry("web", f"{server.host}/{unique_repo}/web", "v3", Digest(web), platforms),
        LockEntry("worker", f"{server.host}/{unique_repo}/worker", "v1", Digest(worker)),
    ]
    (tmp_path / "src").mkdir()
    lock = Lockfile({e.name: e for e in entries})
    (tmp_path / "src" / "ocirel.lock.json").write_text(lockfile.dumps(lock), encoding="utf-8")
    return server


def cli(ocirel: OcirelRunner, *args: str, cwd: Path, code: int = 0, **kw: object) -> Run:
    run = ocirel(*args, cwd=cwd, **kw)
    assert run.returncode == code, run.explain()
    return run


def target_env(server: RegistryServer) -> dict[str, str]:
    env = {"OCIREL_RETRIES": "0"}
    if server.credentials:
        env.update(OCIREL_USERNAME=server.credentials[0], OCIREL_PASSWORD=server.credentials[1])
    if server.ca_file:
        env["OCIREL_CA_FILE"] = str(server.ca_file)
    return env


def uploads(server: RegistryServer) -> list[tuple[str, str]]:
    """(repository, digest) of every completed blob upload in ``server``'s log."""
    return UPLOADED.findall(server.log_file.read_text(errors="replace"))


def export(ocirel: OcirelRunner, tmp_path: Path, output: str) -> Path:
    run = cli(ocirel, "bundle", "export", "-o", str(tmp_path / output), cwd=tmp_path / "src")
    assert "exported 2 image(s), 6 blob(s)" in run.stderr, run.explain()
    return tmp_path / output


def assert_identical(server: RegistryServer, prefix: str, source_lock: Lockfile, cwd: Path) -> None:
    """The lockfile in ``cwd`` names ``server``, and every digest and manifest matches."""
    imported = lockfile.load(cwd / "ocirel.lock.json")
    assert set(imported.entries) == set(source_lock.entries)
    with server.client() as client:
        for name, entry in imported.entries.items():
            old = source_lock.entries[name]
            assert entry.repository == f"{server.host}/{prefix}/{old.repository.split('/', 1)[1]}"
            assert (entry.tag, entry.digest, entry.platforms) == (
                old.tag,
                old.digest,
                old.platforms,
            )
            repo = entry.repository.split("/", 1)[1]
            assert client.manifest_digest(repo, entry.tag) == old.digest
            for child in entry.platforms.values():
                assert sha256_digest(client.manifest(repo, child).content) == child


# --------------------------------------------------------------------- round trips


def test_round_trip_into_a_tls_registry_with_basic_auth(
    ocirel: OcirelRunner, source: RegistryServer, tls_basic_registry: RegistryServer,
    unique_repo: str, tmp_path: Path,
) -> None:  # fmt: skip
    bundle = export(ocirel, tmp_path, "bundle.tar")
    source_lock = lockfile.load(tmp_path / "src" / "ocirel.lock.json")
    source.stop()  # the air gap: nothing is fetched from A any more
    target, dest = tls_basic_registry, tmp_path / "dest"
    dest.mkdir()
    prefix = f"{unique_repo}-air"
    run = cli(
        ocirel, "bundle", "import", str(bundle), "--to", f"{target.host}/{prefix}",
        "--ca-file", str(target.ca_file), cwd=dest, env=target_env(target),
    )  # fmt: skip
    assert "6 blob(s), 6 uploaded" in run.stderr
    assert f"--registry-map {source.host}={target.host}/{prefix}" in run.stderr
    assert not run.stdout
    assert_identical(target, prefix, source_lock, dest)
    verify = cli(ocirel, "verify", cwd=dest, env=target_env(target))
    assert "2 ok, 0 drifted" in verify.stderr
    again = cli(
        ocirel, "bundle", "import", str(bundle), "--to", f"{target.host}/{prefix}", "--json",
        cwd=dest, env=target_env(target),
    )  # fmt: skip
    assert again.json["uploaded"] == 0  # everything was there: nothing sent twice
    assert "already there" in again.stderr  # not a terminal: one plain line per blob


def test_round_trip_into_a_token_registry_from_a_directory(
    ocirel: OcirelRunner, source: RegistryServer, token_registry: RegistryServer,
    unique_repo: str, tmp_path: Path,
) -> None:  # fmt: skip
    bundle = export(ocirel, tmp_path, "layout")
    layout = json.loads((bundle / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"] for m in layout["manifests"]}
    assert names == {
        f"{source.host}/{unique_repo}/web:v3",
        f"{source.host}/{unique_repo}/worker:v1",
    }
    assert (bundle / "oci-layout").is_file()
    assert (bundle / "ocirel.lock.json").is_file()
    for blob in (bundle / "blobs" / "sha256").iterdir():  # every file is its digest
        assert sha256_digest(blob.read_bytes()) == f"sha256:{blob.name}"
    source_lock = lockfile.load(tmp_path / "src" / "ocirel.lock.json")
    source.stop()
    dest = tmp_path / "dest"
    dest.mkdir()
    cli(
        ocirel, "bundle", "import", str(bundle), "--to", f"{token_registry.host}/{unique_repo}",
        cwd=dest, env=target_env(token_registry),
    )  # fmt: skip
    assert_identical(token_registry, unique_repo, source_lock, dest)


# ------------------------------------------------------------- faults and resuming


class StopAfter(Progress):
    """Interrupts the import once ``limit`` blobs were uploaded."""

    def __init__(self, limit: int) -> None:
        super().__init__(tty=False)
        self.limit = limit

    def blob(self, digest: str, size: int, *, moved: bool, verb: str) -> None:
        super().blob(digest, size, moved=moved, verb=verb)
        if self.moved >= self.limit:
            raise KeyboardInterrupt


def test_an_interrupted_import_run_again_uploads_only_what_was_missing(
    ocirel: OcirelRunner, source: RegistryServer, registry_factory: Callable[..., RegistryServer],
    unique_repo: str, tmp_path: Path,
) -> None:  # fmt: skip
    bundle = export(ocirel, tmp_path, "bundle.tar")
    target = registry_factory(tls=True, auth="basic")
    client = make_registry(
        RegistryOptions(ca_file=target.ca_file, retries=0),
        parse_repository(f"{target.host}/x"),
    )
    env_creds = target_env(target)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OCIREL_USERNAME", env_creds["OCIREL_USERNAME"])
        patch.setenv("OCIREL_PASSWORD", env_creds["OCIREL_PASSWORD"])
        with pytest.raises(KeyboardInterrupt):
            import_bundle(
                client, Bundle(bundle), f"{target.host}/air", progress=StopAfter(2), workers=1
            )
    first = uploads(target)
    assert 2 <= len(first) < 6  # a blob already started when the stop came is finished
    assert {repo for repo, _ in first} <= {f"air/{unique_repo}/web", f"air/{unique_repo}/worker"}
    with target.client() as registry_client:
        for repo, _ in first:  # nothing is tagged before every blob is in place
            assert registry_client.tags(repo) == []
    dest = tmp_path / "dest"
    dest.mkdir()
    run = cli(
        ocirel, "bundle", "import", str(bundle), "--to", f"{target.host}/air", "--json",
        cwd=dest, env=env_creds,
    )  # fmt: skip
    second = uploads(target)[len(first) :]
    assert run.json["uploaded"] == len(second) == 6 - len(first)
    assert not set(first) & set(second)  # nothing uploaded twice
    assert_identical(target, "air", lockfile.load(tmp_path / "src" / "ocirel.lock.json"), dest)


def test_a_tampered_blob_is_refused_and_nothing_is_tagged(
    ocirel: OcirelRunner, source: RegistryServer, registry_factory: Callable[..., RegistryServer],
    unique_repo: str, tmp_path: Path,
) -> None:  # fmt: skip
    bundle = export(ocirel, tmp_path, "layout")
    index = json.loads((bundle / "index.json").read_text())
    worker = next(
        m for m in index["manifests"] if m["annotations"]["org.ocirel.lock.name"] == "worker"
    )
    manifest = json.loads((bundle / "blobs" / "sha256" / worker["digest"][7:]).read_bytes())
    layer = bundle / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other content
    layer.write_bytes(bytes(data))
    target = registry_factory()
    dest = tmp_path / "dest"
    dest.mkdir()
    run = cli(
        ocirel, "bundle", "import", str(bundle), "--to", f"{target.host}/air",
        cwd=dest, env={"OCIREL_RETRIES": "0"}, code=1,
    )  # fmt: skip
    assert f"blob {manifest['layers'][0]['digest']} hashes to" in run.stderr
    assert "altered or damaged, and nothing was tagged" in run.stderr
    assert "hint: export the bundle again" in run.stderr
    with target.client() as client:
        for name in ("web", "worker"):
            assert client.tags(f"air/{unique_repo}/{name}") == []
        entry = next(m for m in index["manifests"] if m is not worker)
        assert client.manifest_digest(f"air/{unique_repo}/web", entry["digest"]) is None
    assert manifest["layers"][0]["digest"] not in {d for _, d in uploads(target)}
    assert not (dest / "ocirel.lock.json").exists()


def test_export_downloads_large_blobs_in_verified_ranges(
    source: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "RANGE_SIZE", 1000)  # every layer takes several ranges
    lock = lockfile.load(tmp_path / "src" / "ocirel.lock.json")
    client = make_registry(RegistryOptions(retries=0), None, own_registries=(source.host,))
    result = export_bundle(client, lock, tmp_path / "out", progress=Progress(tty=False))
    assert (result.images, result.blobs, result.downloaded) == (2, 6, 6)
    ranges = re.findall(
        r'"GET /v2/\S+/blobs/sha256:\S+ HTTP/1.1" 206 ', source.log_file.read_text()
    )
    assert len(ranges) > 6
    for blob in (tmp_path / "out" / "blobs" / "sha256").iterdir():
        assert sha256_digest(blob.read_bytes()) == f"sha256:{blob.name}"
    again = export_bundle(client, lock, tmp_path / "out", progress=Progress(tty=False))
    assert again.downloaded == 0  # an existing layout is finished, not fetched again


def test_export_refuses_a_registry_blob_that_does_not_match(
    source: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = lockfile.load(tmp_path / "src" / "ocirel.lock.json")
    client = make_registry(RegistryOptions(retries=0), None, own_registries=(source.host,))
    real = transfer.download

    def corrupt(*args: object, **kwargs: object) -> object:
        for chunk in real(*args, **kwargs):  # type: ignore[arg-type]
            yield chunk[:-1] + b"!"

    monkeypatch.setattr("ocirel.bundle.export.download", corrupt)
    with pytest.raises(DigestMismatchError, match="nothing was kept"):
        export_bundle(client, lock, tmp_path / "out", progress=Progress(tty=False))
    assert [p.name for p in (tmp_path / "out" / "blobs" / "sha256").iterdir()] == []
    assert not (tmp_path / "out" / "index.json").exists()


def test_a_tag_taken_by_another_image_stops_the_import_before_any_push(
    ocirel: OcirelRunner, source: RegistryServer, registry_factory: Callable[..., RegistryServer],
    unique_repo: str, tmp_path: Path,
) -> None:  # fmt: skip
    bundle = export(ocirel, tmp_path, "bundle.tar")
    target = registry_factory()
    with target.client() as client:
        other = client.push_random_image(f"air/{unique_repo}/worker", "v1")
    before = len(uploads(target))
    dest = tmp_path / "dest"
    dest.mkdir()
    run = cli(
        ocirel, "bundle", "import", str(bundle), "--to", f"{target.host}/air",
        cwd=dest, env={"OCIREL_RETRIES": "0"}, code=4,  # TagConflictError
    )  # fmt: skip
    assert f"{target.host}/air/{unique_repo}/worker:v1 already exists with digest {other}" in (
        run.stderr
    )
    assert len(uploads(target)) == before  # nothing pushed
    with target.client() as client:
        assert client.manifest_digest(f"air/{unique_repo}/worker", "v1") == other
    assert not (dest / "ocirel.lock.json").exists()


def test_a_blob_shared_by_two_repositories_is_uploaded_once_and_mounted(
    ocirel: OcirelRunner, registry_factory: Callable[..., RegistryServer], tmp_path: Path
) -> None:
    source, target = registry_factory(), registry_factory()
    image = RandomImage.create(4000)
    with source.client() as client:
        for repo in ("team/api", "team/api-debug"):  # the same image in two repositories
            client.upload_blob(repo, image.config)
            client.upload_blob(repo, image.layer)
            client.put_manifest(repo, "v1", image.manifest)
    entries = [
        LockEntry(name, f"{source.host}/team/{name}", "v1", Digest(image.digest))
        for name in ("api", "api-debug")
    ]
    (tmp_path / "src").mkdir()
    lock = Lockfile({e.name: e for e in entries})
    (tmp_path / "src" / "ocirel.lock.json").write_text(lockfile.dumps(lock), encoding="utf-8")
    run = cli(ocirel, "bundle", "export", "-o", str(tmp_path / "b"), cwd=tmp_path / "src")
    assert "exported 2 image(s), 2 blob(s)" in run.stderr  # stored once in the layout
    cli(
        ocirel, "bundle", "import", str(tmp_path / "b"), "--to", target.host,
        cwd=tmp_path, env={"OCIREL_RETRIES": "0"},
    )  # fmt: skip
    assert len(uploads(target)) == 2  # config and layer, once
    log = target.log_file.read_text(errors="replace")
    assert (
        len(
            re.findall(r'"POST /v2/team/[^ ]+/blobs/uploads/\?[^ ]*mount=[^ ]+ HTTP/1.1" 201 ', log)
        )
        == 2
    )
    with target.client() as client:
        for name in ("api", "api-debug"):
            assert client.manifest_digest(f"team/{name}", "v1") == image.digest
