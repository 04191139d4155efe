"""``ocirel pin --registry-map OLD=NEW``: lockfile images pinned at a mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel import lockfile
from ocirel.deploy.regmap import parse_pairs
from ocirel.errors import ConfigError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.unit.cli.invoke import run

D_APP = Digest("sha256:" + "a" * 64)
D_WORKER = Digest("sha256:" + "b" * 64)
APP = "registry.example.com/team/app"
WORKER = "registry.example.com/team/worker"
MIRROR = "mirror.local:5000/air"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/team/app:v6  # keep me
        - name: proxy
          image: nginx:1.25
"""
KUSTOMIZATION = """\
images:
  - name: registry.example.com/team/worker
    newTag: "3"
"""
VALUES = """\
image:
  registry: registry.example.com
  repository: team/worker
  tag: "3"
"""


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    entries = [LockEntry("app", APP, "v7", D_APP), LockEntry("worker", WORKER, "3", D_WORKER)]
    path = tmp_path / "ocirel.lock.json"
    path.write_text(lockfile.dumps(Lockfile({e.name: e for e in entries})), encoding="utf-8")
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_deployment_is_pinned_at_the_mirror_with_the_locked_digest(
    tmp_path: Path, lock: Path
) -> None:
    manifest = write(tmp_path / "deploy.yaml", DEPLOYMENT)
    result = run("pin", str(manifest), "--registry-map", f"registry.example.com/team={MIRROR}")
    text = manifest.read_text(encoding="utf-8")
    assert f"image: {MIRROR}/app:v7@{D_APP}  # keep me" in text
    assert "image: nginx:1.25" in text  # not in the lockfile: untouched
    assert "mirrored at mirror.local:5000/air/app" in result.output
    # pinning again (the reference now names the mirror) changes nothing
    before = manifest.read_bytes()
    again = run("pin", str(manifest), "--registry-map", f"registry.example.com/team={MIRROR}")
    assert manifest.read_bytes() == before
    assert "nothing to pin" in again.output


def test_kustomize_entry_gets_new_name_and_helm_map_gets_registry(
    tmp_path: Path, lock: Path
) -> None:
    kustomization = write(tmp_path / "kustomization.yaml", KUSTOMIZATION)
    values = write(tmp_path / "values.yaml", VALUES)
    run("pin", str(kustomization), str(values), "--registry-map", f"registry.example.com={MIRROR}")
    assert kustomization.read_text(encoding="utf-8") == (
        "images:\n  - name: registry.example.com/team/worker\n"
        f'    newTag: "3"\n    digest: "{D_WORKER}"\n    newName: "{MIRROR}/team/worker"\n'
    )
    text = values.read_text(encoding="utf-8")
    assert "registry: mirror.local:5000\n" in text
    assert "repository: air/team/worker\n" in text
    assert f'tag: "3@{D_WORKER}"' in text  # auto: no digest key, so tag@digest


def test_registry_map_from_ocirel_toml_and_flag_wins(tmp_path: Path, lock: Path) -> None:
    write(tmp_path / "ocirel.toml", '[registry_map]\n"registry.example.com" = "cfg.local"\n')
    manifest = write(tmp_path / "deploy.yaml", DEPLOYMENT)
    run("pin", str(manifest), "--diff")
    assert manifest.read_text(encoding="utf-8") == DEPLOYMENT  # --diff writes nothing
    run("pin", str(manifest), "--registry-map", "registry.example.com=flag.local")
    assert f"image: flag.local/team/app:v7@{D_APP}" in manifest.read_text(encoding="utf-8")
    write(tmp_path / "deploy.yaml", DEPLOYMENT)
    run("pin", str(manifest))
    assert f"image: cfg.local/team/app:v7@{D_APP}" in manifest.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("flag", "needle"),
    [
        ("registry.example.com", "expected OLD=NEW"),
        ("team=mirror.local", "must start with a registry host"),
        ("registry.example.com=Mirror.local/UP", "lower case"),
        ("=mirror.local", "empty registry"),
    ],
)
def test_bad_registry_map_is_refused_and_nothing_written(
    tmp_path: Path, lock: Path, flag: str, needle: str
) -> None:
    manifest = write(tmp_path / "deploy.yaml", DEPLOYMENT)
    result = run("pin", str(manifest), "--registry-map", flag, code=2)
    assert needle in result.output
    assert "OLD=NEW" in result.output  # the hint
    assert manifest.read_text(encoding="utf-8") == DEPLOYMENT


def test_longest_prefix_wins_on_whole_components() -> None:
    mapping = parse_pairs(["registry.example.com=a.local", "registry.example.com/team=b.local/t"])
    assert mapping.apply(APP) == "b.local/t/app"
    assert mapping.apply("registry.example.com/teams/app") == "a.local/teams/app"
    assert mapping.apply("other.example.com/team/app") == "other.example.com/team/app"
    hub = parse_pairs(["docker.io=mirror.local"])
    assert hub.apply("docker.io/library/nginx") == "mirror.local/library/nginx"


def test_mapping_into_an_invalid_name_is_a_config_error() -> None:
    mapping = parse_pairs([f"registry.example.com=long.local/{'x' * 243}"])
    with pytest.raises(ConfigError, match="invalid repository"):
        mapping.apply(APP)
