"""``ocirel publish`` end to end: real buildah, real distribution registry."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import OcirelRunner
from tests.support.images import FAILING_RUN
from tests.support.localimages import local_image_names, storage_args
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder


@pytest.fixture(autouse=True)
def _buildah(require_engine: Callable[[str], None]) -> None:
    require_engine("buildah")


def publish(
    ocirel: OcirelRunner, repo: str, context: Path, *extra: str, **kw: object
) -> dict[str, Any]:
    run = ocirel(
        "publish",
        "--image",
        repo,
        "--backend",
        "buildah",
        "--json",
        *extra,
        str(context),
        cwd=context,
        **kw,
    )
    assert run.returncode == 0, run.explain()
    result: dict[str, Any] = run.json
    return result


def test_publish_twice_gives_two_tags_and_the_first_is_untouched(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context("RUN echo one > /version.txt")
    repo = f"{registry.host}/{unique_repo}"
    first = publish(ocirel, repo, context)
    assert first["tag"] == "v1"
    with registry.client() as client:
        assert client.manifest_digest(unique_repo, "v1") == first["digest"]

    (context / "Containerfile").write_text(
        (context / "Containerfile").read_text() + "RUN echo two > /version.txt\n"
    )
    second = publish(ocirel, repo, context)
    assert second["tag"] == "v2"
    assert second["digest"] != first["digest"]
    assert second["reference"] == f"{repo}:v2@{second['digest']}"

    lock = json.loads((context / "ocirel.lock.json").read_text())
    entry = lock["images"][unique_repo.rsplit("/", 1)[-1]]
    with registry.client() as client:
        assert client.manifest_digest(unique_repo, "v2") == entry["digest"] == second["digest"]
        assert client.manifest_digest(unique_repo, "v1") == first["digest"]  # never touched
        assert sorted(client.tags(unique_repo)) == ["v1", "v2"]
    assert entry["tag"] == "v2"
    assert entry["platforms"] == {"linux/amd64": second["digest"]}


def test_pushed_image_carries_oci_labels(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    result = publish(ocirel, f"{registry.host}/{unique_repo}", context)
    with registry.client() as client:
        manifest = client.manifest(unique_repo, result["digest"]).json()
        config = client.request(
            "GET", f"/v2/{unique_repo}/blobs/{manifest['config']['digest']}", repo=unique_repo
        ).json()
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == result["tag"]


def test_foreign_tags_do_not_break_versioning(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    with registry.client() as client:
        seeded = client.push_random_image(unique_repo, "v3")
        client.tag_manifest(unique_repo, seeded, "latest")
        client.tag_manifest(unique_repo, seeded, "sha256-" + "ab" * 32 + ".sig")
        client.tag_manifest(unique_repo, seeded, "feature-x")
    result = publish(ocirel, f"{registry.host}/{unique_repo}", build_context(unique=True))
    assert result["tag"] == "v4"
    with registry.client() as client:
        assert client.manifest_digest(unique_repo, "latest") == seeded  # untouched


def test_failing_run_step_pushes_nothing_and_keeps_the_lockfile(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(FAILING_RUN)
    lockfile = context / "ocirel.lock.json"
    before = '{\n  "images": {},\n  "schema": 1\n}\n'
    lockfile.write_text(before)
    run = ocirel("publish", "--image", f"{registry.host}/{unique_repo}", str(context), cwd=context)
    assert run.returncode != 0, run.explain()
    assert "build failed" in run.stderr, run.explain()
    assert lockfile.read_text() == before
    with registry.client() as client:
        assert client.tags(unique_repo) == []


def test_explicit_tag_must_be_new_and_not_floating(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    repo = f"{registry.host}/{unique_repo}"
    floating = ocirel("publish", "--image", repo, "--tag", "latest", str(context), cwd=context)
    assert floating.returncode != 0, floating.explain()
    assert "floating" in floating.stderr, floating.explain()
    result = publish(ocirel, repo, context, "--tag", "2024-rc1")
    assert result["tag"] == "2024-rc1"
    # the lockfile that recorded it refuses the tag before anything is built ...
    again = ocirel("publish", "--image", repo, "--tag", "2024-rc1", str(context), cwd=context)
    assert again.returncode != 0, again.explain()
    assert "already issued" in again.stderr, again.explain()
    # ... and without that lockfile, the registry's tag list does
    elsewhere = context.parent / "elsewhere.lock.json"
    again = ocirel(
        "publish", "--image", repo, "--tag", "2024-rc1", "--lockfile", str(elsewhere),
        str(context), cwd=context,
    )  # fmt: skip
    assert again.returncode != 0, again.explain()
    assert "already exists" in again.stderr, again.explain()
    assert not elsewhere.exists()
    with registry.client() as client:
        assert client.manifest_digest(unique_repo, "2024-rc1") == result["digest"]


def test_dry_run_builds_and_pushes_nothing(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    run = ocirel(
        "publish",
        "--image",
        f"{registry.host}/{unique_repo}",
        "--dry-run",
        "--json",
        str(context),
        cwd=context,
    )
    assert run.returncode == 0, run.explain()
    plan = run.json
    assert plan["dry_run"] is True
    assert plan["tag"] == "v1"
    assert plan["digest"] is None
    assert any(step.startswith("buildah") and " build " in step for step in plan["plan"])
    assert not (context / "ocirel.lock.json").exists()
    with registry.client() as client:
        assert client.tags(unique_repo) == []


def test_tls_private_ca_with_basic_auth_from_docker_config(
    ocirel: OcirelRunner,
    tls_basic_registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
    tmp_path: Path,
) -> None:
    server = tls_basic_registry
    assert server.ca_file is not None
    assert server.password is not None
    docker_dir = tmp_path / "docker"
    server.docker_config(docker_dir)
    context = build_context(unique=True)
    repo = f"{server.host}/{unique_repo}"
    env = {"DOCKER_CONFIG": str(docker_dir)}

    no_ca = ocirel("publish", "--image", repo, str(context), cwd=context, env=env)
    assert no_ca.returncode != 0, no_ca.explain()
    assert "--ca-file" in no_ca.stderr, no_ca.explain()

    result = publish(ocirel, repo, context, "--ca-file", str(server.ca_file), env=env)
    assert result["tag"] == "v1"
    with server.client() as client:
        assert client.manifest_digest(unique_repo, "v1") == result["digest"]
    assert server.password not in json.dumps(result)
    assert server.password not in (context / "ocirel.lock.json").read_text()


def test_basic_auth_from_environment_variables(
    ocirel: OcirelRunner,
    tls_basic_registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    server = tls_basic_registry
    assert server.username
    assert server.password
    assert server.ca_file
    context = build_context(unique=True)
    env = {
        "OCIREL_USERNAME": server.username,
        "OCIREL_PASSWORD": server.password,
        "OCIREL_CA_FILE": str(server.ca_file),
    }
    run = ocirel(
        "publish", "--image", f"{server.host}/{unique_repo}", str(context), cwd=context, env=env
    )
    assert run.returncode == 0, run.explain()
    assert server.password not in run.stdout + run.stderr

    bad = dict(env, OCIREL_PASSWORD="wrong-password")
    denied = ocirel(
        "publish", "--image", f"{server.host}/{unique_repo}", str(context), cwd=context, env=bad
    )
    assert denied.returncode != 0, denied.explain()
    assert "401" in denied.stderr or "credentials" in denied.stderr, denied.explain()


def test_token_auth_with_containers_auth_json(
    ocirel: OcirelRunner,
    token_registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
    tmp_path: Path,
) -> None:
    server = token_registry
    assert server.token_server is not None
    authfile = server.containers_auth(tmp_path / "auth")
    context = build_context(unique=True)
    server.token_server.clear()
    result = publish(
        ocirel, f"{server.host}/{unique_repo}", context, env={"REGISTRY_AUTH_FILE": str(authfile)}
    )
    assert result["tag"] == "v1"
    with server.client() as client:
        assert client.manifest_digest(unique_repo, "v1") == result["digest"]
    scopes = [scope for req in server.token_server.recorded() for scope in req.scopes]
    assert f"repository:{unique_repo}:pull,push" in scopes
    assert all(req.authenticated for req in server.token_server.recorded() if req.scopes)


def test_token_auth_without_credentials_is_refused_cleanly(
    ocirel: OcirelRunner,
    token_registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    run = ocirel(
        "publish", "--image", f"{token_registry.host}/{unique_repo}", str(context), cwd=context
    )
    assert run.returncode != 0, run.explain()
    assert "Traceback" not in run.stderr
    assert "hint:" in run.stderr, run.explain()


def _local_names(prefix: str) -> list[str]:
    return [name for name in local_image_names("buildah") if name.startswith(prefix)]


def test_no_named_local_image_is_left_behind_unless_kept(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    name = unique_repo.rsplit("/", 1)[-1]
    prefix = f"localhost/ocirel-build/{name}:"
    repo = f"{registry.host}/{unique_repo}"
    context = build_context(unique=True)
    publish(ocirel, repo, context)
    failing = build_context(FAILING_RUN)
    assert ocirel("publish", "--image", repo, str(failing), cwd=failing).returncode != 0
    assert _local_names(prefix) == []

    kept = publish(ocirel, repo, build_context(unique=True), "--keep-image")
    names = _local_names(prefix)
    assert len(names) == 1, names
    subprocess.run(
        ["buildah", *storage_args("buildah"), "rmi", names[0]], check=True, capture_output=True
    )
    assert kept["tag"] == "v2"


@pytest.mark.parametrize(
    "content",
    ['{"images": {}, "schema": 99}\n', '{"images": {"app": {"repos', "not json at all\n"],
    ids=["unknown-schema", "truncated", "garbage"],
)
def test_bad_lockfile_stops_before_anything_is_built_or_pushed(
    content: str,
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    lockfile = context / "ocirel.lock.json"
    lockfile.write_text(content)
    run = ocirel("publish", "--image", f"{registry.host}/{unique_repo}", str(context), cwd=context)
    assert run.returncode == 1, run.explain()
    assert "ocirel.lock.json" in run.stderr, run.explain()
    assert "STEP" not in run.stderr, run.explain()
    assert lockfile.read_text() == content
    with registry.client() as client:
        assert client.tags(unique_repo) == []


def test_r42_deleted_tags_are_never_issued_again(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """Issue 9.4: publish v1..v3, yank v3 from the registry, publish new content: v4,
    not v3 again. Then delete every tag (distribution answers ``{"tags": null}``): v5."""
    repo = f"{registry.host}/{unique_repo}"
    lock = tmp_path / "ocirel.lock.json"
    digests = {}
    for expected in ("v1", "v2", "v3"):
        result = publish(ocirel, repo, build_context(unique=True), "--lockfile", str(lock))
        assert result["tag"] == expected
        digests[expected] = result["digest"]

    with registry.client() as client:
        client.delete_manifest(unique_repo, digests["v3"])
        assert sorted(client.tags(unique_repo)) == ["v1", "v2"]
    run = ocirel(
        "publish", "--image", repo, "--backend", "buildah", "--json", "--lockfile", str(lock),
        str(context := build_context(unique=True)), cwd=context,
    )  # fmt: skip
    assert run.returncode == 0, run.explain()
    assert run.json["tag"] == "v4"
    assert "warning:" in run.stderr, run.explain()
    assert f"{repo}:v3" in run.stderr, run.explain()
    digests["v4"] = run.json["digest"]

    with registry.client() as client:
        for tag in ("v1", "v2", "v4"):
            client.delete_manifest(unique_repo, digests[tag])
        assert client.tags(unique_repo) == []
    nxt = ocirel("next", repo, "--lockfile", str(lock))
    assert nxt.returncode == 0, nxt.explain()
    assert nxt.stdout.strip() == "v5"
    result = publish(ocirel, repo, build_context(unique=True), "--lockfile", str(lock))
    assert result["tag"] == "v5"
    data = json.loads(lock.read_text())
    assert data["issued"] == {repo: "v5"}
    assert data["images"][unique_repo.rsplit("/", 1)[-1]]["tag"] == "v5"
