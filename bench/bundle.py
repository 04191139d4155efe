"""bench/bundle: ``ocirel bundle export`` / ``import`` against ``skopeo copy`` per image.

Registry A holds ``--images`` images of two incompressible layers each, ``--size`` MB
in all (default 4 images, 512 MB), seeded through the registry API; a lockfile names
them. Export: ``ocirel bundle export -o DIR`` vs ``skopeo copy docker://… dir:…`` for
each image. Import: ``ocirel bundle import DIR --to B`` vs ``skopeo copy dir:…
docker://B/…`` for each image, each run into a fresh registry B (so neither side
finds a blob already there, and skopeo's blob-info cache cannot mount one). The runs
alternate (ocirel, skopeo, ocirel, …) in the same process; medians are compared.

Target: ocirel no slower than skopeo (ratio ocirel / skopeo ≤ 1.0) on each side.

    python bench/bundle.py [--runs 3] [--size 512] [--images 4]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    OCIREL,
    add_summary_option,
    alternate,
    emit_summary,
    env_without_noise,
    figure,
    registry,
    report,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TARGET = 1.0


def _request(method: str, url: str, data: bytes | None = None, **headers: str) -> Any:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    return urllib.request.urlopen(request, timeout=300)


def _upload(host: str, repo: str, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with _request("POST", f"http://{host}/v2/{repo}/blobs/uploads/") as started:
        location = started.headers["Location"]
    sep = "&" if "?" in location else "?"
    url = location if location.startswith("http") else f"http://{host}{location}"
    _request(
        "PUT", f"{url}{sep}digest={digest}", data, **{"Content-Type": "application/octet-stream"}
    ).close()
    return {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": digest,
        "size": len(data),
    }


def seed(host: str, images: int, size_mb: int) -> dict[str, tuple[str, str]]:
    """``images`` images of two random layers; returns name → (repository, digest)."""
    layer = size_mb * 1_000_000 // (images * 2)
    seeded = {}
    for index in range(images):
        repo = f"bench/app{index}"
        layers = [_upload(host, repo, os.urandom(layer)) for _ in range(2)]
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": index}).encode()
        config_desc = _upload(host, repo, config)
        config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json"
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": layers}
        ).encode()
        _request(
            "PUT",
            f"http://{host}/v2/{repo}/manifests/v1",
            manifest,
            **{"Content-Type": OCI_MANIFEST},
        ).close()
        seeded[f"app{index}"] = (f"{host}/{repo}", "sha256:" + hashlib.sha256(manifest).hexdigest())
    return seeded


def write_lock(path: Path, seeded: dict[str, tuple[str, str]]) -> None:
    images = {
        name: {"repository": repo, "tag": "v1", "digest": digest,
               "reference": f"{repo}:v1@{digest}", "platforms": {}, "source": {}}
        for name, (repo, digest) in seeded.items()
    }  # fmt: skip
    path.write_text(json.dumps({"schema": 1, "images": images, "issued": {}}, indent=2) + "\n")


def run(argv: list[str], cwd: Path) -> None:
    done = subprocess.run(argv, cwd=cwd, env=env_without_noise(), capture_output=True, check=False)
    if done.returncode:
        sys.exit(f"bench: {' '.join(argv)} failed ({done.returncode}):\n{done.stderr.decode()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=512, help="MB in all")
    parser.add_argument("--images", type=int, default=4)
    add_summary_option(parser)
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        sys.exit("bench: needs skopeo (apt-get install skopeo)")
    work = Path(tempfile.mkdtemp(prefix="ocirel-bench-bundle-"))
    try:
        with registry() as source:
            seeded = seed(source, args.images, args.size)
            write_lock(work / "ocirel.lock.json", seeded)
            exports = _export_sides(work, seeded)
            export_results = alternate(args.runs, exports)
        import_results = alternate(args.runs, _import_sides(work, seeded))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    verdict = True
    rows = []
    for title, results in (("export", export_results), ("import", import_results)):
        medians = report(f"bundle {title}: {args.size} MB in {args.images} images", results)
        ratio = medians["ocirel"] / medians["skopeo"]
        verdict &= ratio <= TARGET
        print(f"  ratio ocirel / skopeo: {ratio:.2f} (target ≤ {TARGET:.2f})")
        rows.append(figure(f"bundle {title} ocirel / skopeo ({args.size} MB)", ratio, "ratio",
                           f"<= {TARGET:.1f}", ratio <= TARGET))  # fmt: skip
    print("\nTARGET MET" if verdict else "\nTARGET MISSED")
    emit_summary("bundle", rows, args.summary_json)


def _export_sides(work: Path, seeded: dict[str, tuple[str, str]]) -> dict[str, Any]:
    def ocirel(index: int) -> float:
        out = work / f"ocirel-{index}"
        shutil.rmtree(out, ignore_errors=True)
        return _timed(lambda: run([*OCIREL, "bundle", "export", "-o", str(out)], work))

    def skopeo(index: int) -> float:
        out = work / f"skopeo-{index}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

        def copy_all() -> None:
            for name, (repo, _) in seeded.items():
                run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{repo}:v1",
                     f"dir:{out / name}"], work)  # fmt: skip

        return _timed(copy_all)

    return {"ocirel": ocirel, "skopeo": skopeo}


def _import_sides(work: Path, seeded: dict[str, tuple[str, str]]) -> dict[str, Any]:
    def ocirel(index: int) -> float:
        with registry() as target:
            argv = [*OCIREL, "bundle", "import", str(work / "ocirel-0"), "--to", f"{target}/m",
                    "--lockfile", str(work / f"imported-{index}.json")]  # fmt: skip
            return _timed(lambda: run(argv, work))

    def skopeo(index: int) -> float:
        with registry() as target:

            def copy_all() -> None:
                for name in seeded:
                    source = f"dir:{work / 'skopeo-0' / name}"
                    dest = f"docker://{target}/m/bench/{name}:v1"
                    run(["skopeo", "copy", "--dest-tls-verify=false", source, dest], work)

            return _timed(copy_all)

    return {"ocirel": ocirel, "skopeo": skopeo}


def _timed(action: Any) -> float:
    import time  # noqa: PLC0415

    start = time.perf_counter()
    action()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
