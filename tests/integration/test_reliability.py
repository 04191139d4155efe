"""Builders that lie, fail or are missing, and registries that stall: the real CLI.

RELIABILITY items 29 (success is the exit code *and* the digest file, never the log),
31 (known rootless failures get their hint next to the raw error), 32 (no builder)
and 15 end to end (a stalled registry fails within the configured timeout).

A fake ``buildah`` first on ``PATH`` wraps the real one: it passes every command
through and misbehaves only where the test says (``FAKE_BUILDAH_MODE``). Item 30
(SIGINT/SIGTERM during a long ``RUN`` step) is covered by
``tests/integration/test_signals.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import OcirelRunner, Run
from tests.support.registry import RegistryServer

OLD_LOCK = (
    json.dumps(
        {
            "images": {
                "other": {
                    "digest": "sha256:" + "3" * 64,
                    "platforms": {},
                    "reference": "r.example/other:v3@sha256:" + "3" * 64,
                    "repository": "r.example/other",
                    "source": {},
                    "tag": "v3",
                }
            },
            "schema": 1,
        },
        indent=2,
        sort_keys=True,
    )
    + "\n"
)

FAKE_BUILDAH = r'''#!{python}
"""buildah, except where FAKE_BUILDAH_MODE says otherwise (see test_reliability.py)."""
import os, subprocess, sys

REAL = {real!r}
args = sys.argv[1:]
mode = os.environ.get("FAKE_BUILDAH_MODE", "")
i = 0
while i < len(args) and args[i].startswith("-"):  # global options: --storage-driver X
    i += 1 if "=" in args[i] else 2
command = args[i] if i < len(args) else ""


def option(name):
    return args[args.index(name) + 1] if name in args else None


def real():
    code = subprocess.call([REAL, *args])
    if code:
        sys.exit(code)


if command == "build" and mode == "build-says-success-exits-1":
    real()
    print("Successfully tagged localhost/ocirel-build/app:latest")
    print("Writing manifest to image destination", file=sys.stderr)
    sys.exit(1)
if command == "build" and mode == "build-exits-0-without-image-id":
    real()
    os.unlink(option("--iidfile"))
    sys.exit(0)
if command == "build" and mode == "build-prints":
    sys.stderr.write(os.environ["FAKE_BUILDAH_TEXT"] + "\n")
    sys.exit(1)
if command == "push" and mode.startswith("push-"):
    real()
    digestfile = option("--digestfile")
    if mode == "push-says-success-exits-1":
        print("Writing manifest to image destination", file=sys.stderr)
        print("Storing signatures", file=sys.stderr)
        sys.exit(1)
    if mode == "push-no-digestfile":
        os.unlink(digestfile)
    elif mode == "push-garbage-digestfile":
        open(digestfile, "w").write("Writing manifest to image destination\n")
    elif mode == "push-empty-digestfile":
        open(digestfile, "w").close()
    elif mode == "push-other-digest":
        open(digestfile, "w").write("sha256:" + "0" * 64)
    sys.exit(0)
os.execv(REAL, [REAL, *args])
'''


@pytest.fixture
def fake_buildah(tmp_path: Path, require_engine: Callable[[str], None]) -> Path:
    """A directory holding the wrapping ``buildah``; put it first on PATH."""
    require_engine("buildah")
    real = shutil.which("buildah")
    assert real is not None
    directory = tmp_path / "fakebin"
    directory.mkdir()
    script = directory / "buildah"
    script.write_text(
        FAKE_BUILDAH.replace("{python}", sys.executable).replace("{real!r}", repr(real))
    )
    script.chmod(0o755)
    return directory


def path_with(directory: Path) -> str:
    return f"{directory}:{os.environ.get('PATH', '')}"


def publish(ocirel: OcirelRunner, repo: str, context: Path, env: dict[str, str]) -> Run:
    return ocirel(
        "publish", "--image", repo, "--backend", "buildah", str(context), cwd=context, env=env
    )


# ------------------------------------------------------------------ item 29

MISBEHAVIOURS = {
    "build-says-success-exits-1": "buildah build failed (exit code 1)",
    "build-exits-0-without-image-id": "wrote no image ID; not trusting it",
    "push-says-success-exits-1": "buildah push (export) failed (exit code 1)",
    "push-no-digestfile": "wrote no valid digest file; not trusting it",
    "push-empty-digestfile": "wrote no valid digest file; not trusting it",
    "push-garbage-digestfile": "wrote no valid digest file; not trusting it",
    "push-other-digest": "but the exported manifest is",
}


@pytest.mark.builder
@pytest.mark.parametrize(("mode", "message"), MISBEHAVIOURS.items(), ids=MISBEHAVIOURS.keys())
def test_r29_builder_success_is_exit_code_and_digest_file_never_the_log(
    mode: str,
    message: str,
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    build_context: Callable[..., Path],
    fake_buildah: Path,
) -> None:
    context = build_context("RUN echo r29 > /r29")  # same content each time: cached layers
    lock = context / "ocirel.lock.json"
    lock.write_text(OLD_LOCK)
    env = {"PATH": path_with(fake_buildah), "FAKE_BUILDAH_MODE": mode}
    run = publish(ocirel, f"{registry.host}/{unique_repo}", context, env)
    assert run.returncode == 1, run.explain()
    assert message in run.stderr, run.explain()
    assert "Traceback" not in run.stderr, run.explain()
    assert lock.read_text() == OLD_LOCK
    with registry.client() as client:
        assert client.tags(unique_repo) == []
        # nothing was uploaded either: the repository does not exist
        assert client.request("GET", f"/v2/{unique_repo}/tags/list").status_code == 404


# ------------------------------------------------------------------ item 31

ROOTLESS_FAILURES = {
    "no-user-namespaces": (
        "Error: cannot clone: Operation not permitted\nError: cannot re-exec process",
        "user namespaces are unavailable",
    ),
    "user-namespaces-disabled": (
        "Error: user namespaces are not enabled in /proc/sys/user/max_user_namespaces",
        "max_user_namespaces",
    ),
    "missing-subuid-subgid": (
        'Error: writing blob: adding layer with blob "sha256:ab": processing tar file'
        "(potentially insufficient UIDs or GIDs available in user namespace (requested "
        "0:42 for /etc/shadow): Check /etc/subuid and /etc/subgid): lchown /etc/shadow",
        "/etc/subuid and /etc/subgid",
    ),
    "newuidmap-unprivileged": (
        "newuidmap: write to uid_map failed: Operation not permitted\n"
        'Error: cannot setup namespace using "/usr/bin/newuidmap": exit status 1',
        "install the uidmap package",
    ),
    "overlay-not-permitted": (
        "Error: committing container: copying layers: ApplyLayer: Error processing tar "
        "file(exit status 1): operation not permitted",
        "fuse-overlayfs",
    ),
    "http-registry-without-insecure": (
        'Error: pinging container registry 10.1.2.3:5000: Get "https://10.1.2.3:5000/v2/": '
        "http: server gave HTTP response to HTTPS client",
        "--insecure",
    ),
}


@pytest.mark.parametrize(("text", "hint"), ROOTLESS_FAILURES.values(), ids=ROOTLESS_FAILURES.keys())
def test_r31_rootless_failure_gets_its_hint_next_to_the_raw_error(
    text: str,
    hint: str,
    ocirel: OcirelRunner,
    registry: RegistryServer,
    unique_repo: str,
    tmp_path: Path,
    fake_buildah: Path,
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Containerfile").write_text("FROM scratch\n")
    env = {"PATH": path_with(fake_buildah), "FAKE_BUILDAH_MODE": "build-prints",
           "FAKE_BUILDAH_TEXT": text}  # fmt: skip
    run = publish(ocirel, f"{registry.host}/{unique_repo}", context, env)
    assert run.returncode == 1, run.explain()
    stderr = run.stderr
    assert "error: buildah build failed (exit code 1)" in stderr, run.explain()
    tail = stderr[stderr.index("--- last output ---") :]
    assert text.splitlines()[-1] in tail, run.explain()  # the raw error, as printed
    hint_line = next(line for line in stderr.splitlines() if line.startswith("hint: "))
    assert hint in hint_line, run.explain()
    assert stderr.index("--- last output ---") < stderr.index("hint: ")
    assert not (context / "ocirel.lock.json").exists()


# ------------------------------------------------------------------ item 32


def test_r32_named_builder_missing_says_what_to_install(
    ocirel: OcirelRunner, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    (empty / "buildah").write_text("#!/bin/sh\n")  # present but not executable: not usable
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Containerfile").write_text("FROM scratch\n")
    run = ocirel("publish", "--image", "127.0.0.1:1/t/app", "--backend", "buildah",
                 str(context), cwd=context, env={"PATH": str(empty)})  # fmt: skip
    assert run.returncode == 1, run.explain()
    assert "error: backend buildah is not usable: buildah is not installed" in run.stderr
    assert (
        "hint: install buildah (Debian/Ubuntu: apt-get install buildah), or choose --backend"
        in (run.stderr)
    ), run.explain()
    assert "Traceback" not in run.stderr
    assert not (context / "ocirel.lock.json").exists()


def test_r32_no_builder_at_all_names_every_option(ocirel: OcirelRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Containerfile").write_text("FROM scratch\n")
    run = ocirel("publish", "--image", "127.0.0.1:1/t/app", str(context), cwd=context,
                 env={"PATH": str(empty)})  # fmt: skip
    assert run.returncode == 1, run.explain()
    assert "no usable builder found (buildah: " in run.stderr, run.explain()
    hint = next(line for line in run.stderr.splitlines() if line.startswith("hint: "))
    for what in ("apt-get install buildah", "podman", "Docker", "ocirel doctor"):
        assert what in hint, run.explain()


# ------------------------------------------------------------------ item 15, end to end


HALF_A_TAG_LIST = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    b'{"name": "t/app", "tags": ['
)


class StallingServer:
    """127.0.0.1 TCP server that stalls.

    * ``"accept"``: connections are accepted (by the kernel) and never read — the TLS
      handshake of ocirel's first (https) contact stalls: bounded by the connect timeout;
    * ``"headers"``: plain HTTP (a TLS hello is answered like Go's server does, so
      ocirel uses http on loopback); requests are read and never answered;
    * ``"body"``: like ``"headers"``, but ``/v2/`` answers, and the tag list sends its
      headers and half its body, then goes silent.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        if mode != "accept":
            threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._held.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn.makefile("rb") as reader:
            first = reader.peek(1)[:1]
            if first == b"\x16":  # TLS on a plain port: answer like Go's http server
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent TLS to an http server\n")
                conn.close()
                return
            while True:
                request = reader.readline()
                if not request:
                    return
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                if self.mode == "headers" or b"/tags/list" in request:
                    if self.mode == "body":
                        conn.sendall(HALF_A_TAG_LIST)
                    self._stop.wait(60)
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def close(self) -> None:
        self._stop.set()
        for conn in self._held:
            conn.close()
        self.sock.close()


