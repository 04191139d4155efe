"""Real distribution registries (``docker-registry serve``) as subprocesses.

:func:`start_registry` is a context manager that writes a config into a work
directory, starts the registry on a free ``127.0.0.1`` port, waits until ``/v2/``
answers and stops it afterwards (terminate, then kill). Variants:

* plain HTTP or TLS with a private CA (``tls=True``);
* no auth, htpasswd Basic auth (``auth="basic"``) or token auth (``auth="token"``,
  with an in-process :class:`~tests.support.tokenserver.TokenServer`, HTTPS when
  the registry is TLS, HTTP otherwise);
* deletes are always enabled.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import requests

from tests.support.pki import CertificateAuthority
from tests.support.tokenserver import TokenServer

if TYPE_CHECKING:
    from tests.support.client import RegistryClient

Auth = Literal["none", "basic", "token"]

#: Environment variable naming the registry binary (default: ``docker-registry`` or ``registry``).
REGISTRY_BINARY_ENV = "OCIREL_TEST_REGISTRY_BINARY"
DEFAULT_USERNAME = "ocirel-test"


class RegistryStartError(RuntimeError):
    """The registry did not come up; the message carries its log tail."""


def registry_binary() -> str | None:
    """Path of the distribution registry binary, or ``None`` when not installed."""
    override = os.environ.get(REGISTRY_BINARY_ENV)
    if override:
        return shutil.which(override)
    return shutil.which("docker-registry") or shutil.which("registry")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd entry, made by ``htpasswd -Bin`` (password on stdin, never argv)."""
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        raise RegistryStartError("htpasswd not found: install apache2-utils")
    result = subprocess.run(
        [htpasswd, "-Bin", username],
        input=password,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


def _auth_entry(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode("ascii")}


def _write_private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)
    return path


