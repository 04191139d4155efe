"""Build records against real distribution 2.8 registries (plain and token auth).

Images are pushed through the registry API (no builder). The record is attached
in-process through :func:`ocirel.records.attach.attach_after_publish` (oras-py over
ocirel's transport); ``ocirel show``/``next``/``verify`` run as subprocesses; a second
process reads the artifact with plain oras-py (its own auth, no ocirel code) through
the ``sha256-<hex>`` referrers tag and must see what ``show --json`` printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocirel import lockfile, reference
from ocirel.auth import Credentials
from ocirel.gitinfo import SourceInfo
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from ocirel.records.attach import AttachRequest, attach_after_publish
from ocirel.records.record import RECORD_TYPE
from ocirel.records.referrers import build_records
from ocirel.registry import Registry
from ocirel.transport import Transport
from ocirel.versioning import referrers_tag
from tests.integration.conftest import OcirelRunner
from tests.support.registry import RegistryServer

SECRET_VALUE = "hunter2-very-secret-value"
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(params=["registry", "token_registry"])
def server(request: pytest.FixtureRequest) -> RegistryServer:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def env_for(server: RegistryServer) -> dict[str, str]:
    env = {"OCIREL_RETRIES": "0"}
    if server.credentials is not None:
        env.update(OCIREL_USERNAME=server.credentials[0], OCIREL_PASSWORD=server.credentials[1])
    return env


def registry_for(server: RegistryServer) -> Registry:
    creds = server.credentials

    def lookup(_registry: str, _repository: str) -> Credentials | None:
        return Credentials(*creds) if creds else None

    return Registry(Transport(credentials=lookup))


@pytest.fixture
def published(server: RegistryServer, unique_repo: str, tmp_path: Path) -> dict[str, Any]:
    """``repo:v1`` pushed, recorded in a lockfile, its build record attached."""
    with server.client() as client:
        digest = client.push_random_image(unique_repo, "v1")
    repository = f"{server.host}/{unique_repo}"
    entry = LockEntry("app", repository, "v1", Digest(digest),
                      source={"revision": REVISION, "dirty": False})  # fmt: skip
    (tmp_path / "ocirel.lock.json").write_text(lockfile.dumps(Lockfile({"app": entry})), "utf-8")
    request = AttachRequest(
        entry=entry,
        source=SourceInfo(REVISION, False, "https://example.com/team/app"),
        backend="buildah",
        backend_version="1.28.2",
        build_args=(
            ("GITHUB_TOKEN", SECRET_VALUE),
            ("DB_PASSWORD", SECRET_VALUE),
            ("VERSION", "1.2.3"),
        ),
        bases=(f"{repository}:v1", "docker.io/library/alpine:3.19"),
        source_date_epoch=1700000000,
    )
    warnings: list[str] = []
    if server.token_server is not None:
        server.token_server.clear()
    record_digest = attach_after_publish(registry_for(server), request, warnings.append)
    assert warnings == []
    assert record_digest is not None
    if server.token_server is not None:  # oras-py's requests got ocirel's tokens, per scope
        asked = server.token_server.recorded()
        assert f"repository:{unique_repo}:pull,push" in {s for r in asked for s in r.scopes}
        assert all(r.authenticated for r in asked)
    return {"repo": unique_repo, "repository": repository, "digest": digest,
            "record_digest": record_digest, "dir": tmp_path}  # fmt: skip


def test_show_returns_the_record_whose_subject_is_the_image(
    ocirel: OcirelRunner, server: RegistryServer, published: dict[str, Any]
) -> None:
    run = ocirel("show", "app", "--json", cwd=published["dir"], env=env_for(server))
    assert run.returncode == 0, run.explain()
    shown = run.json
    assert shown["digest"] == published["digest"]
    assert shown["tags"] == ["v1"]  # the referrers tag is not listed as a tag of the image
    assert shown["platforms"] == ["linux/amd64"]
    [attached] = shown["records"]
    assert attached["digest"] == published["record_digest"]
    assert attached["subject"] == published["digest"]
    record = attached["record"]
    assert record["mediaType"] == RECORD_TYPE
    assert record["subject"]["digest"] == published["digest"]
    assert record["lock"]["digest"] == published["digest"]
    assert record["source"] == {"url": "https://example.com/team/app", "revision": REVISION,
                                "dirty": False}  # fmt: skip
    assert record["backend"] == {"name": "buildah", "version": "1.28.2"}
    assert record["sourceDateEpoch"] == 1700000000
    bases = {b["ref"]: b["digest"] for b in record["baseImages"]}
    assert bases == {f"{published['repository']}:v1": published["digest"],
                     "docker.io/library/alpine:3.19": None}  # fmt: skip
    assert record["buildArgs"] == {"GITHUB_TOKEN": "***", "DB_PASSWORD": "***", "VERSION": "1.2.3"}
    assert SECRET_VALUE not in run.stdout
    # the same image by tag and by digest
    for ref in (
        f"{published['repository']}:v1",
        f"{published['repository']}@{published['digest']}",
    ):
        human = ocirel("show", ref, env=env_for(server))
        assert human.returncode == 0, human.explain()
        assert f"build record    {published['record_digest']}" in human.stdout
        assert f"@ {REVISION}" in human.stdout
        assert "build arg       GITHUB_TOKEN=***" in human.stdout


def test_next_version_ignores_the_referrers_tag(
    ocirel: OcirelRunner, server: RegistryServer, published: dict[str, Any]
) -> None:
    with server.client() as client:
        assert referrers_tag(published["digest"]) in client.tags(published["repo"], artifacts=True)
    for scheme in ("counter", "semver", "calver"):
        run = ocirel("next", published["repository"], "--scheme", scheme, "--prefix", "sha256-",
                     "--json", cwd=published["dir"], env=env_for(server))  # fmt: skip
        assert run.returncode == 0, run.explain()
        assert not run.json["next"].startswith("sha256-" + published["digest"][7:17])
    run = ocirel("next", published["repository"], "--json", cwd=published["dir"],
                 env=env_for(server))  # fmt: skip
    assert run.returncode == 0, run.explain()
    assert run.json["next"] == "v2"


def test_verify_provenance(
    ocirel: OcirelRunner, server: RegistryServer, published: dict[str, Any], unique_repo: str
) -> None:
    ok = ocirel("verify", "--provenance", "--json", cwd=published["dir"], env=env_for(server))
    assert ok.returncode == 0, ok.explain()
    [entry] = ok.json["entries"]
    assert entry["provenance"] == "ok"
    # the lockfile says another revision: the record does not match
    lock_path = published["dir"] / "ocirel.lock.json"
    entry_now = lockfile.load(lock_path).entries["app"]
    other = LockEntry("app", entry_now.repository, "v1", entry_now.digest,
                      source={"revision": "f" * 40, "dirty": False})  # fmt: skip
    lock_path.write_text(lockfile.dumps(Lockfile({"app": other})), "utf-8")
    bad = ocirel("verify", "--provenance", "--json", cwd=published["dir"], env=env_for(server))
    assert bad.returncode == 1, bad.explain()
    assert "revision" in bad.json["entries"][0]["provenance"]
    # an image without any record
    with server.client() as client:
        bare = client.push_random_image(f"{unique_repo}-bare", "v1")
    lonely = LockEntry("bare", f"{server.host}/{unique_repo}-bare", "v1", Digest(bare),
                       source={"revision": REVISION, "dirty": False})  # fmt: skip
    lock_path.write_text(lockfile.dumps(Lockfile({"bare": lonely})), "utf-8")
    none = ocirel("verify", "--provenance", "--json", cwd=published["dir"], env=env_for(server))
    assert none.returncode == 1, none.explain()
    assert "no build record" in none.json["entries"][0]["provenance"]
    plain = ocirel("verify", "--json", cwd=published["dir"], env=env_for(server))
    assert plain.returncode == 0, plain.explain()  # without --provenance: not checked


_ORAS_READER = textwrap.dedent("""
    import json, sys
    import oras.provider
    host, repo, digest, user, password = sys.argv[1:6]
    client = oras.provider.Registry(hostname=host, insecure=True)
    if user:
        client.auth.set_basic_auth(user, password)
    tag = "sha256-" + digest.split(":", 1)[1]
    index = client.get_manifest(f"{host}/{repo}:{tag}",
                                ["application/vnd.oci.image.index.v1+json"])
    out = []
    for descriptor in index["manifests"]:
        manifest = client.get_manifest(f"{host}/{repo}@{descriptor['digest']}")
        layer = manifest["layers"][0]
        blob = client.get_blob(f"{host}/{repo}", layer["digest"]).content
        out.append({"digest": descriptor["digest"], "artifactType": manifest["artifactType"],
                    "subject": manifest["subject"]["digest"], "record": json.loads(blob)})
    print(json.dumps(out))
