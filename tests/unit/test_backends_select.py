"""podman and docker adapters (argv, storage rule, push digest, credentials), backend
selection, and stopping a builder so that it can clean up."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocirel import runner
from ocirel.backends import ADAPTERS, AUTO_ORDER, get_backend, select_backend
from ocirel.backends.base import BuildEnv, BuildSpec
from ocirel.backends.docker import CLASSIC_NOTE, Docker
from ocirel.backends.docker_argv import build_argv as docker_build_argv
from ocirel.backends.docker_argv import (
    build_environment,
    oci_config_from_inspect,
    parse_metadata_config_digest,
    parse_push_digest,
    push_argv,
    remove_argv,
    tag_argv,
)
from ocirel.backends.docker_daemon import docker_hint_for
from ocirel.backends.podman import (
    DB_MISMATCH_HINT,
    Podman,
    parse_store_driver,
    podman_storage_args,
)
from ocirel.errors import BackendNotFoundError, CommandError, CommandTimeoutError, ConfigError
from ocirel.hostinfo import StorageChoice

IMAGE = "localhost/ocirel-build/app:0a1b2c3d4e5f"
DIGEST = "sha256:" + "d" * 64
FUSE = "overlay.mount_program=/usr/bin/fuse-overlayfs"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text("FROM scratch\n", encoding="utf-8")
    return ctx


def fake_program(bindir: Path, name: str, script: str) -> Path:
    bindir.mkdir(exist_ok=True)
    path = bindir / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(0o755)
    return path


# -- podman ----------------------------------------------------------------------------


def test_podman_adapter_identity() -> None:
    backend = get_backend("podman")
    assert isinstance(backend, Podman)
    assert (backend.name, backend.program, backend.delivery) == ("podman", "podman", "layout")
    assert "apt-get install podman" in backend.install_hint
    assert backend.leaves_first_grace > 0


def test_podman_build_argv_matches_buildah_inputs(context: Path) -> None:
    spec = BuildSpec(
        context=context, image=IMAGE, build_args=(("V", "1"),), target="final",
        labels=(("org.opencontainers.image.version", "v3"),), timestamp=0,
    )  # fmt: skip
    env = BuildEnv(storage=StorageChoice("overlay", "overlay is available"))
    assert tuple(Podman(store_driver="overlay").build_argv(spec, env)) == (
        "podman", "build", "--isolation", "chroot", "--layers",
        "--file", str(context / "Containerfile"), "--tag", IMAGE,
        "--label", "org.opencontainers.image.version=v3",
        "--build-arg", "V=1", "--target", "final", "--timestamp", "0",
        str(context),
    )  # fmt: skip


def test_podman_export_and_remove_argv() -> None:
    podman = Podman(store_driver="overlay")
    env = BuildEnv(storage=StorageChoice("overlay", "fuse", (FUSE,)))
    assert tuple(podman.export_argv(IMAGE, Path("/w/layout"), Path("/w/layout.digest"), env)) == (
        "podman", "--storage-opt", FUSE, "push", "--quiet",
        "--digestfile", "/w/layout.digest", IMAGE, "oci:/w/layout",
    )  # fmt: skip
    assert tuple(podman.remove_argv(IMAGE, env)) == ("podman", "--storage-opt", FUSE, "rmi", IMAGE)


@pytest.mark.parametrize(
    ("choice", "in_use", "expected"),
    [
        # never --storage-driver when podman knows its driver: its database may record ""
        (StorageChoice("overlay", "auto"), "overlay", ()),
        (StorageChoice("overlay", "fuse", (FUSE,)), "overlay", ("--storage-opt", FUSE)),
        (StorageChoice("overlay", "set", explicit=True), "overlay", ()),
        # ocirel chose automatically; podman's store is vfs: respect podman, drop options
        (StorageChoice("overlay", "fuse", (FUSE,)), "vfs", ()),
        (StorageChoice("vfs", "no overlay"), "overlay", ()),
        (StorageChoice(None, "configured"), "overlay", ()),
        # podman could not say: only an explicit choice is passed on
        (StorageChoice("vfs", "no overlay"), None, ()),
        (StorageChoice("vfs", "set", explicit=True), None, ("--storage-driver", "vfs")),
        (StorageChoice(None, "builder default"), None, ()),
    ],
)  # fmt: skip
def test_podman_storage_rule(
    choice: StorageChoice, in_use: str | None, expected: tuple[str, ...]
) -> None:
    assert tuple(podman_storage_args(choice, in_use)) == expected


def test_podman_refuses_an_explicit_driver_its_store_does_not_use() -> None:
    with pytest.raises(ConfigError, match="podman's storage uses the overlay driver") as info:
        podman_storage_args(StorageChoice("vfs", "set", explicit=True), "overlay")
    assert info.value.hint is not None
    assert "podman system reset" in info.value.hint


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("overlay\n", "overlay"),
        ("vfs", "vfs"),
        ('time="…" level=error msg="User-selected graph driver"\nvfs\n', "vfs"),
        ("", None),
        ("Error: something\n", None),
        ("{{.Store.GraphDriverName}}", None),
    ],
)
def test_parse_store_driver(stdout: str, expected: str | None) -> None:
    assert parse_store_driver(stdout) == expected


def test_podman_asks_its_store_driver_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tmp_path / "calls"
    fake_program(tmp_path / "bin", "podman", f'echo "$*" >> {calls}\necho vfs\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    podman = Podman()
    env = BuildEnv(storage=StorageChoice("overlay", "auto", (FUSE,)))
    assert podman.global_args(env) == []
    assert podman.global_args(env) == []
    assert calls.read_text().splitlines() == ["info --format {{.Store.GraphDriverName}}"]


def test_podman_database_mismatch_gets_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, context: Path
) -> None:
    fake_program(
        tmp_path / "bin", "podman",
        'echo \'Error: database storage graph driver "" does not match our storage graph '
        'driver "overlay": database configuration mismatch\' >&2\nexit 125\n',
    )  # fmt: skip
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(CommandError, match="podman build failed") as info:
        Podman(store_driver="overlay").build(BuildSpec(context, None), BuildEnv(), timeout=30)
    assert info.value.returncode == 125
    assert info.value.hint == DB_MISMATCH_HINT


# -- docker: argv ------------------------------------------------------------------------


def test_docker_adapter_identity() -> None:
    backend = get_backend("docker")
    assert isinstance(backend, Docker)
    assert (backend.name, backend.program, backend.delivery) == ("docker", "docker", "push")
    assert backend.reproducible is False
    assert "docker.io" in backend.install_hint


def test_docker_classic_build_argv(context: Path) -> None:
    spec = BuildSpec(
        context=context, image=IMAGE, build_args=(("A", "1"), ("B", "x y")), target="final",
        labels=(("org.opencontainers.image.version", "v3"),), platform="linux/amd64",
        timestamp=1700000000, cache_repo="r.example/cache",
    )  # fmt: skip
    assert tuple(docker_build_argv(spec, buildx=False, iidfile=Path("/t/iid"),
                                   metadata_file=Path("/t/m.json"))) == (
        "docker", "build", "--iidfile", "/t/iid",
        "--file", str(context / "Containerfile"), "--tag", IMAGE,
        "--label", "org.opencontainers.image.version=v3",
        "--build-arg", "A=1", "--build-arg", "B=x y",
        "--target", "final", "--platform", "linux/amd64",
        str(context),
    )  # fmt: skip


def test_docker_buildx_build_argv(context: Path) -> None:
    spec = BuildSpec(context=context, image=None, layers=False, timestamp=0, cache_repo="r.io/c")
    assert tuple(docker_build_argv(spec, buildx=True, metadata_file=Path("/t/m.json"))) == (
        "docker", "buildx", "build", "--load", "--metadata-file", "/t/m.json", "--no-cache",
        "--file", str(context / "Containerfile"),
        "--build-arg", "SOURCE_DATE_EPOCH=0",
        "--cache-to", "type=registry,ref=r.io/c,mode=max",
        "--cache-from", "type=registry,ref=r.io/c",
        str(context),
    )  # fmt: skip


@pytest.mark.parametrize("buildx", [False, True])
def test_docker_build_argv_never_carries_storage_isolation_or_credentials(
    context: Path, buildx: bool
) -> None:
    argv = docker_build_argv(BuildSpec(context=context, image=IMAGE), buildx=buildx)
    assert not any(
        a.startswith(("--storage", "--isolation", "--authfile", "--creds", "--password"))
        for a in argv
    )


@pytest.mark.parametrize(("buildx", "value"), [(False, "0"), (True, "1")])
def test_docker_buildkit_variable(buildx: bool, value: str) -> None:
    env = build_environment({"PATH": "/bin", "DOCKER_BUILDKIT": "x"}, buildx=buildx)
    assert env == {"PATH": "/bin", "DOCKER_BUILDKIT": value}


def test_docker_push_tag_remove_argv() -> None:
    assert tag_argv(IMAGE, "r.io/t/app:v3") == ["docker", "tag", IMAGE, "r.io/t/app:v3"]
    assert push_argv("r.io/t/app:v3") == ["docker", "push", "r.io/t/app:v3"]
    assert remove_argv(["a", "b"]) == ["docker", "image", "rm", "--no-prune", "a", "b"]


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (f"The push refers to repository [r.io/t/app]\nabc: Pushed\n"
         f"v3: digest: {DIGEST} size: 739\n", DIGEST),
        (f"digest: {DIGEST} size: 1\n", DIGEST),
        (f"v1: digest: {'sha256:' + 'a' * 64} size: 5\nv1: digest: {DIGEST} size: 9\n", DIGEST),
        ("v3: digest: sha256:abc size: 739\n", None),
        (f"echo v3: digest: {DIGEST}\n", None),  # no size: not docker's line
        ("", None),
    ],
)  # fmt: skip
def test_parse_push_digest(output: str, expected: str | None) -> None:
    assert parse_push_digest(output) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            json.dumps({"containerimage.config.digest": DIGEST, "containerimage.digest": "x"}),
            DIGEST,
        ),
        (json.dumps({"containerimage.config.digest": "sha256:short"}), None),
        ("[]", None),
        ("", None),
    ],
)
def test_parse_metadata_config_digest(text: str, expected: str | None) -> None:
    assert parse_metadata_config_digest(text) == expected


def test_oci_config_from_inspect() -> None:
    inspect = {
        "Id": DIGEST, "Architecture": "arm64", "Variant": "v8", "Os": "linux",
        "Created": "2024-01-01T00:00:00Z",
        "Config": {"Env": ["PATH=/bin"], "Labels": {"a": "b"}},
        "RootFS": {"Type": "layers", "Layers": ["sha256:" + "1" * 64]},
    }  # fmt: skip
    assert oci_config_from_inspect(inspect) == {
        "architecture": "arm64", "variant": "v8", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("stderr", "fragment"),
    [
        (
            "Cannot connect to the Docker daemon at unix:///x. Is the docker daemon running?",
            "dockerd",
        ),
        ("permission denied while trying to connect to the Docker daemon socket", "docker group"),
        ("http: server gave HTTP response to HTTPS client", "insecure-registries"),
        ("x509: certificate signed by unknown authority", "certs.d"),
    ],
)
def test_docker_hints(stderr: str, fragment: str) -> None:
    hint = docker_hint_for(stderr)
    assert hint is not None
    assert fragment in hint


# -- docker: behaviour against a fake CLI ----------------------------------------------

# Logs argv (one line per call) and DOCKER_CONFIG's config.json; behaviour from $FAKE_*.
FAKE_DOCKER = r"""
printf '%s\n' "$*" >> "$FAKE_LOG"
case "$1" in
  version)
    case "$*" in
      *Client.Version*) echo "28.2.2 ${FAKE_SERVER:-}" ;;
      *) echo "${FAKE_SERVER:-}" ;;
    esac
    if [ -z "${FAKE_SERVER:-}" ]; then
      echo "Cannot connect to the Docker daemon at unix:///x." \
           "Is the docker daemon running?" >&2
      exit 1
    fi
    ;;
  buildx) exit 1 ;;
  image)
    [ "$2" = inspect ] && [ "$3" != --format ] || exit 9
    printf '[{"Id":"sha256:%s","Os":"linux","Architecture":"amd64",' "$FAKE_ID"
    printf '"Config":{"Tty":false,"Env":["A=1"]},"RootFS":{"Type":"layers","Layers":["x"]}}]\n' ;;
  context) echo "unix:///run/fake.sock" ;;
  build)
    while [ $# -gt 0 ]; do
      if [ "$1" = "--iidfile" ]; then shift; printf 'sha256:%s' "$FAKE_ID" > "$1"; fi
      shift
    done
    echo "DOCKER_BUILDKIT=$DOCKER_BUILDKIT" >> "$FAKE_LOG" ;;
  push)
    echo "DOCKER_CONFIG=${DOCKER_CONFIG:-} DOCKER_HOST=${DOCKER_HOST:-}" >> "$FAKE_LOG"
    if [ -n "${DOCKER_CONFIG:-}" ]; then
      cat "$DOCKER_CONFIG/config.json" >> "$FAKE_LOG"; echo >> "$FAKE_LOG"
    fi
    echo "The push refers to repository [$2]"
    if [ "${FAKE_PUSH:-ok}" = slow ]; then exec sleep 30; fi
    if [ "${FAKE_PUSH:-ok}" != ok ]; then
      echo "denied: requested access to the resource is denied" >&2; exit 1
    fi
    echo "v3: digest: $FAKE_DIGEST size: 525" ;;
