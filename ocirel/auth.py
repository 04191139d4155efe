"""Finding registry credentials — kept apart from *using* them (that is ocirel.transport).

Search order, as containers-auth.json(5) describes, first match wins:

1. ``OCIREL_USERNAME`` / ``OCIREL_PASSWORD`` — only for the registry the command
   targets (``OCIREL_REGISTRY`` overrides which one), never for other hosts;
2. ``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``;
3. ``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config/containers/auth.json``);
4. ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``;
5. ``~/.dockercfg`` (legacy format: the ``auths`` object itself).

In each file: ``credHelpers[<host>]``, then ``auths`` (keys may be ``host``,
``host/namespace`` or ``host/ns/repo``; the longest matching prefix wins; the legacy
``https://host/v1/`` form and Docker Hub's ``https://index.docker.io/v1/`` key are
understood), then ``credsStore``. Helpers are programs ``docker-credential-<name>``
run with ``get`` and the server on stdin. Everything read is registered with
:mod:`ocirel.redact`, so it can never be printed.

``.netrc`` and URL user-info are never used.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ocirel import runner
from ocirel.errors import ConfigError, RegistryAuthError
from ocirel.redact import register_credentials, register_secret
from ocirel.reference import normalize_host

HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    """A username and secret; ``identity_token`` replaces the password for OAuth2 realms."""

    username: str
    password: str
    identity_token: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        register_credentials(self.username, self.password)
        register_secret(self.identity_token)

    def __repr__(self) -> str:  # never show the secret, even in a debugger dump
        return f"Credentials(username={self.username!r}, source={self.source!r})"


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def auth_files(env: Mapping[str, str] | None = None) -> list[Path]:
    """The credential files to consult, in order (whether or not they exist)."""
    env = os.environ if env is None else env
    home = _home(env)
    files: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    elif env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    files.append(config_home / "containers" / "auth.json")
    docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
    files.append(docker_dir / "config.json")
    files.append(home / ".dockercfg")
    return files


def existing_auth_files(env: Mapping[str, str] | None = None) -> list[Path]:
    return [p for p in auth_files(env) if p.is_file()]


def _normalize_key(key: str) -> str:
    """Map an auth-file key to ``host[/path]`` as written in image references."""
    if key in HUB_KEYS:
        return "docker.io"
    if "://" in key:  # legacy docker keys: scheme and /v1/ path are noise
        key = key.split("://", 1)[1].split("/", 1)[0]
    host, sep, path = key.rstrip("/").partition("/")
    return normalize_host(host) + sep + path  # host names are case-insensitive


def _match_key(keys: list[str], registry: str, repository: str) -> str | None:
    """The longest key that is ``registry`` or a path prefix of ``registry/repository``."""
    full = f"{registry}/{repository}" if repository else registry
    best: str | None = None
    for key in keys:
        norm = _normalize_key(key)
        if (full == norm or full.startswith(norm + "/")) and (
            best is None or len(norm) > len(_normalize_key(best))
        ):
            best = key
    return best


def _decode_entry(entry: object, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    token = entry.get("identitytoken") or entry.get("identityToken")
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"{where}: an 'auth' value is not valid base64") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(f"{where}: an 'auth' value is not 'user:password'")
        return Credentials(username, password, token or None, where)
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Credentials(entry["username"], entry["password"], token or None, where)
    if isinstance(token, str) and token:
        return Credentials("<token>", "", token, where)
    return None


def run_helper(
    helper: str, server: str, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """Ask ``docker-credential-<helper>`` for ``server``; None when it has nothing."""
    program = f"docker-credential-{helper}"
    result = runner.run(
        [program, "get"],
        stdin_data=server,
        timeout=HELPER_TIMEOUT,
        check=False,
        env=env,
        install_hint=f"install {program} or remove it from your docker config",
    )
    if result.returncode != 0:
        text = (result.stdout + result.stderr).lower()
        if "not found" in text or "no credentials" in text:
            return None
        raise RegistryAuthError(
            f"{program} failed for {server} (exit {result.returncode})",
            hint="check the credential helper, or log in again",
        )
    try:
        data = json.loads(result.stdout)
        username, secret = data["Username"], data["Secret"]
    except (ValueError, KeyError, TypeError):
        raise RegistryAuthError(f"{program} returned something that is not credentials") from None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise RegistryAuthError(f"{program} returned something that is not credentials")
    if username == "<token>":
        return Credentials(username, "", secret, program)
    return Credentials(username, secret, None, program)


def _helper_server(registry: str) -> str:
    return "https://index.docker.io/v1/" if registry == "docker.io" else registry


def _from_file(
    path: Path, registry: str, repository: str, env: Mapping[str, str]
) -> Credentials | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"credentials file {path} is not a JSON object")
    legacy = path.name == ".dockercfg"
    helpers = data.get("credHelpers") if not legacy else None
    if isinstance(helpers, dict):
        key = _match_key([k for k in helpers if isinstance(helpers[k], str)], registry, "")
        if key is not None:
            return run_helper(helpers[key], _helper_server(registry), env)
    auths = data if legacy else data.get("auths", {})
    if isinstance(auths, dict):
        key = _match_key(list(auths), registry, repository)
        if key is not None:
            creds = _decode_entry(auths[key], str(path))
            if creds is not None:
                return creds
    store = data.get("credsStore") if not legacy else None
    if isinstance(store, str) and store:
        return run_helper(store, _helper_server(registry), env)
    return None


def find_credentials(
    registry: str,
    repository: str = "",
    *,
    env: Mapping[str, str] | None = None,
    env_registry: str | None = None,
) -> Credentials | None:
    """Credentials for ``registry`` (and optionally a repository under it), or None.

    ``env_registry`` is the registry the command targets; ``OCIREL_USERNAME`` /
    ``OCIREL_PASSWORD`` apply to it (or to ``OCIREL_REGISTRY`` when that is set).
    """
    env = os.environ if env is None else env
    user, password = env.get("OCIREL_USERNAME"), env.get("OCIREL_PASSWORD")
    scoped = env.get("OCIREL_REGISTRY") or env_registry
    if user and password is not None and scoped and _normalize_key(scoped) == registry:
        return Credentials(user, password, None, "OCIREL_USERNAME/OCIREL_PASSWORD")
    if bool(user) != bool(password):
        raise ConfigError("set both OCIREL_USERNAME and OCIREL_PASSWORD, or neither")
    for path in auth_files(env):
        creds = _from_file(path, registry, repository, env)
        if creds is not None:
            return creds
    return None


def authfile_document(creds_by_registry: Mapping[str, Credentials]) -> dict[str, object]:
    """A containers auth.json / docker config.json body holding these credentials."""
    auths: dict[str, object] = {}
    for registry, creds in creds_by_registry.items():
        entry: dict[str, str] = {}
        if creds.password:
            raw = f"{creds.username}:{creds.password}".encode()
            entry["auth"] = base64.b64encode(raw).decode("ascii")
        if creds.identity_token:
            entry["identitytoken"] = creds.identity_token
        key = "https://index.docker.io/v1/" if registry == "docker.io" else registry
        auths[key] = entry
    return {"auths": auths}


_AUTHDIR_PREFIX = "ocirel-auth-"


def remove_orphaned_authfiles(tmpdir: Path | None = None) -> list[Path]:
    """Remove our auth directories left by killed ocirel runs (owner PID gone)."""
    removed: list[Path] = []
    base = tmpdir or Path(tempfile.gettempdir())
    for candidate in base.glob(f"{_AUTHDIR_PREFIX}*-*"):
        pid_text = candidate.name[len(_AUTHDIR_PREFIX) :].split("-", 1)[0]
        try:
            info = candidate.lstat()
        except OSError:
            continue
        if not pid_text.isdigit() or info.st_uid != os.getuid() or not candidate.is_dir():
            continue
        if runner.pid_alive(int(pid_text)):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


@contextlib.contextmanager
def private_authfile(creds_by_registry: Mapping[str, Credentials]) -> Iterator[Path]:
    """Write a 0600 ``config.json`` in a fresh 0700 directory; remove both afterwards.

    The path is usable as buildah/podman ``--authfile`` and its directory as
    ``DOCKER_CONFIG``. It is removed even when the block raises or is interrupted.
    Only SIGKILL can leave one behind; its name carries the owner's PID, so the next
    run removes directories whose owner is gone.
    """
    remove_orphaned_authfiles()
    directory = Path(tempfile.mkdtemp(prefix=f"{_AUTHDIR_PREFIX}{os.getpid()}-"))
    try:
        path = directory / "config.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(authfile_document(creds_by_registry), handle)
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
