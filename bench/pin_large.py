"""bench/pin_large: ``ocirel pin``, ``pin --check`` and ``lint`` on one large manifest.

The file: an argo-cd ``install.yaml``-shaped manifest (``_argocd.py``: about 2.3 MB,
34,500 lines, three CRDs with long openAPI schemas, six Deployments and a StatefulSet,
ten image references) repeated as one multi-document stream up to each size (5, 20
and 50 MB by default; 50 MB is about 750,000 lines and 220 references). A lockfile
names the three repositories, so ``pin`` rewrites every reference; no registry.

Baseline: a bare libyaml parse of the same file in a fresh interpreter, ``text =
open(path).read()`` then ``for _ in yaml.compose_all(text, Loader=yaml.CSafeLoader)``.
Each side runs in its own child process (interpreter start-up included on both
sides), alternately (bare, check, lint, pin, diff, bare, …); ``pin`` gets a fresh copy of
the file before each run (not timed). Wall time and the child's peak resident
memory (``ru_maxrss`` from ``wait4``) are recorded per run; figures are medians.

Target (issue 13): at 50 MB ``pin``, ``pin --check`` and ``lint`` each within 4x the
bare parse, with a peak under 400 MB. ``pin --diff`` (stdout discarded) is shown too.

    python bench/pin_large.py [--runs 3] [--sizes 5,20,50]

Prints, per size: each side's median time and peak memory, the ratio ocirel / bare
parse, and the seconds per MB (how the cost grows with size).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _argocd import IMAGES, REFERENCES_PER_COPY, install_yaml
from _common import OCIREL, ROOT, add_summary_option, emit_summary, env_without_noise, figure

from ocirel import lockfile
from ocirel.lockfile import LockEntry, Lockfile

TARGET_RATIO = 4.0
TARGET_PEAK_MB = 400
BARE = (
    "import sys, yaml\n"
    "text = open(sys.argv[1], encoding='utf-8').read()\n"
    "for _ in yaml.compose_all(text, Loader=yaml.CSafeLoader):\n"
    "    pass\n"
)
SIDES = ("bare parse", "pin --check", "lint", "pin", "pin --diff")
#: The issue's target covers these; ``pin --diff`` is measured and shown beside them.
TARGETED = ("pin --check", "lint", "pin")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    returncode: int
    stderr: str


def child(argv: list[str], cwd: Path) -> Run:
    """Run ``argv`` to the end; its wall time and its own peak RSS."""
    env = env_without_noise()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        tail = stderr.read()[-2000:].decode(errors="replace")
    return Run(seconds, usage.ru_maxrss / 1024, process.returncode, tail)


def make_tree(directory: Path, megabytes: int) -> tuple[Path, int]:
    """``install.yaml`` of at least ``megabytes`` MB and its lockfile; the reference count."""
    copy = install_yaml()
    copies = max(1, -(-megabytes * 1_000_000 // len(copy)))
    pristine = directory / "pristine.yaml"
    pristine.write_text("---\n".join([copy] * copies), encoding="utf-8")
    digest = "sha256:" + "ab" * 32
    entries = {}
    for image in IMAGES:
        repository, tag = image.rsplit(":", 1)
        name = repository.rsplit("/", 1)[1]
        entries[name] = LockEntry(name, repository, tag, digest)
    (directory / "ocirel.lock.json").write_text(lockfile.dumps(Lockfile(entries)))
    return pristine, copies * REFERENCES_PER_COPY


def measure(directory: Path, pristine: Path, references: int, runs: int) -> dict[str, list[Run]]:
    target = directory / "install.yaml"
    shutil.copyfile(pristine, target)
    argv = {
        "bare parse": [sys.executable, "-c", BARE, str(target)],
        "pin --check": [*OCIREL, "pin", "--check", str(target)],
        "lint": [*OCIREL, "lint", str(target)],
        "pin": [*OCIREL, "pin", str(target)],
        "pin --diff": [*OCIREL, "pin", "--diff", str(target)],
    }
    expected_codes = {"bare parse": 0, "pin --check": 1, "lint": 1, "pin": 0, "pin --diff": 0}
    results: dict[str, list[Run]] = {side: [] for side in SIDES}
    for _ in range(runs):
        for side in SIDES:
            shutil.copyfile(pristine, target)
            run = child(argv[side], directory)
            if run.returncode != expected_codes[side]:
                raise SystemExit(f"{side} exited {run.returncode}:\n{run.stderr}")
            results[side].append(run)
            if side == "pin":
                pinned = target.read_text(encoding="utf-8").count("@sha256:")
                if pinned != references:
                    raise SystemExit(f"pin wrote {pinned} digests, expected {references}")
    return results


def report(
    megabytes: float, results: dict[str, list[Run]], rows: list[dict[str, Any]] | None = None
) -> bool:
    """Print the figures of one size; append the targeted sides' rows to ``rows``."""
    bare = statistics.median(r.seconds for r in results["bare parse"])
    met = True
    print(f"\n{megabytes:.1f} MB")
    for side in SIDES:
        seconds = statistics.median(r.seconds for r in results[side])
        peak = max(r.peak_mb for r in results[side])
        ratio = seconds / bare
        line = f"  {side:<12} median {seconds:7.2f} s  ({seconds / megabytes:.3f} s/MB)"
        line += f"  peak {peak:6.0f} MB"
        if side in TARGETED:
            ok = ratio <= TARGET_RATIO and peak < TARGET_PEAK_MB
            met = met and ok
            line += f"  ratio {ratio:4.2f}  {'ok' if ok else 'MISSED'}"
            if rows is not None:
                rows.append(figure(
                    f"{side} / bare parse at {megabytes:.1f} MB", ratio, "ratio",
                    f"<= {TARGET_RATIO:g}, peak < {TARGET_PEAK_MB} MB", ok, f"peak {peak:.0f} MB",
                ))  # fmt: skip
        elif side != "bare parse":
            line += f"  ratio {ratio:4.2f}  (not a target)"
        print(line + "  runs: " + ", ".join(f"{r.seconds:.2f}" for r in results[side]))
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="5,20,50", help="file sizes in MB")
    add_summary_option(parser)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    met = True
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ocirel-pin-large-") as tmp:
        for megabytes in (int(size) for size in args.sizes.split(",")):
            directory = Path(tmp, f"{megabytes}mb")
            directory.mkdir()
            pristine, references = make_tree(directory, megabytes)
            size = pristine.stat().st_size / 1_000_000
            lines = pristine.read_bytes().count(b"\n")
            print(f"\ninstall.yaml: {size:.1f} MB, {lines:,} lines, {references} image references")
            size_rows: list[dict[str, Any]] = []
            results = measure(directory, pristine, references, args.runs)
            met = report(size, results, size_rows) and met
            rows = size_rows  # the summary: the largest size (the target is at 50 MB)
    print(
        f"\ntarget: each <= {TARGET_RATIO:g}x bare parse, peak < {TARGET_PEAK_MB} MB: "
        f"{'met' if met else 'MISSED'}"
    )
    emit_summary("pin_large", rows, args.summary_json)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
