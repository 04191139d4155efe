"""Reproducible builds, no new version for unchanged content, the registry layer cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import OcirelRunner, Run
from tests.support.localimages import private_storage_env
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder

EPOCH = "1700000000"


def publish(
    ocirel: OcirelRunner, repo: str, context: Path, *extra: str, env: dict[str, str] | None = None
) -> Run:
    return ocirel(
        "publish",
        "--image",
        repo,
        "--json",
        *extra,
        str(context),
        cwd=context,
        env={"SOURCE_DATE_EPOCH": EPOCH, **(env or {})},
    )


@pytest.mark.parametrize("backend", ["buildah", "podman"])
def test_same_context_twice_gives_the_same_digest(
    backend: str,
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
    tmp_path: Path,
    require_engine: Callable[[str], None],
) -> None:
    require_engine(backend)
    context = build_context("RUN echo built > /built.txt && mkdir -p /app && echo x > /app/x")
    first = publish(
        ocirel,
        f"{registry.host}/{unique_repo}-a",
        context,
        "--backend",
        backend,
        env=private_storage_env(tmp_path / "storage-a"),
    )
    assert first.returncode == 0, first.explain()
    # another storage, another moment: the same digest
    second = publish(
        ocirel,
        f"{registry.host}/{unique_repo}-b",
        context,
        "--backend",
        backend,
        env=private_storage_env(tmp_path / "storage-b"),
    )
    assert second.returncode == 0, second.explain()
    assert first.json["tag"] == second.json["tag"] == "v1"
    assert first.json["digest"] == second.json["digest"]


def test_created_label_comes_from_source_date_epoch(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    run = publish(ocirel, f"{registry.host}/{unique_repo}", context)
    assert run.returncode == 0, run.explain()
    with registry.client() as client:
        manifest = client.manifest(unique_repo, run.json["digest"]).json()
        config = client.request(
            "GET", f"/v2/{unique_repo}/blobs/{manifest['config']['digest']}", repo=unique_repo
        ).json()
    assert config["config"]["Labels"]["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert config["created"].startswith("2023-11-14T22:13:20")


def test_unchanged_content_is_not_a_new_version(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context(unique=True)
    repo = f"{registry.host}/{unique_repo}"
    first = publish(ocirel, repo, context)
    assert first.returncode == 0, first.explain()
    lockfile = context / "ocirel.lock.json"
    before = lockfile.read_bytes()

    again = publish(ocirel, repo, context)
    assert again.returncode == 0, again.explain()
    assert again.json["unchanged"] is True
    assert again.json["tag"] == "v1"
    assert again.json["digest"] == first.json["digest"]
    assert lockfile.read_bytes() == before
    with registry.client() as client:
        assert client.tags(unique_repo) == ["v1"]

    forced = publish(ocirel, repo, context, "--always-new-version")
    assert forced.returncode == 0, forced.explain()
    assert forced.json["tag"] == "v2"
    assert forced.json["unchanged"] is False


def test_a_changed_file_is_a_new_version_and_explain_says_why(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context("COPY app.txt /app.txt", files={"app.txt": b"one\n"})
    repo = f"{registry.host}/{unique_repo}"
    assert publish(ocirel, repo, context).returncode == 0

    explain = ocirel(
        "publish",
        "--image",
        repo,
        "--explain",
        str(context),
        cwd=context,
        env={"SOURCE_DATE_EPOCH": EPOCH},
    )
    assert explain.returncode == 0, explain.explain()
    assert "no new version" in explain.stdout
    assert "v1" in explain.stdout

    (context / "app.txt").write_text("two\n")
    explain = ocirel(
        "publish",
        "--image",
        repo,
        "--explain",
        str(context),
        cwd=context,
        env={"SOURCE_DATE_EPOCH": EPOCH},
    )
    assert explain.returncode == 0, explain.explain()
    assert "a new version would be pushed" in explain.stdout
    assert "differs" in explain.stdout
    with registry.client() as client:
        assert client.tags(unique_repo) == ["v1"]  # --explain pushes nothing

    changed = publish(ocirel, repo, context)
    assert changed.returncode == 0, changed.explain()
    assert changed.json["tag"] == "v2"
    assert changed.json["unchanged"] is False


def test_cache_repo_lets_a_fresh_machine_skip_an_expensive_step(
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
    tmp_path: Path,
) -> None:
    # The step records when it ran: a cache hit reuses the layer, so the stamp is the
    # first build's, and the builder says it pulled the cache.
    context = build_context("RUN sleep 2 && date +%s%N > /ran-at")
    repo = f"{registry.host}/{unique_repo}"
    cache = f"{registry.host}/{unique_repo}-cache"
    first = publish(
        ocirel,
        repo,
        context,
        "--cache-repo",
        cache,
        env=private_storage_env(tmp_path / "machine-1"),
    )
    assert first.returncode == 0, first.explain()
    second = publish(
        ocirel,
        repo,
        context,
        "--cache-repo",
        cache,
        "--always-new-version",
        env=private_storage_env(tmp_path / "machine-2"),
    )
    assert second.returncode == 0, second.explain()
    assert "Cache pulled from remote" in second.stderr, second.explain()
    with registry.client() as client:
        layers = [
            json.loads(client.manifest(unique_repo, run.json["digest"]).content)["layers"]
            for run in (first, second)
        ]
    assert layers[0] == layers[1]  # the expensive step's layer was reused, not rebuilt


# -- issue 10 item 8: the digest of a commit does not depend on the layer cache ----------

COMMIT_A = 1_700_000_000
COMMIT_B = 1_700_086_400  # a day later


def git(repo: Path, *args: str, when: int = COMMIT_A) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e.x",
        "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@e.x",
        "GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000",
    }  # fmt: skip
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


def git_publish(ocirel: OcirelRunner, repo: str, context: Path, storage: Path, *extra: str) -> Run:
    """Publish with the timestamp git gives (no SOURCE_DATE_EPOCH), on ``storage``."""
    return ocirel(
        "publish", "--image", repo, "--json", *extra, str(context),
        cwd=context, env=private_storage_env(storage),
    )  # fmt: skip


@pytest.fixture
def monorepo(tmp_path: Path, build_context: Callable[..., Path]) -> tuple[Path, Path]:
    """A git repository with the build context in ``app/`` (committed at COMMIT_A) and
    a ``docs/`` directory outside it. The context's last step copies ``app.txt``."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "monorepo"
    root.mkdir()
    context = build_context("COPY app.txt /app.txt", files={"app.txt": b"one\n"})
    shutil.move(context, root / "app")
    (root / "docs").mkdir()
    (root / "docs" / "notes.md").write_text("first\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "A")
    return root, root / "app"


def test_a_commit_outside_the_context_is_unchanged_on_warm_storage(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str,
    monorepo: tuple[Path, Path], tmp_path: Path,
) -> None:  # fmt: skip
    root, context = monorepo
    repo = f"{registry.host}/{unique_repo}"
    first = git_publish(ocirel, repo, context, tmp_path / "warm")
    assert first.returncode == 0, first.explain()
    (root / "docs" / "notes.md").write_text("second\n")
    git(root, "commit", "-q", "-am", "B: docs only", when=COMMIT_B)

    again = git_publish(ocirel, repo, context, tmp_path / "warm")
    assert again.returncode == 0, again.explain()
    assert again.json["unchanged"] is True, again.explain()
    assert again.json["digest"] == first.json["digest"]


def test_same_commit_same_digest_on_warm_and_on_empty_storage(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str,
    monorepo: tuple[Path, Path], tmp_path: Path,
) -> None:  # fmt: skip
    root, context = monorepo
    repo = f"{registry.host}/{unique_repo}"
    # commit A fills the warm storage's layer cache (busybox steps stamped with A's time)
    first = git_publish(ocirel, repo, context, tmp_path / "warm")
    assert first.returncode == 0, first.explain()
    # commit B changes only the last step's input: the earlier steps hit the cache
    (context / "app.txt").write_text("two\n")
    git(root, "commit", "-q", "-am", "B", when=COMMIT_B)

    # the same explicit tag in two repositories: same labels, so comparable digests
    warm = git_publish(ocirel, f"{repo}-warm", context, tmp_path / "warm", "--tag", "b")
    assert warm.returncode == 0, warm.explain()
    empty = git_publish(ocirel, f"{repo}-empty", context, tmp_path / "empty", "--tag", "b")
    assert empty.returncode == 0, empty.explain()
    assert warm.json["digest"] == empty.json["digest"], warm.explain()
    assert "without the layer cache" in warm.stderr, warm.explain()
    with registry.client() as client:
        manifest = client.manifest(f"{unique_repo}-warm", warm.json["digest"]).json()
        config = client.request(
            "GET", f"/v2/{unique_repo}-warm/blobs/{manifest['config']['digest']}",
            repo=f"{unique_repo}-warm",
        ).json()  # fmt: skip
    assert {h["created"] for h in config["history"]} == {"2023-11-15T22:13:20Z"}

    # the rebuild's steps are now the ones the layer cache finds: no stale step again
    again = git_publish(ocirel, f"{repo}-again", context, tmp_path / "warm", "--tag", "b")
    assert again.returncode == 0, again.explain()
    assert "without the layer cache" not in again.stderr, again.explain()
    assert again.json["digest"] == warm.json["digest"], again.explain()
