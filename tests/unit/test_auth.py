"""Credential discovery (ocirel.auth), table-driven, against files in a temporary HOME.

Credential helpers are a real ``docker-credential-test`` shell script on PATH that
logs its argv and stdin, so the tests see exactly what ocirel handed over.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ocirel.auth import (
    Credentials,
    auth_files,
    find_credentials,
    private_authfile,
    remove_orphaned_authfiles,
)
from ocirel.errors import BackendNotFoundError, ConfigError, OcirelError, RegistryAuthError
from ocirel.redact import redact

HOST = "reg.example.com"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def auths(entries: dict[str, dict[str, str]], **extra: object) -> str:
    return json.dumps({"auths": entries, **extra})


def entry(user: str, password: str) -> dict[str, str]:
    return {"auth": b64(f"{user}:{password}")}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    """A minimal environment: HOME and a PATH (helpers need sh and cat)."""
    return {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------- search order


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, ["~/.config/containers/auth.json", "~/.docker/config.json", "~/.dockercfg"]),
        (
            {"REGISTRY_AUTH_FILE": "/a/auth.json"},
            [
                "/a/auth.json",
                "~/.config/containers/auth.json",
                "~/.docker/config.json",
                "~/.dockercfg",
            ],
        ),
        (
            {"XDG_RUNTIME_DIR": "/run/user/7"},
            [
                "/run/user/7/containers/auth.json",
                "~/.config/containers/auth.json",
                "~/.docker/config.json",
                "~/.dockercfg",
            ],
        ),
        (
            {"REGISTRY_AUTH_FILE": "/a/auth.json", "XDG_RUNTIME_DIR": "/run/user/7"},
            [
                "/a/auth.json",
                "~/.config/containers/auth.json",
                "~/.docker/config.json",
                "~/.dockercfg",
            ],
        ),
        (
            {"XDG_CONFIG_HOME": "/cfg", "DOCKER_CONFIG": "/dock"},
            ["/cfg/containers/auth.json", "/dock/config.json", "~/.dockercfg"],
        ),
    ],
)
def test_auth_files_in_containers_auth_json_order(
    home: Path, variables: dict[str, str], expected: list[str]
) -> None:
    files = auth_files({"HOME": str(home), **variables})
    assert [str(p).replace(str(home), "~") for p in files] == expected


LOCATIONS = {
    "REGISTRY_AUTH_FILE": "custom/auth.json",
    "XDG_RUNTIME_DIR": "run/containers/auth.json",
    "containers": "home/.config/containers/auth.json",
    "DOCKER_CONFIG": "dockerconf/config.json",
    "docker": "home/.docker/config.json",
    "dockercfg": "home/.dockercfg",
}


@pytest.mark.parametrize(
    ("present", "use_env", "winner"),
    [
        (
            list(LOCATIONS),
            ["REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG"],
            "REGISTRY_AUTH_FILE",
        ),
        (list(LOCATIONS), ["XDG_RUNTIME_DIR", "DOCKER_CONFIG"], "XDG_RUNTIME_DIR"),
        (list(LOCATIONS), ["DOCKER_CONFIG"], "containers"),
        (["DOCKER_CONFIG", "docker", "dockercfg"], ["DOCKER_CONFIG"], "DOCKER_CONFIG"),
        (["DOCKER_CONFIG", "docker", "dockercfg"], [], "docker"),
        (["dockercfg"], ["REGISTRY_AUTH_FILE", "DOCKER_CONFIG"], "dockercfg"),
        (
            ["REGISTRY_AUTH_FILE", "docker"],
            ["XDG_RUNTIME_DIR"],
            "docker",
        ),  # variable unset: file unused
    ],
)
def test_first_file_with_the_registry_wins(
    tmp_path: Path, home: Path, present: list[str], use_env: list[str], winner: str
) -> None:
    for name in present:
        path = tmp_path / LOCATIONS[name]
        creds = entry("user", f"password-from-{name}")
        write(path, json.dumps({HOST: creds}) if name == "dockercfg" else auths({HOST: creds}))
    env = {"HOME": str(home)}
    roots = {
        "REGISTRY_AUTH_FILE": tmp_path / LOCATIONS["REGISTRY_AUTH_FILE"],
        "XDG_RUNTIME_DIR": tmp_path / "run",
        "DOCKER_CONFIG": tmp_path / "dockerconf",
    }
    env.update({name: str(roots[name]) for name in use_env})
    found = find_credentials(HOST, "team/app", env=env)
    assert found is not None
    assert found.password == f"password-from-{winner}"
    assert found.source == str(tmp_path / LOCATIONS[winner])


def test_a_file_without_the_registry_passes_to_the_next(home: Path, env: dict[str, str]) -> None:
    write(
        home / ".config/containers/auth.json", auths({"other.example.com": entry("o", "other-pw")})
    )
    write(home / ".docker/config.json", auths({HOST: entry("d", "docker-pw")}))
    found = find_credentials(HOST, env=env)
    assert found is not None
    assert (found.username, found.password) == ("d", "docker-pw")


def test_no_files_no_credentials(env: dict[str, str]) -> None:
    assert find_credentials(HOST, "team/app", env=env) is None


# --------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("registry", "repository", "winner"),
    [
        (HOST, "ns/repo", "repo"),
        (HOST, "ns/repo/sub", "repo"),
        (HOST, "ns/other", "ns"),
        (HOST, "nsx/app", "host"),
        (HOST, "other/app", "host"),
        (HOST, "", "host"),
        ("reg.example.com:5000", "ns/repo", None),
        ("example.com", "ns/repo", None),
        ("sub.reg.example.com", "ns/repo", None),
    ],
)
def test_longest_matching_key_wins(
    home: Path, env: dict[str, str], registry: str, repository: str, winner: str | None
) -> None:
    write(
        home / ".docker/config.json",
        auths(
            {
                HOST: entry("u", "pw-host"),
                f"{HOST}/ns": entry("u", "pw-ns"),
                f"{HOST}/ns/repo": entry("u", "pw-repo"),
            }
        ),
    )
    found = find_credentials(registry, repository, env=env)
    assert (found.password if found else None) == (f"pw-{winner}" if winner else None)


@pytest.mark.parametrize(
    ("key", "registry", "repository"),
    [
        ("https://index.docker.io/v1/", "docker.io", "library/nginx"),
        ("index.docker.io", "docker.io", "library/nginx"),
        ("docker.io", "docker.io", "library/nginx"),
        ("registry-1.docker.io", "docker.io", "team/app"),
        ("docker.io/team", "docker.io", "team/app"),
        ("https://reg.example.com/v1/", HOST, "team/app"),
        ("http://localhost:5000", "localhost:5000", "app"),
        ("reg.example.com/", HOST, "team/app"),
        ("Reg.Example.COM", HOST, "team/app"),  # host names are case-insensitive
        ("https://Reg.Example.com/v1/", HOST, "team/app"),
    ],
)
def test_key_spellings_understood(
    home: Path, env: dict[str, str], key: str, registry: str, repository: str
) -> None:
    write(home / ".docker/config.json", auths({key: entry("u", "key-pw")}))
    found = find_credentials(registry, repository, env=env)
    assert found is not None
    assert found.password == "key-pw"


def test_docker_hub_key_does_not_leak_to_other_registries(home: Path, env: dict[str, str]) -> None:
    write(
        home / ".docker/config.json", auths({"https://index.docker.io/v1/": entry("u", "hub-pw")})
    )
    assert find_credentials("ghcr.io", "team/app", env=env) is None
    assert find_credentials("index.docker.io.evil.example", "x", env=env) is None


# ----------------------------------------------------------- entries


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (entry("alice", "pa:ss:word"), ("alice", "pa:ss:word", None)),
        ({"username": "bob", "password": "bob-pw"}, ("bob", "bob-pw", None)),
        (
            {"auth": b64("carol:carol-pw"), "identitytoken": "idt-carol"},
            ("carol", "carol-pw", "idt-carol"),
        ),
        ({"identitytoken": "idt-only"}, ("<token>", "", "idt-only")),
        ({"identityToken": "idt-camel"}, ("<token>", "", "idt-camel")),
    ],
)
def test_entries_and_identity_tokens(
    home: Path, env: dict[str, str], value: dict[str, str], expected: tuple[str, str, str | None]
) -> None:
    write(home / ".docker/config.json", auths({HOST: value}))
    found = find_credentials(HOST, env=env)
    assert found is not None
    assert (found.username, found.password, found.identity_token) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "cannot read credentials file"),
        ("[]", "not a JSON object"),
        (auths({HOST: {"auth": "***not base64***"}}), "not valid base64"),
        (auths({HOST: {"auth": b64("no-colon-secret")}}), "not 'user:password'"),
    ],
)
def test_malformed_files_fail_cleanly(
    home: Path, env: dict[str, str], text: str, message: str
) -> None:
    path = write(home / ".docker/config.json", text)
    with pytest.raises(ConfigError, match=message) as caught:
        find_credentials(HOST, env=env)
    assert str(path) in str(caught.value)
    assert "no-colon-secret" not in str(caught.value)


def test_unreadable_file_is_a_config_error(home: Path, env: dict[str, str]) -> None:
    (home / ".docker/config.json").mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(ConfigError, match="cannot read credentials file"):
        find_credentials(HOST, env=env)


# ----------------------------------------------------------- helpers

HELPER = r"""#!/bin/sh
server=$(cat)
printf '%s\n' "$*" >> "{log}.argv"
printf '%s\n' "$server" >> "{log}.stdin"
case "$server" in
  reg.example.com)
    printf '{{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret-41"}}' "$server";;
  https://index.docker.io/v1/)
    printf '{{"ServerURL":"%s","Username":"<token>","Secret":"hub-identity-42"}}' "$server";;
  broken.example.com) echo "backend exploded near helper-stderr-secret-43" >&2; exit 3;;
  garbage.example.com) echo "this is not json";;
  *) echo "credentials not found in native keychain"; exit 1;;
