"""Digests, a lockfile and a pod shared by the deploy tests."""

from __future__ import annotations

from pathlib import Path

from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from ocirel.reference import parse

D_APP7 = Digest("sha256:" + "7" * 64)
D_APP6 = Digest("sha256:" + "6" * 64)
D_NGINX = Digest("sha256:" + "a" * 64)
D_NGINX_LATEST = "sha256:" + "1" * 64
D_BUSYBOX = "sha256:" + "b" * 64
D_REDIS = "sha256:" + "c" * 64
D_BITNAMI = "sha256:" + "d" * 64
D_STALE = "sha256:" + "0" * 64
APP = "registry.example.com/team/app"
LOCK = Lockfile({"app": LockEntry("app", APP, "v7", D_APP7)})


POD = """\
apiVersion: v1
kind: Pod
spec:
  containers: [{name: a, image: nginx:1.25}]
"""
NGINX_REF = parse("nginx:1.25")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path
