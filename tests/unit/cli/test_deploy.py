"""``ocirel pin``, ``lint``, ``lock export`` and ``verify`` through typer's CliRunner.

Trees are written under ``tmp_path`` (the working directory of every run, so no
``ocirel.toml`` or lockfile of the checkout leaks in). Registry-facing runs use the
in-process :class:`FakeRegistry`; the real registry is in tests/integration.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ocirel import fsutil, lockfile
from ocirel.deploy import export as exports
from ocirel.deploy.resolvers import lock_resolver
from ocirel.deploy.splice import pin_text, unified_diff
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.unit.cli.invoke import run
from tests.unit.fakeregistry import FakeRegistry, Request, Response, TlsFiles

if TYPE_CHECKING:
    from tests.unit.fakeregistry import NetGuard

D_APP = Digest("sha256:" + "a" * 64)
D_WORKER = Digest("sha256:" + "b" * 64)
D_OLD = "sha256:" + "0" * 64
APP = "registry.example.com/team/app"
WORKER = "registry.example.com/team/worker"

DEPLOYMENT = """\
# the web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/team/app:v6   # one version behind
      containers:
        - name: app
          image: "registry.example.com/team/app:v7"
        - name: proxy
          image: nginx:1.25
"""
KUSTOMIZATION = """\
images:
  - name: registry.example.com/team/worker
    newTag: "3"
"""
VALUES = """\
worker:
  image:
    repository: registry.example.com/team/worker
    tag: "3"
"""
COMPOSE = """\
services:
  web:
    image: registry.example.com/team/app:v7
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def write_lock(path: Path, *entries: LockEntry) -> Path:
    path.write_text(lockfile.dumps(Lockfile({e.name: e for e in entries})), encoding="utf-8")
    return path


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return write_lock(
        tmp_path / "ocirel.lock.json",
        LockEntry("app", APP, "v7", D_APP),
        LockEntry("worker", WORKER, "3", D_WORKER),
    )


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    return {
        "deployment": write(tmp_path / "k8s" / "deployment.yaml", DEPLOYMENT),
        "kustomization": write(tmp_path / "k8s" / "kustomization.yaml", KUSTOMIZATION),
        "values": write(tmp_path / "chart" / "values.yaml", VALUES),
        "compose": write(tmp_path / "compose.yaml", COMPOSE),
    }


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".yaml", ".yml", ".tmp")
    }


# ---------------------------------------------------------------------------- pin


def test_pin_writes_lockfile_digests_and_leaves_the_rest(
    tmp_path: Path, lock: Path, tree: dict[str, Path]
) -> None:
    result = run("pin", "k8s", "chart", "compose.yaml")
    assert tree["deployment"].read_text() == DEPLOYMENT.replace(
        "app:v6   #", f"app:v7@{D_APP}   #"
    ).replace('app:v7"', f'app:v7@{D_APP}"')
    # an inserted digest is quoted like the tag it follows
    assert tree["kustomization"].read_text() == KUSTOMIZATION + f'    digest: "{D_WORKER}"\n'
    assert tree["values"].read_text() == VALUES.replace('"3"', f'"3@{D_WORKER}"')
    assert tree["compose"].read_text() == COMPOSE.replace("v7\n", f"v7@{D_APP}\n")
    assert "pinned 5 reference(s) in 4 file(s) (4 scanned)" in result.stderr
    assert result.stdout == ""


def test_pin_is_idempotent(tmp_path: Path, lock: Path, tree: dict[str, Path]) -> None:
    run("pin", ".")
    once = snapshot(tmp_path)
    inodes = {path: path.stat().st_ino for path in tree.values()}
    result = run("pin", ".")
    assert snapshot(tmp_path) == once
    assert {path: path.stat().st_ino for path in tree.values()} == inodes  # not rewritten
    assert "nothing to pin: 4 file(s) scanned" in result.stderr
    run("pin", "--check", ".")


