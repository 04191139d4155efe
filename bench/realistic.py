"""bench/realistic: ocirel publish against raw buildah on a realistic image.

An application ``FROM`` a real-sized base image that lives in the registry (not
``FROM scratch``): the base is built from directories of this machine (about 50 MB,
250 MB or 1 GB uncompressed, several layers), pushed to the bench registry as
``<host>/base/deb-<size>:1``, its local build tag removed and pulled back, so both
sides find it in local storage exactly as a CI machine that pulled it would.

Baseline (what the old scripts did): ``buildah build --layers`` then ``buildah push``
straight to the registry. ocirel: ``ocirel publish`` of an identical context (each
side has its own context and content, so neither reuses the other's layer cache).
Both sides use the storage ocirel chooses (ocirel/hostinfo.py ``choose_storage``),
run alternately, one uncounted warm-up each per case.

* Case A: 20 MB of fresh content per run, published into the same repository each
  run. Target: median ratio ocirel/raw <= 1.25.
* Case B: the same, but every run into a new repository. Target: median ratio <= 1.5,
  and ocirel uploads no byte of the base image's blobs. Reports the bytes each side
  uploaded as blobs (counted by an HTTP proxy in front of the registry, see _proxy.py),
  how many of them belong to the base image, and the cross-repository mount requests.
* Case C: a one-line change (a small text file) on top of a cached 20 MB app layer,
  on each base size and on ``FROM scratch`` (busybox). Reports ocirel's extra seconds
  over raw (median of the per-pair differences) and the ratio; neither should grow
  with the base size.

    python bench/realistic.py [--runs 5] [--cases A,B,C] [--sizes 50,250,1000,scratch]
    python bench/realistic.py --quick        # runs=3, sizes 50,250,scratch
    python bench/realistic.py --quick --cases A --records   # + ocirel --no-attach
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BUSYBOX,
    OCIREL,
    ROOT,
    add_summary_option,
    emit_summary,
    env_without_noise,
    figure,
    fuse_mounts,
    machine_load,
    ocirel_storage,
    registry,
    remove_images_labelled,
)
from _proxy import CountingProxy, Uploads, self_check

#: directories of this machine copied into each base image, one COPY (layer) each
BASE_DIRS: dict[str, tuple[str, ...]] = {
    "50": ("/usr/libexec", "/usr/share/zoneinfo"),
    "250": ("/usr/lib/python3", "/usr/libexec", "/usr/lib/python3.11"),
    "1000": (
        "/usr/lib/python3", "/usr/libexec", "/usr/lib/python3.11",
        "/usr/lib/jvm", "/usr/share/locale", "/usr/share/man",
    ),
}  # fmt: skip
APP_BYTES = 20_000_000
T = TypeVar("T")
TARGET_A, TARGET_B = 1.25, 1.5
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


@dataclass(frozen=True)
class Base:
    key: str  # "50", "250", "1000" or "scratch"
    ref: str  # what FROM names ("scratch" for none)
    uncompressed: int = 0
    compressed: int = 0
    layers: int = 0
    diff_ids: tuple[str, ...] = ()
    digests: frozenset[str] = frozenset()  # the base manifest's layer digests


@dataclass(frozen=True)
class Published:
    seconds: float
    digest: str
    build: float | None = None  # of which the build step (raw: ``buildah build``)


@dataclass
class Run:
    seconds: float
    uploads: Uploads
    base_bytes: int
    build: float | None = None


@dataclass
class Bench:
    host: str  # the counting proxy in front of the registry
    proxy: CountingProxy
    work: Path
    storage: list[str]
    label: str  # key=value on every image the bench builds (for the cleanup)
    env: dict[str, str]
    runs: int
    records: bool = False  # case A: a third side, ocirel publish --no-attach
    rows: list[dict[str, object]] = field(default_factory=list)


# ---------------------------------------------------------------- registry reads


def _get_json(url: str, accept: str = "") -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return dict(json.load(reply))


def manifest_and_config(host: str, repo: str, ref: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    manifest = _get_json(f"http://{host}/v2/{repo}/manifests/{ref}", ",".join(MANIFEST_TYPES))
    config_digest = manifest["config"]["digest"]  # type: ignore[index]
    return manifest, _get_json(f"http://{host}/v2/{repo}/blobs/{config_digest}")


def base_blobs_in(host: str, repo: str, digest: str, base: Base) -> set[str]:
    """The layer digests of the pushed image ``repo@digest`` that are the base's layers
    (same diff IDs, in order), plus the base manifest's own layer digests."""
    if not base.diff_ids:
        return set()
    manifest, config = manifest_and_config(host, repo, digest)
    diff_ids = tuple(config["rootfs"]["diff_ids"])  # type: ignore[index]
    layers = [layer["digest"] for layer in manifest["layers"]]  # type: ignore[index]
    if diff_ids[: len(base.diff_ids)] != base.diff_ids:
        raise RuntimeError(f"{repo}@{digest} is not built on {base.ref}")
    return set(layers[: len(base.diff_ids)]) | base.digests


