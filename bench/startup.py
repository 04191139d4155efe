"""bench/startup: how long ``ocirel --version`` and ``ocirel next --help`` take.

Target: median wall time at most 150 ms each. Printed against the bare interpreter
(``python -c pass``) measured in the same run, so the ratio shows what ocirel adds.

    python bench/startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OCIREL, add_summary_option, alternate, emit_summary, figure, report, timed

TARGET_MS = 150.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    add_summary_option(parser)
    args = parser.parse_args()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    results = alternate(
        args.runs,
        {
            "python -c pass": lambda _: timed([sys.executable, "-c", "pass"], **quiet),
            "ocirel --version": lambda _: timed([*OCIREL, "--version"], **quiet),
            "ocirel next --help": lambda _: timed([*OCIREL, "next", "--help"], **quiet),
        },
    )
    medians = report("start-up", results)
    base = medians["python -c pass"]
    rows = []
    for name in ("ocirel --version", "ocirel next --help"):
        ms = medians[name] * 1000
        verdict = "met" if ms <= TARGET_MS else "NOT met"
        print(
            f"{name:<20} {ms:6.1f} ms = {medians[name] / base:.2f} x bare python  "
            f"(target <= {TARGET_MS:.0f} ms: {verdict})"
        )
        rows.append(figure(f"{name} median", ms, "ms", f"<= {TARGET_MS:.0f} ms", ms <= TARGET_MS,
                           f"{medians[name] / base:.2f} x bare python"))  # fmt: skip
    emit_summary("startup", rows, args.summary_json)


if __name__ == "__main__":
    main()
