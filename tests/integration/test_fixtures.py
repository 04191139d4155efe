"""Self-tests of the registry and image fixtures: they are real, and real clients accept them."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.support.client import RegistryClient, push_random_image
from tests.support.images import UNIQUE_RUN
from tests.support.registry import RegistryServer
from tests.support.tokenserver import READ_ACTIONS, Scope, decode_jwt_claims

TIMEOUT = (5, 30)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies must not change the outcome
    return session


def _run(argv: list[str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, (
        f"{argv[0]} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', params))


# -- plain -------------------------------------------------------------------------------


def test_plain_registry_answers_v2(registry: RegistryServer) -> None:
    with _session() as session:
        response = session.get(f"{registry.url}/v2/", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert registry.scheme == "http"
    assert registry.ca_file is None
    assert registry.host.startswith("127.0.0.1:")


def test_push_random_image_seeds_foreign_tags(registry: RegistryServer, unique_repo: str) -> None:
    signature_tag = f"sha256-{secrets.token_hex(32)}.sig"
    digests = {
        tag: push_random_image(registry, unique_repo, tag)
        for tag in ("latest", signature_tag, "feature-x")
    }
    with registry.client() as client:
        assert sorted(client.tags(unique_repo)) == sorted(digests)
        for tag, digest in digests.items():
            assert client.manifest_digest(unique_repo, tag) == digest
        client.delete_manifest(unique_repo, digests["feature-x"])
        assert client.manifest_digest(unique_repo, "feature-x") is None
    assert len(set(digests.values())) == 3


def test_unique_repo_is_fresh(registry: RegistryServer, unique_repo: str) -> None:
    assert re.fullmatch(r"t/[a-z0-9-]+-[0-9a-f]{6}", unique_repo)
    with registry.client() as client:
        assert client.tags(unique_repo) == []


# -- TLS + Basic ---------------------------------------------------------------------------


def test_tls_registry_needs_the_private_ca(tls_basic_registry: RegistryServer) -> None:
    url = f"{tls_basic_registry.url}/v2/"
    assert tls_basic_registry.ca_file is not None
    with _session() as session:
        with pytest.raises(requests.exceptions.SSLError):
            session.get(url, timeout=TIMEOUT, verify=True)
        response = session.get(url, timeout=TIMEOUT, verify=str(tls_basic_registry.ca_file))
    assert response.status_code == 401  # TLS passed; auth is next


def test_tls_certificate_names_localhost_too(tls_basic_registry: RegistryServer) -> None:
    url = f"https://localhost:{tls_basic_registry.port}/v2/"
    with _session() as session:
        response = session.get(url, timeout=TIMEOUT, verify=tls_basic_registry.verify)
    assert response.status_code == 401


def test_basic_auth_rejects_bad_and_accepts_good_credentials(
    tls_basic_registry: RegistryServer,
) -> None:
    url = f"{tls_basic_registry.url}/v2/"
    verify = tls_basic_registry.verify
    assert tls_basic_registry.credentials is not None
    username, password = tls_basic_registry.credentials
    with _session() as session:
        anonymous = session.get(url, timeout=TIMEOUT, verify=verify)
        bad = session.get(url, auth=(username, password + "x"), timeout=TIMEOUT, verify=verify)
        good = session.get(url, auth=(username, password), timeout=TIMEOUT, verify=verify)
    assert anonymous.status_code == 401
    assert _parse_challenge(anonymous.headers["WWW-Authenticate"])[0] == "Basic"
    assert bad.status_code == 401
    assert good.status_code == 200


# -- token -----------------------------------------------------------------------------------


@pytest.fixture(params=["token_registry", "tls_token_registry"])
def any_token_registry(request: pytest.FixtureRequest) -> RegistryServer:
    server: RegistryServer = request.getfixturevalue(request.param)
    return server


def test_token_registry_challenges_with_bearer(any_token_registry: RegistryServer) -> None:
    server = any_token_registry
    assert server.token_server is not None
    with _session() as session:
        response = session.get(f"{server.url}/v2/", timeout=TIMEOUT, verify=server.verify)
    assert response.status_code == 401
    scheme, params = _parse_challenge(response.headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    assert params["realm"] == server.token_server.realm
    assert params["service"] == server.token_server.service
    assert params["realm"].startswith("https://" if server.tls else "http://")


def test_token_grants_pull_to_users_and_nothing_to_anonymous(
    any_token_registry: RegistryServer, unique_repo: str
) -> None:
    server = any_token_registry
    assert server.token_server is not None
    push_random_image(server, unique_repo, "v1")
    server.token_server.clear()
    scope = f"repository:{unique_repo}:pull"
    tags_url = f"{server.url}/v2/{unique_repo}/tags/list"
    with RegistryClient(server) as client, _session() as session:
        user_token = client.token([scope])
        anonymous_token = client.token([scope], anonymous=True)
        listed = session.get(
            tags_url,
            headers={"Authorization": f"Bearer {user_token}"},
            timeout=TIMEOUT,
            verify=server.verify,
        )
        refused = session.get(
            tags_url,
            headers={"Authorization": f"Bearer {anonymous_token}"},
            timeout=TIMEOUT,
            verify=server.verify,
        )
    assert listed.status_code == 200
    assert listed.json()["tags"] == ["v1"]
    assert refused.status_code == 401
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]

    claims = decode_jwt_claims(user_token)
    assert claims["aud"] == server.token_server.service
    assert claims["access"] == [{"type": "repository", "name": unique_repo, "actions": ["pull"]}]
    assert decode_jwt_claims(anonymous_token)["access"] == []

    user_request, anonymous_request = server.token_server.recorded()
    assert user_request.scopes == (scope,)
    assert user_request.has_authorization
    assert user_request.authenticated
    assert not anonymous_request.has_authorization
    assert anonymous_request.granted == ()
    assert server.password is not None
    assert server.password not in repr(server.token_server.recorded())


def test_token_server_rejects_bad_credentials(token_registry: RegistryServer) -> None:
    token_server = token_registry.token_server
    assert token_server is not None
    assert token_registry.username is not None
    with _session() as session:
        response = session.get(
            token_server.realm,
            params={"service": token_server.service, "scope": "repository:t/x:pull"},
            auth=(token_registry.username, "wrong"),
            timeout=TIMEOUT,
        )
    assert response.status_code == 401
    assert token_server.recorded()[-1].authenticated is False


def test_token_expiry_is_enforced_beyond_the_leeway(
    token_registry: RegistryServer, unique_repo: str
) -> None:
    """distribution 2.8 accepts ``exp`` up to 60 s in the past; older tokens get 401."""
    token_server = token_registry.token_server
    assert token_server is not None
    push_random_image(token_registry, unique_repo, "v1")
    grant = [Scope("repository", unique_repo, ("pull",))]
    expired_at = int(time.time()) - token_server.lifetime - 120
    fresh = token_server.issue(token_registry.username, grant)["token"]
    expired = token_server.issue(token_registry.username, grant, now=expired_at)["token"]
    url = f"{token_registry.url}/v2/{unique_repo}/tags/list"
    with _session() as session:
        ok = session.get(url, headers={"Authorization": f"Bearer {fresh}"}, timeout=TIMEOUT)
        refused = session.get(url, headers={"Authorization": f"Bearer {expired}"}, timeout=TIMEOUT)
    assert ok.status_code == 200
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_read_only_account_cannot_push(token_registry: RegistryServer, unique_repo: str) -> None:
    token_server = token_registry.token_server
    assert token_server is not None
    password = secrets.token_urlsafe(12)
    token_server.add_account("reader", password, READ_ACTIONS)
    with _session() as session:
        response = session.get(
            token_server.realm,
            params={
                "service": token_server.service,
                "scope": f"repository:{unique_repo}:pull,push",
            },
            auth=("reader", password),
            timeout=TIMEOUT,
        )
    response.raise_for_status()
    claims = decode_jwt_claims(response.json()["token"])
    assert claims["access"] == [{"type": "repository", "name": unique_repo, "actions": ["pull"]}]
    assert claims["sub"] == "reader"


# -- real clients ----------------------------------------------------------------------------


def _tls_flags(server: RegistryServer, cert_dir: Path, *prefixes: str) -> list[str]:
    flags: list[str] = []
    for prefix in prefixes or ("",):
        if server.tls:
            flags.append(f"--{prefix}cert-dir={cert_dir}")
        else:
            flags.append(f"--{prefix}tls-verify=false")
    return flags


@pytest.fixture(params=["tls_basic_registry", "token_registry", "tls_token_registry"])
def auth_registry(request: pytest.FixtureRequest) -> RegistryServer:
    server: RegistryServer = request.getfixturevalue(request.param)
    return server


def test_skopeo_copies_with_authfile(
    auth_registry: RegistryServer,
    unique_repo: str,
    tmp_path: Path,
    require_engine: Callable[[str], None],
) -> None:
    require_engine("skopeo")
    server = auth_registry
    digest = push_random_image(server, unique_repo, "source")
    authfile = server.containers_auth(tmp_path / "auth")
    cert_dir = server.cert_dir(tmp_path / "certs")
    _run(
        [
            "skopeo",
            "copy",
            "--retry-times=0",
            f"--authfile={authfile}",
            *_tls_flags(server, cert_dir, "src-", "dest-"),
            f"docker://{server.host}/{unique_repo}:source",
            f"docker://{server.host}/{unique_repo}:copy",
        ]
    )
    with server.client() as client:
        assert client.manifest_digest(unique_repo, "copy") == digest
    if server.token_server is not None:
        scopes = {s for r in server.token_server.recorded() for s in r.scopes}
        assert any(s.startswith(f"repository:{unique_repo}:") and "push" in s for s in scopes)


def test_skopeo_without_credentials_is_refused(
    auth_registry: RegistryServer,
    unique_repo: str,
    tmp_path: Path,
    require_engine: Callable[[str], None],
) -> None:
    require_engine("skopeo")
    server = auth_registry
    push_random_image(server, unique_repo, "v1")
    empty_authfile = tmp_path / "empty-auth.json"
    empty_authfile.write_text(json.dumps({"auths": {}}))
    cert_dir = server.cert_dir(tmp_path / "certs")
    result = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--raw",
            "--retry-times=0",
            f"--authfile={empty_authfile}",
            *_tls_flags(server, cert_dir),
            f"docker://{server.host}/{unique_repo}:v1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "unauthorized" in result.stderr.lower() or "authentication" in result.stderr.lower()


@pytest.fixture(scope="module")
def buildah_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A small image built once by buildah from the busybox context."""
    from tests.support import engines  # noqa: PLC0415

    engines.require_engine("buildah")
    engines.require_engine("busybox")
    from tests.support.images import write_build_context  # noqa: PLC0415

    context = write_build_context(
        tmp_path_factory.mktemp("buildah-context"), [UNIQUE_RUN], unique=True
    )
    name = f"localhost/ocirel-fixture-test:{secrets.token_hex(4)}"
    _run(["buildah", "build", "--isolation", "chroot", "--quiet", "-t", name, str(context)])
    yield name
    subprocess.run(["buildah", "rmi", name], capture_output=True, timeout=120, check=False)


