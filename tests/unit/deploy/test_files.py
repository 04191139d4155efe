"""ocirel.deploy.files: which files a path names."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel.deploy.files import collect_paths
from ocirel.errors import ManifestError
from tests.unit.deploy.samples import POD, write


def test_collect_paths(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", POD)
    write(tmp_path / "sub" / "b.yml", POD)
    write(tmp_path / "sub" / "notes.txt", "x")
    write(tmp_path / ".hidden" / "c.yaml", POD)
    write(tmp_path / ".gitlab-ci.yml", POD)
    write(tmp_path / "chart" / "Chart.yaml", "name: c\n")
    write(tmp_path / "chart" / "values.yaml", "image: a:1\n")
    write(tmp_path / "chart" / "templates" / "deploy.yaml", "{{ broken }: \n")
    write(tmp_path / "plain" / "templates" / "d.yaml", POD)
    found = collect_paths([tmp_path, tmp_path / "a.yaml", tmp_path / ".gitlab-ci.yml"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.yaml",
        "chart/Chart.yaml",
        "chart/values.yaml",
        "plain/templates/d.yaml",
        "sub/b.yml",
        ".gitlab-ci.yml",
    ]
    with pytest.raises(ManifestError, match="no such file"):
        collect_paths([tmp_path / "missing.yaml"])


def test_chart_templates_are_skipped_even_from_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "Chart.yaml", "name: c\n")
    write(tmp_path / "templates" / "deploy.yaml", "{{ template }}\n")
    monkeypatch.chdir(tmp_path / "templates")
    assert collect_paths([Path("deploy.yaml"), Path()]) == []
