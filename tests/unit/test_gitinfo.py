"""Source facts from git: public remote URLs and revision/dirty/commit time of a context."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocirel import runner
from ocirel.gitinfo import SourceInfo, public_url, source_date_epoch, source_info

COMMIT_TIME = 1_700_000_000


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        # https, with credentials, queries and fragments stripped
        ("https://github.com/org/repo", "https://github.com/org/repo"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo"),
        ("https://github.com/org/repo.git/", "https://github.com/org/repo"),
        ("https://user:ghp_token123@github.com/org/repo.git", "https://github.com/org/repo"),
        ("https://oauth2:glpat-xyz@gitlab.example.com/g/sub/p.git", "https://gitlab.example.com/g/sub/p"),
        ("https://token@github.com/org/repo", "https://github.com/org/repo"),
        ("https://github.com/org/repo.git?private_token=abc#frag", "https://github.com/org/repo"),
        ("https://git.example.com:8443/team/app.git", "https://git.example.com:8443/team/app"),
        ("http://git.internal/team/app.git", "http://git.internal/team/app"),
        ("  https://github.com/org/repo.git\n", "https://github.com/org/repo"),
        # scp-style
        ("git@github.com:org/repo.git", "https://github.com/org/repo"),
        ("git@github.com:org/repo", "https://github.com/org/repo"),
        ("git@github.com:org/repo.git/", "https://github.com/org/repo"),
        ("deploy@gitlab.example.com:group/sub/project.git", "https://gitlab.example.com/group/sub/project"),
        ("git@github.com:org/repo.git\n", "https://github.com/org/repo"),
        # ssh:// and git:// become https
        ("ssh://git@github.com/org/repo.git", "https://github.com/org/repo"),
        ("ssh://github.com/org/repo", "https://github.com/org/repo"),
        ("git://github.com/org/repo.git", "https://github.com/org/repo"),
        # garbage and local paths
        ("", None),
        ("garbage", None),
        ("not a url at all", None),
        ("/srv/git/repo.git", None),
        ("../repo", None),
        ("file:///srv/git/repo.git", None),
        ("ftp://example.com/repo.git", None),
        ("https://", None),
        ("https:///path/only", None),
    ],
)  # fmt: skip
def test_public_url(remote: str, expected: str | None) -> None:
    assert public_url(remote) == expected


@pytest.mark.parametrize(
    "remote",
    [
        "https://user:s3cret-pass@github.com/org/repo.git",
        "https://x-access-token:ghs_abcdef@github.com/org/repo",
        "https://github.com/org/repo.git?access_token=s3cret-pass",
    ],
)
def test_public_url_never_keeps_credentials(remote: str) -> None:
    url = public_url(remote)
    assert url is not None
    assert "@" not in url
    assert "s3cret" not in url
    assert "ghs_" not in url
    assert "token" not in url


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("ssh://git@gitlab.example.com:2222/org/repo.git", "https://gitlab.example.com/org/repo"),
        ("git://example.com:9418/org/repo.git", "https://example.com/org/repo"),
    ],
)
def test_public_url_drops_the_ssh_port(remote: str, expected: str) -> None:
    assert public_url(remote) == expected


# -- source_info on real repositories ------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def no_inherited_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run from git hooks inherit GIT_DIR and friends; they must not leak in here."""
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_AUTHOR_DATE": f"@{COMMIT_TIME} +0000",
        "GIT_COMMITTER_DATE": f"@{COMMIT_TIME} +0000",
    }
    result = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed repository whose build context is the subdirectory ``app``."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no user git config for source_info either
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "app").mkdir()
    (path / "app" / "Containerfile").write_text("FROM scratch\n", encoding="utf-8")
    (path / "README").write_text("hi\n", encoding="utf-8")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    return path


@needs_git
def test_source_info_clean_repository(repo: Path) -> None:
    info = source_info(repo)
    assert info.revision == git(repo, "rev-parse", "HEAD")
    assert info.revision is not None
    assert len(info.revision) == 40
    assert info.dirty is False
    assert info.commit_time == COMMIT_TIME
    assert info.url is None  # no remote
    assert info.lock_fields() == {"revision": info.revision, "dirty": False}


