"""``bundle export --with-bases`` / ``import`` against real distribution registries.

Registry A (plain HTTP) holds the released image ``app:v1`` and two base images: one
a Containerfile names by tag through an ARG default, one by digest only. The bundle is
imported into registry B (TLS with a private CA and Basic auth) after A is stopped.
Images are seeded through the registry API, no builder.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

from ocirel import lockfile
from ocirel.bundle.bases import derived_tag
from ocirel.cli.wiring import make_registry
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from ocirel.records.record import BuildFacts, build_record
from ocirel.records.referrers import attach
from ocirel.reference import parse_repository
from ocirel.settings import RegistryOptions
from tests.integration.conftest import OcirelRunner
from tests.integration.test_bundle import cli, target_env
from tests.support.client import RandomImage, RegistryClient, sha256_digest
from tests.support.registry import RegistryServer


def push(client: RegistryClient, repo: str, tag: str, size: int) -> RandomImage:
    image = RandomImage.create(size)
    client.upload_blob(repo, image.config)
    client.upload_blob(repo, image.layer)
    assert client.put_manifest(repo, tag, image.manifest) == image.digest
    return image


def blob(client: RegistryClient, repo: str, digest: str) -> bytes:
    response = client.request("GET", f"/v2/{repo}/blobs/{digest}", repo=repo)
    if response.status_code in (301, 302, 307):
        response = client.request("GET", response.headers["Location"], repo=repo)
    response.raise_for_status()
    return response.content


def seed(server: RegistryServer, unique: str, src: Path) -> tuple[RandomImage, RandomImage]:
    """``app:v1`` in the lockfile; ``base/os:3.19`` and ``tools`` (by digest) as bases."""
    with server.client() as client:
        app = push(client, f"{unique}/app", "v1", 1500)
        base = push(client, f"{unique}/base/os", "3.19", 2500)
        tools = push(client, f"{unique}/tools", "old", 700)
    entry = LockEntry("app", f"{server.host}/{unique}/app", "v1", Digest(app.digest))
    src.mkdir()
    (src / "ocirel.lock.json").write_text(lockfile.dumps(Lockfile({"app": entry})), "utf-8")
    (src / "Containerfile").write_text(
        f"ARG BASE={server.host}/{unique}/base/os:3.19\n"
        "FROM ${BASE} AS build\n"
        f"COPY --from={server.host}/{unique}/tools@{tools.digest} /bin/tool /bin/tool\n"
        "FROM scratch\n"
        "COPY --from=build /bin/tool /tool\n",
        "utf-8",
    )
    return base, tools


def test_bases_named_in_a_containerfile_are_mirrored_under_the_prefix(
    ocirel: OcirelRunner, registry_factory: Callable[..., RegistryServer],
    tls_basic_registry: RegistryServer, unique_repo: str, tmp_path: Path,
) -> None:  # fmt: skip
    source = registry_factory()
    base, tools = seed(source, unique_repo, tmp_path / "src")
    run = cli(
        ocirel, "bundle", "export", "--with-bases", "--file", "Containerfile",
        "-o", str(tmp_path / "layout"), "--json", cwd=tmp_path / "src",
    )  # fmt: skip
    assert "exported 1 image(s) and 2 base image(s), 6 blob(s)" in run.stderr, run.explain()
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    roles = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["annotations"].get(
            "org.ocirel.bundle.role"
        )
        for m in index["manifests"]
    }
    assert roles == {
        f"{source.host}/{unique_repo}/app:v1": None,
        f"{source.host}/{unique_repo}/base/os:3.19": "base",
        f"{source.host}/{unique_repo}/tools@{tools.digest}": "base",
    }
    bundled = lockfile.load(tmp_path / "layout" / "ocirel.lock.json")
    assert set(bundled.entries) == {"app"}
    source.stop()  # the air gap

    target, dest, prefix = tls_basic_registry, tmp_path / "dest", f"{unique_repo}-air"
    dest.mkdir()
    imported = cli(
        ocirel, "bundle", "import", str(tmp_path / "layout"), "--to", f"{target.host}/{prefix}",
        "--ca-file", str(target.ca_file), "--json", cwd=dest, env=target_env(target),
    )  # fmt: skip
    assert "6 blob(s), 6 uploaded" in imported.stderr
    with target.client() as client:
        for image, repo, tag in (
            (base, f"{prefix}/{unique_repo}/base/os", "3.19"),
            (tools, f"{prefix}/{unique_repo}/tools", derived_tag(tools.digest)),
        ):
            assert client.manifest_digest(repo, tag) == image.digest
            assert client.manifest(repo, image.digest).content == image.manifest
            assert blob(client, repo, sha256_digest(image.layer)) == image.layer
            assert blob(client, repo, sha256_digest(image.config)) == image.config
    written = lockfile.load(dest / "ocirel.lock.json")
    assert set(written.entries) == {"app"}  # no base entry
    assert written.entries["app"].repository == f"{target.host}/{prefix}/{unique_repo}/app"

    conf = tomllib.loads(imported.json["registriesConf"])
    assert conf["registry"] == [
        {"location": source.host, "mirror": [{"location": f"{target.host}/{prefix}"}]}
    ]
    stderr_block = imported.stderr.split("registries.conf.d/):\n", 1)[1].split("\nor, ")[0]
    assert tomllib.loads(stderr_block) == conf  # the printed block parses the same
    mirrored = f"{target.host}/{prefix}/{unique_repo}/base/os:3.19@{base.digest}"
    assert f"--build-arg BASE={mirrored}" in imported.json["buildArgs"]
    assert f"  --build-arg BASE={mirrored}" in imported.stderr
    assert imported.json["bases"][f"{source.host}/{unique_repo}/base/os:3.19"] == mirrored


def test_a_build_record_names_the_bases_before_any_containerfile(
    ocirel: OcirelRunner, registry_factory: Callable[..., RegistryServer],
    unique_repo: str, tmp_path: Path,
) -> None:  # fmt: skip
    source = registry_factory()
    base, _ = seed(source, unique_repo, tmp_path / "src")
    registry = make_registry(RegistryOptions(retries=0), parse_repository(f"{source.host}/x"))
    entry = lockfile.load(tmp_path / "src" / "ocirel.lock.json").entries["app"]
    record = build_record(
        entry, BuildFacts(base_images={f"{source.host}/{unique_repo}/base/os:3.19": base.digest})
    )
    attach(registry, parse_repository(entry.repository), entry.digest, record)
    run = cli(
        ocirel, "bundle", "export", "--with-bases", "--file", "Containerfile", "--json",
        "-o", str(tmp_path / "layout"), cwd=tmp_path / "src",
    )  # fmt: skip
    # the record's one base; the Containerfile (which also names tools) is not read
    assert run.json["bases"] == [f"{source.host}/{unique_repo}/base/os:3.19"]
    assert run.json["blobs"] == 4