# mode → (timeouts, what the error line says); the other timeout is 10 s, so a wall
# time under 8 s shows which one fired
STALLS = {
    "accept": (
        {"OCIREL_CONNECT_TIMEOUT": "1", "OCIREL_READ_TIMEOUT": "10"},
        ("timed out waiting for https://{address}/v2/", "connect 1 s"),
    ),
    "headers": (
        {"OCIREL_CONNECT_TIMEOUT": "10", "OCIREL_READ_TIMEOUT": "1"},
        ("timed out waiting for http://{address}/v2/", "read 1 s"),
    ),
    "body": (
        {"OCIREL_CONNECT_TIMEOUT": "10", "OCIREL_READ_TIMEOUT": "1"},
        ("GET http://{address}/v2/t/app/tags/list", "the body stalled for more than 1 s"),
    ),
}


@pytest.fixture(params=list(STALLS))
def stalling(request: pytest.FixtureRequest) -> Iterator[StallingServer]:
    server = StallingServer(request.param)
    yield server
    server.close()


def test_r15_stalled_registry_fails_within_the_read_timeout(
    ocirel: OcirelRunner, stalling: StallingServer
) -> None:
    env, fragments = STALLS[stalling.mode]
    start = time.monotonic()
    run = ocirel("tags", f"{stalling.address}/t/app", env=env, timeout=60)
    elapsed = time.monotonic() - start
    assert run.returncode == 1, run.explain()
    assert 1 <= elapsed < 8, f"took {elapsed:.1f} s\n{run.explain()}"  # 1 s + start-up
    error = run.stderr.splitlines()[0]
    for fragment in fragments:
        assert fragment.format(address=stalling.address) in error, run.explain()