esac
"""


@pytest.fixture
def helper(tmp_path: Path, env: dict[str, str]) -> Path:
    """``docker-credential-test`` on PATH; returns the log prefix (``.argv``/``.stdin``)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "helper-log"
    script = bindir / "docker-credential-test"
    script.write_text(HELPER.format(log=log))
    script.chmod(0o755)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    return log


def helper_calls(log: Path) -> list[tuple[str, str]]:
    if not log.with_suffix(".argv").exists():
        return []
    argv = log.with_suffix(".argv").read_text().splitlines()
    stdin = log.with_suffix(".stdin").read_text().splitlines()
    return list(zip(argv, stdin, strict=True))


@pytest.mark.parametrize("config_key", ["credHelpers", "credsStore"])
def test_r23_credential_helper_gets_server_on_stdin_never_in_argv(
    home: Path, env: dict[str, str], helper: Path, config_key: str
) -> None:
    helpers = {HOST: "test"} if config_key == "credHelpers" else "test"
    write(home / ".docker/config.json", json.dumps({"auths": {HOST: {}}, config_key: helpers}))
    found = find_credentials(HOST, "team/app", env=env)
    assert found is not None
    assert (found.username, found.password) == ("helper-user", "helper-secret-41")
    assert helper_calls(helper) == [("get", HOST)]
    assert redact("x helper-secret-41 y") == "x *** y"


