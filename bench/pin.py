"""bench/pin: ``ocirel pin --resolve`` against the by-hand baseline.

The tree: 1,000 manifests in 200 app directories (a Deployment with an init
container, a CronJob, a kustomization, Helm values and a compose file each, about 40
lines with comments) referencing 100 distinct image tags (50 repositories, 2 tags each)
that exist in a throwaway local registry, seeded through the registry API.

Baseline (what a by-hand script does): for each distinct image
``skopeo inspect --format '{{.Digest}}'``, then one ``sed -i`` per file with a script
that appends the digest to ``repo:tag`` strings and adds a ``digest:`` line under
kustomize ``newTag:`` / Helm ``tag:`` keys. ocirel: ``ocirel pin --resolve`` on the
tree. Both run on fresh copies of the tree, alternately; after each run the number
of digests written is compared, so neither side wins by doing less.

Target: ocirel at least 5 times faster (median wall time).

    python bench/pin.py [--runs 5] [--files 1000] [--images 100]

Prints each side's median wall time, the by-hand phases (skopeo loop, sed) and the
ratio by-hand / ocirel.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
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
TARGET = 5.0
FILES_PER_APP = 5


@dataclass(frozen=True)
class Image:
    repository: str  # host/bench/svc-NN
    tag: str
    digest: str = ""

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


# ----------------------------------------------------------------- seeding


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _request(
    method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers)


def _blob(host: str, repo: str, data: bytes) -> str:
    digest = _sha(data)
    _, headers = _request("POST", f"http://{host}/v2/{repo}/blobs/uploads/", b"")
    location = headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    joiner = "&" if "?" in location else "?"
    _request("PUT", f"{location}{joiner}digest={digest}", data,
             {"Content-Type": "application/octet-stream"})  # fmt: skip
    return digest


def seed(host: str, repositories: int, tags_per_repository: int) -> list[Image]:
    """Push a tiny image per tag (distinct manifests, shared blobs per repository)."""
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    layer = gzip.compress(layer_tar.getvalue(), mtime=0)
    rootfs = {"type": "layers", "diff_ids": [_sha(layer_tar.getvalue())]}
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": rootfs}).encode()
    images: list[Image] = []
    for r in range(repositories):
        repo = f"bench/svc-{r:02d}"
        config_digest, layer_digest = _blob(host, repo, config), _blob(host, repo, layer)
        for t in range(tags_per_repository):
            tag = f"1.{t}.0"
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config_digest, "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer_digest, "size": len(layer)}],
                "annotations": {"bench": f"{repo}:{tag}"},
            }, sort_keys=True).encode()  # fmt: skip
            _request("PUT", f"http://{host}/v2/{repo}/manifests/{tag}", manifest,
                     {"Content-Type": OCI_MANIFEST})  # fmt: skip
            images.append(Image(f"{host}/{repo}", tag, _sha(manifest)))
    return images


# -------------------------------------------------------------------- tree


def _deployment(app: int, a: Image, b: Image, c: Image) -> str:
    return f"""\
# Deployment of app {app}: the web tier and its sidecar.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{app}   # one per directory
  labels:
    app: app-{app}
    tier: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: app-{app}
  template:
    metadata:
      labels:
        app: app-{app}
    spec:
      initContainers:
        - name: migrate
          image: {a.ref}
          args: ["migrate", "--yes"]
      containers:
        - name: app
          image: "{b.ref}"   # double-quoted on purpose
          ports:
            - containerPort: 8080
          env:
            - name: LOG_LEVEL
              value: info
          resources:
            limits: {{cpu: 500m, memory: 256Mi}}
        - name: sidecar
          image: '{c.ref}'
          args: [--port, "9090"]
      terminationGracePeriodSeconds: 30