def test_pin_check_lists_file_line_reason_and_writes_nothing(
    tmp_path: Path, lock: Path, tree: dict[str, Path]
) -> None:
    before = snapshot(tmp_path)
    result = run("pin", "--check", ".", code=1)
    assert snapshot(tmp_path) == before
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        "compose.yaml:3: registry.example.com/team/app:v7: pinned (lockfile entry 'app')",
        "chart/values.yaml:3: registry.example.com/team/worker:3: pinned (lockfile entry 'worker')",
        "k8s/deployment.yaml:11: registry.example.com/team/app:v6: updated to the locked "
        "version v7 (lockfile entry 'app')",
    ]
    assert "5 reference(s) in 4 file(s) would be pinned (4 scanned); nothing was written" in (
        result.stderr
    )
    assert result.stdout == ""


def test_pin_diff_prints_a_patch_and_writes_nothing(
    tmp_path: Path, lock: Path, tree: dict[str, Path]
) -> None:
    before = snapshot(tmp_path)
    result = run("pin", "--diff", "compose.yaml", "k8s/kustomization.yaml")
    assert snapshot(tmp_path) == before
    resolver = {APP: D_APP, WORKER: D_WORKER}
    expected = "".join(
        unified_diff(
            pin_text(path.read_text(), filename=name, resolve=lambda ref: resolver.get(ref.name))
        )
        for name, path in (("compose.yaml", tree["compose"]),
                           ("k8s/kustomization.yaml", tree["kustomization"]))
    )  # fmt: skip
    assert result.stdout == expected
    assert result.stdout.startswith("--- a/compose.yaml\n+++ b/compose.yaml\n")
    assert f'+    digest: "{D_WORKER}"\n' in result.stdout
    run("pin", "--diff", "--check", "compose.yaml", code=1)


def test_pin_is_all_or_nothing_when_one_file_is_invalid(
    tmp_path: Path, lock: Path, tree: dict[str, Path]
) -> None:
    write(tmp_path / "k8s" / "zz-broken.yaml", "kind: Pod\nspec:\n  containers: [\n")
    before = snapshot(tmp_path)
    result = run("pin", ".", code=1)
    assert "k8s/zz-broken.yaml:4:1: invalid YAML" in result.stderr
    assert snapshot(tmp_path) == before  # the valid files were not written either


def test_pin_that_cannot_write_one_file_writes_none(
    tmp_path: Path, lock: Path, tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_stage = fsutil.stage

    def stage(target: Path, text: str) -> Path:
        if target.name == "values.yaml":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_stage(target, text)

    monkeypatch.setattr(fsutil, "stage", stage)
    before = snapshot(tmp_path)
    result = run("pin", ".", code=1)
    assert "values.yaml: No space left on device; no file was changed" in result.stderr
    assert snapshot(tmp_path) == before  # no temporary file left behind either


def test_pin_digest_only(tmp_path: Path, lock: Path, tree: dict[str, Path]) -> None:
    run("pin", "--digest-only", ".")
    assert f"image: {APP}@{D_APP}   #" in tree["deployment"].read_text()
    assert tree["kustomization"].read_text() == (
        f'images:\n  - name: {WORKER}\n    digest: "{D_WORKER}"\n'
    )
    assert tree["values"].read_text() == VALUES.replace('"3"', f'"3@{D_WORKER}"')  # Helm keeps tag


def test_pin_json(tmp_path: Path, lock: Path, tree: dict[str, Path]) -> None:
    result = run("pin", "--check", "--json", "compose.yaml", code=1)
    data = json.loads(result.stdout)
    assert data == {
        "mode": "check",
        "files": 1,
        "changed_files": ["compose.yaml"],
        "written": [],
        "changes": [{
            "path": "compose.yaml", "line": 3, "column": 12,
            "old": f"{APP}:v7", "new": f"{APP}:v7@{D_APP}",
            "reason": "pinned (lockfile entry 'app')",
        }],
        "resolved": {},
        "skipped": [],
    }  # fmt: skip
    written = json.loads(run("pin", "--json", ".").stdout)
    assert sorted(written["written"]) == sorted(str(p.relative_to(tmp_path)) for p in tree.values())


def test_pin_needs_a_lockfile_unless_resolving(tmp_path: Path, tree: dict[str, Path]) -> None:
    result = run("pin", ".", code=2)
    assert "no lockfile at ocirel.lock.json" in result.stderr
    result = run("pin", "--lockfile", "missing.json", ".", code=2)
    assert "no lockfile at missing.json" in result.stderr


def test_pin_rejects_json_with_diff(lock: Path, tree: dict[str, Path]) -> None:
    result = run("pin", "--json", "--diff", ".", code=2)
    assert "choose one" in result.stderr


def test_pin_uses_the_lockfile_from_settings(tmp_path: Path, tree: dict[str, Path]) -> None:
    write_lock(tmp_path / "locks.json", LockEntry("app", APP, "v7", D_APP))
    write(tmp_path / "ocirel.toml", 'lockfile = "locks.json"\n')
    run("pin", "compose.yaml")
    assert D_APP in tree["compose"].read_text()


def test_pin_scans_large_trees_in_parallel_with_the_same_result(tmp_path: Path, lock: Path) -> None:
    for index in range(120):  # above scan.PARALLEL_THRESHOLD
        write(tmp_path / "many" / f"d{index:03d}.yaml", DEPLOYMENT)
    write(tmp_path / "many" / "d999.yaml", "kind: Pod\nspec: {containers: [\n")
    result = run("pin", "many", code=1)
    assert "many/d999.yaml:3:1: invalid YAML" in result.stderr
    (tmp_path / "many" / "d999.yaml").unlink()
    run("pin", "many")
    expected = pin_text(DEPLOYMENT, resolve=lock_resolver(lockfile.load(lock))).text
    assert expected.count(f"app:v7@{D_APP}") == 2
    assert {p.read_text() for p in (tmp_path / "many").iterdir()} == {expected}


# ------------------------------------------------------------------ pin --resolve


def fake_digest(path: str) -> str:
    return "sha256:" + hashlib.sha256(path.encode()).hexdigest()


@pytest.fixture
def manifests_route(fake: FakeRegistry) -> FakeRegistry:
    """HEAD of any manifest answers with a digest derived from the path; ``/missing/`` is 404."""

    def answer(request: Request) -> Response:
        if "/missing/" in request.path:
            body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}'
            return Response(404, {"Content-Type": "application/json"}, body)
        return Response(200, {
            "Docker-Content-Digest": fake_digest(request.path),
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
            "Content-Length": "100",
        })  # fmt: skip

    fake.route("HEAD", r"/v2/.*/manifests/.*", answer)
    return fake