def test_cred_helper_for_docker_hub_gets_the_hub_server_url(
    home: Path, env: dict[str, str], helper: Path
) -> None:
    write(home / ".docker/config.json", json.dumps({"credHelpers": {"docker.io": "test"}}))
    found = find_credentials("docker.io", "library/nginx", env=env)
    assert found is not None
    assert (found.username, found.password, found.identity_token) == (
        "<token>",
        "",
        "hub-identity-42",
    )
    assert helper_calls(helper) == [("get", "https://index.docker.io/v1/")]


def test_auths_entry_wins_over_creds_store(home: Path, env: dict[str, str], helper: Path) -> None:
    write(
        home / ".docker/config.json",
        auths({HOST: entry("file-user", "file-pw")}, credsStore="test"),
    )
    found = find_credentials(HOST, env=env)
    assert found is not None
    assert found.username == "file-user"
    assert helper_calls(helper) == []


def test_cred_helper_wins_over_auths_entry(home: Path, env: dict[str, str], helper: Path) -> None:
    write(
        home / ".docker/config.json",
        auths({HOST: entry("file-user", "file-pw")}, credHelpers={HOST: "test"}),
    )
    found = find_credentials(HOST, env=env)
    assert found is not None
    assert found.username == "helper-user"


def test_helper_without_credentials_passes_to_the_next_file(
    home: Path, env: dict[str, str], helper: Path
) -> None:
    env["REGISTRY_AUTH_FILE"] = str(write(home / "first.json", json.dumps({"credsStore": "test"})))
    write(home / ".docker/config.json", auths({"unknown.example.com": entry("later", "later-pw")}))
    found = find_credentials("unknown.example.com", env=env)
    assert found is not None
    assert found.username == "later"
    assert helper_calls(helper) == [("get", "unknown.example.com")]


@pytest.mark.parametrize(
    ("server", "error", "message"),
    [
        ("broken.example.com", RegistryAuthError, "failed for broken.example.com"),
        ("garbage.example.com", RegistryAuthError, "not credentials"),
    ],
)
def test_r23_failing_helpers_fail_cleanly_without_their_output(
    home: Path,
    env: dict[str, str],
    helper: Path,
    server: str,
    error: type[OcirelError],
    message: str,
) -> None:
    write(home / ".docker/config.json", json.dumps({"credHelpers": {server: "test"}}))
    with pytest.raises(error, match=message) as caught:
        find_credentials(server, env=env)
    assert "helper-stderr-secret-43" not in f"{caught.value} {caught.value.hint}"


def test_missing_helper_names_what_to_install(home: Path, env: dict[str, str]) -> None:
    write(home / ".docker/config.json", json.dumps({"credsStore": "nonexistent-xyz"}))
    with pytest.raises(BackendNotFoundError, match="docker-credential-nonexistent-xyz") as caught:
        find_credentials(HOST, env=env)
    assert "install docker-credential-nonexistent-xyz" in (caught.value.hint or "")


