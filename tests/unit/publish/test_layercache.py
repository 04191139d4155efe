"""ocirel's layer cache (ocirel.publish.layercache): where it lives, its cap, entries
learnt and looked up, eviction of the least recently used, and concurrent writers."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from ocirel.errors import ConfigError
from ocirel.oci import OCI_LAYER_GZIP, OCI_LAYER_ZSTD, Digest
from ocirel.publish import layercache
from ocirel.publish.layercache import (
    DEFAULT_MAX_BYTES,
    MAX_REPOSITORIES,
    PRUNE_TO,
    LayerCache,
    cache_root,
    max_bytes_from,
    parse_size,
)
from ocirel.publish.reuse import KnownBlob

REGISTRY = "registry.test:5000"


def diff_id(number: int) -> Digest:
    return Digest(f"sha256:{number:064x}")


def blob(number: int, *repositories: str) -> KnownBlob:
    return KnownBlob(
        Digest(f"sha256:{number + 10**6:064x}"), 1000 + number, OCI_LAYER_GZIP, repositories
    )


@pytest.fixture
def cache(tmp_path: Path) -> LayerCache:
    return LayerCache(tmp_path / "layers")


def entry(cache: LayerCache, registry: str, number: int) -> Path:
    return cache.root / registry.replace(":", "%3A") / f"{number:064x}.json"


# ------------------------------------------------------------------ where, how big


def test_cache_root_precedence(tmp_path: Path) -> None:
    env = {
        "OCIREL_CACHE_DIR": str(tmp_path / "explicit"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "HOME": str(tmp_path / "home"),
    }
    assert cache_root(env) == tmp_path / "explicit"
    assert cache_root({**env, "OCIREL_CACHE_DIR": ""}) == tmp_path / "xdg" / "ocirel"
    del env["OCIREL_CACHE_DIR"]
    assert cache_root(env) == tmp_path / "xdg" / "ocirel"
    del env["XDG_CACHE_HOME"]
    assert cache_root(env) == tmp_path / "home" / ".cache" / "ocirel"
    assert cache_root({"XDG_CACHE_HOME": "", "HOME": str(tmp_path)}) == tmp_path / ".cache/ocirel"


def test_cache_root_reads_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIREL_CACHE_DIR", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert LayerCache.default().root == tmp_path / "c" / "layers"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("16M", 16 * 1024**2),
        ("1G", 1024**3),
        ("512", 512),
        ("2KiB", 2048),
        ("2k", 2048),
        ("3MB", 3 * 1024**2),
        (" 1.5M ", int(1.5 * 1024**2)),
        ("0", 0),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "-1", "-2M", "M", "", "1T", "12 M B"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ConfigError, match="OCIREL_CACHE_MAX_SIZE"):
        parse_size(text)


@pytest.mark.parametrize("text", ["nan", "inf", "infM"])
def test_parse_size_refuses_nan_and_infinity(text: str) -> None:
    with pytest.raises(ConfigError, match="OCIREL_CACHE_MAX_SIZE"):
        parse_size(text)


def test_max_bytes_from_the_environment() -> None:
    assert max_bytes_from({}) == DEFAULT_MAX_BYTES
    assert max_bytes_from({"OCIREL_CACHE_MAX_SIZE": "  "}) == DEFAULT_MAX_BYTES
    assert max_bytes_from({"OCIREL_CACHE_MAX_SIZE": "1M"}) == 1024**2
    with pytest.raises(ConfigError):
        max_bytes_from({"OCIREL_CACHE_MAX_SIZE": "big"})


# --------------------------------------------------------------- learn and lookup


def test_learn_then_lookup(cache: LayerCache) -> None:
    known = {diff_id(1): blob(1, "team/app"), diff_id(2): blob(2, "library/base", "team/app")}
    cache.learn(REGISTRY, known)
    assert cache.lookup(REGISTRY, [diff_id(1), diff_id(2), diff_id(3)]) == known
    data = json.loads(entry(cache, REGISTRY, 1).read_text())
    assert data == {
        "digest": blob(1).digest, "size": 1001, "mediaType": OCI_LAYER_GZIP,
        "repositories": ["team/app"],
    }  # fmt: skip


def test_registries_with_ports_are_separate(cache: LayerCache) -> None:
    cache.learn("registry.test:5000", {diff_id(1): blob(1, "a")})
    cache.learn("registry.test:5001", {diff_id(1): blob(1, "b")})
    cache.learn("registry.test", {diff_id(2): blob(2, "c")})
    assert cache.lookup("registry.test:5000", [diff_id(1)])[diff_id(1)].repositories == ("a",)
    assert cache.lookup("registry.test:5001", [diff_id(1)])[diff_id(1)].repositories == ("b",)
    assert cache.lookup("registry.test", [diff_id(1)]) == {}
    assert cache.lookup("registry.test:5000", [diff_id(2)]) == {}
    directories = sorted(p.name for p in cache.root.iterdir())
    assert len(directories) == 3
    assert all("/" not in name and ":" not in name for name in directories)


def test_repositories_merged_most_recent_first(cache: LayerCache) -> None:
    cache.learn(REGISTRY, {diff_id(1): blob(1, "a", "b")})
    cache.learn(REGISTRY, {diff_id(1): blob(1, "c", "a")})
    assert cache.lookup(REGISTRY, [diff_id(1)])[diff_id(1)].repositories == ("c", "a", "b")


def test_repositories_capped(cache: LayerCache) -> None:
    for number in range(MAX_REPOSITORIES + 5):
        cache.learn(REGISTRY, {diff_id(1): blob(1, f"repo/{number}")})
    repositories = cache.lookup(REGISTRY, [diff_id(1)])[diff_id(1)].repositories
    newest = MAX_REPOSITORIES + 4
    assert repositories == tuple(f"repo/{n}" for n in range(newest, newest - MAX_REPOSITORIES, -1))


def test_a_new_blob_for_a_diff_id_replaces_the_entry(cache: LayerCache) -> None:
    cache.learn(REGISTRY, {diff_id(1): blob(1, "a", "b")})
    other = KnownBlob(Digest("sha256:" + "e" * 64), 77, OCI_LAYER_ZSTD, ("c",))
    cache.learn(REGISTRY, {diff_id(1): other})
    assert cache.lookup(REGISTRY, [diff_id(1)]) == {diff_id(1): other}


GOOD = json.dumps(
    {"digest": "sha256:" + "1" * 64, "size": 1, "mediaType": "x", "repositories": []},
    separators=(",", ":"),
)


def test_the_good_entry_text_is_read(cache: LayerCache) -> None:
    cache.learn(REGISTRY, {diff_id(1): blob(1, "a")})
    entry(cache, REGISTRY, 1).write_text(GOOD)
    found = cache.lookup(REGISTRY, [diff_id(1)])
    assert found == {diff_id(1): KnownBlob(Digest("sha256:" + "1" * 64), 1, "x", ())}


@pytest.mark.parametrize(
    "text",
    [
        "",
        '{"digest": "sha256:',  # torn
        "not json at all",
        "[]",
        "null",
        '{"digest": "sha256:abc", "size": 1, "mediaType": "x", "repositories": []}',
        GOOD.replace('"size":1', '"size":-1'),
        GOOD.replace('"size":1', '"size":"big"'),
        GOOD.replace(',"repositories":[]', ""),
        GOOD.replace('"repositories":[]', '"repositories":5'),
    ],
    ids=[
        "empty", "torn", "garbage", "list", "null", "bad-digest", "negative-size",
        "size-not-int", "no-repositories", "repositories-not-list",
    ],
)  # fmt: skip
def test_lookup_ignores_unreadable_entries(cache: LayerCache, text: str) -> None:
    cache.learn(REGISTRY, {diff_id(1): blob(1, "a"), diff_id(2): blob(2, "b")})
    entry(cache, REGISTRY, 1).write_text(text)
    assert cache.lookup(REGISTRY, [diff_id(1), diff_id(2)]) == {diff_id(2): blob(2, "b")}


def test_lookup_ignores_an_entry_that_is_not_a_file(cache: LayerCache) -> None:
    cache.learn(REGISTRY, {diff_id(1): blob(1, "a")})
    path = entry(cache, REGISTRY, 1)
    path.unlink()
    path.mkdir()
    assert cache.lookup(REGISTRY, [diff_id(1)]) == {}


def test_non_sha256_diff_ids_are_neither_learnt_nor_looked_up(cache: LayerCache) -> None:
    odd = [
        Digest("sha512:" + "1" * 128),
        Digest("sha256:short"),
        Digest("sha256:../../x"),
        Digest(""),
    ]
    cache.learn(REGISTRY, {d: blob(1, "a") for d in odd})
    assert cache.usage().entries == 0
    assert cache.lookup(REGISTRY, odd) == {}
    # a stray file named like the hex part of a sha512 diff-id is not read either
    (cache.root / "registry.test%3A5000").mkdir(parents=True, exist_ok=True)
    (cache.root / "registry.test%3A5000" / ("1" * 128 + ".json")).write_text(
        json.dumps({"digest": blob(1).digest, "size": 1, "mediaType": "x", "repositories": []})
    )
    assert cache.lookup(REGISTRY, odd) == {}


def test_lookup_on_a_missing_cache_is_empty(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "nowhere")
    assert cache.lookup(REGISTRY, [diff_id(1)]) == {}
    assert cache.usage() == layercache.Usage(0, 0)
    assert cache.trim() == 0
    assert cache.prune(everything=True) == 0


def test_learn_on_an_unwritable_root_does_not_raise(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = LayerCache(blocker / "layers")
    cache.learn(REGISTRY, {diff_id(1): blob(1, "a")})  # must not raise
    assert cache.lookup(REGISTRY, [diff_id(1)]) == {}
    assert blocker.read_text() == "not a directory"


def test_learn_into_a_registry_directory_that_is_a_file_does_not_raise(
    cache: LayerCache,
) -> None:
    cache.root.mkdir(parents=True)
    (cache.root / "registry.test%3A5000").write_text("in the way")
    cache.learn(REGISTRY, {diff_id(1): blob(1, "a")})
    assert cache.lookup(REGISTRY, [diff_id(1)]) == {}
    assert cache.usage().entries == 0


# -------------------------------------------------------------------- the cap


def disk(path: Path) -> int:
    """What the cap counts for a file: its disk blocks, at least its length."""
    info = path.stat()
    return max(info.st_size, info.st_blocks * 512)


def fill(cache: LayerCache, count: int) -> list[Path]:
    """``count`` entries of the same size, used one second apart (oldest first)."""
    cache.learn(REGISTRY, {diff_id(n): blob(n, "team/app") for n in range(count)})
    paths = [entry(cache, REGISTRY, n) for n in range(count)]
    assert len({disk(p) for p in paths}) == 1
    for number, path in enumerate(paths):
        os.utime(path, (1_000_000 + number, 1_000_000 + number))
    return paths


def test_trim_does_nothing_under_the_cap(cache: LayerCache) -> None:
    paths = fill(cache, 10)
    cache.max_bytes = cache.usage().bytes
    assert cache.trim() == 0
    assert all(p.exists() for p in paths)


def test_trim_evicts_the_least_recently_used_down_to_80_percent(cache: LayerCache) -> None:
    paths = fill(cache, 10)
    size = disk(paths[0])
    cache.max_bytes = size * 10 - 1  # one byte over
    removed = cache.trim()
    goal = int(cache.max_bytes * PRUNE_TO)
    keep = goal // size  # entries that fit in 80 % of the cap
    assert removed == 10 - keep
    assert [p.exists() for p in paths] == [False] * removed + [True] * keep
    assert cache.usage().bytes <= goal


def test_lookup_marks_an_entry_used_so_it_survives_a_trim(cache: LayerCache) -> None:
    paths = fill(cache, 10)
    size = disk(paths[0])
    assert diff_id(0) in cache.lookup(REGISTRY, [diff_id(0)])  # the oldest, now the newest
    assert paths[0].stat().st_mtime > paths[9].stat().st_mtime
    cache.max_bytes = size * 5
    removed = cache.trim()
    assert removed == 6  # down to 4 entries (80 % of 5)
    assert paths[0].exists()
    assert [p.exists() for p in paths[1:]] == [False] * 6 + [True] * 3


def test_learn_trims_once_over_the_cap(cache: LayerCache) -> None:
    paths = fill(cache, 10)
    size = disk(paths[0])
    cache.max_bytes = size * 10
    cache.learn(REGISTRY, {diff_id(99): blob(99, "team/app")})
    assert entry(cache, REGISTRY, 99).exists()  # the newest stays
    assert not paths[0].exists()
    assert cache.usage().bytes <= int(cache.max_bytes * PRUNE_TO)


def test_prune_trims_to_80_percent_even_under_the_cap(cache: LayerCache) -> None:
    paths = fill(cache, 10)
    size = disk(paths[0])
    cache.max_bytes = size * 10
    assert cache.prune() == 2
    assert [p.exists() for p in paths] == [False] * 2 + [True] * 8


def test_prune_everything_empties_the_cache(cache: LayerCache) -> None:
    fill(cache, 5)
    cache.learn("other.test", {diff_id(1): blob(1, "x")})
    assert cache.usage().entries == 6
    assert cache.prune(everything=True) == 6
    assert cache.usage() == layercache.Usage(0, 0)
    assert cache.lookup(REGISTRY, [diff_id(n) for n in range(5)]) == {}


def test_usage_counts_entries_and_bytes(cache: LayerCache) -> None:
    paths = fill(cache, 4)
    cache.learn("other.test", {diff_id(7): blob(7, "x")})
    other = entry(cache, "other.test", 7)
    (cache.root / REGISTRY.replace(":", "%3A") / "notes.txt").write_text("not an entry")
    (cache.root / "stray-file").write_text("not a registry")
    usage = cache.usage()
    assert usage.entries == 5
    assert usage.bytes == sum(disk(p) for p in [*paths, other])


def test_the_cap_counts_the_disk_blocks_of_each_entry_not_its_length(
    cache: LayerCache,
) -> None:
    paths = fill(cache, 10)
    length, blocks = paths[0].stat().st_size, paths[0].stat().st_blocks * 512
    if blocks <= length:
        pytest.skip("this filesystem stores small files without rounding them up to a block")
    assert cache.usage().bytes == 10 * blocks
    cache.max_bytes = 10 * length  # what 10 entries would take, counted by their length
    assert cache.trim() > 0  # counted by disk blocks, they are over it
    assert cache.usage().bytes <= int(cache.max_bytes * PRUNE_TO)


def leftover(cache: LayerCache, name: str, age: float) -> Path:
    """A temporary file as a write leaves it (``.<random>.tmp``), ``age`` seconds old."""
    path = cache.root / REGISTRY.replace(":", "%3A") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"digest": "half-writ')
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_prune_removes_the_stale_temporary_files_of_unfinished_writes(cache: LayerCache) -> None:
    paths = fill(cache, 3)
    crashed = leftover(cache, ".abc123.tmp", layercache.STALE_TMP_SECONDS + 60)
    live = leftover(cache, ".def456.tmp", 1.0)  # a writer may be about to rename it
    usage = cache.usage()
    assert usage.entries == 3  # temporary files are no entries, but take disk
    assert usage.bytes == sum(disk(p) for p in [*paths, crashed, live])
    cache.max_bytes = 10 * usage.bytes  # far under the cap: no entry goes
    assert cache.prune() == 0
    assert not crashed.exists()
    assert live.exists()
    assert all(p.exists() for p in paths)
    assert cache.prune(everything=True) == 3
    assert live.exists()  # even --all leaves a live writer's file alone


def test_trim_removes_stale_temporary_files_too(cache: LayerCache) -> None:
    paths = fill(cache, 3)
    crashed = leftover(cache, ".abc123.tmp", layercache.STALE_TMP_SECONDS + 60)
    cache.max_bytes = sum(disk(p) for p in paths)  # over the cap only with the leftover
    assert cache.trim() == 0
    assert not crashed.exists()
    assert all(p.exists() for p in paths)


# ------------------------------------------------------------------ concurrency


def test_concurrent_learn_never_leaves_an_unreadable_entry(cache: LayerCache) -> None:
    threads_count, rounds, entries = 8, 25, 5
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def writer(number: int) -> None:
        try:
            start.wait()
            for round_ in range(rounds):
                known = {
                    diff_id(n): blob(n, f"repo/{number}", f"round/{round_ % 3}")
                    for n in range(entries)
                }
                cache.learn(REGISTRY, known)
                cache.lookup(REGISTRY, list(known))
        except BaseException as exc:  # a failure in a thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    directory = cache.root / REGISTRY.replace(":", "%3A")
    assert sorted(p.name for p in directory.iterdir()) == [f"{n:064x}.json" for n in range(entries)]
    for number in range(entries):
        data = json.loads(entry(cache, REGISTRY, number).read_text())
        assert data["digest"] == blob(number).digest
        assert 1 <= len(data["repositories"]) <= MAX_REPOSITORIES
    found = cache.lookup(REGISTRY, [diff_id(n) for n in range(entries)])
    assert sorted(found) == [diff_id(n) for n in range(entries)]