def test_pin_resolve_looks_each_distinct_reference_up_once(
    tmp_path: Path, manifests_route: FakeRegistry, lock: Path
) -> None:
    host = manifests_route.address
    pod = "kind: Pod\nspec:\n  containers:\n" + "".join(
        f"  - {{name: c{i}, image: '{host}/team/{name}'}}\n"
        for i, name in enumerate(["one:1", "two:2", "one:1", "three", f"app:v6@{D_OLD}"])
    )
    for index in range(3):
        write(tmp_path / "k8s" / f"pod{index}.yaml", pod)
    locked = f"kind: Pod\nspec:\n  containers: [{{image: {APP}:v1}}]\n"
    write(tmp_path / "k8s" / "locked.yaml", locked)
    result = run("pin", "--resolve", "k8s")

    # one request each; none for registry.example.com/team/app, which the lockfile answers
    heads = [r.path for r in manifests_route.requests(r".*/manifests/.*", method="HEAD")]
    assert sorted(heads) == sorted(
        f"/v2/team/{path}" for path in
        ("one/manifests/1", "two/manifests/2", "three/manifests/latest", "app/manifests/v6")
    )  # fmt: skip
    text = (tmp_path / "k8s" / "pod1.yaml").read_text()
    assert f"{host}/team/one:1@{fake_digest('/v2/team/one/manifests/1')}'" in text
    assert f"{host}/team/three@{fake_digest('/v2/team/three/manifests/latest')}'" in text
    assert f"{host}/team/app:v6@{fake_digest('/v2/team/app/manifests/v6')}'" in text  # re-pinned
    assert f"{APP}:v7@{D_APP}" in (tmp_path / "k8s" / "locked.yaml").read_text()
    assert "resolved 4 distinct tag reference(s) through the registry" in result.stderr


