"""bench/noop: what an unchanged re-publish costs, against a first publish.

On the app of bench/publish_overhead (a fresh 20 MB layer per NONCE), alternating:

* first publish: ``ocirel publish`` of new content to a new repository;
* unchanged re-publish: ``ocirel publish`` of the same context again (all layers
  cached, the registry already holds the same content → no push, no new tag);
* old-script baseline: ``buildah build --no-cache`` + ``buildah push`` (what the
  old shell scripts did every time, new tag or not).

Target: the unchanged re-publish takes at most 30 % of the first publish's median
wall time and pushes no bytes (checked: the registry's blob store does not grow).

``--breakdown`` instead runs one first publish and one unchanged re-publish, the latter
with every subprocess (ocirel.runner.run) and HTTP exchange (the transport's session)
timed, and prints them on a time line from the start of the process: which call, how
long, in which thread (sequential or overlapped).

    python bench/noop.py [--runs 7] [--breakdown]
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


def blob_count(data_dir: Path) -> int:
    blobs = data_dir / "docker" / "registry" / "v2" / "blobs"
    return sum(1 for path in blobs.rglob("data")) if blobs.exists() else 0


#: run in a child ``python -c``: ocirel's CLI with its two choke points timed
TRACED = r"""
import sys, threading, time
start = time.perf_counter()
from ocirel import runner
from ocirel.transport import session
events = []
def timed(kind, describe, call):
    def wrapper(*args, **kwargs):
        begin = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            events.append((begin - start, time.perf_counter() - start,
                           threading.current_thread().name, kind, describe(*args)))
    return wrapper
runner.run = timed("exec", lambda argv, *a: " ".join(a for a in argv
                   if not a.startswith(("/", "overlay.")))[:90], runner.run)
session.HttpSession.exchange = timed("http", lambda _s, method, url, *a:
    f"{method} {url.split('/v2', 1)[-1][:80]}", session.HttpSession.exchange)
from ocirel.entry import main
sys.argv = ["ocirel", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
end = time.perf_counter() - start
print(f"imports and set-up before the first call: {min(e[0] for e in events) * 1000:.0f} ms")
for begin, finish, thread, kind, what in sorted(events):
    print(f"{begin * 1000:7.0f} {finish * 1000:7.0f} {(finish - begin) * 1000:6.0f} ms "
          f"{thread[:12]:12} {kind:4} {what}")
print(f"{end * 1000:7.0f} end of the run (interpreter start not included)")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--breakdown", action="store_true", help="time one unchanged run")
    add_summary_option(parser)
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

        if args.breakdown:
            first(1000)
            publish("bench/noop1000", f"{run}-1000")  # warm: the same state as the bench
            argv = [
                "publish", "--image", f"{host}/bench/noop1000", "--lockfile",
                str(work / "bench-noop1000.lock.json"), "--build-arg", f"NONCE={run}-1000",
                str(context),
            ]  # fmt: skip
            subprocess.run([sys.executable, "-c", TRACED, *argv], env=env, check=True,
                           stderr=subprocess.DEVNULL)  # fmt: skip
            return

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
    emit_summary("noop", [
        figure("unchanged re-publish / first publish", to_first, "ratio", "<= 0.30",
               to_first <= 0.30),
        figure("blobs written by unchanged re-publishes", sum(grew), "count", "0", sum(grew) == 0),
        figure("unchanged re-publish / old script (--no-cache)", to_old, "ratio"),
    ], args.summary_json)  # fmt: skip


if __name__ == "__main__":
    main()