@needs_git
@pytest.mark.parametrize(
    "change",
    ["modify", "add-untracked", "delete", "stage"],
)
def test_source_info_dirty_after_a_change(repo: Path, change: str) -> None:
    containerfile = repo / "app" / "Containerfile"
    if change == "modify":
        containerfile.write_text("FROM scratch\nLABEL x=y\n", encoding="utf-8")
    elif change == "add-untracked":
        (repo / "app" / "new.txt").write_text("new\n", encoding="utf-8")
    elif change == "delete":
        containerfile.unlink()
    else:
        containerfile.write_text("FROM scratch\nLABEL x=y\n", encoding="utf-8")
        git(repo, "add", ".")
    info = source_info(repo / "app")
    assert info.dirty is True
    assert info.revision == git(repo, "rev-parse", "HEAD")
    assert info.lock_fields() == {"revision": info.revision, "dirty": True}


@needs_git
def test_source_info_only_looks_at_the_context(repo: Path) -> None:
    (repo / "README").write_text("changed outside the context\n", encoding="utf-8")
    assert source_info(repo / "app").dirty is False
    assert source_info(repo).dirty is True


@needs_git
def test_source_info_new_commit_changes_the_revision(repo: Path) -> None:
    first = source_info(repo).revision
    (repo / "app" / "Containerfile").write_text("FROM scratch\nLABEL v=2\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "second")
    second = source_info(repo)
    assert second.revision != first
    assert second.revision == git(repo, "rev-parse", "HEAD")
    assert second.dirty is False


@needs_git
def test_source_info_remote_url_is_public(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://ci:s3cret-tok@git.example.com/team/app.git")
    assert source_info(repo).url == "https://git.example.com/team/app"


@needs_git
def test_source_info_outside_git_is_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    info = source_info(plain)
    assert info == SourceInfo()
    assert info.lock_fields() == {}


@needs_git
def test_source_info_repository_without_commits_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    path.mkdir()
    git(path, "init", "-q")
    assert source_info(path) == SourceInfo()


def test_source_info_without_git_is_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "which", lambda _program: None)
    assert source_info(tmp_path) == SourceInfo()


@pytest.mark.parametrize(
    ("info", "fields"),
    [
        (SourceInfo(), {}),
        (SourceInfo(revision="abc", dirty=None), {"revision": "abc", "dirty": False}),
        (SourceInfo(revision="abc", dirty=True, url="https://x/y", commit_time=1),
         {"revision": "abc", "dirty": True}),
    ],
)  # fmt: skip
def test_lock_fields(info: SourceInfo, fields: dict[str, object]) -> None:
    assert info.lock_fields() == fields


# -- the timestamp: the last commit that touched the build context -----------------------


def _git(repo: Path, *args: str, when: int) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@e.x",
        "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@e.x",
        "GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000",
    }  # fmt: skip
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


@pytest.fixture
def monorepo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = tmp_path / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "Containerfile").write_text("FROM scratch\n", encoding="utf-8")
    (repo / "docs").mkdir()
    (repo / "docs" / "x.md").write_text("x\n", encoding="utf-8")
    _git(repo, "init", "-q", when=COMMIT_TIME)
    _git(repo, "add", ".", when=COMMIT_TIME)
    _git(repo, "commit", "-q", "-m", "first", when=COMMIT_TIME)
    return repo


@needs_git
def test_a_commit_outside_the_context_keeps_the_timestamp(monorepo: Path) -> None:
    (monorepo / "docs" / "x.md").write_text("y\n", encoding="utf-8")
    _git(monorepo, "commit", "-q", "-am", "docs only", when=COMMIT_TIME + 500)
    assert source_date_epoch(monorepo / "app", {}) == (
        COMMIT_TIME,
        "last git commit touching the build context",
    )
    # the whole repository as context: the docs commit counts
    assert source_date_epoch(monorepo, {})[0] == COMMIT_TIME + 500


@needs_git
def test_a_commit_inside_the_context_moves_the_timestamp(monorepo: Path) -> None:
    (monorepo / "app" / "main.txt").write_text("1\n", encoding="utf-8")
    _git(monorepo, "add", ".", when=COMMIT_TIME + 900)
    _git(monorepo, "commit", "-q", "-m", "app", when=COMMIT_TIME + 900)
    assert source_date_epoch(monorepo / "app", {})[0] == COMMIT_TIME + 900


@needs_git
def test_an_uncommitted_context_has_no_timestamp(monorepo: Path) -> None:
    (monorepo / "new").mkdir()
    assert source_date_epoch(monorepo / "new", {}) == (None, "the build context has no commit yet")


@needs_git
def test_source_date_epoch_from_the_environment_wins(monorepo: Path) -> None:
    assert source_date_epoch(monorepo / "app", {"SOURCE_DATE_EPOCH": "42"}) == (
        42,
        "SOURCE_DATE_EPOCH",
    )
