"""bench/publish_overhead: what ocirel adds to a raw buildah build + push.

Baseline (what the old scripts did): ``buildah build`` then ``buildah push
--digestfile`` to the registry. ocirel: ``ocirel publish`` of the same context.
Both run alternately; every run writes a fresh 20 MB layer (a new NONCE build
argument invalidates the RUN step), so every push uploads real bytes.

Target: ocirel's median wall time at most 1.20 x the baseline's (issue 11).

    python bench/publish_overhead.py [--runs 9] [--records] [--breakdown] [--compare-tree DIR]

``--records`` adds a third side, ``ocirel publish --no-attach``: the build record's
cost (issue 15: at most 5 %), as the ratio of medians and the median of the per-run
differences.

``--breakdown`` runs one warm-up publish, then one publish of fresh content under
``bench/_trace.py``: every builder command, HTTP exchange and publish phase on a time
line (ms from the start, with the thread), instead of the timed runs.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NONCE_APP,
    OCIREL,
    add_summary_option,
    alternate,
    busybox_context,
    emit_summary,
    env_without_noise,
    figure,
    raw_build_and_push,
    registry,
    remove_raw_images,
    report,
    timed,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--records",
        action="store_true",
        help="also time ocirel publish --no-attach: what the build record costs",
    )
    add_summary_option(parser)
    parser.add_argument(
        "--breakdown", action="store_true", help="trace one publish instead of timing runs"
    )
    parser.add_argument(
        "--compare-tree",
        type=Path,
        help="also time the ocirel/ of this source tree (e.g. a checkout of main), "
        "alternating with the others: a before/after under the same load",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocirel-bench-"))
    context = busybox_context(work / "ctx", NONCE_APP)
    env = env_without_noise()
    run = secrets.token_hex(4)  # fresh content per invocation: no cache from an earlier run
    with registry() as host:

        def raw(index: int) -> float:
            return raw_build_and_push(host, context, work, f"raw-{run}-{index}", index)

        def ocirel(index: int, *extra: str) -> float:
            return timed(
                [
                    *OCIREL,
                    "publish",
                    "--image",
                    f"{host}/bench/ocirel",
                    "--lockfile",
                    str(work / "ocirel.lock.json"),
                    "--build-arg",
                    f"NONCE=ocirel-{run}-{index}{'-'.join(extra)}",
                    *extra,
                    str(context),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )

        def no_record(index: int) -> float:  # issue 15: the build record's cost
            return ocirel(index, "--no-attach")

        def other_tree(index: int) -> float:  # `python -m` puts the cwd first on sys.path
            tree = args.compare_tree.resolve()
            argv = [*OCIREL, "publish", "--image", f"{host}/bench/other", "--lockfile",
                    str(work / "other.lock.json"), "--build-arg", f"NONCE=other-{run}-{index}",
                    str(context)]  # fmt: skip
            return timed(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tree,
                         env={**env, "PYTHONPATH": str(tree)})  # fmt: skip

        if args.breakdown:
            ocirel(1000)  # warm-up: the busybox steps are cached, as in the timed runs
            argv = [
                "publish", "--image", f"{host}/bench/ocirel", "--lockfile",
                str(work / "ocirel.lock.json"), "--build-arg", f"NONCE=ocirel-{run}-1001",
                str(context),
            ]  # fmt: skip
            trace = Path(__file__).resolve().parent / "_trace.py"
            subprocess.run([sys.executable, str(trace), *argv], env=env, check=True)
            return
        # one warm-up of each, not counted (page cache, base layers in storage)
        raw(1000)
        ocirel(1000)
        sides = {"raw buildah build+push": raw, "ocirel publish": ocirel}
        if args.records:
            sides["ocirel publish --no-attach"] = no_record
        if args.compare_tree:
            other_tree(1000)
            sides[f"ocirel publish ({args.compare_tree.name})"] = other_tree
        results = alternate(args.runs, sides)
    remove_raw_images(context)
    medians = report("publish overhead (20 MB fresh layer per run)", results)
    ratio = medians["ocirel publish"] / medians["raw buildah build+push"]
    print(
        f"\nratio ocirel/raw = {ratio:.3f}  "
        f"(target <= 1.20: {'met' if ratio <= 1.20 else 'NOT met'})"
    )
    # the same runs paired (each ocirel run with the raw run just before it): how much
    # of the ratio's swing between invocations is the machine's, not ocirel's
    pairs = list(zip(results["raw buildah build+push"], results["ocirel publish"], strict=True))
    print(
        f"paired: median ratio {statistics.median(o / r for r, o in pairs):.3f}, median extra "
        f"{statistics.median(o - r for r, o in pairs) * 1000:+.0f} ms; runs (raw/ocirel s): "
        + " ".join(f"{r:.2f}/{o:.2f}" for r, o in pairs)
    )
    rows = [figure("ocirel publish / raw build+push", ratio, "ratio", "<= 1.20", ratio <= 1.20)]
    if args.compare_tree:
        other = medians[f"ocirel publish ({args.compare_tree.name})"]
        print(
            f"ratio {args.compare_tree.name}/raw = {other / medians['raw buildah build+push']:.3f}"
        )
    if "ocirel publish --no-attach" in medians:
        record = medians["ocirel publish"] / medians["ocirel publish --no-attach"]
        paired = statistics.median(
            a - b
            for a, b in zip(
                results["ocirel publish"], results["ocirel publish --no-attach"], strict=True
            )
        )
        print(f"the record's cost: {paired * 1000:+.1f} ms (median of per-run differences)")
        print(
            f"ratio with/without the build record = {record:.3f}  "
            f"(target <= 1.05: {'met' if record <= 1.05 else 'NOT met'})"
        )
        rows.append(figure("with / without the build record", record, "ratio", "<= 1.05",
                           record <= 1.05))  # fmt: skip
    emit_summary("publish_overhead", rows, args.summary_json)


if __name__ == "__main__":
    main()
