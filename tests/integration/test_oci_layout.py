"""``ocirel publish --image oci:PATH``: an OCI image layout as the destination, with
real buildah; the layout read back by skopeo, and imported into a real registry."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import OcirelRunner
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder


@pytest.fixture(autouse=True)
def _buildah(require_engine: Callable[[str], None]) -> None:
    require_engine("buildah")


def publish(ocirel: OcirelRunner, layout: Path, context: Path, *extra: str) -> dict[str, Any]:
    run = ocirel(
        "publish", "--image", f"oci:{layout}", "--backend", "buildah", "--json", *extra,
        str(context), cwd=context, env={"SOURCE_DATE_EPOCH": "1700000000"},
    )  # fmt: skip
    assert run.returncode == 0, run.explain()
    result: dict[str, Any] = run.json
    return result


def index_tags(layout: Path) -> dict[str, str]:
    """ref.name → digest, from the layout's index.json."""
    index = json.loads((layout / "index.json").read_text())
    return {
        item["annotations"]["org.opencontainers.image.ref.name"]: item["digest"]
        for item in index["manifests"]
    }


def assert_valid_layout(layout: Path) -> None:
    """oci-layout, index.json schemaVersion 2, every blob hashing to its name, and every
    blob a manifest names present with its size."""
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert not list(layout.glob(".ocirel-export-*")), "the private export was left behind"
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    blobs = layout / "blobs" / "sha256"
    for blob in blobs.iterdir():
        assert not blob.name.startswith("."), f"a temporary file was left: {blob}"
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    for item in index["manifests"]:
        body = (blobs / item["digest"].removeprefix("sha256:")).read_bytes()
        assert len(body) == item["size"]
        manifest = json.loads(body)
        for child in [manifest["config"], *manifest["layers"]]:
            path = blobs / child["digest"].removeprefix("sha256:")
            assert path.stat().st_size == child["size"]


def skopeo_digest(layout: Path, tag: str) -> str:
    proc = subprocess.run(
        ["skopeo", "inspect", f"oci:{layout}:{tag}"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    digest: str = json.loads(proc.stdout)["Digest"]
    return digest


def test_publishing_into_a_layout_twice_gives_v1_then_v2(
    ocirel: OcirelRunner,
    build_context: Callable[..., Path],
    tmp_path: Path,
    require_engine: Callable[[str], None],
) -> None:
    require_engine("skopeo")
    layout = tmp_path / "out" / "layout"
    context = build_context("RUN echo one > /version.txt")
    first = publish(ocirel, layout, context)
    assert (first["tag"], first["repository"]) == ("v1", f"oci:{layout}")
    (context / "Containerfile").write_text(
        (context / "Containerfile").read_text() + "RUN echo two > /version.txt\n"
    )
    second = publish(ocirel, layout, context)
    assert second["tag"] == "v2"
    assert second["digest"] != first["digest"]
    assert index_tags(layout) == {"v1": first["digest"], "v2": second["digest"]}
    assert_valid_layout(layout)
    assert skopeo_digest(layout, "v2") == second["digest"]
    assert skopeo_digest(layout, "v1") == first["digest"]
    lock = json.loads((context / "ocirel.lock.json").read_text())
    entry = lock["images"]["layout"]
    assert entry["repository"] == f"oci:{layout}"
    assert (entry["tag"], entry["digest"]) == ("v2", second["digest"])
    assert entry["reference"] == f"oci:{layout}:v2@{second['digest']}"
    assert lock["issued"] == {f"oci:{layout}": "v2"}
    # the same content again: no new tag, the lockfile keeps v2
    again = publish(ocirel, layout, context)
    assert (again["tag"], again["digest"], again["unchanged"]) == ("v2", second["digest"], True)
    assert index_tags(layout) == {"v1": first["digest"], "v2": second["digest"]}
    # verify reads the layout: ok; then a tag moved by hand is drift
    verified = ocirel("verify", "--json", cwd=context)
    assert verified.returncode == 0, verified.explain()
    assert [c["status"] for c in verified.json["entries"]] == ["ok"]


def test_two_concurrent_publishes_into_one_layout_get_two_tags(
    build_context: Callable[..., Path], tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    procs = []
    for i in range(2):
        context = build_context("ARG WHO\nRUN echo $WHO > /who", unique=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCIREL_")}
        env.update(HOME=str(tmp_path / f"home-{i}"), SOURCE_DATE_EPOCH="1700000000")
        argv = [
            sys.executable, "-m", "ocirel", "publish", "--image", f"oci:{layout}",
            "--backend", "buildah", "--json", "--build-arg", f"WHO=publisher-{i}",
            "--lockfile", str(tmp_path / f"lock-{i}.json"), str(context),
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                argv,
                cwd=context,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout))
    assert sorted(r["tag"] for r in results) == ["v1", "v2"]
    assert index_tags(layout) == {r["tag"]: r["digest"] for r in results}
    assert_valid_layout(layout)


def test_a_published_layout_imports_into_a_registry(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
    tmp_path: Path,
) -> None:
    layout = tmp_path / "layout"
    context = build_context("RUN echo one > /version.txt")
    first = publish(ocirel, layout, context, "--name", "app")
    (context / "Containerfile").write_text(
        (context / "Containerfile").read_text() + "RUN echo two > /version.txt\n"
    )
    second = publish(ocirel, layout, context, "--name", "app")
    target = tmp_path / "target"
    target.mkdir()
    run = ocirel(
        "bundle", "import", str(layout), "--to", f"{registry.host}/{unique_repo}", "--json",
        cwd=target,
    )  # fmt: skip
    assert run.returncode == 0, run.explain()
    with registry.client() as client:
        repo = f"{unique_repo}/app"
        assert sorted(client.tags(repo)) == ["v1", "v2"]
        assert client.manifest_digest(repo, "v1") == first["digest"]
        assert client.manifest_digest(repo, "v2") == second["digest"]
    lock = json.loads((target / "ocirel.lock.json").read_text())
    entry = lock["images"]["app"]
    assert entry["repository"] == f"{registry.host}/{unique_repo}/app"
    assert (entry["tag"], entry["digest"]) == ("v2", second["digest"])
    verified = ocirel("verify", "--json", cwd=target)
    assert verified.returncode == 0, verified.explain()
