"""``ocirel next``, ``tags`` and settings through typer's CliRunner, against the fake
registry: round two of hardening (issue 9), items 42, 51, 47 and 54."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocirel import lockfile
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.unit.cli.invoke import run
from tests.unit.fakeregistry import FakeRegistry, tags_page

D3 = Digest("sha256:" + "3" * 64)


def write_lock(path: Path, repository: str, tag: str, issued: str | None = None) -> Path:
    lock = Lockfile({"app": LockEntry("app", repository, tag, D3)})
    if issued is not None:
        lock = lock.with_issued(repository, issued)
    path.write_text(lockfile.dumps(lock), encoding="utf-8")
    return path


# ------------------------------------------------------------------ item 42


@pytest.mark.parametrize("listed", [["v1", "v2"], None], ids=["v3-deleted", "tags-null"])
def test_r42_next_applies_the_lockfile_floor(
    fake: FakeRegistry, tmp_path: Path, listed: list[str] | None
) -> None:
    fake.route("GET", "/v2/team/app/tags/list", tags_page(listed))
    repo = f"{fake.address}/team/app"
    write_lock(tmp_path / "ocirel.lock.json", repo, "v3")
    result = run("next", repo)
    assert result.stdout.strip() == "v4"
    assert "warning:" in result.stderr
    assert "v3" in result.stderr


def test_r42_next_reads_the_lockfile_named_by_the_option(
    fake: FakeRegistry, tmp_path: Path
) -> None:
    fake.route("GET", "/v2/team/app/tags/list", tags_page(["v1"]))
    repo = f"{fake.address}/team/app"
    lock = write_lock(tmp_path / "deploy.lock.json", repo, "v1", issued="v7")
    assert run("next", repo).stdout.strip() == "v2"  # no ./ocirel.lock.json: no floor
    data = json.loads(run("next", repo, "--lockfile", str(lock), "--json").stdout)
    assert data["next"] == "v8"
    assert data["lost"] == ["v7"]


# ------------------------------------------------------------- items 51 and 47


@pytest.mark.parametrize(
    ("args", "env", "origin"),
    [
        (["--scheme", "date"], {}, "--scheme"),
        (["--bump", "huge"], {}, "--bump"),
        (["--prefix", "-v"], {}, "--prefix"),
        ([], {"OCIREL_SCHEME": "date"}, "OCIREL_SCHEME"),
        ([], {"OCIREL_BUMP": "huge"}, "OCIREL_BUMP"),
        ([], {"OCIREL_PREFIX": "a/b"}, "OCIREL_PREFIX"),
    ],
    ids=["scheme-flag", "bump-flag", "prefix-flag", "scheme-env", "bump-env", "prefix-env"],
)
@pytest.mark.parametrize("command", ["next", "publish"])
def test_r51_bad_scheme_bump_or_prefix_exit_2(
    fake: FakeRegistry,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    args: list[str],
    env: dict[str, str],
    origin: str,
) -> None:
    fake.route("GET", "/v2/team/app/tags/list", tags_page(["v1"]))
    repo = f"{fake.address}/team/app"
    target = [repo] if command == "next" else ["--image", repo, "--dry-run"]
    if command == "next":
        run(command, *target, code=0)  # without the bad value, the command works
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run(command, *target, *args, code=2)
    assert "error:" in result.stderr
    assert origin in result.stderr  # the version setting failed, not something else


@pytest.mark.parametrize("value", ["0", "0.0"])
def test_r47_read_timeout_of_zero_exits_2(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    fake.route("GET", "/v2/team/app/tags/list", tags_page(["v1"]))
    monkeypatch.setenv("OCIREL_READ_TIMEOUT", value)
    result = run("next", f"{fake.address}/team/app", code=2)
    assert "OCIREL_READ_TIMEOUT" in result.stderr
    assert "internal error" not in result.stderr


# ------------------------------------------------------------------ item 54


def test_r54_tags_prints_each_tag_once(fake: FakeRegistry) -> None:
    fake.route("GET", "/v2/team/app/tags/list", tags_page(["v2", "v1", "v2", "latest", "v1"]))
    repo = f"{fake.address}/team/app"
    assert run("tags", repo).stdout.splitlines() == ["latest", "v1", "v2"]
    assert json.loads(run("tags", repo, "--json").stdout)["tags"] == ["latest", "v1", "v2"]