def test_pin_resolve_failure_names_reference_and_places_and_writes_nothing(
    tmp_path: Path, manifests_route: FakeRegistry, lock: Path
) -> None:
    host = manifests_route.address
    good = f"kind: Pod\nspec:\n  containers:\n  - image: {host}/team/ok:1\n"
    bad = f"kind: Pod\nspec:\n  containers:\n  - image: {host}/missing/gone:9\n"
    write(tmp_path / "a.yaml", good)
    write(tmp_path / "b.yaml", "# first\n" + bad)
    write(tmp_path / "c.yaml", bad)
    before = snapshot(tmp_path)
    result = run("pin", "--resolve", ".", code=1)
    assert snapshot(tmp_path) == before
    assert f"error: cannot resolve {host}/missing/gone:9 (b.yaml:5, c.yaml:4): " in result.stderr
    assert "no file was written" in result.stderr
    assert "404" in result.stderr


def test_pin_resolve_against_a_dead_registry_fails_without_writing(
    tmp_path: Path, lock: Path
) -> None:
    with FakeRegistry() as dead:
        host = dead.address
    write(tmp_path / "a.yaml", f"kind: Pod\nspec:\n  containers:\n  - image: {host}/x/one:1\n")
    write(tmp_path / "b.yaml", f"kind: Pod\nspec:\n  containers:\n  - image: {host}/x/two:1\n")
    before = snapshot(tmp_path)
    result = run("pin", "--resolve", ".", code=1)
    assert snapshot(tmp_path) == before
    assert "cannot resolve 2 image references; no file was written:" in result.stderr
    assert f"{host}/x/one:1 (a.yaml:4)" in result.stderr
    assert f"{host}/x/two:1 (b.yaml:4)" in result.stderr


def test_pin_insecure_needs_registries_in_the_lockfile(tree: dict[str, Path]) -> None:
    result = run("pin", "--resolve", "--insecure", ".", code=2)
    assert "--insecure applies to the registries in the lockfile" in result.stderr


# --------------------------------------------------------------------------- lint

UNPINNED_POD = """\
kind: Pod
spec:
  containers:
  - name: a
    image: nginx:latest
"""
PINNED_ALWAYS_POD = f"""\
kind: Pod
spec:
  containers:
  - name: a
    image: nginx:1.25@{D_APP}
    imagePullPolicy: Always
"""


def test_lint_reports_errors_with_file_line_col_and_exits_1(tmp_path: Path) -> None:
    write(tmp_path / "pod.yaml", UNPINNED_POD)
    result = run("lint", "pod.yaml", code=1)
    assert result.stdout.splitlines() == [
        "pod.yaml:5:12: error: nginx:latest is not pinned by digest; run 'ocirel pin' [unpinned]",
        "pod.yaml:5:12: error: nginx:latest uses the floating tag 'latest'; publish a unique "
        "version tag [floating-tag]",
    ]
    assert "2 error(s), 0 warning(s) in 1 file(s)" in result.stderr


def test_lint_warnings_alone_exit_0(tmp_path: Path) -> None:
    write(tmp_path / "pod.yaml", PINNED_ALWAYS_POD)
    result = run("lint", ".")
    assert result.stdout.startswith("pod.yaml:6:22: warning: pull policy Always for nginx:1.25@")
    assert result.stdout.rstrip().endswith("[pull-policy-always]")


def test_lint_clean_tree(tmp_path: Path) -> None:
    write(tmp_path / "svc.yaml", "kind: Service\nmetadata: {name: x}\n")
    result = run("lint", ".")
    assert result.stdout == ""
    assert "0 error(s), 0 warning(s) in 1 file(s)" in result.stderr


def test_lint_json(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", UNPINNED_POD)
    write(tmp_path / "b.yaml", PINNED_ALWAYS_POD)
    data = json.loads(run("lint", "--json", ".", code=1).stdout)
    assert (data["errors"], data["warnings"], data["files"]) == (2, 1, 2)
    assert [(f["path"], f["line"], f["severity"], f["rule"]) for f in data["findings"]] == [
        ("a.yaml", 5, "error", "unpinned"),
        ("a.yaml", 5, "error", "floating-tag"),
        ("b.yaml", 6, "warning", "pull-policy-always"),
    ]


def test_lint_floating_tags_from_flags_and_configuration(tmp_path: Path) -> None:
    pod = "kind: Pod\nspec:\n  containers:\n" + "".join(
        f"  - image: app:{tag}@{D_APP}\n" for tag in ("blue", "qa", "v1")
    )
    write(tmp_path / "pod.yaml", pod)
    assert run("lint", ".").stdout == ""
    write(tmp_path / "ocirel.toml", 'floating_tags = ["blue"]\n')
    assert [line.split(":")[1] for line in run("lint", ".").stdout.splitlines()] == ["4"]
    result = run("lint", "--floating", "qa", "--floating", "V1", ".")
    flagged = [line.split(":")[1] for line in result.stdout.splitlines()]
    assert flagged == ["4", "5", "6"]  # defaults, configuration and flags add up
    assert "floating tag 'blue'; the digest decides" in result.stdout


def test_lint_invalid_yaml_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "bad.yaml", "kind: Pod\nspec: [\n")
    result = run("lint", ".", code=1)
    assert "bad.yaml:3:1: invalid YAML" in result.stderr