@dataclass
class RegistryServer:
    """A running registry. ``host`` is ``127.0.0.1:PORT``; ``url`` has the scheme."""

    host: str
    scheme: Literal["http", "https"]
    auth: Auth
    workdir: Path
    data_dir: Path
    config_file: Path
    log_file: Path
    ca: CertificateAuthority | None
    ca_file: Path | None
    username: str | None
    password: str | None
    token_server: TokenServer | None
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def port(self) -> int:
        return int(self.host.rpartition(":")[2])

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def verify(self) -> str | bool:
        """``verify=`` for requests: the CA file for TLS, ``True`` otherwise."""
        return str(self.ca_file) if self.ca_file is not None else True

    @property
    def credentials(self) -> tuple[str, str] | None:
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    def _auths(self) -> dict[str, Any]:
        creds = self.credentials
        if self.auth == "none" or creds is None:
            return {"auths": {}}
        return {"auths": {self.host: _auth_entry(*creds)}}

    def docker_config(self, directory: Path) -> Path:
        """Write ``directory/config.json`` (docker format, 0600); use it as ``DOCKER_CONFIG``."""
        return _write_private(directory / "config.json", json.dumps(self._auths(), indent=2))

    def containers_auth(self, directory: Path) -> Path:
        """Write ``directory/auth.json`` (containers-auth.json(5), 0600) for ``--authfile``."""
        return _write_private(directory / "auth.json", json.dumps(self._auths(), indent=2))

    def cert_dir(self, directory: Path) -> Path:
        """A directory holding ``ca.crt`` for ``--cert-dir`` (empty for plain HTTP)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.ca_file is not None:
            shutil.copyfile(self.ca_file, directory / "ca.crt")
        return directory

    def client(self) -> RegistryClient:
        """A small requests-based client for seeding and checking repositories."""
        from tests.support.client import RegistryClient  # noqa: PLC0415 (import cycle)

        return RegistryClient(self)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Terminate the registry (kill after 10 s) and stop the token server."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.token_server is not None:
            self.token_server.stop()


def _registry_config(
    *,
    addr: str,
    data_dir: Path,
    tls_files: tuple[Path, Path] | None,
    auth_config: dict[str, Any] | None,
) -> dict[str, Any]:
    http: dict[str, Any] = {
        "addr": addr,
        "secret": secrets.token_hex(16),
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    if tls_files is not None:
        http["tls"] = {"certificate": str(tls_files[0]), "key": str(tls_files[1])}
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(data_dir)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if auth_config is not None:
        config["auth"] = auth_config
    return config


def _clean_env() -> dict[str, str]:
    """The environment minus ``REGISTRY_*`` overrides that would change the config."""
    return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}


def _wait_until_ready(server: RegistryServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if not server.running():
                raise RegistryStartError(
                    f"registry exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            try:
                response = session.get(f"{server.url}/v2/", verify=server.verify, timeout=2)
            except requests.RequestException as exc:
                last_error = str(exc)
            else:
                if response.status_code in (200, 401):
                    return
                last_error = f"HTTP {response.status_code}"
            time.sleep(0.1)
    raise RegistryStartError(
        f"registry not ready after {timeout:.0f}s ({last_error}):\n{server.log_tail()}"
    )


_START_ATTEMPTS = 3


@contextmanager
def start_registry(
    workdir: Path | None = None,
    *,
    tls: bool = False,
    auth: Auth = "none",
    username: str = DEFAULT_USERNAME,
    password: str | None = None,
    ca: CertificateAuthority | None = None,
    token_lifetime: int = 300,
    startup_timeout: float = 30.0,
) -> Iterator[RegistryServer]:
    """Run a registry for the duration of the ``with`` block.

    ``workdir`` holds config, certificates, htpasswd, log and storage; a temporary
    directory (removed afterwards) is used when it is ``None``. ``password`` defaults
    to a random one. A private CA is made when TLS or token auth needs one (pass
    ``ca`` to share one between registries).
    """
    binary = registry_binary()
    if binary is None:
        raise RegistryStartError("docker-registry not found: install the docker-registry package")
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="registry-")))
        workdir.mkdir(parents=True, exist_ok=True)
        password = password if password is not None else secrets.token_urlsafe(18)
        if ca is None and (tls or auth == "token"):
            ca = CertificateAuthority.create()

        tls_files: tuple[Path, Path] | None = None
        ca_file: Path | None = None
        if tls:
            assert ca is not None
            tls_files = ca.issue_server_cert().write(workdir, "registry")
            ca_file = ca.write_cert(workdir / "ca.crt")

        token_server: TokenServer | None = None
        if auth == "token":
            assert ca is not None
            token_server = TokenServer(
                signer=ca.issue_signing_cert(),
                lifetime=token_lifetime,
                tls=ca.issue_server_cert() if tls else None,
            )
            token_server.add_account(username, password)
            token_server.start(workdir)
            stack.callback(token_server.stop)
        auth_config = _auth_config(workdir, auth, username, password, token_server, ca)

        data_dir = workdir / "data"
        data_dir.mkdir(exist_ok=True)
        config_file = workdir / "config.yml"
        log_file = workdir / "registry.log"
        for attempt in range(1, _START_ATTEMPTS + 1):
            host = f"127.0.0.1:{free_port()}"
            config = _registry_config(
                addr=host, data_dir=data_dir, tls_files=tls_files, auth_config=auth_config
            )
            _write_private(config_file, json.dumps(config, indent=2))  # JSON is YAML
            server = RegistryServer(
                host=host,
                scheme="https" if tls else "http",
                auth=auth,
                workdir=workdir,
                data_dir=data_dir,
                config_file=config_file,
                log_file=log_file,
                ca=ca if tls else None,
                ca_file=ca_file,
                username=username if auth != "none" else None,
                password=password if auth != "none" else None,
                token_server=token_server,
                process=_spawn(binary, config_file, log_file),
            )
            stack.callback(server.stop)
            try:
                _wait_until_ready(server, startup_timeout)
                break
            except RegistryStartError:
                server.stop()
                # Another process may have taken the port between probe and bind.
                if attempt == _START_ATTEMPTS or "address already in use" not in server.log_tail():
                    raise
        yield server


def _auth_config(
    workdir: Path,
    auth: Auth,
    username: str,
    password: str,
    token_server: TokenServer | None,
    ca: CertificateAuthority | None,
) -> dict[str, Any] | None:
    """The registry's ``auth:`` section (writing htpasswd or the token root bundle)."""
    if auth == "basic":
        htpasswd = _write_private(workdir / "htpasswd", htpasswd_line(username, password) + "\n")
        return {"htpasswd": {"realm": "ocirel-test", "path": str(htpasswd)}}
    if auth == "token":
        assert token_server is not None
        assert ca is not None
        bundle = ca.write_cert(workdir / "token-rootcertbundle.crt")
        return {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(bundle),
            }
        }
    return None


def _spawn(binary: str, config_file: Path, log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [binary, "serve", str(config_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_clean_env(),
            start_new_session=True,
        )
