"""Layer reuse (publish.reuse): base layers are mounted, never compressed or uploaded
again; a refused mount, a pruned cache and a cache written meanwhile by another process
all still publish the right image. Real buildah, real distribution registries."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocirel.oci import Digest
from ocirel.publish.layercache import LayerCache
from ocirel.publish.reuse import KnownBlob
from tests.integration.conftest import OcirelRunner
from tests.support.images import write_build_context
from tests.support.localimages import storage_args
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder


@pytest.fixture(autouse=True)
def _buildah_and_cleanup(require_engine: Callable[[str], None]) -> Iterator[None]:
    """buildah is required; the base images a test pulled are removed afterwards."""
    require_engine("buildah")
    yield
    while PULLED:
        subprocess.run(["buildah", *storage_args("buildah"), "rmi", PULLED.pop()],
                       capture_output=True, timeout=120, check=False)  # fmt: skip


PULLED: list[str] = []


@dataclass
class Base:
    """A two-layer base image in the registry (not in local storage, as on a CI runner
    that pulls it), and its layers as the registry holds them."""

    reference: str
    repository: str
    layers: list[dict[str, object]]


def _buildah(*args: str, authfile: Path | None = None) -> str:
    auth = ["--authfile", str(authfile)] if authfile else []
    argv = ["buildah", *storage_args("buildah"), args[0], *auth, *args[1:]]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def push_base(
    server: RegistryServer,
    repository: str,
    workdir: Path,
    authfile: Path | None = None,
    *,
    pull: bool = True,
) -> Base:
    """The base, pushed; ``pull``: pulled back into local storage, as a developer's
    machine has it (else the publish's build pulls it, through ocirel's settings)."""
    context = write_build_context(
        workdir / "base",
        ["RUN head -c 3000000 /dev/urandom > /base-one",
         "RUN head -c 2000000 /dev/urandom > /base-two"],
    )  # fmt: skip
    local = f"localhost/ocirel-test-base/{repository.replace('/', '-')}:1"
    _buildah("build", "--layers", "--isolation", "chroot", "-t", local, str(context))
    reference = f"{server.host}/{repository}:1"
    assert server.scheme == "http"
    try:
        _buildah("push", "--tls-verify=false", local, f"docker://{reference}", authfile=authfile)
    finally:
        _buildah("rmi", local)
    # pulled back as a developer's machine or a CI runner has it (the pull records the
    # base's name and digest, which the build then writes into the app's annotations)
    if pull:
        _buildah("pull", "--tls-verify=false", reference, authfile=authfile)
    PULLED.append(reference)
    manifest = pushed_manifest(server, repository, "1")
    return Base(reference, repository, manifest["layers"])


def app_context(directory: Path, base: Base, payload: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.bin").write_bytes(payload)
    (directory / "Containerfile").write_text(f"FROM {base.reference}\nCOPY app.bin /app.bin\n")
    return directory


def publish(ocirel: OcirelRunner, repo: str, context: Path, **kw: object) -> dict[str, Any]:
    # --no-attach: these tests count the image's own uploads and mounts; the build
    # record's blobs (issue 15) are tested in test_records.py
    run = ocirel("publish", "--image", repo, "--backend", "buildah", "--insecure", "--json",
                 "--no-attach", str(context),
                 cwd=context, **kw)  # fmt: skip
    assert run.returncode == 0, run.explain()
    result: dict[str, Any] = run.json
    return result


@dataclass
class Requests:
    """The registry's access log lines about one repository, since a mark."""

    lines: list[str]

    def matching(self, pattern: str) -> list[str]:
        return [line for line in self.lines if re.search(pattern, line)]

    def mounts(self, status: int) -> list[str]:
        return self.matching(rf'"POST /v2/[^ ]+/blobs/uploads/\?mount=[^ ]+ HTTP/1.1" {status} ')

    def uploaded(self) -> list[str]:
        """The digests of the blobs uploaded (the final PUT of each upload names it)."""
        found = self.matching(
            r'"PUT /v2/[^ ]+/blobs/uploads/[^ ]*digest=sha256[^ ]* HTTP/1.1" 201 '
        )
        return [re.search(r"digest=(sha256(?::|%3A)[0-9a-f]{64})", x).group(1).replace("%3A", ":")  # type: ignore[union-attr]
                for x in found]  # fmt: skip


