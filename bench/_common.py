"""Shared pieces of the benchmark scripts: a throwaway registry, timing, reporting.

Benchmarks print ratios against a baseline measured in the same process, with the
runs of both sides alternating, so machine noise hits both equally.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OCIREL = [sys.executable, "-m", "ocirel"]
BUSYBOX = Path("/usr/bin/busybox")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def registry(*, with_data_dir: bool = False) -> Iterator[Any]:
    """A plain-http distribution registry on loopback; yields ``127.0.0.1:PORT``
    (and its storage directory, with ``with_data_dir``)."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        sys.exit("bench: needs the distribution registry (apt-get install docker-registry)")
    workdir = Path(tempfile.mkdtemp(prefix="ocirel-bench-registry-"))
    port = free_port()
    (workdir / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [binary, "serve", str(workdir / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            time.sleep(0.05)
        host = f"127.0.0.1:{port}"
        yield (host, workdir / "data") if with_data_dir else host
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


#: The app of bench/publish_overhead and bench/noop: a fresh 20 MB layer per NONCE.
NONCE_APP = "ARG NONCE\nRUN head -c 20000000 /dev/urandom > /data && echo $NONCE > /nonce\n"


def busybox_context(directory: Path, body: str, *, side: str = "") -> Path:
    """A build context FROM scratch with a static busybox shell, plus ``body``.
    ``side`` gives a side its own layer cache (a different first step)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, directory / "busybox")
    marker = f"LABEL bench.side={side}\n" if side else ""
    (directory / "Containerfile").write_text(
        "FROM scratch\n" + marker + "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n' + body,
        encoding="utf-8",
    )
    return directory


def timed(argv: list[str], **kwargs: object) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start


def alternate(runs: int, sides: dict[str, Callable[[int], float]]) -> dict[str, list[float]]:
    """Run each side ``runs`` times, interleaved (a, b, a, b, …)."""
    results: dict[str, list[float]] = {name: [] for name in sides}
    for index in range(runs):
        for name, side in sides.items():
            results[name].append(side(index))
    return results


def report(title: str, results: dict[str, list[float]]) -> dict[str, float]:
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(f"\n{title}")
    for name, values in results.items():
        print(
            f"  {name:<28} median {medians[name] * 1000:8.1f} ms  "
            f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f}, n={len(values)})"
        )
    return medians


# ------------------------------------------------ summaries, for bench/run

#: the prefix of the one machine-readable line each bench prints at its end
SUMMARY_PREFIX = "BENCH-SUMMARY "


def add_summary_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--summary-json",
        type=Path,
        metavar="FILE",
        help="also write the figures against their targets as JSON to FILE (bench/run)",
    )


def figure(
    measure: str,
    value: float,
    unit: str,
    target: str | None = None,
    met: bool | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """One row of a bench's summary: ``value`` (``unit``: ``ratio``, ``ms``, ``s``,
    ``count``) against ``target`` (e.g. ``"<= 1.20"``), ``met`` or not (None: no target)."""
    return {"measure": measure, "value": value, "unit": unit, "target": target,
            "met": met, "note": note}  # fmt: skip


def emit_summary(bench: str, rows: list[dict[str, Any]], path: Path | None) -> None:
    """Print the summary as one ``BENCH-SUMMARY {json}`` line, and write it to ``path``."""
    document = {"bench": bench, "rows": rows}
    print(SUMMARY_PREFIX + json.dumps(document, sort_keys=True), flush=True)
    if path is not None:
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def env_without_noise() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OCIREL_DEBUG", None)
    # an installed ocirel has its bytecode compiled; without it every run compiles ~70
    # modules again (~0.2 s): the warm-up run writes it
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


#: images the raw baseline built in this process (removed by remove_raw_images)
RAW_IMAGES: list[str] = []


def raw_build_and_push(
    host: str, context: Path, workdir: Path, nonce: str, index: int, *, no_cache: bool = False
) -> float:
    """The old scripts' pipeline: ``buildah build`` then ``buildah push --digestfile``
    straight to the registry, on the storage ocirel uses (so both sides share one
    layer cache and one storage driver). Returns its wall time. The image stays until
    :func:`remove_raw_images`: removing it would also remove its untagged parents,
    which are the layer cache of both sides."""
    storage, _reason = ocirel_storage(context)
    image = f"localhost/bench-raw:{index}-{nonce[-8:]}"
    cache = ["--layers", "--no-cache"] if no_cache else ["--layers"]
    seconds = timed(
        ["buildah", *storage, "build", "--quiet", *cache, "--isolation", "chroot",
         "--build-arg", f"NONCE={nonce}", "-t", image, str(context)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    RAW_IMAGES.append(image)
    seconds += timed(
        ["buildah", *storage, "push", "--quiet", "--tls-verify=false", "--digestfile",
         str(workdir / "digest"), image, f"docker://{host}/bench/raw:r{index}"]
    )  # fmt: skip
    return seconds


def remove_raw_images(context: Path) -> None:
    storage, _reason = ocirel_storage(context)
    while RAW_IMAGES:
        subprocess.run(["buildah", *storage, "rmi", RAW_IMAGES.pop()], check=False,
                       capture_output=True)  # fmt: skip


# ------------------------------------------------- storage, images, machine


def ocirel_storage(cwd: Path) -> tuple[list[str], str]:
    """The global storage flags ``ocirel publish`` passes to buildah when run in ``cwd``
    (the choice of ocirel/cli/wiring.py's ``build_env_for``), and ocirel's reason, so a
    raw baseline can use the very same storage."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from ocirel import hostinfo, runner, settings  # noqa: PLC0415

    storage = hostinfo.choose_storage(
        settings.load(env=os.environ, cwd=cwd).build.storage_driver, os.environ,
        rootless=hostinfo.is_rootless(), kernel=hostinfo.kernel_version(),
        overlay_available=hostinfo.overlay_in_kernel(),
        fuse_overlayfs=runner.which("fuse-overlayfs"),
    )  # fmt: skip
    args = ["--storage-driver", storage.driver] if storage.driver else []
    for option in storage.options:
        args += ["--storage-opt", option]
    return args, storage.reason


def images_labelled(storage: list[str], label: str) -> list[str]:
    """IDs of all local images (intermediate ones too) carrying ``label`` (``key=value``)."""
    result = subprocess.run(
        ["buildah", *storage, "images", "--all", "--noheading", "--no-trunc",
         "--filter", f"label={label}", "--format", "{{.ID}}"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    return sorted(set(result.stdout.split()))


def remove_images_labelled(storage: list[str], label: str) -> int:
    """``buildah rmi`` every image carrying ``label``, children before parents; how many
    are left (0 when all went)."""
    left = images_labelled(storage, label)
    while left:
        for image in left:
            subprocess.run(["buildah", *storage, "rmi", "--force", image],
                           check=False, capture_output=True)  # fmt: skip
        now = images_labelled(storage, label)
        if len(now) >= len(left):
            return len(now)
        left = now
    return 0


def machine_load() -> str:
    """The 1, 5 and 15 minute load averages (as ``uptime`` shows them), for the record."""
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def fuse_mounts() -> int:
    """How many fuse-overlayfs mounts the machine has (a killed build leaves its own)."""
    text = Path("/proc/mounts").read_text(encoding="utf-8")
    return sum("fuse-overlayfs" in line for line in text.splitlines())