# ------------------------------------------------------------------ base images


def run_child(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` that, on Ctrl-C or SIGTERM, gives the child the time to clean up
    (buildah unmounts and removes its working container on SIGTERM) instead of killing it."""
    with subprocess.Popen(argv, text=True, **kwargs) as child:  # type: ignore[call-overload]
        try:
            stdout, stderr = child.communicate()
        except KeyboardInterrupt:
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
    return subprocess.CompletedProcess(argv, child.returncode, stdout, stderr)


def _buildah(bench: Bench, *args: str) -> None:
    argv = ["buildah", *bench.storage, *args]
    result = run_child(argv, stdout=subprocess.DEVNULL)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, argv)


def build_base(bench: Bench, key: str) -> Base:
    """Build, push and pull back ``<host>/base/deb-<key>:1``; print what it took."""
    start = time.perf_counter()
    context = bench.work / f"base-{key}"
    shutil.rmtree(context, ignore_errors=True)  # a failed attempt's
    context.mkdir()
    lines = ["FROM scratch", f"LABEL {bench.label}"]
    for index, source in enumerate(BASE_DIRS[key]):
        subprocess.run(["cp", "-a", source, str(context / f"l{index}")], check=True)
        lines.append(f"COPY l{index} {source}")
    (context / "Containerfile").write_text("\n".join(lines) + "\n", encoding="utf-8")
    du = ["du", "-sb", "--exclude=Containerfile", str(context)]
    size = int(subprocess.run(du, check=True, capture_output=True, text=True).stdout.split()[0])
    local, ref = f"localhost/ocirel-bench-base-{key}:latest", f"{bench.host}/base/deb-{key}:1"
    _buildah(bench, "build", "--quiet", "--layers", "--isolation", "chroot", "-t", local,
             str(context))  # fmt: skip
    built = time.perf_counter() - start
    _buildah(bench, "push", "--quiet", "--tls-verify=false", local, f"docker://{ref}")
    # the local build tag goes; the image stays in storage under its registry name, as
    # on a machine that pulled it (neither side's timed build pulls it)
    _buildah(bench, "tag", local, ref)
    _buildah(bench, "rmi", local)
    shutil.rmtree(context)
    bench.proxy.take()
    manifest, config = manifest_and_config(bench.host, f"base/deb-{key}", "1")
    layers = manifest["layers"]  # type: ignore[index]
    base = Base(
        key, ref, size, sum(layer["size"] for layer in layers), len(layers),
        tuple(config["rootfs"]["diff_ids"]),  # type: ignore[index]
        frozenset(layer["digest"] for layer in layers),
    )  # fmt: skip
    print(
        f"base {ref}: {size / 1e6:.0f} MB uncompressed, {base.compressed / 1e6:.0f} MB "
        f"compressed, {base.layers} layers; built in {built:.1f} s, "
        f"built+pushed in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return base


# ---------------------------------------------------------------- app contexts


def app_context(bench: Bench, name: str, base: Base, body: str) -> Path:
    """A context dir ``name`` with a Containerfile ``FROM base`` + ``body``."""
    context = bench.work / name
    context.mkdir()
    if base.key == "scratch":
        shutil.copy2(BUSYBOX, context / "busybox")
        head = (
            f"FROM scratch\nLABEL {bench.label}\nCOPY busybox /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        )
    else:
        head = f"FROM {base.ref}\n"
    (context / "Containerfile").write_text(head + body, encoding="utf-8")
    return context


def fresh_app(context: Path) -> None:
    """Case A/B: 20 MB of new content in ``app/``."""
    (context / "app").mkdir(exist_ok=True)
    (context / "app" / "data.bin").write_bytes(os.urandom(APP_BYTES))


def one_line_change(context: Path, index: int) -> None:
    """Case C: the small text file ``main.txt`` gets a new line; ``lib/`` stays."""
    (context / "main.txt").write_text(
        f"# app entry point\nVERSION = 'run-{index}-{secrets.token_hex(4)}'\n", encoding="utf-8"
    )


# ------------------------------------------------------------------- the sides


def raw_publish(bench: Bench, context: Path, target: str) -> Published:
    """``buildah build --layers`` + ``buildah push`` to ``target``."""
    image = f"localhost/ocirel-bench-raw:{context.name}"
    digestfile = bench.work / "raw.digest"
    start = time.perf_counter()
    _buildah(bench, "build", "--quiet", "--layers", "--isolation", "chroot",
             "--tls-verify=false", "-t", image, str(context))  # fmt: skip
    built = time.perf_counter() - start
    _buildah(bench, "push", "--quiet", "--tls-verify=false", "--digestfile", str(digestfile),
             image, f"docker://{target}")  # fmt: skip
    # the image stays (the tag moves to the next run's image): ``buildah rmi`` would also
    # delete its untagged parents, the layer cache of the next run; ocirel keeps its
    # unnamed image for the same reason. The cleanup at the end removes them all.
    digest = digestfile.read_text(encoding="utf-8").strip()
    return Published(time.perf_counter() - start, digest, built)


def ocirel_publish(
    bench: Bench, context: Path, repo: str, lockfile: Path, *extra: str
) -> Published:
    """``ocirel publish`` of ``context`` to ``repo`` (``extra``: more options)."""
    argv = [*OCIREL, "publish", "--json", "--image", f"{bench.host}/{repo}",
            "--lockfile", str(lockfile), *extra, str(context)]  # fmt: skip
    start = time.perf_counter()
    result = run_child(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=bench.env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"ocirel publish failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return Published(seconds, str(json.loads(result.stdout)["digest"]))


def measured(bench: Bench, base: Base, repo: str, publish: Published) -> Run:
    uploads = bench.proxy.take()
    blobs = base_blobs_in(bench.host, repo, publish.digest, base)
    return Run(publish.seconds, uploads, uploads.bytes_of(blobs), publish.build)


def pairs(
    bench: Bench,
    raw_side: Callable[[int], Run],
    ocirel_side: Callable[[int], Run],
    third: Callable[[int], Run] | None = None,
) -> tuple[list[Run], list[Run], list[Run]]:
    """One uncounted warm-up of each side, then ``bench.runs`` alternating pairs (or
    triples, with ``third``: ocirel --no-attach)."""
    raws: list[Run] = []
    ocirels: list[Run] = []
    thirds: list[Run] = []
    for index in range(-1, bench.runs):
        raw_run = retrying(functools.partial(raw_side, index), f"raw run {index}")
        ocirel_run = retrying(functools.partial(ocirel_side, index), f"ocirel run {index}")
        third_run = (
            retrying(functools.partial(third, index), f"--no-attach run {index}") if third else None
        )
        if index >= 0:
            raws.append(raw_run)
            ocirels.append(ocirel_run)
            extra = ""
            if third_run is not None:
                thirds.append(third_run)
                extra = f"   ocirel --no-attach {third_run.seconds:6.2f} s"
            print(f"    run {index}: raw {raw_run.seconds:6.2f} s   "
                  f"ocirel {ocirel_run.seconds:6.2f} s{extra}", flush=True)  # fmt: skip
    return raws, ocirels, thirds


def retrying(step: Callable[[], T], what: str, attempts: int = 3) -> T:
    """``step()``, again after a failure (printed): other jobs on this machine may end
    our build's fuse-overlayfs mount (tests/integration/test_crash.py unmounts every
    fuse-overlayfs mount that appeared while it ran). A failed timed run is discarded."""
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            if attempt == attempts:
                raise
            print(f"    {what} failed (attempt {attempt}): {str(exc)[-300:]}; again", flush=True)
    raise AssertionError("unreachable")


# ------------------------------------------------------------------- the cases


def case_fresh_content(bench: Bench, base: Base, *, new_repo: bool) -> None:
    """Case A (same repository every run) or B (a new repository every run)."""
    case = "B" if new_repo else "A"
    where = "a new repository" if new_repo else "the same repository"
    print(f"\ncase {case}: 20 MB fresh app content, FROM {base.ref}, {where} each run", flush=True)
    body = "COPY app /app\n"
    sides = ("raw", "oc", "na") if bench.records and not new_repo else ("raw", "oc")
    contexts = {side: app_context(bench, f"{case}-{side}", base, body) for side in sides}

    def repo(side: str, index: int) -> str:
        return f"bench-{case.lower()}/{side}" + (f"-{index + 1}" if new_repo else "")

    def raw(index: int) -> Run:
        fresh_app(contexts["raw"])
        bench.proxy.take()
        target = f"{bench.host}/{repo('raw', index)}:r{index + 1}"
        published = raw_publish(bench, contexts["raw"], target)
        return measured(bench, base, repo("raw", index), published)

    def ocirel(index: int, side: str = "oc") -> Run:
        fresh_app(contexts[side])
        bench.proxy.take()
        lockfile = bench.work / f"{case}-{side}-{index + 1 if new_repo else 0}.lock.json"
        extra = ("--no-attach",) if side == "na" else ()
        published = ocirel_publish(bench, contexts[side], repo(side, index), lockfile, *extra)
        return measured(bench, base, repo(side, index), published)

    third = functools.partial(ocirel, side="na") if "na" in contexts else None
    raws, ocirels, thirds = pairs(bench, raw, ocirel, third)
    bench.rows.append(summarise(case, base, raws, ocirels, TARGET_B if new_repo else TARGET_A))
    if thirds:
        with_record = statistics.median(r.seconds for r in ocirels)
        without = statistics.median(r.seconds for r in thirds)
        ratio = with_record / without
        spread = ", ".join(f"{r.seconds:.2f}" for r in thirds)
        paired = statistics.median(
            o.seconds - t.seconds for o, t in zip(ocirels, thirds, strict=True)
        )
        print(f"  --no-attach median {without:7.2f} s  (runs: {spread})")
        print(f"  the record's cost: {paired:+.2f} s (median of per-run differences "
              "ocirel - ocirel --no-attach)")  # fmt: skip
        print(f"  ratio with/without the build record {ratio:.3f} "
              f"(target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")  # fmt: skip


def case_one_line(bench: Bench, base: Base) -> None:
    """Case C: one small text file changes per run, the 20 MB app layer stays cached."""
    print(f"\ncase C: one-line change, cached 20 MB app layer, FROM {base.ref}", flush=True)
    body = "COPY lib /app/lib\nCOPY main.txt /app/main.txt\n"
    contexts = {}
    for side in ("raw", "oc"):
        contexts[side] = context = app_context(bench, f"C-{base.key}-{side}", base, body)
        (context / "lib").mkdir()
        (context / "lib" / "app.bin").write_bytes(os.urandom(APP_BYTES))

    def side_run(side: str, index: int) -> Run:
        one_line_change(contexts[side], index)
        bench.proxy.take()
        repo = f"bench-c/{base.key}/{side}"
        if side == "raw":
            publish = raw_publish(bench, contexts[side], f"{bench.host}/{repo}:r{index + 1}")
        else:
            lockfile = bench.work / f"C-{base.key}.lock.json"
            publish = ocirel_publish(bench, contexts[side], repo, lockfile)
        return measured(bench, base, repo, publish)

    raws, ocirels, _ = pairs(bench, lambda i: side_run("raw", i), lambda i: side_run("oc", i))
    bench.rows.append(summarise("C", base, raws, ocirels, None))


def summarise(
    case: str, base: Base, raws: list[Run], ocirels: list[Run], target: float | None
) -> dict[str, object]:
    raw_s = statistics.median(r.seconds for r in raws)
    oc_s = statistics.median(r.seconds for r in ocirels)
    differences = [o.seconds - r.seconds for r, o in zip(raws, ocirels, strict=True)]
    row: dict[str, object] = {
        "case": case, "base": base.key, "raw": raw_s, "ocirel": oc_s, "ratio": oc_s / raw_s,
        "extra": statistics.median(differences), "target": target,
    }  # fmt: skip
    for name, runs in (("raw", raws), ("ocirel", ocirels)):
        row[f"{name}_bytes"] = statistics.median(r.uploads.total for r in runs)
        row[f"{name}_base_bytes"] = statistics.median(r.base_bytes for r in runs)
        row[f"{name}_mounts"] = statistics.median(len(r.uploads.mounts) for r in runs)
        row[f"{name}_mounted"] = statistics.median(
            sum(m.mounted for m in r.uploads.mounts) for r in runs
        )
        spread = ", ".join(f"{r.seconds:.2f}" for r in runs)
        print(f"  {name:<6} median {row[name]:7.2f} s  (runs: {spread})")
    builds = [r.build for r in raws if r.build is not None]
    if builds:
        build = statistics.median(builds)
        print(f"  raw    of which buildah build median {build:.2f} s, buildah push "
              f"{statistics.median(r.seconds - (r.build or 0) for r in raws):.2f} s")  # fmt: skip
    print(f"  ratio ocirel/raw {row['ratio']:.3f}, ocirel extra {row['extra']:+.2f} s "
          f"(median of per-pair differences)")  # fmt: skip
    print_uploads(row)
    return row


def print_uploads(row: dict[str, object]) -> None:
    for name in ("raw", "ocirel"):
        print(
            f"  {name:<6} uploaded {row[f'{name}_bytes'] / 1e6:8.2f} MB as blobs per run "
            f"(base-image blobs {row[f'{name}_base_bytes'] / 1e6:.2f} MB), "  # type: ignore[operator]
            f"mount requests {row[f'{name}_mounts']:.0f} ({row[f'{name}_mounted']:.0f} mounted)"
        )


# ----------------------------------------------------------------------- report


def print_summary(bench: Bench) -> None:
    print("\nsummary (medians; seconds; MB = 10^6 bytes uploaded as blobs per run)")
    head = (
        f"{'case':<4} {'base':>7} {'raw s':>7} {'ocirel s':>8} {'extra s':>8} {'ratio':>6} "
        f"{'target':>7} {'raw MB':>7} {'(base)':>7} {'oc MB':>7} {'(base)':>7} "
        f"{'mounts raw/oc':>13}"
    )
    print(head)
    for row in bench.rows:
        target = row["target"]
        verdict = "-" if target is None else ("met" if row["ratio"] <= target else "NOT met")  # type: ignore[operator]
        print(
            f"{row['case']:<4} {row['base']:>7} {row['raw']:7.2f} {row['ocirel']:8.2f} "
            f"{row['extra']:+8.2f} {row['ratio']:6.3f} {verdict:>7} "
            f"{row['raw_bytes'] / 1e6:7.1f} {row['raw_base_bytes'] / 1e6:7.1f} "  # type: ignore[operator]
            f"{row['ocirel_bytes'] / 1e6:7.1f} {row['ocirel_base_bytes'] / 1e6:7.1f} "  # type: ignore[operator]
            f"{row['raw_mounts']:>6.0f}/{row['ocirel_mounts']:<6.0f}"
        )
    for row in bench.rows:
        if row["case"] == "B":
            zero = row["ocirel_base_bytes"] == 0
            print(f"case B base-image bytes uploaded by ocirel: {row['ocirel_base_bytes']:.0f} "
                  f"(target 0: {'met' if zero else 'NOT met'})")  # fmt: skip


def summary_rows(bench: Bench) -> list[dict[str, object]]:
    """The figures for bench/run: each case's ratio (A and B against their targets, C
    with ocirel's extra seconds), and case B's base-image bytes (target 0)."""
    rows = []
    for row in bench.rows:
        target = row["target"]
        ratio = float(row["ratio"])  # type: ignore[arg-type]
        rows.append(figure(
            f"case {row['case']} {row['base']}: ocirel / raw", ratio, "ratio",
            None if target is None else f"<= {target}",
            None if target is None else ratio <= float(target),  # type: ignore[arg-type]
            f"extra {float(row['extra']):+.2f} s",  # type: ignore[arg-type]
        ))  # fmt: skip
        if row["case"] == "B":
            base_bytes = float(row["ocirel_base_bytes"])  # type: ignore[arg-type]
            rows.append(figure("case B: base-image bytes uploaded by ocirel", base_bytes,
                               "bytes", "0", base_bytes == 0))  # fmt: skip
    return rows


def print_setup(storage: list[str], reason: str, label: str) -> None:
    print("command:", shlex.join([sys.executable, *sys.argv]))
    git = ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cs", "--", "ocirel"]
    commit = subprocess.run(git, check=False, capture_output=True, text=True).stdout.strip()
    print(f"ocirel code at: {commit} (last commit touching ocirel/)")
    print(f"load average at start: {machine_load()} on {os.cpu_count()} CPUs")
    print(f"storage (both sides): buildah {shlex.join(storage) or '(builder default)'}")
    print(f"  ocirel's reason: {reason}")
    print(
        "both sides: --isolation chroot, --layers, the base already in storage.\n"
        "differs: raw builds and pushes with --tls-verify=false (ocirel's build has no such\n"
        "  flag and needs none, the base is local; its uploads use http to the loopback\n"
        "  registry by itself); ocirel exports an OCI layout, stamps OCI labels into the\n"
        "  config, uploads the blobs itself and claims the next version tag; no --timestamp\n"
        "  on either side (SOURCE_DATE_EPOCH unset, the contexts are not in git).\n"
        f"images built carry the label {label} (removed at the end)",
        flush=True,
    )


# ------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", default="A,B,C")
    parser.add_argument("--sizes", default="50,250,1000,scratch", help="case C base sizes")
    parser.add_argument("--quick", action="store_true", help="runs=3, sizes 50,250,scratch")
    add_summary_option(parser)
    parser.add_argument(
        "--records",
        action="store_true",
        help="case A: also time ocirel publish --no-attach (what the build record costs)",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.sizes = 3, "50,250,scratch"
    args.cases = [c.strip().upper() for c in args.cases.split(",") if c.strip()]
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    bad = [s for s in args.sizes if s != "scratch" and s not in BASE_DIRS]
    if bad or set(args.cases) - {"A", "B", "C"}:
        parser.error(f"cases from A,B,C; sizes from {','.join(BASE_DIRS)},scratch")
    return args


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM ends the bench like Ctrl-C does: through every cleanup below."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cases(bench: Bench, args: argparse.Namespace) -> None:
    needed = sorted({s for s in args.sizes if "C" in args.cases and s != "scratch"}
                    | ({"250"} if {"A", "B"} & set(args.cases) else set()), key=int)  # fmt: skip
    bases = {key: retrying(lambda k=key: build_base(bench, k), f"base {key}") for key in needed}
    bases["scratch"] = Base("scratch", "scratch")
    if "A" in args.cases:
        case_fresh_content(bench, bases["250"], new_repo=False)
    if "B" in args.cases:
        case_fresh_content(bench, bases["250"], new_repo=True)
    if "C" in args.cases:
        for key in args.sizes:
            case_one_line(bench, bases[key])


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocirel-bench-realistic-"))
    storage, reason = ocirel_storage(work)
    label = f"ocirel-bench={secrets.token_hex(4)}"
    print_setup(storage, reason, label)
    mounts = fuse_mounts()
    env = env_without_noise()
    env.pop("SOURCE_DATE_EPOCH", None)
    started = time.perf_counter()
    try:
        with interruptible(), registry() as upstream, CountingProxy(upstream) as proxy:
            print(f"registry {upstream}, counting proxy {proxy.host}: {self_check(proxy)}")
            bench = Bench(proxy.host, proxy, work, storage, label, env, args.runs, args.records)
            run_cases(bench, args)
            print_summary(bench)
            emit_summary("realistic", summary_rows(bench), args.summary_json)
    finally:
        left = remove_images_labelled(storage, label)
        shutil.rmtree(work, ignore_errors=True)
        print(f"\ncleanup: {'all bench images removed' if not left else f'{left} images left'}; "
              f"wall time {time.perf_counter() - started:.0f} s; "
              f"load average at end: {machine_load()}")  # fmt: skip
        print(f"fuse-overlayfs mounts: {mounts} before, {fuse_mounts()} after "
              "(all users of the machine)")  # fmt: skip


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted (cleaned up)")
