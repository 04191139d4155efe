"""One body per behaviour, run with every builder: buildah, podman and docker.

Each publishes to a real distribution registry; the lockfile digest must be what the
registry serves. A missing builder (for docker: a daemon this user cannot reach)
skips locally and fails under ``--require-engines``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import OcirelRunner, Run
from tests.support.localimages import local_image_names, storage_args
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder

BUILDERS = ("buildah", "podman", "docker")
LOCAL_PREFIX = "localhost/ocirel-build/"


@pytest.fixture(params=BUILDERS)
def builder(request: pytest.FixtureRequest, require_engine: Callable[[str], None]) -> str:
    name: str = request.param
    require_engine(name)
    return name


def publish(ocirel: OcirelRunner, builder: str, repo: str, context: Path, *extra: str,
            env: dict[str, str] | None = None) -> Run:  # fmt: skip
    return ocirel("publish", "--image", repo, "--backend", builder, "--json", *extra,
                  str(context), cwd=context, env=env, timeout=600)  # fmt: skip


def remote_config(registry: RegistryServer, repo: str, digest: str) -> dict[str, Any]:
    with registry.client() as client:
        manifest = client.manifest(repo, digest).json()
        blob = client.request("GET", f"/v2/{repo}/blobs/{manifest['config']['digest']}", repo=repo)
        config: dict[str, Any] = blob.json()
        return config


def test_publish_records_the_digest_the_registry_serves(
    builder: str, ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str,
    build_context: Callable[..., Path],
) -> None:  # fmt: skip
    context = build_context(f"RUN echo {builder} > /builder.txt", unique=True)
    repo = f"{registry.host}/{unique_repo}"
    name = unique_repo.rsplit("/", 1)[-1]

    run = publish(ocirel, builder, repo, context)
    assert run.returncode == 0, run.explain()
    result = run.json
    assert (result["backend"], result["tag"]) == (builder, "v1"), run.explain()
    lock = json.loads((context / "ocirel.lock.json").read_text())
    entry = lock["images"][name]
    with registry.client() as client:
        served = client.manifest_digest(unique_repo, "v1")
    assert served is not None
    assert served == entry["digest"] == result["digest"], run.explain()
    assert entry["reference"] == f"{repo}:v1@{served}"
    assert entry["platforms"] == {"linux/amd64": served}
    config = remote_config(registry, unique_repo, served)
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == "v1"

    # a changed build gets the next version; v1 stays where it was
    (context / "Containerfile").write_text(
        (context / "Containerfile").read_text() + "RUN echo second > /second.txt\n"
    )
    second = publish(ocirel, builder, repo, context)
    assert second.returncode == 0, second.explain()
    assert second.json["tag"] == "v2", second.explain()
    lock = json.loads((context / "ocirel.lock.json").read_text())
    with registry.client() as client:
        assert client.manifest_digest(unique_repo, "v2") == lock["images"][name]["digest"]
        assert client.manifest_digest(unique_repo, "v1") == served
    if builder == "docker":
        assert "classic builder" in run.stderr or "buildx" in run.stderr, run.explain()


def test_local_image_is_removed_after_publish_unless_kept(
    builder: str, ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str,
    build_context: Callable[..., Path],
) -> None:  # fmt: skip
    repo = f"{registry.host}/{unique_repo}"
    ours = LOCAL_PREFIX + unique_repo.rsplit("/", 1)[-1] + ":"

    def leftovers() -> list[str]:
        # this run's unique local name, and (docker) the tag it pushed from
        return [n for n in local_image_names(builder) if n.startswith((ours, repo + ":"))]

    run = publish(ocirel, builder, repo, build_context(unique=True))
    assert run.returncode == 0, run.explain()
    assert leftovers() == [], run.explain()

    kept = publish(ocirel, builder, repo, build_context("RUN echo kept > /kept", unique=True),
                   "--keep-image")  # fmt: skip
    assert kept.returncode == 0, kept.explain()
    names = leftovers()
    try:
        mine = [n for n in names if n.startswith(ours)]
        assert mine, (names, kept.explain())
        if builder == "docker":  # the image ID is the config digest the registry serves
            image_id = subprocess.run(
                ["docker", "image", "inspect", "--format", "{{.Id}}", mine[0]],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout.strip()  # fmt: skip
            with registry.client() as client:
                manifest = client.manifest(unique_repo, kept.json["digest"]).json()
            assert manifest["config"]["digest"] == image_id
    finally:
        if names:
            subprocess.run([builder, *storage_args(builder), "rmi", *names],
                           capture_output=True, timeout=120, check=False)  # fmt: skip


def test_credentials_reach_the_builder_without_argv(
    builder: str, ocirel: OcirelRunner, token_registry: RegistryServer, unique_repo: str,
    build_context: Callable[..., Path],
) -> None:  # fmt: skip
    """Credentials only in OCIREL_USERNAME/OCIREL_PASSWORD: docker must get them through a
    private DOCKER_CONFIG (it knows no other way), the others through ocirel's upload."""
    server = token_registry
    assert server.credentials is not None
    user, password = server.credentials
    context = build_context(unique=True)
    env = {"OCIREL_USERNAME": user, "OCIREL_PASSWORD": password}
    run = publish(ocirel, builder, f"{server.host}/{unique_repo}", context, env=env)
    assert run.returncode == 0, run.explain()
    assert password not in run.stdout + run.stderr
    with server.client() as client:
        assert client.manifest_digest(unique_repo, "v1") == run.json["digest"]


def test_auto_takes_the_first_usable_builder_and_says_why(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str,
    build_context: Callable[..., Path], require_engine: Callable[[str], None], tmp_path: Path,
) -> None:  # fmt: skip
    """With only docker on PATH, ``auto`` passes over buildah and podman and says so."""
    require_engine("docker")
    docker = shutil.which("docker")
    assert docker is not None
    bindir = tmp_path / "only-docker"
    bindir.mkdir()
    (bindir / "docker").symlink_to(docker)
    context = build_context(unique=True)
    run = ocirel("publish", "--image", f"{registry.host}/{unique_repo}", "--json", str(context),
                 cwd=context, env={"PATH": str(bindir)}, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.explain()
    assert run.json["backend"] == "docker"
    assert "backend: docker (auto: buildah: buildah is not installed" in run.stderr, run.explain()
    assert "podman: podman is not installed" in run.stderr, run.explain()


def test_unchanged_content_reuses_the_version(
    builder: str, ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str,
    build_context: Callable[..., Path],
) -> None:  # fmt: skip
    """The builder shows the local image's config, so a rebuild of the same content is
    recognised before any push (docker included: its config must match what it pushed)."""
    context = build_context(unique=True)
    repo = f"{registry.host}/{unique_repo}"
    first = publish(ocirel, builder, repo, context)
    assert first.returncode == 0, first.explain()
    again = publish(ocirel, builder, repo, context)
    assert again.returncode == 0, again.explain()
    assert again.json["unchanged"] is True, again.explain()
    assert (again.json["tag"], again.json["digest"]) == ("v1", first.json["digest"])
    with registry.client() as client:
        assert client.tags(unique_repo) == ["v1"]