def _requests(server: RegistryServer, repository: str) -> Iterator[Requests]:
    start = len(server.log_file.read_bytes())
    seen = Requests([])
    yield seen
    text = server.log_file.read_bytes()[start:].decode(errors="replace")
    seen.lines += [line for line in text.splitlines() if f"/v2/{repository}/" in line]


def pushed_manifest(server: RegistryServer, repository: str, reference: str) -> dict[str, Any]:
    with server.client() as client:
        manifest: dict[str, Any] = client.manifest(repository, reference).json()
    return manifest


def assert_complete(server: RegistryServer, repository: str, digest: str) -> dict[str, Any]:
    """Every blob of the published image is in ``repository``; returns the manifest."""
    manifest = pushed_manifest(server, repository, digest)
    with server.client() as client:
        for blob in [manifest["config"], *manifest["layers"]]:
            head = client.request(
                "HEAD", f"/v2/{repository}/blobs/{blob['digest']}", repo=repository
            )
            assert head.status_code == 200, blob
    return manifest


def test_first_publish_into_a_new_repository_mounts_the_base_and_uploads_only_the_app(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    # not in local storage: the build pulls it from the plain-http registry (--insecure)
    base = push_base(registry, f"{unique_repo}-base", tmp_path, pull=False)
    context = app_context(tmp_path / "app", base, os.urandom(1_000_000))
    log = _requests(registry, f"{unique_repo}/app")
    seen = next(log)
    result = publish(ocirel, f"{registry.host}/{unique_repo}/app", context)
    next(log, None)
    manifest = assert_complete(registry, f"{unique_repo}/app", result["digest"])
    base_digests = [layer["digest"] for layer in base.layers]
    # the base layers are the registry's blobs, reused as they are, in order
    assert [layer["digest"] for layer in manifest["layers"][: len(base.layers)]] == base_digests
    assert len(seen.mounts(201)) == len(base.layers), seen.lines
    uploaded = seen.uploaded()
    assert not set(uploaded) & set(base_digests), "a base layer was uploaded again"
    assert len(uploaded) == 2, uploaded  # the app layer and the config


def test_a_second_publish_mounts_nothing_and_uploads_only_what_changed(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    base = push_base(registry, f"{unique_repo}-base", tmp_path)
    context = app_context(tmp_path / "app", base, os.urandom(500_000))
    repo = f"{registry.host}/{unique_repo}/app"
    first = publish(ocirel, repo, context)
    (context / "app.bin").write_bytes(os.urandom(500_000))
    log = _requests(registry, f"{unique_repo}/app")
    seen = next(log)
    second = publish(ocirel, repo, context)
    next(log, None)
    assert (first["tag"], second["tag"]) == ("v1", "v2")
    assert_complete(registry, f"{unique_repo}/app", second["digest"])
    assert seen.mounts(201) == []
    assert seen.mounts(202) == []
    assert len(seen.uploaded()) == 2
    # each known base layer is checked once, while the builder exports; the push does
    # not ask again
    for layer in base.layers:
        heads = seen.matching(rf'"HEAD /v2/[^ ]+/blobs/{layer["digest"]} HTTP/1.1" 200 ')
        assert len(heads) == 1, seen.lines


def _poison(home: Path, registry: str, base: Base, diff_ids: list[str]) -> None:
    """Cache entries that name blobs the registry never had, in a repository that does
    not exist: every mount of them is refused."""
    cache = LayerCache(home / ".cache" / "ocirel" / "layers")
    fake = {
        Digest(d): KnownBlob(
            Digest("sha256:" + os.urandom(32).hex()), 1234, str(layer["mediaType"]),
            ("no/such-repo",),
        )
        for d, layer in zip(diff_ids, base.layers, strict=False)
    }  # fmt: skip
    cache.learn(registry, fake)


def _diff_ids(server: RegistryServer, repository: str, manifest: dict[str, Any]) -> list[str]:
    with server.client() as client:
        reply = client.request("GET", f"/v2/{repository}/blobs/{manifest['config']['digest']}",
                               repo=repository)  # fmt: skip
        config = json.loads(reply.content)
    return list(config["rootfs"]["diff_ids"])


def test_a_refused_mount_falls_back_to_an_upload(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path,
    ocirel_home: Path,
) -> None:  # fmt: skip
    base = push_base(registry, f"{unique_repo}-base", tmp_path)
    base_manifest = pushed_manifest(registry, base.repository, "1")
    base_diff_ids = _diff_ids(registry, base.repository, base_manifest)
    # the base is gone from the registry (its manifest deleted): only the cache, which
    # names blobs the registry does not have, suggests a mount
    context = app_context(tmp_path / "app", base, os.urandom(300_000))
    with registry.client() as client:
        digest = client.manifest_digest(base.repository, "1")
        assert digest is not None
        client.delete_manifest(base.repository, digest)
    _poison(ocirel_home, registry.host, base, base_diff_ids)
    log = _requests(registry, f"{unique_repo}/app")
    seen = next(log)
    try:
        result = publish(ocirel, f"{registry.host}/{unique_repo}/app", context)
    finally:
        next(log, None)
    manifest = assert_complete(registry, f"{unique_repo}/app", result["digest"])
    assert (
        _diff_ids(registry, f"{unique_repo}/app", manifest)[: len(base_diff_ids)] == base_diff_ids
    )
    assert len(seen.mounts(202)) >= len(base.layers), seen.lines
    assert len(seen.uploaded()) == len(base.layers) + 2  # the base layers, the app, the config


def test_a_pruned_cache_and_a_cache_written_meanwhile_give_the_same_digest(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path,
    ocirel_home: Path,
) -> None:  # fmt: skip
    base = push_base(registry, f"{unique_repo}-base", tmp_path)
    context = app_context(tmp_path / "app", base, os.urandom(400_000))
    git_epoch = {"SOURCE_DATE_EPOCH": "1700000000"}
    first = publish(ocirel, f"{registry.host}/{unique_repo}/one", context, env=git_epoch)
    cache_dir = ocirel_home / ".cache" / "ocirel"
    assert any(cache_dir.rglob("*.json")), "the publish taught the cache nothing"

    pruned = ocirel("cache", "prune", "--all")
    assert pruned.returncode == 0, pruned.explain()
    assert not any(cache_dir.rglob("*.json"))
    second = publish(ocirel, f"{registry.host}/{unique_repo}/two", context, env=git_epoch)

    stop = threading.Event()
    writer = threading.Thread(target=_churn, args=(cache_dir / "layers", stop), daemon=True)
    writer.start()
    try:
        third = publish(ocirel, f"{registry.host}/{unique_repo}/three", context, env=git_epoch)
    finally:
        stop.set()
        writer.join(timeout=10)
    # the same content, tag v1 and timestamp in each: the same image, whatever the cache held
    assert first["digest"] == second["digest"] == third["digest"]
    for name in ("one", "two", "three"):
        assert_complete(registry, f"{unique_repo}/{name}", first["digest"])


def _churn(root: Path, stop: threading.Event) -> None:
    """Another process's view of the cache: entries rewritten, truncated and deleted."""
    while not stop.is_set():
        for path in list(root.rglob("*.json")):
            try:
                data = path.read_text()
                path.write_text(data[: len(data) // 2])  # a torn entry (never written by ocirel)
                path.write_text(data)
                if os.urandom(1)[0] < 64:
                    path.unlink()
            except OSError:
                continue
        stop.wait(0.005)


def test_token_auth_mount_asks_pull_on_the_source_repository(
    ocirel: OcirelRunner, token_registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    server = token_registry
    assert server.token_server is not None
    authfile = server.containers_auth(tmp_path / "auth")
    # the build pulls the base with the credentials ocirel found (a private authfile)
    base = push_base(server, f"{unique_repo}-base", tmp_path, authfile=authfile, pull=False)
    context = app_context(tmp_path / "app", base, os.urandom(200_000))
    server.token_server.clear()
    result = publish(ocirel, f"{server.host}/{unique_repo}/app", context,
                     env={"REGISTRY_AUTH_FILE": str(authfile)})  # fmt: skip
    manifest = assert_complete(server, f"{unique_repo}/app", result["digest"])
    base_digests = [x["digest"] for x in base.layers]
    assert [x["digest"] for x in manifest["layers"][: len(base_digests)]] == base_digests
    requests = server.token_server.recorded()
    assert any(
        f"repository:{unique_repo}/app:pull,push" in req.scopes
        and f"repository:{base.repository}:pull" in req.scopes
        for req in requests
    ), [req.scopes for req in requests]
    tail = server.log_tail(400)
    assert re.search(
        rf'POST /v2/{re.escape(unique_repo)}/app/blobs/uploads/\?mount=\S+ HTTP/1.1" 201', tail
    )


def test_a_layer_written_early_is_uploaded_while_the_export_goes_on(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    # a small layer the builder finishes long before the big one
    context = write_build_context(
        tmp_path / "app", ["COPY small /small", "COPY big /big"],
        files={"small": os.urandom(500_000), "big": os.urandom(40_000_000)},
    )  # fmt: skip
    log = _requests(registry, unique_repo)
    seen = next(log)
    run = ocirel("--debug", "publish", "--image", f"{registry.host}/{unique_repo}", "--backend",
                 "buildah", "--json", "--no-attach", str(context), cwd=context)  # fmt: skip
    next(log, None)
    assert run.returncode == 0, run.explain()
    digest = json.loads(run.stdout)["digest"]
    manifest = assert_complete(registry, unique_repo, digest)
    early = re.findall(
        r"layer (sha256:[0-9a-f]{64}) is written; (?:uploading it|it was streamed) while",
        run.stderr,
    )
    assert early, run.stderr[-3000:]
    assert set(early) <= {layer["digest"] for layer in manifest["layers"]}
    # the big layer went out while the builder was still compressing it: one PATCH that
    # streamed it, then the PUT naming its digest
    big = max(manifest["layers"], key=lambda layer: int(layer["size"]))["digest"]
    streamed = re.findall(r"layer (sha256:[0-9a-f]{64}) is written; it was streamed", run.stderr)
    assert big in streamed, run.stderr[-3000:]
    assert seen.matching(r'"PATCH /v2/[^ ]+/blobs/uploads/[^ ]+ HTTP/1.1" 202 '), seen.lines
    uploaded = seen.uploaded()
    assert sorted(uploaded) == sorted(set(uploaded)), "a blob was uploaded twice"
    assert set(uploaded) == {manifest["config"]["digest"]} | {
        x["digest"] for x in manifest["layers"]
    }


def test_an_image_whose_every_layer_is_known_is_mounted_whole(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    """The same build published into a second repository: the cache knows every layer,
    the builder skips them all (and then lists their uncompressed sizes), every layer is
    mounted, and only the config is uploaded."""
    context = write_build_context(tmp_path / "app", ["RUN echo same > /same"], unique=True)
    epoch = {"SOURCE_DATE_EPOCH": "1700000000"}
    first = publish(ocirel, f"{registry.host}/{unique_repo}/one", context, env=epoch)
    log = _requests(registry, f"{unique_repo}/two")
    seen = next(log)
    second = publish(ocirel, f"{registry.host}/{unique_repo}/two", context, env=epoch)
    next(log, None)
    manifest = assert_complete(registry, f"{unique_repo}/two", second["digest"])
    assert second["digest"] == first["digest"]
    assert len(seen.mounts(201)) == len(manifest["layers"]), seen.lines
    assert seen.uploaded() == [manifest["config"]["digest"]]