""")


def test_plain_oras_in_another_process_reads_what_show_prints(
    ocirel: OcirelRunner, server: RegistryServer, published: dict[str, Any], tmp_path: Path
) -> None:
    user, password = server.credentials or ("", "")
    proc = subprocess.run(
        [sys.executable, "-c", _ORAS_READER, server.host, published["repo"], published["digest"],
         user, password],
        capture_output=True, text=True, timeout=60, check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [read] = json.loads(proc.stdout)
    shown = ocirel("show", "app", "--json", cwd=published["dir"], env=env_for(server)).json
    [attached] = shown["records"]
    assert read["artifactType"] == RECORD_TYPE
    assert read["digest"] == attached["digest"]
    assert read["subject"] == attached["subject"] == published["digest"]
    assert read["record"] == attached["record"]
    assert SECRET_VALUE not in proc.stdout


@pytest.mark.builder
def test_publish_attaches_a_record_unless_told_not_to(
    ocirel: OcirelRunner, server: RegistryServer, unique_repo: str,
    build_context: Callable[..., Path], require_engine: Callable[[str], None],
) -> None:  # fmt: skip
    """The one publish hook: a new version gets its record (plain and token auth), the
    secret build arg stays out of it; ``--no-attach`` and an unchanged build add none."""
    require_engine("buildah")
    context = build_context("ARG API_TOKEN", "ARG FLAVOUR", unique=True)
    repo = f"{server.host}/{unique_repo}"
    env = {**env_for(server), "SOURCE_DATE_EPOCH": "1700000000"}
    args = ("--build-arg", f"API_TOKEN={SECRET_VALUE}", "--build-arg", "FLAVOUR=plain")
    run = ocirel("publish", "--image", repo, "--backend", "buildah", "--json", *args,
                 str(context), cwd=context, env=env, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.explain()
    assert "attached build record sha256:" in run.stderr, run.explain()
    shown = ocirel("show", f"{repo}:v1", "--json", env=env)
    assert shown.returncode == 0, shown.explain()
    [attached] = shown.json["records"]
    record = attached["record"]
    assert attached["subject"] == run.json["digest"] == record["subject"]["digest"]
    assert record["buildArgs"] == {"API_TOKEN": "***", "FLAVOUR": "plain"}
    assert record["backend"]["name"] == "buildah"
    assert record["sourceDateEpoch"] == 1700000000
    assert record["lock"]["tag"] == "v1"
    assert SECRET_VALUE not in shown.stdout + run.stdout + run.stderr
    # a new version without a record
    (context / "Containerfile").write_text((context / "Containerfile").read_text() + "RUN true\n")
    second = ocirel("publish", "--image", repo, "--backend", "buildah", "--json", "--no-attach",
                    *args, str(context), cwd=context, env=env, timeout=600)  # fmt: skip
    assert second.returncode == 0, second.explain()
    assert second.json["tag"] == "v2"
    assert ocirel("show", f"{repo}:v2", "--json", env=env).json["records"] == []


_CONCURRENT_ATTACHER = textwrap.dedent("""
    import sys, threading, time
    from ocirel.auth import Credentials
    from ocirel.gitinfo import SourceInfo
    from ocirel.lockfile import LockEntry
    from ocirel.records.attach import AttachRequest, attach_after_publish
    from ocirel.registry import Registry
    from ocirel.transport import Transport
    repository, digest, label, threads, start_at = sys.argv[1:6]
    entry = LockEntry("app", repository, "v1", digest)
    barrier = threading.Barrier(int(threads))
    failed = []

    def one(index):
        request = AttachRequest(
            entry=entry, source=SourceInfo(None, False, None), backend="buildah",
            backend_version=f"{label}-{index}", build_args=(), bases=(), source_date_epoch=None,
        )
        registry = Registry(Transport(credentials=lambda _r, _p: None))
        barrier.wait()
        time.sleep(max(0.0, float(start_at) - time.time()))
        if attach_after_publish(registry, request, failed.append) is None:
            failed.append(f"{label}-{index}")

    workers = [threading.Thread(target=one, args=(i,)) for i in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("\\n".join(failed))
    sys.exit(1 if failed else 0)
""")


def test_records_attached_at_once_from_several_processes_are_all_listed(
    ocirel: OcirelRunner, registry: RegistryServer, unique_repo: str, tmp_path: Path
) -> None:
    """Without the referrers API every attach reads, extends and writes back the
    ``sha256-<hex>`` index: writers at the same moment would drop each other's entries.
    3 processes of 4 threads each attach a different record to one image at the same
    instant; all 12 must be listed (by the referrers look-up and by ``ocirel show``)."""
    import os  # noqa: PLC0415
    import time  # noqa: PLC0415

    with registry.client() as client:
        digest = client.push_random_image(unique_repo, "v1")
    repository = f"{registry.host}/{unique_repo}"
    start_at = f"{time.time() + 3.0:.3f}"  # every process imported and ready by then
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CONCURRENT_ATTACHER,
                repository,
                digest,
                f"p{n}",
                "4",
                start_at,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for n in range(3)
    ]
    for proc in procs:
        out, errors = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + errors
    expected = {f"p{n}-{i}" for n in range(3) for i in range(4)}
    found = build_records(registry_for(registry), reference.parse(repository), Digest(digest))
    assert {r.record["backend"]["version"] for r in found} == expected
    shown = ocirel("show", f"{repository}@{digest}", "--json", env=env_for(registry))
    assert shown.returncode == 0, shown.explain()
    assert {r["record"]["backend"]["version"] for r in shown.json["records"]} == expected
