"""No secret in argv, child environments, output, logs, errors or the lockfile.

RELIABILITY items 20 and 23 end to end, with real buildah and real registries (TLS
with Basic auth, TLS with token auth). While ``ocirel publish --debug`` runs, a thread
reads every process's ``/proc/<pid>/cmdline`` every few milliseconds, and the
``environ`` of every process ocirel started (its own environment holds
``OCIREL_PASSWORD`` because the user put it there; ocirel passes it to no child).
It looks for the password, ``base64(user:password)`` (what an auth file or a Basic
header carries) and, for ocirel and its children, any JWT (registry tokens).

``--cache-repo`` on the same registry makes the builder authenticate by itself: it
gets the credentials through a private authfile (0600, in a 0700 directory), which
must be gone when ocirel ends — after success and after a failed build.
Redirects that would carry ``Authorization`` to another host are covered by the unit
tests ``test_r17_*`` (tests/unit/transport/test_redirect.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocirel import runner
from tests.support.images import FAILING_RUN
from tests.support.registry import RegistryServer, free_port

JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_KEEP = ("PATH", "LANG", "LC_ALL", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "DOCKER_HOST")


# ---------------------------------------------------------------- the scanner


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:  # noqa: PTH123 - many tiny reads, hot loop
            return handle.read()
    except OSError:
        return b""


@dataclass
class Finding:
    where: str  # "argv" or "environ"
    pid: int
    command: str
    what: str


@dataclass
class ProcScanner:
    """Scan ``/proc`` until stopped; ``findings`` lists every secret seen.

    ``needles`` are searched in every process's argv, and in the environment of every
    descendant of ``root``; JWTs are searched in ``root``'s argv and in its
    descendants' argv and environment. ``commands`` keeps the argv of every
    descendant seen; ``authfiles`` every ``--authfile`` path with its mode and its
    directory's mode when first seen.
    """

    root: int
    needles: tuple[bytes, ...]
    findings: list[Finding] = field(default_factory=list)
    commands: set[str] = field(default_factory=set)
    authfiles: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    scans: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ProcScanner:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while True:  # at least one whole scan, however early the stop comes
            self.scan()
            if self._stop.wait(0.002):
                return

    def scan(self) -> None:
        parents: dict[int, int] = {}
        argv: dict[int, bytes] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            raw = _read(f"/proc/{pid}/cmdline")
            argv[pid] = raw
            self._check("argv", pid, raw, raw, jwt=False)
            stat = _read(f"/proc/{pid}/stat").rsplit(b")", 1)[-1].split()
            if len(stat) > 1:
                parents[pid] = int(stat[1])
        family = self._descendants(parents)
        self._check("argv", self.root, argv.get(self.root, b""), argv.get(self.root, b""),
                    jwt=True, needles=False)  # fmt: skip
        for pid in family:
            raw = argv.get(pid, b"")
            self._check("argv", pid, raw, raw, jwt=True, needles=False)
            if raw == argv.get(self.root):  # forked, not yet exec'd: still ocirel itself
                continue
            self._check("environ", pid, _read(f"/proc/{pid}/environ"), raw, jwt=True)
            if raw:
                words = [w.decode(errors="replace") for w in raw.split(b"\0")]
                self.commands.add(" ".join(words))
                if "--authfile" in words:
                    self._note_authfile(words[words.index("--authfile") + 1])
        self.scans += 1

    def _descendants(self, parents: dict[int, int]) -> set[int]:
        children: dict[int, list[int]] = {}
        for pid, parent in parents.items():
            children.setdefault(parent, []).append(pid)
        found: set[int] = set()
        todo = [self.root]
        while todo:
            for child in children.get(todo.pop(), []):
                found.add(child)
                todo.append(child)
        return found

    def _check(self, where: str, pid: int, data: bytes, argv: bytes, *, jwt: bool,
               needles: bool = True) -> None:  # fmt: skip
        hits = [label(n, i) for i, n in enumerate(self.needles) if needles and n in data]
        if jwt and JWT.search(data):
            hits.append("a JWT")
        for hit in hits:
            command = argv.replace(b"\0", b" ").decode(errors="replace")[:300]
            for needle in self.needles:  # the finding itself must not print the secret
                command = command.replace(needle.decode(errors="replace"), "<secret>")
            self.findings.append(
                Finding(where, pid, JWT.sub(b"<jwt>", command.encode()).decode(), hit)
            )

    def _note_authfile(self, path: str) -> None:
        if path in self.authfiles and self.authfiles[path] is not None:
            return
        try:
            file = Path(path)
            modes = (file.stat().st_mode & 0o777, file.parent.stat().st_mode & 0o777)
        except OSError:
            modes = None
        self.authfiles[path] = modes


def needles(username: str, password: str) -> tuple[bytes, ...]:
    """The password as typed, and as an auth file or a Basic header carries it."""
    pair = f"{username}:{password}".encode()
    return (password.encode(), base64.b64encode(pair), base64.urlsafe_b64encode(pair))


def label(needle: bytes, index: int) -> str:
    """How a finding names a secret without printing it."""
    return f"secret #{index} ({len(needle)} bytes)"


# ---------------------------------------------------------------- running ocirel


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    scanner: ProcScanner

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"

    def assert_clean(self, *texts: str) -> None:
        """Nothing secret was seen anywhere: processes, output, the given texts."""
        assert self.scanner.scans > 10, "the scanner hardly ran"
        assert self.scanner.findings == [], self.scanner.findings
        for text in (self.stdout, self.stderr, *texts):
            data = text.encode()
            for index, needle in enumerate(self.scanner.needles):
                assert needle not in data, f"{label(needle, index)} in output"
            assert not JWT.search(data), "a token in output"


@pytest.fixture
def run_ocirel(tmp_path: Path) -> Callable[..., Outcome]:
    """``run_ocirel(args, needles, env=..., cwd=...)``: run the CLI under the scanner,
    with its own HOME and TMPDIR (``tmp_path/tmp``)."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)

    def run(args: list[str], secret: tuple[bytes, ...], *, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Outcome:  # fmt: skip
        full = {k: os.environ[k] for k in _KEEP if k in os.environ}
        if os.geteuid() != 0 and "XDG_DATA_HOME" not in full:  # rootless: the usual storage
            full["XDG_DATA_HOME"] = str(Path.home() / ".local" / "share")
        full.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), TMPDIR=str(tmpdir))
        full.update(env or {})
        proc = subprocess.Popen(
            [sys.executable, "-m", "ocirel", "--debug", *args], cwd=cwd, env=full,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        with ProcScanner(proc.pid, secret) as scanner:
            try:
                stdout, stderr = proc.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                stdout, stderr = proc.communicate()
            time.sleep(0.02)
        assert not list(tmpdir.glob("ocirel-auth-*")), "a private authfile directory was left"
        return Outcome(proc.returncode, stdout, stderr, scanner)

    return run


def assert_authfile_used_and_gone(outcome: Outcome) -> None:
    """The builder got ``--authfile``: 0600 in a 0700 directory, both gone now."""
    builds = [c for c in outcome.scanner.commands if " build " in c and "--cache-to" in c]
    assert builds, f"no builder process was seen: {outcome.scanner.commands}"
    assert all("--authfile" in c for c in builds), builds
    assert outcome.scanner.authfiles, builds
    for path, modes in outcome.scanner.authfiles.items():
        assert modes in ((0o600, 0o700), None), (path, modes)
        assert not Path(path).exists()
        assert not Path(path).parent.exists()
    assert any(modes is not None for modes in outcome.scanner.authfiles.values())


# ---------------------------------------------------------------- success


@dataclass(frozen=True)
class Setup:
    server: RegistryServer
    env: dict[str, str]
    username: str
    password: str


def credentials_via(how: str, server: RegistryServer, tmp_path: Path,
                    password: str | None = None) -> dict[str, str]:  # fmt: skip
    """Environment giving ``server``'s credentials (or ``password`` instead) ``how``."""
    assert server.username is not None
    assert server.password is not None
    secret = password or server.password
    env = {"OCIREL_CA_FILE": str(server.ca_file)} if server.ca_file else {}
    if how == "env":
        return {**env, "OCIREL_USERNAME": server.username, "OCIREL_PASSWORD": secret}
    auth = base64.b64encode(f"{server.username}:{secret}".encode()).decode()
    directory = tmp_path / "docker"
    directory.mkdir(exist_ok=True)
    config = directory / "config.json"
    config.write_text(json.dumps({"auths": {server.host: {"auth": auth}}}))
    config.chmod(0o600)
    return {**env, "DOCKER_CONFIG": str(directory)}


AUTH_SETUPS = {
    "basic-docker-config": ("tls_basic_registry", "docker-config"),
    "basic-environment": ("tls_basic_registry", "env"),
    "token-environment": ("tls_token_registry", "env"),
}


@pytest.fixture(params=list(AUTH_SETUPS.values()), ids=list(AUTH_SETUPS))
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    fixture, how = request.param
    server: RegistryServer = request.getfixturevalue(fixture)
    assert server.username is not None
    assert server.password is not None
    return Setup(server, credentials_via(how, server, tmp_path), server.username, server.password)


@pytest.fixture
def _buildah(require_engine: Callable[[str], None]) -> None:
    require_engine("buildah")


@pytest.mark.builder
@pytest.mark.usefixtures("_buildah")
def test_r23_no_secret_in_argv_environment_output_or_lockfile_during_a_publish(
    setup: Setup,
    run_ocirel: Callable[..., Outcome],
    unique_repo: str,
    build_context: Callable[..., Path],
) -> None:
    context = build_context("RUN echo secrets > /secrets")
    repo = f"{setup.server.host}/{unique_repo}"
    outcome = run_ocirel(
        ["publish", "--image", repo, "--backend", "buildah", "--json",
         "--cache-repo", f"{repo}-cache", str(context)],
        needles(setup.username, setup.password), env=setup.env, cwd=context,
    )  # fmt: skip
    assert outcome.returncode == 0, outcome.explain()
    lock_text = (context / "ocirel.lock.json").read_text()
    outcome.assert_clean(lock_text)
    assert_authfile_used_and_gone(outcome)
    with setup.server.client() as client:
        assert client.manifest_digest(unique_repo, "v1") == json.loads(outcome.stdout)["digest"]


# ---------------------------------------------------------------- failures


FAILURES = {
    # name: (registry fixture, how the credentials come, wrong password?)
    "wrong-password-environment": ("tls_basic_registry", "env", True),
    "wrong-password-docker-config": ("tls_basic_registry", "docker-config", True),
    "token-service-refuses-password": ("tls_token_registry", "env", True),
    "registry-unreachable": ("tls_basic_registry", "env", False),
}


@pytest.mark.builder
@pytest.mark.usefixtures("_buildah")
@pytest.mark.parametrize(("fixture", "how", "wrong"), FAILURES.values(), ids=FAILURES.keys())
def test_r23_no_secret_in_output_when_authentication_or_connection_fails(
    fixture: str,
    how: str,
    wrong: bool,
    request: pytest.FixtureRequest,
    run_ocirel: Callable[..., Outcome],
    unique_repo: str,
    build_context: Callable[..., Path],
    tmp_path: Path,
) -> None:
    server: RegistryServer = request.getfixturevalue(fixture)
    assert server.username is not None
    assert server.password is not None
    password = f"wrong-{secrets.token_urlsafe(12)}" if wrong else server.password
    env = credentials_via(how, server, tmp_path, password)
    host = server.host if wrong else f"127.0.0.1:{free_port()}"
    if not wrong:
        env["OCIREL_RETRIES"] = "1"  # connection refused is retried: keep it short
    context = build_context("RUN echo secrets > /secrets")
    outcome = run_ocirel(
        ["publish", "--image", f"{host}/{unique_repo}", "--backend", "buildah", str(context)],
        needles(server.username, password) + needles(server.username, server.password),
        env=env, cwd=context,
    )  # fmt: skip
    assert outcome.returncode == 1, outcome.explain()
    assert "Traceback" not in outcome.stderr, outcome.explain()
    if wrong:
        assert "401" in outcome.stderr or "credentials" in outcome.stderr, outcome.explain()
    else:
        assert "cannot reach" in outcome.stderr, outcome.explain()
    outcome.assert_clean()
    assert not (context / "ocirel.lock.json").exists()


@pytest.mark.builder
@pytest.mark.usefixtures("_buildah")
def test_r23_private_authfile_removed_after_a_failed_build(
    tls_basic_registry: RegistryServer,
    run_ocirel: Callable[..., Outcome],
    unique_repo: str,
    build_context: Callable[..., Path],
    tmp_path: Path,
) -> None:
    server = tls_basic_registry
    assert server.username is not None
    assert server.password is not None
    repo = f"{server.host}/{unique_repo}"
    context = build_context(FAILING_RUN)
    outcome = run_ocirel(
        ["publish", "--image", repo, "--backend", "buildah", "--cache-repo", f"{repo}-cache",
         str(context)],
        needles(server.username, server.password),
        env=credentials_via("env", server, tmp_path), cwd=context,
    )  # fmt: skip
    assert outcome.returncode == 1, outcome.explain()
    assert "build failed" in outcome.stderr, outcome.explain()
    outcome.assert_clean()
    assert_authfile_used_and_gone(outcome)


# ---------------------------------------------------------------- item 20


def test_r20_netrc_is_not_used_end_to_end(
    tls_basic_registry: RegistryServer, run_ocirel: Callable[..., Outcome], tmp_path: Path
) -> None:
    """A ``.netrc`` holding the registry's real password does not authenticate ocirel."""
    server = tls_basic_registry
    assert server.username is not None
    assert server.password is not None
    assert server.ca_file is not None
    netrc = tmp_path / "home" / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {server.username} password {server.password}\n")
    netrc.chmod(0o600)
    outcome = run_ocirel(
        ["tags", f"{server.host}/t/any", "--ca-file", str(server.ca_file)],
        needles(server.username, server.password), env={"NETRC": str(netrc)},
    )  # fmt: skip
    assert outcome.returncode == 1, outcome.explain()
    assert "401" in outcome.stderr or "credentials" in outcome.stderr, outcome.explain()
    outcome.assert_clean()


# ---------------------------------------------------------------- children's env


def test_r23_password_variable_is_not_passed_to_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OCIREL_PASSWORD", "pw-" + secrets.token_hex(8))
    script = ["sh", "-c", 'echo "${OCIREL_PASSWORD-unset} ${OCIREL_USERNAME-unset}"']
    monkeypatch.setenv("OCIREL_USERNAME", "someone")
    assert runner.run(script).stdout.split() == ["unset", "someone"]
    explicit = {"PATH": os.environ["PATH"], "OCIREL_PASSWORD": "pw-explicit"}
    assert runner.run(script, env=explicit).stdout.split() == ["unset", "unset"]


@pytest.fixture
def scanner_selftest() -> Iterator[str]:
    """A process carrying a fake secret in its argv, for the scanner's own test."""
    marker = "selftest-" + secrets.token_hex(8)
    proc = subprocess.Popen(["sh", "-c", "sleep 30", marker])
    yield marker
    proc.kill()
    proc.wait()


def test_scanner_finds_a_secret_in_argv(scanner_selftest: str) -> None:
    """The scanner is not blind: a secret in some process's argv is found."""
    with ProcScanner(os.getpid(), (scanner_selftest.encode(),)) as scanner:
        time.sleep(0.05)
    assert any(f.where == "argv" for f in scanner.findings)
