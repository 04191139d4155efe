"""bench/noop: what an unchanged re-publish costs, against a first publish.

On the app of bench/publish_overhead (a fresh 20 MB layer per NONCE), alternating:

* first publish: ``ocirel publish`` of new content to a new repository;
* unchanged re-publish: ``ocirel publish`` of the same context again (all layers
  cached, the registry already holds the same content → no push, no new tag);
* old-script baseline: ``buildah build --no-cache`` + ``buildah push`` (what the
  old shell scripts did every time, new tag or not).

Target: the unchanged re-publish takes at most 30 % of the first publish's median
wall time and pushes no bytes (checked: the registry's blob store does not grow).

    python bench/noop.py [--runs 7]
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NONCE_APP,
    OCIREL,
    alternate,
    busybox_context,
    env_without_noise,
    raw_build_and_push,
    registry,
    remove_raw_images,
    report,
    timed,
)


def blob_count(data_dir: Path) -> int:
    blobs = data_dir / "docker" / "registry" / "v2" / "blobs"
    return sum(1 for path in blobs.rglob("data")) if blobs.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocirel-bench-noop-"))
    context = busybox_context(work / "ctx", NONCE_APP)
    # the baseline's steps must not become ocirel's layer cache: they carry wall-clock
    # times, which a reproducible build refuses (it rebuilds without the cache)
    raw_context = busybox_context(work / "raw-ctx", NONCE_APP, side="raw")
    env = env_without_noise()
    env["SOURCE_DATE_EPOCH"] = "1700000000"
    grew: list[int] = []
    run = secrets.token_hex(4)  # fresh content per invocation: no cache from an earlier run
    with registry(with_data_dir=True) as (host, data_dir):

        def publish(repo: str, nonce: str) -> float:
            return timed(
                [
                    *OCIREL,
                    "publish",
                    "--image",
                    f"{host}/{repo}",
                    "--lockfile",
                    str(work / f"{repo.replace('/', '-')}.lock.json"),
                    "--build-arg",
                    f"NONCE={nonce}",
                    str(context),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )

        def first(index: int) -> float:
            return publish(f"bench/noop{index}", f"{run}-{index}")

        def unchanged(index: int) -> float:
            before = blob_count(data_dir)
            seconds = publish(f"bench/noop{index}", f"{run}-{index}")
            grew.append(blob_count(data_dir) - before)
            return seconds

        def baseline(index: int) -> float:
            return raw_build_and_push(
                host, raw_context, work, f"raw-{run}-{index}", index, no_cache=True
            )

        first(1000)
        unchanged(1000)
        grew.clear()
        results = alternate(
            args.runs,
            {
                "first publish": first,
                "unchanged re-publish": unchanged,
                "old script (--no-cache)": baseline,
            },
        )
    remove_raw_images(raw_context)
    medians = report("unchanged re-publish (20 MB layer app)", results)
    to_first = medians["unchanged re-publish"] / medians["first publish"]
    to_old = medians["unchanged re-publish"] / medians["old script (--no-cache)"]
    print(
        f"\nratio unchanged/first publish = {to_first:.3f}  "
        f"(target <= 0.30: {'met' if to_first <= 0.30 else 'NOT met'})"
    )
    print(f"ratio unchanged/old script    = {to_old:.3f}")
    print(
        f"blobs written by unchanged re-publishes: {sum(grew)} "
        f"({'no bytes pushed' if sum(grew) == 0 else 'PUSHED SOMETHING'})"
    )


if __name__ == "__main__":
    main()
