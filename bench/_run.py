"""bench/run: every benchmark in bench/, one after the other, then one table.

Each script prints its own figures as it goes and ends with a summary (``--summary-json
FILE``, see ``_common.emit_summary``): its figures against their targets. This collects
those summaries and prints one table: benchmark, what is measured, the figure, the
target and whether it is met. A script that fails, or ends without a summary, gets a
row saying so.

    bench/run [--quick] [--only startup,noop,...] [--summary-json FILE]

``--quick`` passes each script small sizes and few runs (QUICK below): a smoke test of
the whole set in a few minutes, not figures to quote. Exit status: 0 when every
script ran and every target was met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: every benchmark, in the order they run (cheap first)
BENCHES = ("startup", "pin_large", "pin", "bundle", "noop", "publish_overhead", "realistic")

#: small sizes and few runs, for ``--quick``
QUICK: dict[str, tuple[str, ...]] = {
    "startup": ("--runs", "5"),
    "pin_large": ("--runs", "1", "--sizes", "5"),
    "pin": ("--runs", "1", "--files", "100", "--images", "10"),
    "bundle": ("--runs", "1", "--size", "16", "--images", "2"),
    "noop": ("--runs", "1"),
    "publish_overhead": ("--runs", "1"),
    "realistic": ("--runs", "1", "--cases", "C", "--sizes", "scratch"),
}

COLUMNS = ("benchmark", "measure", "figure", "target", "result")
#: how one script ended: (its name, its summary or None, the problem or None)
Outcome = tuple[str, dict[str, Any] | None, str | None]


def format_value(row: dict[str, Any]) -> str:
    """``1.163``, ``32.7 ms``, ``0``; the note in brackets after it."""
    value, unit = row.get("value"), row.get("unit", "")
    if not isinstance(value, int | float):
        text = "-"
    elif unit == "ratio":
        text = f"{value:.3f}"
    elif unit in ("count", "bytes"):
        text = f"{value:,.0f}" + (" bytes" if unit == "bytes" else "")
    elif unit in ("ms", "s"):
        text = f"{value:.1f} {unit}" if unit == "ms" else f"{value:.2f} s"
    else:
        text = f"{value:g} {unit}".strip()
    note = row.get("note")
    return f"{text} ({note})" if note else text


def verdict(row: dict[str, Any]) -> str:
    met = row.get("met")
    if met is None:
        return "-"
    return "met" if met else "NOT met"


def table_rows(
    outcomes: Iterable[tuple[str, dict[str, Any] | None, str | None]],
) -> list[tuple[str, ...]]:
    """One table row per figure: ``outcomes`` are (bench, its summary or None, the
    problem when it failed or gave no summary)."""
    rows: list[tuple[str, ...]] = []
    for bench, summary, problem in outcomes:
        figures = (summary or {}).get("rows") or []
        if problem is not None or not figures:
            rows.append((bench, "-", "-", "-", problem or "no figures"))
            continue
        for row in figures:
            target = row.get("target") or "-"
            rows.append((bench, str(row["measure"]), format_value(row), str(target), verdict(row)))
    return rows


def render(rows: Sequence[tuple[str, ...]]) -> str:
    """A Markdown table (it reads as a table in a terminal too, and pastes into
    bench/README.md)."""
    widths = [max(len(str(r[i])) for r in (COLUMNS, *rows)) for i in range(len(COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(COLUMNS), rule, *(line(r) for r in rows)])


def all_met(rows: Sequence[tuple[str, ...]]) -> bool:
    """Every row met or without target; none failed."""
    return all(row[4] in ("met", "-") for row in rows)


def run_one(bench: str, quick: bool, workdir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Run ``bench/<bench>.py`` (its output goes straight to ours); its summary, or the
    problem."""
    summary_file = workdir / f"{bench}.json"
    argv = [sys.executable, str(HERE / f"{bench}.py"), "--summary-json", str(summary_file)]
    argv += QUICK[bench] if quick else ()
    print(f"\n===== {bench}: {' '.join(argv[1:])}", flush=True)
    started = time.perf_counter()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    code = subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode
    print(f"===== {bench}: exit {code} in {time.perf_counter() - started:.0f} s", flush=True)
    summary = json.loads(summary_file.read_text("utf-8")) if summary_file.exists() else None
    if summary is None:
        return None, f"FAILED (exit {code}, no summary)"
    # a bench that missed its target may exit 1 with a summary: the rows say so
    return summary, None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs (smoke test)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset")
    parser.add_argument("--summary-json", type=Path, metavar="FILE",
                        help="also write every summary as one JSON object to FILE")  # fmt: skip
    args = parser.parse_args(argv)
    args.only = [name.strip().removesuffix(".py") for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(BENCHES))
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; from {', '.join(BENCHES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="ocirel-bench-run-") as tmp:
        for bench in (b for b in BENCHES if b in args.only):
            outcomes.append((bench, *run_one(bench, args.quick, Path(tmp))))
    rows = table_rows(outcomes)
    mode = "--quick (smoke test, not figures to quote)" if args.quick else "full"
    print(f"\nbench/run {mode}: {time.perf_counter() - started:.0f} s\n")
    print(render(rows))
    if args.summary_json is not None:
        document = {bench: summary for bench, summary, _problem in outcomes}
        args.summary_json.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0 if all_met(rows) else 1