# --------------------------------------------------- OCIREL_USERNAME / PASSWORD


@pytest.mark.parametrize(
    ("variables", "env_registry", "registry", "applies"),
    [
        ({}, HOST, HOST, True),
        ({}, HOST, "other.example.com", False),
        ({}, None, HOST, False),
        ({"OCIREL_REGISTRY": "other.example.com"}, HOST, "other.example.com", True),
        ({"OCIREL_REGISTRY": "other.example.com"}, HOST, HOST, False),
        ({"OCIREL_REGISTRY": "index.docker.io"}, None, "docker.io", True),
        ({"OCIREL_REGISTRY": "https://index.docker.io/v1/"}, None, "docker.io", True),
    ],
)
def test_env_credentials_only_for_the_target_registry(
    home: Path,
    env: dict[str, str],
    variables: dict[str, str],
    env_registry: str | None,
    registry: str,
    applies: bool,
) -> None:
    write(home / ".docker/config.json", auths({"other.example.com": entry("file", "file-pw")}))
    env.update(OCIREL_USERNAME="ci-bot", OCIREL_PASSWORD="env-secret-55", **variables)
    found = find_credentials(registry, "team/app", env=env, env_registry=env_registry)
    if applies:
        assert found is not None
        assert (found.username, found.password) == ("ci-bot", "env-secret-55")
    else:
        assert found is None or found.password != "env-secret-55"


@pytest.mark.parametrize("variable", ["OCIREL_USERNAME", "OCIREL_PASSWORD"])
def test_half_of_the_env_credentials_is_a_config_error(env: dict[str, str], variable: str) -> None:
    env[variable] = "only-one"
    with pytest.raises(ConfigError, match="set both"):
        find_credentials(HOST, env=env, env_registry=HOST)


# ------------------------------------------------------ items 20 and 23


def test_r20_netrc_is_not_a_credential_source(home: Path, env: dict[str, str]) -> None:
    netrc = write(
        home / ".netrc",
        f"machine {HOST} login alice password netrc-pw\ndefault login alice password netrc-pw\n",
    )
    netrc.chmod(0o600)
    env["NETRC"] = str(netrc)
    assert find_credentials(HOST, "team/app", env=env) is None


def test_r23_secrets_read_are_registered_for_redaction(home: Path, env: dict[str, str]) -> None:
    write(
        home / ".docker/config.json",
        auths({HOST: {"auth": b64("u:file-secret-66"), "identitytoken": "idt-secret-67"}}),
    )
    find_credentials(HOST, env=env)
    assert redact("file-secret-66 idt-secret-67") == "*** ***"


def test_r23_private_authfile_is_0600_in_a_0700_dir_and_removed(tmp_path: Path) -> None:
    creds = {
        HOST: Credentials("alice", "authfile-secret-68"),
        "docker.io": Credentials("<token>", "", "hub-idt-69"),
    }
    with private_authfile(creds) as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent.stat().st_uid == os.getuid()
        document = json.loads(path.read_text())
        written = path
    assert document == {
        "auths": {
            HOST: {"auth": b64("alice:authfile-secret-68")},
            "https://index.docker.io/v1/": {"identitytoken": "hub-idt-69"},
        }
    }
    assert not written.exists()
    assert not written.parent.exists()


def test_r23_private_authfile_removed_when_the_block_raises() -> None:
    seen: list[Path] = []

    def use_and_fail() -> None:
        with private_authfile({HOST: Credentials("a", "b-secret-70")}) as path:
            seen.append(path)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        use_and_fail()
    assert seen
    assert not seen[0].exists()
    assert not seen[0].parent.exists()


def test_r23_private_authfile_usable_as_docker_config(tmp_path: Path) -> None:
    """What a builder would read back through DOCKER_CONFIG is what we wrote."""
    with private_authfile({HOST: Credentials("alice", "roundtrip-71")}) as path:
        found = find_credentials(
            HOST, env={"HOME": str(tmp_path), "DOCKER_CONFIG": str(path.parent)}
        )
    assert found is not None
    assert (found.username, found.password) == ("alice", "roundtrip-71")


def test_r23_authfile_of_a_killed_run_is_removed_by_the_next(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f"ocirel-auth-{dead.stdout.strip()}-abc123"
    orphan.mkdir(mode=0o700)
    (orphan / "config.json").write_text('{"auths": {}}')
    live = tmp_path / f"ocirel-auth-{os.getpid()}-def456"
    live.mkdir(mode=0o700)
    unrelated = tmp_path / "ocirel-authentic-notes"
    unrelated.mkdir()
    assert remove_orphaned_authfiles(tmp_path) == [orphan]
    assert not orphan.exists()
    assert live.exists()
    assert unrelated.exists()
