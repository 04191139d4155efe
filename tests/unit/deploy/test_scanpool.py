"""ocirel.deploy.scanpool: a forked pool gives what a sequential scan gives, errors included."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel.deploy import scanpool
from ocirel.deploy.scan import Manifest, load_manifests
from ocirel.deploy.scanpool import CHUNK_SIZE, PARALLEL_THRESHOLD, scan_files, worker_count
from ocirel.errors import ManifestError


def pod(index: int) -> str:
    return f"kind: Pod\nspec:\n  containers:\n  - {{name: c, image: 'r.test/app{index}:v1'}}\n"


def make_tree(root: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        path = root / f"f{index:03d}.yaml"
        path.write_text(pod(index) if index % 7 else "kind: Service\n", encoding="utf-8")
        paths.append(path)
    return paths


def test_parallel_scan_equals_the_sequential_scan(tmp_path: Path) -> None:
    paths = make_tree(tmp_path, 3 * CHUNK_SIZE + 5)
    delivered: list[str] = []
    parallel = scan_files(paths, workers=3, on_manifest=lambda m: delivered.append(m.path))
    assert parallel == load_manifests(paths)  # same objects, in the order of paths
    assert sorted(delivered) == sorted(str(p) for p in paths)  # each once, any order


def test_errors_from_workers_are_reported_in_path_order(tmp_path: Path) -> None:
    paths = make_tree(tmp_path, 2 * CHUNK_SIZE)
    paths[30].write_text("kind: Pod\nspec: [\n", encoding="utf-8")
    paths[3].write_bytes(b"kind: Pod\n\xff\n")
    delivered: list[Manifest] = []
    with pytest.raises(ManifestError) as info:
        scan_files(paths, workers=2, on_manifest=delivered.append)
    assert info.value.message == f"{paths[3]}:2: not UTF-8 text"
    assert (info.value.hint or "").startswith(f"1 more: {paths[30]}:3:1: invalid YAML")
    assert len(delivered) == len(paths) - 2


def test_worker_count() -> None:
    assert worker_count(PARALLEL_THRESHOLD - 1) == 1
    assert worker_count(10_000) >= 1
    assert worker_count(5, 8) == 5
    assert worker_count(0, 2) == 1


def test_without_a_process_pool_files_are_scanned_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_semaphores(method: str) -> None:
        raise OSError(38, "Function not implemented")  # no /dev/shm

    monkeypatch.setattr(scanpool.multiprocessing, "get_context", no_semaphores)
    paths = make_tree(tmp_path, 2 * CHUNK_SIZE)
    assert scan_files(paths, workers=2) == load_manifests(paths)
