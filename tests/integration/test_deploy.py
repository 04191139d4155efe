"""``ocirel verify`` and ``ocirel pin --resolve`` against a real distribution registry.

Images are seeded through the registry API (no builder); the CLI runs as a
subprocess with an isolated HOME. The pinned kustomization is rendered by a real
``kubectl kustomize``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ocirel import lockfile
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.integration.conftest import OcirelRunner, Run
from tests.support.kubectl import assert_pinned, rendered_images
from tests.support.registry import RegistryServer

FAST_FAIL = {"OCIREL_RETRIES": "0", "OCIREL_CONNECT_TIMEOUT": "5"}


def write_lock(path: Path, entries: dict[str, tuple[str, str, str]]) -> Path:
    """``entries``: name → (repository, tag, digest)."""
    lock = Lockfile(
        {n: LockEntry(n, repo, tag, Digest(digest)) for n, (repo, tag, digest) in entries.items()}
    )
    path.write_text(lockfile.dumps(lock), encoding="utf-8")
    return path


def verify(ocirel: OcirelRunner, cwd: Path, code: int, **kw: object) -> Run:
    run = ocirel("verify", "--json", cwd=cwd, **kw)
    assert run.returncode == code, run.explain()
    return run


def statuses(run: Run) -> dict[str, str]:
    return {entry["name"]: entry["status"] for entry in run.json["entries"]}


# ------------------------------------------------------------------------ verify


@pytest.fixture
def seeded(registry: RegistryServer, unique_repo: str, tmp_path: Path) -> dict[str, str]:
    """Two repositories with a v1 each, and a lockfile in ``tmp_path`` naming them."""
    digests = {}
    with registry.client() as client:
        for name in ("web", "worker"):
            digests[name] = client.push_random_image(f"{unique_repo}/{name}", "v1")
    write_lock(tmp_path / "ocirel.lock.json", {
        name: (f"{registry.host}/{unique_repo}/{name}", "v1", digest)
        for name, digest in digests.items()
    })  # fmt: skip
    return digests


def test_verify_passes_on_an_intact_lock(
    ocirel: OcirelRunner, tmp_path: Path, seeded: dict[str, str]
) -> None:
    run = verify(ocirel, tmp_path, 0)
    assert statuses(run) == {"web": "ok", "worker": "ok"}
    assert run.json["exit_code"] == 0
    table = ocirel("verify", cwd=tmp_path)
    assert table.returncode == 0, table.explain()
    assert re.search(r"^web +\S+:v1@sha256:\S+ +ok +-$", table.stdout, re.M), table.stdout
    assert "2 ok, 0 drifted, 0 missing, 0 unreachable" in table.stderr


def test_verify_reports_drift_after_a_re_push_under_a_locked_tag(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path,
    seeded: dict[str, str],
) -> None:  # fmt: skip
    with registry.client() as client:
        moved = client.push_random_image(f"{unique_repo}/web", "v1")
    assert moved != seeded["web"]
    run = verify(ocirel, tmp_path, 1)
    assert statuses(run) == {"web": "drifted", "worker": "ok"}
    web = next(e for e in run.json["entries"] if e["name"] == "web")
    assert (web["digest"], web["tag_digest"], web["digest_exists"]) == (seeded["web"], moved, True)
    table = ocirel("verify", cwd=tmp_path)
    assert table.returncode == 1, table.explain()
    assert f"tag v1 now points to {moved}" in table.stdout


def test_verify_reports_missing_after_a_locked_manifest_is_deleted(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path,
    seeded: dict[str, str],
) -> None:  # fmt: skip
    with registry.client() as client:
        client.delete_manifest(f"{unique_repo}/worker", seeded["worker"])
    run = verify(ocirel, tmp_path, 1)
    assert statuses(run) == {"web": "ok", "worker": "missing"}
    worker = next(e for e in run.json["entries"] if e["name"] == "worker")
    assert worker["digest_exists"] is False
    assert "no longer exists" in worker["detail"]


def test_verify_of_a_stopped_registry_is_unreachable_and_exits_5(
    ocirel: OcirelRunner, registry_factory: Callable[..., RegistryServer], tmp_path: Path
) -> None:
    private = registry_factory()
    with private.client() as client:
        digest = client.push_random_image("team/app", "v1")
    write_lock(tmp_path / "ocirel.lock.json", {
        "app": (f"{private.host}/team/app", "v1", digest),
        "tool": (f"{private.host}/team/tool", "v2", "sha256:" + "5" * 64),
    })  # fmt: skip
    verify(ocirel, tmp_path, 1)  # "tool" was never pushed: missing
    private.stop()
    run = verify(ocirel, tmp_path, 5, env=FAST_FAIL)
    assert statuses(run) == {"app": "unreachable", "tool": "unreachable"}
    assert all("could not check" in e["detail"] for e in run.json["entries"])


def test_verify_drift_wins_over_unreachable(
    ocirel: OcirelRunner, registry: RegistryServer, registry_factory: Callable[..., RegistryServer],
    unique_repo: str, tmp_path: Path,
) -> None:  # fmt: skip
    with registry.client() as client:
        locked = client.push_random_image(unique_repo, "v1")
        client.push_random_image(unique_repo, "v1")  # the tag moves
    stopped = registry_factory()
    stopped.stop()
    write_lock(tmp_path / "ocirel.lock.json", {
        "moved": (f"{registry.host}/{unique_repo}", "v1", locked),
        "offline": (f"{stopped.host}/team/app", "v1", "sha256:" + "6" * 64),
    })  # fmt: skip
    run = verify(ocirel, tmp_path, 1, env=FAST_FAIL)
    assert statuses(run) == {"moved": "drifted", "offline": "unreachable"}


# ------------------------------------------------------------------ pin --resolve


def manifest_heads(registry: RegistryServer, repo_prefix: str, at_least: int) -> list[str]:
    """``repo/manifests/ref`` of every HEAD the registry logged under ``repo_prefix``.

    The registry writes an access-log line just after answering: wait until
    ``at_least`` lines are there, then a moment longer for any extra ones.
    """
    pattern = re.compile(rf'"HEAD /v2/({re.escape(repo_prefix)}[^ ]*/manifests/[^ ]+) HTTP')
    deadline = time.monotonic() + 10
    while True:
        found = pattern.findall(registry.log_file.read_text(errors="replace"))
        if len(found) >= at_least or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    return pattern.findall(registry.log_file.read_text(errors="replace"))


def test_pin_resolve_writes_the_registry_digests_resolving_each_reference_once(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    digests: dict[str, str] = {}
    with registry.client() as client:
        for name in ("api", "db", "cache"):
            for tag in ("1.0", "2.0"):
                digests[f"{name}:{tag}"] = client.push_random_image(f"{unique_repo}/{name}", tag)
        locked = client.push_random_image(f"{unique_repo}/locked", "v3")
    base = f"{registry.host}/{unique_repo}"
    write_lock(tmp_path / "ocirel.lock.json", {"locked": (f"{base}/locked", "v3", locked)})
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    for index in range(12):  # the same references, many times over
        names = ["api:1.0", "db:2.0", "cache:1.0", "api:2.0", "locked:v1"]
        containers = "".join(
            f"        - name: c{i}\n          image: {base}/{names[(index + i) % 5]}\n"
            for i in range(3)
        )
        (deploy / f"app{index:02d}.yaml").write_text(
            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n"
            f"      containers:\n{containers}", encoding="utf-8",
        )  # fmt: skip
    (deploy / "values.yaml").write_text(
        f'image:\n  repository: {base}/db\n  tag: "1.0"\n', encoding="utf-8"
    )
    run = ocirel("pin", "--resolve", "--json", "deploy", cwd=tmp_path)
    assert run.returncode == 0, run.explain()

    resolved = run.json["resolved"]
    assert resolved == {f"{base}/{ref}": digests[ref] for ref in
                        ("api:1.0", "api:2.0", "cache:1.0", "db:1.0", "db:2.0")}  # fmt: skip
    # each distinct reference once; the locked repository is never asked
    heads = manifest_heads(registry, unique_repo, at_least=5)
    assert sorted(heads) == sorted(
        f"{unique_repo}/{ref.replace(':', '/manifests/')}" for ref in
        ("api:1.0", "api:2.0", "cache:1.0", "db:1.0", "db:2.0")
    )  # fmt: skip
    text = (deploy / "app00.yaml").read_text()
    assert f"image: {base}/api:1.0@{digests['api:1.0']}\n" in text
    assert f"image: {base}/db:2.0@{digests['db:2.0']}\n" in text
    assert f"image: {base}/locked:v3@{locked}\n" in (deploy / "app02.yaml").read_text()
    assert (deploy / "values.yaml").read_text().endswith(f'  tag: "1.0@{digests["db:1.0"]}"\n')

    again = ocirel("pin", "--resolve", "--check", "deploy", cwd=tmp_path)
    assert again.returncode == 0, again.explain()  # idempotent against the registry too
    lint = ocirel("lint", "deploy", cwd=tmp_path)
    assert lint.returncode == 0, lint.explain()


def test_pin_resolve_of_an_unknown_tag_names_it_and_writes_nothing(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    with registry.client() as client:
        client.push_random_image(unique_repo, "v1")
    base = f"{registry.host}/{unique_repo}"
    good = tmp_path / "good.yaml"
    bad = tmp_path / "bad.yaml"
    good.write_text(f"services:\n  app:\n    image: {base}:v1\n", encoding="utf-8")
    bad.write_text(f"services:\n  app:\n    image: {base}:v9\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in (good, bad)}
    run = ocirel("pin", "--resolve", ".", cwd=tmp_path)
    assert run.returncode == 1, run.explain()
    assert f"cannot resolve {base}:v9 (bad.yaml:3)" in run.stderr
    assert {p: p.read_bytes() for p in (good, bad)} == before


# ------------------------------------------------------------------------ kubectl

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: IMAGE}
"""


