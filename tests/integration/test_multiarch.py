"""``ocirel publish --platform linux/amd64,linux/arm64`` end to end: real buildah, real
distribution registry, no emulator (a COPY-only ``FROM scratch`` image needs none)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocirel import emulation
from ocirel.oci import OCI_INDEX, OCI_MANIFEST
from tests.integration.conftest import OcirelRunner, Run
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder

PLATFORMS = "linux/amd64,linux/arm64"


@pytest.fixture(autouse=True)
def _buildah(require_engine: Callable[[str], None]) -> None:
    require_engine("buildah")


def copy_only_context(root: Path, text: str = "hello") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.txt").write_text(text + "\n", encoding="utf-8")
    (root / "Containerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    return root


def publish(ocirel: OcirelRunner, repo: str, context: Path, *extra: str, code: int = 0) -> Run:
    run = ocirel(
        "publish", "--image", repo, "--backend", "buildah", "--platform", PLATFORMS,
        "--no-attach", "--json", *extra, str(context), cwd=context,
    )  # fmt: skip
    assert run.returncode == code, run.explain()
    return run


def get(registry: RegistryServer, repo: str, ref: str, accept: str) -> tuple[bytes, str]:
    """The body and Content-Type of a manifest GET that accepts only ``accept``."""
    with registry.client() as client:
        reply = client.request(
            "GET", f"/v2/{repo}/manifests/{ref}", repo=repo, headers={"Accept": accept}
        )
        reply.raise_for_status()
        return reply.content, reply.headers["Content-Type"]


def sha256(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def entry_of(context: Path) -> dict[str, Any]:
    lock = json.loads((context / "ocirel.lock.json").read_text())
    (entry,) = lock["images"].values()
    assert isinstance(entry, dict)
    return entry


def test_two_platforms_are_published_as_one_index_and_pinned_by_it(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    context = copy_only_context(tmp_path / "app")
    repo = f"{registry.host}/{unique_repo}"
    result = publish(ocirel, repo, context).json
    entry = entry_of(context)
    assert result["tag"] == entry["tag"] == "v1"

    body, served_as = get(registry, unique_repo, "v1", OCI_INDEX)
    assert served_as == OCI_INDEX
    assert entry["digest"] == result["digest"] == sha256(body)  # the index, by its bytes
    assert entry["mediaType"] == OCI_INDEX
    index = json.loads(body)
    listed = {
        f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
        for m in index["manifests"]
    }
    assert entry["platforms"] == result["platforms"] == listed
    assert sorted(listed) == ["linux/amd64", "linux/arm64"]
    assert len(set(listed.values())) == 2
    for platform, digest in listed.items():  # each platform's manifest resolves, as itself
        manifest, _ = get(registry, unique_repo, digest, OCI_MANIFEST)
        assert sha256(manifest) == digest
        config_digest = json.loads(manifest)["config"]["digest"]
        with registry.client() as client:
            config = client.request(
                "GET", f"/v2/{unique_repo}/blobs/{config_digest}", repo=unique_repo
            ).json()
        assert f"{config['os']}/{config['architecture']}" == platform
        assert config["config"]["Labels"]["org.opencontainers.image.version"] == "v1"

    # a Deployment pinned from the lockfile references the index
    deploy = tmp_path / "k8s" / "deployment.yaml"
    deploy.parent.mkdir()
    deploy.write_text(DEPLOYMENT.format(image=f"{repo}:v1"))
    run = ocirel("pin", str(deploy), cwd=context)
    assert run.returncode == 0, run.explain()
    assert f"image: {repo}:v1@{entry['digest']}" in deploy.read_text()

    # verify: the index is intact; a manifest pinned to one platform is warned about
    run = ocirel("verify", str(deploy), cwd=context)
    assert run.returncode == 0, run.explain()
    assert "warning" not in run.stderr
    arm64 = listed["linux/arm64"]
    deploy.write_text(DEPLOYMENT.format(image=f"{repo}@{arm64}"))
    run = ocirel("verify", "--json", str(deploy), cwd=context)
    assert run.returncode == 0, run.explain()
    assert f"pins {arm64} (linux/arm64 only)" in run.stderr
    assert f"the lockfile has the index {entry['digest']}" in run.stderr
    assert run.json["platform_pins"][0]["digest"] == arm64

    # show names both platforms of the index
    run = ocirel("show", "--json", f"{repo}:v1", cwd=context)
    assert run.returncode == 0, run.explain()
    assert run.json["digest"] == entry["digest"]
    assert sorted(run.json["platforms"]) == ["linux/amd64", "linux/arm64"]


def test_an_unchanged_republish_reuses_the_index_and_a_change_makes_v2(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    """The unchanged check compares platform by platform with the latest index."""
    context = copy_only_context(tmp_path / "app")
    repo = f"{registry.host}/{unique_repo}"
    first = publish(ocirel, repo, context).json
    again = publish(ocirel, repo, context).json
    assert again["unchanged"] is True
    assert (again["tag"], again["digest"], again["platforms"]) == (
        "v1", first["digest"], first["platforms"],
    )  # fmt: skip
    assert entry_of(context)["mediaType"] == OCI_INDEX
    copy_only_context(context, "changed")
    second = publish(ocirel, repo, context).json
    assert second["tag"] == "v2"
    assert second["digest"] != first["digest"]
    body, _ = get(registry, unique_repo, "v2", OCI_INDEX)
    assert sha256(body) == second["digest"]
    with registry.client() as client:
        assert sorted(client.tags(unique_repo)) == ["v1", "v2"]


def test_a_bundle_carries_every_platform_of_a_published_index(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    registry_factory: Callable[..., RegistryServer],
    unique_repo: str,
    tmp_path: Path,
) -> None:
    context = copy_only_context(tmp_path / "app")
    publish(ocirel, f"{registry.host}/{unique_repo}", context)
    entry = entry_of(context)
    bundle = tmp_path / "bundle"
    run = ocirel("bundle", "export", "-o", str(bundle), cwd=context)
    assert run.returncode == 0, run.explain()
    blobs = {p.name for p in (bundle / "blobs" / "sha256").iterdir()}
    wanted = [entry["digest"], *entry["platforms"].values()]
    assert {d.removeprefix("sha256:") for d in wanted} <= blobs

    target = registry_factory()
    imported = tmp_path / "imported"
    imported.mkdir()
    run = ocirel("bundle", "import", str(bundle), "--to", f"{target.host}/mirror", cwd=imported)
    assert run.returncode == 0, run.explain()
    (new,) = json.loads((imported / "ocirel.lock.json").read_text())["images"].values()
    assert (new["digest"], new["platforms"]) == (entry["digest"], entry["platforms"])
    assert new["mediaType"] == OCI_INDEX
    mirrored = f"mirror/{unique_repo}"
    body, _ = get(target, mirrored, entry["tag"], OCI_INDEX)
    assert sha256(body) == entry["digest"]
    for digest in entry["platforms"].values():
        manifest, _ = get(target, mirrored, digest, OCI_MANIFEST)
        assert sha256(manifest) == digest


def test_one_platform_publishes_that_platform_image_even_after_a_cached_other_one(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    """A single ``--platform`` is a plain image of that platform; the host platform's
    build of the same COPY step, cached just before, must not be taken for it."""
    context = copy_only_context(tmp_path / "app", unique_repo)  # a step no build cached
    repo = f"{registry.host}/{unique_repo}"
    host = emulation.host_platform()
    foreign = "linux/arm64" if host != "linux/arm64" else "linux/amd64"
    for platform in (host, foreign):
        run = ocirel(
            "publish", "--image", repo, "--backend", "buildah", "--platform", platform,
            "--always-new-version", "--no-attach", "--json", str(context), cwd=context,
        )  # fmt: skip
        assert run.returncode == 0, run.explain()
        assert list(run.json["platforms"]) == [platform]
        body, served_as = get(registry, unique_repo, run.json["tag"], OCI_MANIFEST)
        assert served_as == OCI_MANIFEST
        assert sha256(body) == run.json["digest"] == run.json["platforms"][platform]


@pytest.mark.skipif(
    emulation.emulation("linux/arm64").available,
    reason="qemu-user for arm64 is registered here: the build would run",
)
def test_a_foreign_run_step_without_an_emulator_fails_before_building(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    context = copy_only_context(tmp_path / "app")
    (context / "Containerfile").write_text('FROM scratch\nCOPY hello.txt /x\nRUN ["/x"]\n')
    run = publish(ocirel, f"{registry.host}/{unique_repo}", context, code=1)
    assert "RUN steps (stage 0)" in run.stderr
    assert "linux/arm64" in run.stderr
    assert "qemu-user" in run.stderr
    assert "ocirel doctor" in run.stderr
    assert "building for" not in run.stderr  # nothing was built
    assert not (context / "ocirel.lock.json").exists()
    with registry.client() as client:
        assert client.tags(unique_repo) == []


def test_docker_refuses_several_platforms_with_a_clear_error(
    ocirel: OcirelRunner, unique_repo: str, tmp_path: Path
) -> None:
    context = copy_only_context(tmp_path / "app")
    run = ocirel(
        "publish", "--image", f"localhost:1/{unique_repo}", "--backend", "docker",
        "--platform", PLATFORMS, str(context), cwd=context,
    )  # fmt: skip
    if "not usable" in run.stderr:
        pytest.skip("no Docker engine here: the refusal is covered by the unit test")
    assert run.returncode == 2, run.explain()
    assert "docker cannot publish a multi-platform image" in run.stderr


def test_doctor_reports_emulation_per_platform(ocirel: OcirelRunner, tmp_path: Path) -> None:
    run = ocirel("doctor", "--json", cwd=tmp_path, env={"OCIREL_PLATFORM": PLATFORMS})
    states = {e["platform"]: e for e in run.json["emulation"]}
    host = emulation.host_platform()
    assert states[host]["native"] is True
    arm64 = emulation.emulation("linux/arm64")
    assert states["linux/arm64"]["available"] is arm64.available
    assert run.json["platforms"] == ["linux/amd64", "linux/arm64"]
    if not arm64.available and host != "linux/arm64":
        assert any("RUN steps for linux/arm64" in p["message"] for p in run.json["problems"])


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      containers:
        - name: app
          image: {image}
"""