# ------------------------------------------------------------------ lock export


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_lock_export_every_format(tmp_path: Path, lock: Path, fmt: str) -> None:
    result = run("lock", "export", "--format", fmt)
    assert result.stdout == exports.export(lockfile.load(lock), fmt)
    assert result.stdout.endswith("\n")
    assert not result.stdout.endswith("\n\n")
    expected_fragment = {
        "json": f'"app": "{APP}:v7@{D_APP}"',
        "env": f"APP_IMAGE={APP}:v7@{D_APP}\nWORKER_IMAGE={WORKER}:3@{D_WORKER}\n",
        "kustomize": f"- name: {APP}\n  newTag: v7\n  digest: {D_APP}\n",
        "helm": f'worker:\n  repository: {WORKER}\n  tag: "3"\n  digest: {D_WORKER}\n',
        "images-lock": f"- image: {APP}@{D_APP}\n  annotations:\n    kbld.carvel.dev/id: {APP}:v7",
    }[fmt]
    assert expected_fragment in result.stdout


def test_lock_export_default_format_and_lockfile_option(tmp_path: Path) -> None:
    path = write_lock(tmp_path / "other.json", LockEntry("app", APP, "v7", D_APP))
    result = run("lock", "export", "--lockfile", str(path))
    assert json.loads(result.stdout) == {"app": f"{APP}:v7@{D_APP}"}


def test_lock_export_errors(tmp_path: Path, lock: Path) -> None:
    result = run("lock", "export", "--format", "yaml", code=2)
    assert "unknown export format 'yaml'; choose one of json, env" in result.stderr
    result = run("lock", "export", "--lockfile", "nope.json", code=2)
    assert "no lockfile at nope.json" in result.stderr
    write(tmp_path / "corrupt.json", "{")
    result = run("lock", "export", "--lockfile", "corrupt.json", code=1)
    assert "not valid JSON" in result.stderr


# ------------------------------------------------------------------------ verify


@pytest.fixture
def verify_registry(fake: FakeRegistry) -> dict[str, Response]:
    """A fake registry answering HEAD for manifests from a path → response table."""
    answers: dict[str, Response] = {}

    def answer(request: Request) -> Response:
        return answers.get(request.path, Response(404))

    fake.route("HEAD", r"/v2/.*/manifests/.*", answer)
    return answers


def manifest_head(digest: str) -> Response:
    media_type = "application/vnd.oci.image.manifest.v1+json"
    return Response(200, {"Docker-Content-Digest": digest, "Content-Type": media_type})


def verify_lock(tmp_path: Path, host: str, names: list[str]) -> None:
    write_lock(tmp_path / "ocirel.lock.json", *(
        LockEntry(name, f"{host}/team/{name}", "v1", Digest("sha256:" + str(i) * 64))
        for i, name in enumerate(names, start=1)
    ))  # fmt: skip


def serve(answers: dict[str, Response], name: str, digest_ok: bool, tag_digest: str | None) -> None:
    digest = "sha256:" + str(["ok", "drift", "missing", "broken"].index(name) + 1) * 64
    if digest_ok:
        answers[f"/v2/team/{name}/manifests/{digest}"] = manifest_head(digest)
    if tag_digest is not None:
        answers[f"/v2/team/{name}/manifests/v1"] = manifest_head(tag_digest)