@pytest.mark.parametrize("digest_only", [False, True])
def test_kubectl_kustomize_renders_the_digests_pinned_through_the_cli(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path,
    digest_only: bool,
) -> None:  # fmt: skip
    with registry.client() as client:
        digest = client.push_random_image(unique_repo, "v4")
    repository = f"{registry.host}/{unique_repo}"
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT.replace("IMAGE", repository + ":v1"))
    (tmp_path / "kustomization.yaml").write_text(
        "resources:\n- deployment.yaml\nimages:\n"
        f"# the image\n- name: {repository}\n  newTag: v4\n", encoding="utf-8",
    )  # fmt: skip
    extra = ["--digest-only"] if digest_only else []
    run = ocirel("pin", "--resolve", *extra, "kustomization.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.explain()
    expected = f"{repository}@{digest}" if digest_only else f"{repository}:v4@{digest}"
    assert_pinned(rendered_images(tmp_path), [expected])


def test_lock_export_kustomize_is_accepted_by_kubectl(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    with registry.client() as client:
        digest = client.push_random_image(unique_repo, "v2")
    repository = f"{registry.host}/{unique_repo}"
    write_lock(tmp_path / "ocirel.lock.json", {"web": (repository, "v2", digest)})
    run = ocirel("lock", "export", "--format", "kustomize", cwd=tmp_path)
    assert run.returncode == 0, run.explain()
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT.replace("IMAGE", repository))
    (tmp_path / "kustomization.yaml").write_text("resources:\n- deployment.yaml\n" + run.stdout)
    assert_pinned(rendered_images(tmp_path), [f"{repository}:v2@{digest}"])
    data = json.loads(ocirel("lock", "export", cwd=tmp_path).stdout)
    assert data == {"web": f"{repository}:v2@{digest}"}
