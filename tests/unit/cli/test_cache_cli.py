"""``ocirel cache info`` and ``ocirel cache prune`` through typer's CliRunner, on a cache
in a temporary directory named by ``OCIREL_CACHE_DIR``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ocirel.oci import OCI_LAYER_GZIP, Digest
from ocirel.publish.layercache import DEFAULT_MAX_BYTES, LayerCache, on_disk
from ocirel.publish.reuse import KnownBlob
from tests.unit.cli.invoke import run

REGISTRY = "registry.test:5000"


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("OCIREL_CACHE_DIR", str(directory))
    return directory


def fill(cache_dir: Path, count: int) -> list[Path]:
    """``count`` entries of the same size, oldest first."""
    cache = LayerCache(cache_dir / "layers")
    known = {
        Digest(f"sha256:{n:064x}"): KnownBlob(
            Digest(f"sha256:{n + 1000:064x}"), 100 + n, OCI_LAYER_GZIP, ("team/app",)
        )
        for n in range(count)
    }
    cache.learn(REGISTRY, known)
    paths = [cache_dir / "layers" / "registry.test%3A5000" / f"{n:064x}.json" for n in range(count)]
    for number, path in enumerate(paths):
        os.utime(path, (1_000_000 + number, 1_000_000 + number))
    return paths


def test_cache_info_json(cache_dir: Path) -> None:
    paths = fill(cache_dir, 3)
    data = json.loads(run("cache", "info", "--json").stdout)
    assert data == {
        "path": str(cache_dir / "layers"),
        "entries": 3,
        "bytes": sum(on_disk(p.stat()) for p in paths),
        "max_bytes": DEFAULT_MAX_BYTES,
    }


def test_cache_info_reads_the_cap(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIREL_CACHE_MAX_SIZE", "2K")
    data = json.loads(run("cache", "info", "--json").stdout)
    assert data["max_bytes"] == 2048
    assert data["entries"] == 0
    assert data["bytes"] == 0


def test_cache_info_text(cache_dir: Path) -> None:
    fill(cache_dir, 2)
    text = run("cache", "info").stdout
    assert str(cache_dir / "layers") in text
    assert "2 entries" in text


def test_cache_info_on_a_missing_cache_creates_nothing(cache_dir: Path) -> None:
    data = json.loads(run("cache", "info", "--json").stdout)
    assert (data["entries"], data["bytes"]) == (0, 0)
    assert not cache_dir.exists()


def test_cache_prune_all_json(cache_dir: Path) -> None:
    fill(cache_dir, 4)
    data = json.loads(run("cache", "prune", "--all", "--json").stdout)
    assert data == {"path": str(cache_dir / "layers"), "removed": 4, "entries": 0, "bytes": 0}
    assert list((cache_dir / "layers" / "registry.test%3A5000").iterdir()) == []


def test_cache_prune_trims_least_recently_used(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = fill(cache_dir, 10)
    size = on_disk(paths[0].stat())
    monkeypatch.setenv("OCIREL_CACHE_MAX_SIZE", str(size * 5))
    data = json.loads(run("cache", "prune", "--json").stdout)
    assert data["removed"] == 6  # down to 80 % of five entries
    assert data["entries"] == 4
    assert [p.exists() for p in paths] == [False] * 6 + [True] * 4


def test_cache_prune_text(cache_dir: Path) -> None:
    fill(cache_dir, 2)
    assert "removed 2 entries" in run("cache", "prune", "--all").stdout


@pytest.mark.parametrize("command", [("info",), ("prune",), ("prune", "--all")])
def test_a_bad_cache_size_is_a_config_error_naming_the_variable(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    paths = fill(cache_dir, 2)
    monkeypatch.setenv("OCIREL_CACHE_MAX_SIZE", "lots")
    result = run("cache", *command, "--json", code=2)
    assert "OCIREL_CACHE_MAX_SIZE" in result.stderr
    assert result.stdout == ""
    assert all(p.exists() for p in paths)  # nothing pruned on a bad setting


def test_a_nan_cache_size_is_a_config_error(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIREL_CACHE_MAX_SIZE", "nan")
    result = run("cache", "info", "--json", code=2)
    assert "OCIREL_CACHE_MAX_SIZE" in result.stderr