esac
exit 0
"""


@dataclass
class FakeDocker:
    log: Path

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_home: Path) -> FakeDocker:
    fake_program(tmp_path / "bin", "docker", FAKE_DOCKER)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_DIGEST", DIGEST)
    monkeypatch.setenv("FAKE_ID", "e" * 64)
    monkeypatch.setenv("FAKE_SERVER", "20.10.24")
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_BUILDKIT"):
        monkeypatch.delenv(var, raising=False)
    return FakeDocker(log)


def test_docker_problem_and_version(
    fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Docker().problem() is None
    assert Docker().version() == "client 28.2.2, engine 20.10.24"
    monkeypatch.setenv("FAKE_SERVER", "")
    docker = Docker()
    problem = docker.problem()
    assert problem is not None
    assert problem.startswith("no Docker engine at unix://"), problem
    assert docker.version() == "client 28.2.2"
    calls = len(fake_docker.calls())
    assert docker.problem() == problem  # cached: asked once
    assert len(fake_docker.calls()) == calls


def test_docker_problem_when_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert Docker().problem() == "docker is not installed (not on PATH)"
    assert Docker().version() is None


def test_docker_build_classic_says_it_is_not_reproducible(
    fake_docker: FakeDocker, context: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docker = Docker()
    spec = BuildSpec(context=context, image=IMAGE, timestamp=5)
    assert docker.build(spec, BuildEnv(), timeout=30) is None  # named: the name is the handle
    assert docker.config_digest(IMAGE) == "sha256:" + "e" * 64
    err = capsys.readouterr().err
    assert CLASSIC_NOTE in err
    assert "requested timestamp 5 cannot be applied" in err
    calls = fake_docker.calls()
    assert calls[0] == "buildx version"
    assert calls[1].startswith("build --iidfile ")
    assert "DOCKER_BUILDKIT=0" in calls


def test_docker_build_returns_the_id_of_an_unnamed_build(
    fake_docker: FakeDocker, context: Path
) -> None:
    image_id = Docker(buildx=False).build(BuildSpec(context, None), BuildEnv(), timeout=30)
    assert image_id == "sha256:" + "e" * 64


def test_docker_build_without_image_id_is_a_failure(
    fake_docker: FakeDocker, context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ID", "not-an-id")
    with pytest.raises(CommandError, match="no image ID"):
        Docker(buildx=False).build(BuildSpec(context, IMAGE), BuildEnv(), timeout=30)


def test_docker_push_returns_the_reported_digest_and_remove_untags(fake_docker: FakeDocker) -> None:
    docker = Docker(buildx=False)
    target = "127.0.0.1:5000/t/app:v3"
    assert docker.push(IMAGE, target, BuildEnv(), timeout=30) == DIGEST
    docker.remove(IMAGE, BuildEnv())
    calls = fake_docker.calls()
    assert calls[0] == f"tag {IMAGE} {target}"
    assert calls[1] == f"push {target}"
    assert calls[2] == "DOCKER_CONFIG= DOCKER_HOST="  # no credentials known: docker's own config
    assert calls[-2:] == [f"image rm --no-prune {target}", f"image rm --no-prune {IMAGE}"]


def test_docker_push_failure_raises_with_the_output(
    fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PUSH", "denied")
    with pytest.raises(CommandError, match="docker push failed") as info:
        Docker(buildx=False).push(IMAGE, "127.0.0.1:5000/t/app:v3", BuildEnv(), timeout=30)
    assert "denied" in info.value.stderr_tail


def test_docker_image_config_keeps_what_the_registry_will_store(fake_docker: FakeDocker) -> None:
    config = Docker(buildx=False).image_config(IMAGE, BuildEnv())
    assert config == {
        "architecture": "amd64", "os": "linux", "config": {"Tty": False, "Env": ["A=1"]},
        "rootfs": {"type": "layers", "diff_ids": ["x"]},
    }  # fmt: skip
    # no --format: a template would make the CLI re-encode and drop the false fields
    assert fake_docker.calls() == [f"image inspect {IMAGE}"]


def test_docker_push_honours_its_timeout(
    fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PUSH", "slow")
    started = time.monotonic()
    with pytest.raises(CommandTimeoutError, match="docker push failed: docker did not finish"):
        Docker(buildx=False).push(IMAGE, "127.0.0.1:5000/t/app:v3", BuildEnv(), timeout=0.5)
    assert time.monotonic() - started < 15


def test_docker_push_gets_credentials_through_a_private_docker_config(
    fake_docker: FakeDocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "pw-" + os.urandom(6).hex()
    monkeypatch.setenv("OCIREL_USERNAME", "ci-user")
    monkeypatch.setenv("OCIREL_PASSWORD", password)
    Docker(buildx=False).push(IMAGE, "127.0.0.1:5000/t/app:v3", BuildEnv(), timeout=30)
    calls = fake_docker.calls()
    assert not any(password in line for line in calls if not line.startswith("{"))  # never argv
    env_line = next(line for line in calls if line.startswith("DOCKER_CONFIG="))
    config_dir = env_line.split()[0].split("=", 1)[1]
    assert "ocirel-auth-" in config_dir
    assert not Path(config_dir).exists()  # removed after the push
    assert "DOCKER_HOST=unix:///run/fake.sock" in env_line  # the context's daemon is kept
    document = json.loads(next(line for line in calls if line.startswith("{")))
    assert list(document["auths"]) == ["127.0.0.1:5000"]


# -- selection ---------------------------------------------------------------------------


@dataclass
class StubBackend:
    name: str
    trouble: str | None = None
    program: str = "stub"
    delivery: str = "layout"
    install_hint: str = "install the stub"

    def problem(self) -> str | None:
        return self.trouble


def stub_factory(problems: dict[str, str | None]) -> Callable[[str], StubBackend]:
    return lambda name: StubBackend(name, problems[name])


@pytest.mark.parametrize(
    ("problems", "chosen", "reason"),
    [
        ({"buildah": None, "podman": None, "docker": None},
         "buildah", "buildah (auto: first of buildah, podman, docker)"),
        ({"buildah": "buildah is not installed", "podman": None, "docker": None},
         "podman", "podman (auto: buildah: buildah is not installed)"),
        ({"buildah": "not installed", "podman": "not installed", "docker": None},
         "docker", "docker (auto: buildah: not installed; podman: not installed)"),
    ],
)  # fmt: skip
def test_auto_takes_the_first_usable(
    problems: dict[str, str | None], chosen: str, reason: str
) -> None:
    backend, why = select_backend("auto", stub_factory(problems))  # type: ignore[arg-type]
    assert (backend.name, why) == (chosen, reason)


def test_auto_with_nothing_usable_names_every_reason() -> None:
    problems = {"buildah": "not installed", "podman": "not installed",
                "docker": "no reachable Docker daemon (refused)"}  # fmt: skip
    with pytest.raises(BackendNotFoundError) as info:
        select_backend("auto", stub_factory(problems))  # type: ignore[arg-type]
    message = str(info.value)
    assert "no usable builder" in message
    assert "docker: no reachable Docker daemon (refused)" in message
    assert info.value.hint is not None
    assert "apt-get install buildah" in info.value.hint


def test_named_backend_must_be_usable() -> None:
    problems = {"docker": "no reachable Docker daemon (refused)"}
    with pytest.raises(BackendNotFoundError, match="docker is not usable: no reachable") as info:
        select_backend("docker", stub_factory(problems))  # type: ignore[arg-type]
    assert info.value.hint == "install the stub"
    backend, why = select_backend("docker", stub_factory({"docker": None}))  # type: ignore[arg-type]
    assert (backend.name, why) == ("docker", "docker (asked for)")


SELECTION_CASES = [
    ("auto", {"buildah": None, "podman": None, "docker": None}),
    ("auto", {"buildah": "not installed", "podman": None, "docker": None}),
    ("auto", {"buildah": "not installed", "podman": "not installed", "docker": None}),
    ("auto", {"buildah": "not installed", "podman": "not installed", "docker": "refused"}),
    ("podman", {"buildah": None, "podman": None, "docker": None}),
    ("podman", {"buildah": None, "podman": "not installed", "docker": None}),
]


@pytest.mark.parametrize(("requested", "problems"), SELECTION_CASES)
def test_doctor_and_publish_select_alike(requested: str, problems: dict[str, str | None]) -> None:
    """One rule (``backends.choose``): doctor names the builder publish would take."""
    from ocirel.doctor import _select  # noqa: PLC0415
    from ocirel.doctor.probes import BackendStatus  # noqa: PLC0415

    statuses = [BackendStatus(n, f"/usr/bin/{n}", "1", p) for n, p in problems.items()]
    doctor_choice = _select(requested, statuses)
    try:
        backend, why = select_backend(requested, stub_factory(problems))  # type: ignore[arg-type]
    except BackendNotFoundError:
        assert doctor_choice[0] is None
    else:
        assert doctor_choice == (backend.name, why)


def test_auto_probes_no_further_than_the_first_usable() -> None:
    asked: list[str] = []

    def factory(name: str) -> StubBackend:
        asked.append(name)
        return StubBackend(name, None if name == "podman" else "not installed")

    backend, _why = select_backend("auto", factory)  # type: ignore[arg-type]
    assert (backend.name, asked) == ("podman", ["buildah", "podman"])


def test_every_auto_candidate_has_an_adapter() -> None:
    assert set(AUTO_ORDER) == set(ADAPTERS)


def test_real_selection_with_an_empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    expected = (r"buildah: buildah is not installed.*podman: podman is not installed.*"
                r"docker: docker is not installed")  # fmt: skip
    with pytest.raises(BackendNotFoundError, match=expected):
        select_backend("auto")
    with pytest.raises(BackendNotFoundError, match="backend podman is not usable"):
        select_backend("podman")


# -- stopping a builder so that it can clean up (runner leaves_first_grace) -------------

# A stand-in for podman: SIGTERM makes it exit at once *without* cleaning up (as podman
# does); when its step (a child) dies, it cleans up and exits. It logs what happened.
FAKE_BUILDER = r"""
trap 'echo killed-without-cleanup >> "$1"; exit 143' TERM
sleep 300 &
step=$!
echo "$step" > "$1.step"
wait "$step"
echo cleaned-up >> "$1"
exit 1
"""


def run_and_interrupt(tmp_path: Path, grace: float) -> tuple[str, int]:
    log = tmp_path / "log"
    errors: list[BaseException] = []

    def interrupt_once_started() -> None:
        deadline = time.monotonic() + 10
        while not Path(f"{log}.step").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt_once_started, daemon=True)
    killer.start()
    try:
        runner.run(["sh", "-c", FAKE_BUILDER, "sh", str(log)], timeout=60, leaves_first_grace=grace)
    except KeyboardInterrupt as exc:
        errors.append(exc)
    killer.join(5)
    assert errors, "the run was not interrupted"
    step = int(Path(f"{log}.step").read_text())
    return log.read_text().strip(), step


def test_leaves_first_lets_the_builder_clean_up(tmp_path: Path) -> None:
    outcome, step = run_and_interrupt(tmp_path, grace=10.0)
    assert outcome == "cleaned-up"
    assert not Path(f"/proc/{step}").exists() or "Z" in Path(f"/proc/{step}/stat").read_text()


def test_without_leaves_first_the_group_is_terminated_at_once(tmp_path: Path) -> None:
    outcome, _ = run_and_interrupt(tmp_path, grace=0.0)
    assert outcome == "killed-without-cleanup"


def test_group_leaves(tmp_path: Path) -> None:
    def proc(pid: int, comm: str, state: str, ppid: int, pgrp: int) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({comm}) {state} {ppid} {pgrp} 0 0\n")

    proc(100, "podman", "S", 1, 100)  # the leader
    proc(101, "buildah-chroot-runtime", "S", 100, 100)
    proc(102, "sleep) (odd name", "S", 101, 100)  # a leaf; ")" in the name is allowed
    proc(103, "conmon", "S", 100, 100)  # another leaf
    proc(104, "sh", "Z", 101, 100)  # a zombie is nobody's work
    proc(200, "sleep", "S", 1, 200)  # another group
    (tmp_path / "self").mkdir()
    assert runner.group_leaves(100, 100, tmp_path) == [102, 103]
    assert runner.group_leaves(200, 200, tmp_path) == []


@pytest.mark.parametrize(
    ("output", "host", "expected"),
    [
        ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
         "daemon running?", None, "no Docker engine at unix:///var/run/docker.sock"),
        ("", "unix:///tmp/private/docker.sock", "no Docker engine at unix:///tmp/private/docker.sock"),
        ("", None, "no Docker engine at unix:///var/run/docker.sock"),
        # Debian's 20.10 client can print only a template error when the server is absent
        ('template: :1:8: executing "" at <.Server.Version>: nil pointer evaluating '
         "*types.Version.Version", None, "no Docker engine at unix:///var/run/docker.sock"),
        ("permission denied while trying to connect to the Docker daemon socket at "
         'unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.24/version"',
         None, "permission denied on the Docker socket at unix:///var/run/docker.sock"),
        ("Error response from daemon: client version 1.99 is too new", "tcp://127.0.0.1:2375",
         "no reachable Docker engine at tcp://127.0.0.1:2375 (Error response from daemon: "
         "client version 1.99 is too new)"),
    ],
)  # fmt: skip
def test_daemon_problem_names_the_endpoint_in_plain_words(
    output: str, host: str | None, expected: str
) -> None:
    from ocirel.backends.docker_daemon import daemon_problem  # noqa: PLC0415

    assert daemon_problem(output, host).startswith(expected)
    if expected.startswith("no Docker engine"):
        assert daemon_problem(output, host).endswith(
            "(start one: `dockerd`, or `systemctl start docker`)"
        )
