"""bench/run: the one table assembled from the benches' summaries (no heavy bench runs)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    """``bench/<name>.py`` as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = load("_run")
common = load("_common")


def summary(bench: str, *rows: dict[str, Any]) -> dict[str, Any]:
    return {"bench": bench, "rows": list(rows)}


def test_one_row_per_figure_with_its_target_and_verdict() -> None:
    outcomes = [
        ("startup", summary("startup",
            common.figure("ocirel --version median", 32.7, "ms", "<= 150 ms", True, "1.65 x"),
            common.figure("ocirel next --help median", 172.6, "ms", "<= 150 ms", False),
        ), None),
        ("noop", summary("noop",
            common.figure("unchanged / first", 0.2512, "ratio", "<= 0.30", True),
            common.figure("blobs written", 0, "count", "0", True),
            common.figure("unchanged / old script", 0.4, "ratio"),
        ), None),
    ]  # fmt: skip
    rows = run.table_rows(outcomes)
    assert rows == [
        ("startup", "ocirel --version median", "32.7 ms (1.65 x)", "<= 150 ms", "met"),
        ("startup", "ocirel next --help median", "172.6 ms", "<= 150 ms", "NOT met"),
        ("noop", "unchanged / first", "0.251", "<= 0.30", "met"),
        ("noop", "blobs written", "0", "0", "met"),
        ("noop", "unchanged / old script", "0.400", "-", "-"),
    ]
    assert not run.all_met(rows)
    assert run.all_met(rows[:1] + rows[2:])


def test_a_bench_that_failed_or_gave_no_figures_gets_a_row_saying_so() -> None:
    rows = run.table_rows([
        ("pin", None, "FAILED (exit 1, no summary)"),
        ("bundle", summary("bundle"), None),
    ])  # fmt: skip
    assert rows == [
        ("pin", "-", "-", "-", "FAILED (exit 1, no summary)"),
        ("bundle", "-", "-", "-", "no figures"),
    ]
    assert not run.all_met(rows)


def test_the_table_is_markdown_with_aligned_columns() -> None:
    rows = [("startup", "ocirel --version median", "32.7 ms", "<= 150 ms", "met")]
    lines = run.render(rows).splitlines()
    assert lines[0] == "| benchmark | measure                 | figure  | target    | result |"
    assert set(lines[1]) == {"|", "-"}
    assert lines[2] == "| startup   | ocirel --version median | 32.7 ms | <= 150 ms | met    |"
    assert len({len(line) for line in lines}) == 1


@pytest.mark.parametrize(
    ("row", "shown"),
    [
        ({"value": 1.16349, "unit": "ratio"}, "1.163"),
        ({"value": 76392229, "unit": "bytes"}, "76,392,229 bytes"),
        ({"value": 8.5, "unit": "s", "note": "runs 3"}, "8.50 s (runs 3)"),
        ({"value": None, "unit": "ratio"}, "-"),
    ],
)
def test_figures_are_formatted_by_unit(row: dict[str, Any], shown: str) -> None:
    assert run.format_value(row) == shown


def test_every_bench_script_has_quick_arguments_and_exists() -> None:
    assert set(run.QUICK) == set(run.BENCHES)
    scripts = {p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(run.BENCHES)
    for bench in run.BENCHES:
        assert "add_summary_option(parser)" in (BENCH / f"{bench}.py").read_text("utf-8")
        assert "emit_summary(" in (BENCH / f"{bench}.py").read_text("utf-8")
    assert os.access(BENCH / "run", os.X_OK)


def test_only_picks_a_subset_and_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.parse_args(["--only", "startup,noop.py"]).only == ["startup", "noop"]
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "nope"])
    assert "unknown bench nope" in capsys.readouterr().err


def test_a_bench_prints_its_summary_line_and_writes_the_file(tmp_path: Path) -> None:
    """bench/startup.py with one run: its summary as bench/run reads it (a real run,
    the cheapest bench: three interpreter starts)."""
    target = tmp_path / "startup.json"
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    done = subprocess.run(
        [sys.executable, str(BENCH / "startup.py"), "--runs", "1", "--summary-json", str(target)],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    line = [x for x in done.stdout.splitlines() if x.startswith(common.SUMMARY_PREFIX)]
    assert len(line) == 1
    written = json.loads(target.read_text("utf-8"))
    assert json.loads(line[0].removeprefix(common.SUMMARY_PREFIX)) == written
    assert written["bench"] == "startup"
    measures = [row["measure"] for row in written["rows"]]
    assert measures == ["ocirel --version median", "ocirel next --help median"]
    rows = run.table_rows([("startup", written, None)])
    assert [row[3] for row in rows] == ["<= 150 ms", "<= 150 ms"]
    assert all(row[4] in ("met", "NOT met") for row in rows)


def test_the_tracer_phases_name_functions_that_exist() -> None:
    """``_trace.py`` wraps each phase by name: a rename in ocirel must not break ``--breakdown``."""
    trace = load("_trace")
    for module_name, path, _label in trace.PHASES:
        owner: Any = importlib.import_module(module_name)
        for part in path.split("."):
            assert hasattr(owner, part), f"{module_name}.{path}: no {part}"
            owner = getattr(owner, part)
        assert callable(owner)