---
apiVersion: v1
kind: Service
metadata: {{name: app-{app}}}
spec:
  selector: {{app: app-{app}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def _cronjob(app: int, a: Image) -> str:
    return f"""\
# Nightly report for app {app}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report-{app}
  labels:
    app: app-{app}
spec:
  schedule: "0 3 * * *"
  concurrencyPolicy: Forbid
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 1
  jobTemplate:
    spec:
      backoffLimit: 2
      template:
        metadata:
          labels:
            app: app-{app}
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: {a.ref}
              command: [/app/report]
              args:
                - --since=24h
                - --format=json
              env:
                - name: TZ
                  value: UTC
              resources:
                requests:
                  cpu: 100m
                  memory: 64Mi
                limits:
                  cpu: 200m
                  memory: 128Mi
"""


def _kustomization(app: int, a: Image, b: Image) -> str:
    return f"""\
# kustomize overlay for app {app}
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: team-{app % 7}
resources:
  - deployment.yaml
  - cronjob.yaml
commonLabels:
  owner: team-{app % 7}
images:
  # the main image
  - name: {a.repository}
    newTag: {a.tag}
  - name: {b.repository}
    newTag: "{b.tag}"
configMapGenerator:
  - name: app-{app}-config
    literals:
      - LOG_LEVEL=info
      - REGION=eu
patches:
  - target:
      kind: Deployment
      name: app-{app}
    patch: |-
      - op: replace
        path: /spec/replicas
        value: 3
"""


def _values(app: int, a: Image, b: Image) -> str:
    registry_host, _, repository = a.repository.partition("/")
    return f"""\
## Helm values for app {app}
replicaCount: 2
image:
  registry: {registry_host}
  repository: {repository}
  tag: "{a.tag}"
  pullPolicy: IfNotPresent
metrics:
  enabled: true
  image:
    repository: {b.repository}
    tag: {b.tag}
service:
  type: ClusterIP
  port: 80
ingress:
  enabled: false
  annotations: {{}}
  hosts:
    - host: app-{app}.example.com
      paths: ["/"]
resources:
  limits:
    cpu: 500m
    memory: 256Mi
  requests:
    cpu: 100m
    memory: 128Mi
nodeSelector: {{}}
tolerations: []
affinity: {{}}
podAnnotations:
  prometheus.io/scrape: "true"
  prometheus.io/port: "9090"
autoscaling:
  enabled: false
  minReplicas: 1
  maxReplicas: 5
"""


def _compose(app: int, a: Image, b: Image, c: Image) -> str:
    return f"""\
# local development stack for app {app}
x-defaults: &defaults
  restart: unless-stopped
  logging:
    driver: json-file
services:
  app:
    <<: *defaults
    image: {a.ref}
    ports: ["8080:8080"]
    environment:
      LOG_LEVEL: debug
    depends_on: [db, cache]
  db:
    <<: *defaults
    image: "{b.ref}"
    environment:
      POSTGRES_PASSWORD: example
    volumes:
      - db-data:/var/lib/postgresql/data
  cache:
    image: {c.ref}
    command: ["--maxmemory", "64mb"]
  builder:
    build:
      context: .
      dockerfile: Containerfile
volumes:
  db-data: {{}}
"""


def make_tree(root: Path, images: list[Image], files: int) -> int:
    """Write ``files`` manifests under ``root``; returns the number of references."""
    count = len(images)
    references = 0
    for app in range(files // FILES_PER_APP):
        pick = [images[(app * 3 + k) % count] for k in range(4)]
        directory = root / f"app-{app:03d}"
        directory.mkdir(parents=True)
        texts = {
            "deployment.yaml": (_deployment(app, pick[0], pick[1], pick[2]), 3),
            "cronjob.yaml": (_cronjob(app, pick[3]), 1),
            "kustomization.yaml": (_kustomization(app, pick[1], pick[2]), 2),
            "values.yaml": (_values(app, pick[0], pick[3]), 2),
            "compose.yaml": (_compose(app, pick[2], pick[3], pick[0]), 3),
        }
        for name, (text, refs) in texts.items():
            (directory / name).write_text(text, encoding="utf-8")
            references += refs
    return references


def count_digests(root: Path) -> int:
    return sum(path.read_text(encoding="utf-8").count("sha256:") for path in root.rglob("*.yaml"))


# ---------------------------------------------------------------- baseline


def _escape(text: str) -> str:
    return text.replace(".", r"\.")


def _sed_script(images: list[Image]) -> str:
    """Append digests to ``repo:tag`` strings; add ``digest:`` under kustomize/Helm tags.

    One block per repository for the key-per-line formats: ``n`` moves to the next
    line, so the tags of one repository must be handled in the same block.
    """
    lines = []
    by_repository: dict[str, list[Image]] = {}
    for image in images:
        by_repository.setdefault(image.repository, []).append(image)
        repository, tag = image.repository.replace(".", r"\."), image.tag.replace(".", r"\.")
        lines.append(rf"s#{repository}:{tag}\b#&@{image.digest}#g")
    for full, group in by_repository.items():
        repository = full.replace(".", r"\.")
        short = repository.split("/", 1)[1]
        for key, tag_key, names in (
            ("- name", "newTag", repository),
            ("repository", "tag", rf"\({repository}\|{short}\)"),
        ):
            subs = ";".join(
                rf"s#^\( *\){tag_key}: \"\?{_escape(i.tag)}\"\?$#&\n\1digest: {i.digest}#"
                for i in group
            )
            lines.append(rf"\#^ *{key}: {names}$#{{n;{subs}}}")
    return "\n".join(lines) + "\n"


def baseline(tree: Path, images: list[Image], work: Path) -> tuple[float, float]:
    """The by-hand pin; returns the seconds spent in skopeo and in sed."""
    started = time.perf_counter()
    resolved = []
    for image in images:
        digest = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
             f"docker://{image.ref}"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        resolved.append(Image(image.repository, image.tag, digest))
    looked_up = time.perf_counter()
    script = work / "pin.sed"
    script.write_text(_sed_script(resolved), encoding="utf-8")
    for path in sorted(tree.rglob("*.yaml")):
        subprocess.run(["sed", "-i", "-f", str(script), str(path)], check=True)
    return looked_up - started, time.perf_counter() - looked_up


# -------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--images", type=int, default=100, help="distinct tags (2 per repository)")
    add_summary_option(parser)
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        sys.exit("bench: needs skopeo (apt-get install skopeo)")
    work = Path(tempfile.mkdtemp(prefix="ocirel-bench-pin-"))
    try:
        with registry() as host:
            rows = run_bench(host, work, args.runs, args.files, args.images)
        emit_summary("pin", rows, args.summary_json)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_bench(host: str, work: Path, runs: int, files: int, distinct: int) -> list[dict[str, Any]]:
    started = time.perf_counter()
    images = seed(host, distinct // 2, 2)
    print(f"seeded {len(images)} tags in {time.perf_counter() - started:.2f} s")
    template = work / "template"
    references = make_tree(template, images, files)
    print(f"tree: {files} files, {references} references, {len(images)} distinct images")
    copies = iter(range(1_000_000))
    digests: dict[str, set[int]] = {"by hand": set(), "ocirel": set()}
    phases: dict[str, list[float]] = {"skopeo loop": [], "sed per file": []}
    pin_argv = [*OCIREL, "pin", "--resolve", "--lockfile", str(work / "none.lock.json")]
    env = env_without_noise()

    def fresh() -> Path:
        target = work / f"run-{next(copies)}"
        shutil.copytree(template, target)
        return target

    def by_hand(_index: int) -> float:
        tree = fresh()
        skopeo, sed = baseline(tree, images, work)
        phases["skopeo loop"].append(skopeo)
        phases["sed per file"].append(sed)
        digests["by hand"].add(count_digests(tree))
        shutil.rmtree(tree)
        return skopeo + sed

    def ocirel(_index: int) -> float:
        tree = fresh()
        start = time.perf_counter()
        subprocess.run([*pin_argv, str(tree)], check=True, env=env, cwd=work,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        seconds = time.perf_counter() - start
        digests["ocirel"].add(count_digests(tree))
        shutil.rmtree(tree)
        return seconds

    ocirel(-1)  # warm-up (page cache, bytecode), not counted
    results = alternate(runs, {"by hand": by_hand, "ocirel": ocirel})
    medians = report(f"pin {files} files, {len(images)} distinct images", results)
    report("by-hand phases", phases)
    print(f"\ndigests written: by hand {sorted(digests['by hand'])}, "
          f"ocirel {sorted(digests['ocirel'])} (references: {references})")  # fmt: skip
    if digests["by hand"] != digests["ocirel"] or digests["ocirel"] != {references}:
        print("WARNING: the two sides did not write the same number of digests")
    ratio = medians["by hand"] / medians["ocirel"]
    lookups = statistics.median(phases["skopeo loop"]) / medians["ocirel"]
    print(f"ocirel median {medians['ocirel']:.3f} s")
    print(f"ratio by-hand/ocirel = {ratio:.2f}  (target >= {TARGET:.0f}: "
          f"{'met' if ratio >= TARGET else 'NOT met'}); "
          f"the skopeo loop alone / ocirel = {lookups:.2f}")  # fmt: skip
    same = digests["by hand"] == digests["ocirel"] == {references}
    return [
        figure(f"by hand / ocirel pin --resolve ({files} files, {len(images)} images)", ratio,
               "ratio", f">= {TARGET:.0f}", ratio >= TARGET and same,
               None if same else "the sides wrote different digest counts"),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
