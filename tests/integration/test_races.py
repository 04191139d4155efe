"""Publishers racing each other: real processes against the real registry.

RELIABILITY items 25 (same repository at once), 28 (shared image storage) and 34
(several images into one lockfile at once).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.registry import RegistryServer

pytestmark = [pytest.mark.builder, pytest.mark.slow]

PUBLISHERS = 5


@pytest.fixture(autouse=True)
def _buildah(require_engine: Callable[[str], None]) -> None:
    require_engine("buildah")


def start_publish(
    repo: str, context: Path, lockfile: Path, *extra: str, home: Path
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCIREL_")}
    env.update(HOME=str(home), SOURCE_DATE_EPOCH="1700000000")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ocirel",
            "publish",
            "--image",
            repo,
            "--backend",
            "buildah",
            "--json",
            "--max-attempts",
            "10",
            "--lockfile",
            str(lockfile),
            *extra,
            str(context),
        ],
        cwd=context,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        results.append((proc.returncode, stdout, stderr))
    return results


def file_from_image(server: RegistryServer, repo: str, digest: str, member: str) -> bytes:
    """The content of ``member`` in the image ``digest`` (searching its layers, top first)."""
    with server.client() as client:
        manifest = client.manifest(repo, digest).json()
        for layer in reversed(manifest["layers"]):
            blob = client.request("GET", f"/v2/{repo}/blobs/{layer['digest']}", repo=repo).content
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
                for info in tar.getmembers():
                    if info.name.lstrip("./") == member.lstrip("/"):
                        extracted = tar.extractfile(info)
                        assert extracted is not None
                        return extracted.read()
    raise AssertionError(f"{member} not found in {digest}")


def test_r25_r28_parallel_publishers_never_share_a_tag(
    registry: RegistryServer, unique_repo: str, build_context: Callable[..., Path], tmp_path: Path
) -> None:
    repo = f"{registry.host}/{unique_repo}"
    contexts = [
        build_context("ARG WHO\nRUN echo $WHO > /who", files={"marker": f"{i}\n".encode()})
        for i in range(PUBLISHERS)
    ]
    procs = [
        start_publish(
            repo,
            ctx,
            tmp_path / f"lock-{i}.json",
            "--build-arg",
            f"WHO=publisher-{i}",
            home=tmp_path / f"home-{i}",
        )
        for i, ctx in enumerate(contexts)
    ]
    results = finish(procs)
    reported: dict[str, str] = {}
    for index, (code, stdout, stderr) in enumerate(results):
        assert code in (0, 4), f"publisher {index} exit {code}\n{stderr}"
        if code == 4:
            assert "raced" in stderr or "already exists" in stderr, stderr
            continue
        result = json.loads(stdout)
        assert result["tag"] not in reported, f"two publishers reported {result['tag']}"
        reported[result["tag"]] = result["digest"]
        # what the registry serves under that tag is what this run built and recorded
        with registry.client() as client:
            assert client.manifest_digest(unique_repo, result["tag"]) == result["digest"]
        lock = json.loads((tmp_path / f"lock-{index}.json").read_text())
        assert next(iter(lock["images"].values()))["digest"] == result["digest"]
        # item 28: the image pushed is this run's own build, not a neighbour's
        who = file_from_image(registry, unique_repo, result["digest"], "/who")
        assert who == f"publisher-{index}\n".encode()
    assert len(reported) == PUBLISHERS, "every publisher should succeed within 10 attempts"
    # all of them list an empty repository while building, so all start from v1: the
    # race path (claim lost, next version) must have been taken
    assert sum(stderr.count("trying the next version") for _, _, stderr in results) >= 1
    with registry.client() as client:
        assert sorted(client.tags(unique_repo)) == sorted(reported)
    assert sorted(reported) == [f"v{i}" for i in range(1, PUBLISHERS + 1)]


def test_r34_several_images_published_in_parallel_into_one_lockfile(
    registry: RegistryServer, unique_repo: str, build_context: Callable[..., Path], tmp_path: Path
) -> None:
    lockfile = tmp_path / "ocirel.lock.json"
    procs = [
        start_publish(
            f"{registry.host}/{unique_repo}-{i}",
            build_context(unique=True),
            lockfile,
            "--name",
            f"app-{i}",
            home=tmp_path / f"home-{i}",
        )
        for i in range(PUBLISHERS)
    ]
    results = finish(procs)
    for code, _stdout, stderr in results:
        assert code == 0, stderr
    lock = json.loads(lockfile.read_text())
    assert sorted(lock["images"]) == sorted(f"app-{i}" for i in range(PUBLISHERS))
    for (_code, stdout, _stderr), name in zip(results, sorted(lock["images"]), strict=True):
        result = json.loads(stdout)
        assert lock["images"][result["name"]]["digest"] == result["digest"], name
    assert not list(tmp_path.glob(".ocirel.lock.json.*.tmp"))