def test_verify_statuses_table_and_exit_codes(
    tmp_path: Path, fake: FakeRegistry, verify_registry: dict[str, Response]
) -> None:
    verify_lock(tmp_path, fake.address, ["ok", "drift", "missing", "broken"])
    serve(verify_registry, "ok", True, "sha256:" + "1" * 64)
    result = run("verify", code=1)  # drift and missing have nothing to answer yet
    serve(verify_registry, "drift", True, D_OLD)
    serve(verify_registry, "missing", False, None)
    verify_registry["/v2/team/broken/manifests/" + "sha256:" + "4" * 64] = Response(500)
    serve(verify_registry, "broken", False, "sha256:" + "4" * 64)

    result = run("verify", code=1)
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["NAME", "REFERENCE", "STATUS", "DETAIL"]
    assert {row[0]: row[2] for row in rows[1:]} == {
        "broken": "unreachable", "drift": "drifted", "missing": "missing", "ok": "ok",
    }  # fmt: skip
    assert [row[0] for row in rows[1:]] == ["broken", "drift", "missing", "ok"]
    assert f"tag v1 now points to {D_OLD}" in result.stdout
    assert "no longer exists" in result.stdout
    assert "1 ok, 1 drifted, 1 missing, 1 unreachable" in result.stderr

    data = json.loads(run("verify", "--json", code=1).stdout)
    by_name = {entry["name"]: entry for entry in data["entries"]}
    assert by_name["drift"]["tag_digest"] == D_OLD
    assert by_name["drift"]["digest"] == "sha256:" + "2" * 64
    assert by_name["missing"]["digest_exists"] is False
    assert data["summary"] == {"ok": 1, "drifted": 1, "missing": 1, "unreachable": 1}
    assert data["exit_code"] == 1


def test_verify_unchecked_entries_exit_5_and_all_ok_exits_0(
    tmp_path: Path, fake: FakeRegistry, verify_registry: dict[str, Response]
) -> None:
    verify_lock(tmp_path, fake.address, ["ok", "drift"])
    serve(verify_registry, "ok", True, "sha256:" + "1" * 64)
    serve(verify_registry, "drift", True, "sha256:" + "2" * 64)
    result = run("verify")
    assert "2 ok, 0 drifted, 0 missing, 0 unreachable" in result.stderr
    verify_registry["/v2/team/drift/manifests/v1"] = Response(503)
    result = run("verify", "--json", code=5)
    assert json.loads(result.stdout)["exit_code"] == 5


def test_verify_without_lockfile_or_entries(tmp_path: Path) -> None:
    assert "no lockfile at ocirel.lock.json" in run("verify", code=2).stderr
    write_lock(tmp_path / "ocirel.lock.json")
    result = run("verify", "--json")
    assert json.loads(result.stdout)["entries"] == []
    assert "has no entries" in result.stderr


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_verify_tls_options_apply_to_the_lockfile_registry(
    tmp_path: Path, tls_fake: FakeRegistry, tls_files: TlsFiles, net: NetGuard
) -> None:
    net.alias("registry.test")
    host = f"registry.test:{tls_fake.port}"
    digest = Digest("sha256:" + "1" * 64)
    tls_fake.route("HEAD", r"/v2/team/app/manifests/.*", manifest_head(digest))
    write_lock(tmp_path / "ocirel.lock.json", LockEntry("app", f"{host}/team/app", "v1", digest))
    result = run("verify", code=5)  # a private CA: unverifiable without help
    assert "certificate" in result.stdout
    run("verify", "--ca-file", str(tls_files.ca))
    run("verify", "--insecure")


# ------------------------------------------------------------------- -q and -v


def test_quiet_leaves_only_the_exit_code_and_the_warnings(
    tmp_path: Path, lock: Path, tree: dict[str, Path]
) -> None:
    before = snapshot(tmp_path)
    result = run("-q", "pin", "--check", ".", code=1)
    assert (result.stdout, result.stderr) == ("", "")
    assert snapshot(tmp_path) == before
    os.mkfifo(tmp_path / "k8s" / "pipe.yaml")
    warned = run("--quiet", "lint", "k8s", code=1)
    assert warned.stderr.startswith("warning: k8s/pipe.yaml: skipped: a FIFO")
    assert "error(s)" not in warned.stderr  # the summary is progress
    assert "unpinned" in warned.stdout  # results stay


def test_quiet_goes_with_neither_verbose_nor_debug(lock: Path) -> None:
    for flags in (("-q", "-v"), ("--quiet", "--debug")):
        result = run(*flags, "lint", ".", code=2)
        assert "--quiet cannot go with --verbose or --debug" in result.output