@pytest.mark.builder
def test_buildah_pushes_with_authfile(
    auth_registry: RegistryServer, buildah_image: str, unique_repo: str, tmp_path: Path
) -> None:
    server = auth_registry
    authfile = server.containers_auth(tmp_path / "auth")
    cert_dir = server.cert_dir(tmp_path / "certs")
    digestfile = tmp_path / "digest"
    _run(
        [
            "buildah",
            "push",
            "--retry=0",
            f"--authfile={authfile}",
            *_tls_flags(server, cert_dir),
            f"--digestfile={digestfile}",
            buildah_image,
            f"docker://{server.host}/{unique_repo}:v1",
        ]
    )
    pushed = digestfile.read_text().strip()
    assert pushed.startswith("sha256:")
    with server.client() as client:
        assert client.manifest_digest(unique_repo, "v1") == pushed


@pytest.mark.builder
@pytest.mark.parametrize("engine", ["buildah", "podman", "docker"])
def test_busybox_context_builds(
    engine: str,
    build_context: Callable[..., Path],
    require_engine: Callable[[str], None],
) -> None:
    require_engine(engine)
    context = build_context("RUN echo built > /built && test -x /bin/sh", unique=True)
    failing = build_context("RUN false")
    tag = f"localhost/ocirel-fixture-test:{engine}-{secrets.token_hex(4)}"
    extra = ["--isolation", "chroot"] if engine != "docker" else ["--network", "none"]
    try:
        # docker's legacy builder only looks for "Dockerfile": name the file.
        _run(
            [
                engine,
                "build",
                *extra,
                "-q",
                "-f",
                f"{context}/Containerfile",
                "-t",
                tag,
                str(context),
            ]
        )
        failed = subprocess.run(
            [engine, "build", *extra, "-q", "-f", f"{failing}/Containerfile", str(failing)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert failed.returncode != 0
    finally:
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True, timeout=120, check=False)
    assert shutil.which(engine)
