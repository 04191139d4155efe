"""``ocirel doctor``: the verdict and fixes (pure) and the probes (command: cli/test_doctor)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ocirel import doctor, hostinfo
from ocirel.doctor import (
    ERROR,
    WARNING,
    BackendStatus,
    DoctorReport,
    HostStatus,
    Problem,
    RegistryStatus,
    assess,
    diagnose,
    fixes,
    registry_status,
)
from ocirel.doctor.fixes import DOCKER_DAEMON_FIX, DOCKER_SOCKET_FIX, NO_BUILDER_FIX
from ocirel.errors import RegistryAuthError, RegistryError
from ocirel.hostinfo import StorageChoice

OVERLAY = StorageChoice("overlay", "overlay is available")
ROOT = HostStatus(user="root", uid=0, rootless=False, in_container=False,
                  max_user_namespaces=15000, unshare="ok", newuidmap="setuid")  # fmt: skip
ALICE = HostStatus(user="alice", uid=1000, rootless=True, in_container=False,
                   subuid=((100000, 65536),), subgid=((100000, 65536),),
                   max_user_namespaces=15000, unshare="ok", newuidmap="setuid")  # fmt: skip
OK = {
    "buildah": BackendStatus("buildah", "/usr/bin/buildah", "1.28.2", None),
    "podman": BackendStatus("podman", "/usr/bin/podman", "4.3.1", None, storage_driver="overlay"),
    "docker": BackendStatus("docker", "/usr/bin/docker", "client 28", None),
}
MISSING = {
    name: BackendStatus(name, None, None, f"{name} is not installed", f"install {name}")
    for name in ("buildah", "podman", "docker")
}
NO_DAEMON = BackendStatus(
    "docker",
    "/usr/bin/docker",
    "client 28",
    "no reachable Docker daemon (refused)",
    DOCKER_DAEMON_FIX,
)


def report(
    *,
    backends: tuple[BackendStatus, ...] = tuple(OK.values()),
    selected: str | None = "buildah",
    requested: str = "auto",
    host: HostStatus = ROOT,
    storage: StorageChoice = OVERLAY,
    registry: RegistryStatus | None = None,
) -> DoctorReport:
    return DoctorReport(
        requested=requested, backends=backends, selected=selected, selected_reason="…",
        host=host, storage=storage, isolation="chroot", isolation_reason="default",
        auth_files=(), registry=registry,
    )  # fmt: skip


def kinds(findings: tuple[Problem, ...]) -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in findings]


# -- assess: the verdict and the fixes --------------------------------------------------


def test_a_healthy_root_machine_has_no_findings() -> None:
    assert assess(report()) == ()


def test_a_healthy_rootless_machine_has_no_findings() -> None:
    assert assess(report(host=ALICE)) == ()


def test_no_builder_is_an_error_with_install_hints() -> None:
    findings = assess(report(backends=tuple(MISSING.values()), selected=None))
    assert kinds(findings) == [(ERROR, "no usable builder (buildah, podman or docker)")]
    assert findings[0].fix == NO_BUILDER_FIX
    assert "apt-get install buildah" in findings[0].fix


def test_docker_without_daemon_is_a_warning_when_another_builder_works() -> None:
    findings = assess(report(backends=(OK["buildah"], OK["podman"], NO_DAEMON)))
    assert kinds(findings) == [
        (WARNING, "docker is installed but not usable: no reachable Docker daemon (refused)")
    ]
    assert findings[0].fix == DOCKER_DAEMON_FIX


def test_docker_without_daemon_and_nothing_else_is_an_error() -> None:
    backends = (MISSING["buildah"], MISSING["podman"], NO_DAEMON)
    findings = assess(report(backends=backends, selected=None))
    assert (ERROR, "no usable builder (buildah, podman or docker)") in kinds(findings)
    assert any(f.fix == DOCKER_DAEMON_FIX for f in findings)


def test_an_unusable_requested_backend_is_an_error() -> None:
    backends = (OK["buildah"], OK["podman"], NO_DAEMON)
    findings = assess(report(backends=backends, selected=None, requested="docker"))
    assert findings[0].severity == ERROR
    assert findings[0].message.startswith("the backend asked for (docker) is not usable")
    assert findings[0].fix == DOCKER_DAEMON_FIX


def test_only_docker_works_is_a_warning_about_reproducibility() -> None:
    backends = (MISSING["buildah"], MISSING["podman"], OK["docker"])
    findings = assess(report(backends=backends, selected="docker", host=ALICE))
    assert [f.severity for f in findings] == [WARNING]
    assert "not reproducible" in findings[0].message
    assert "apt-get install buildah" in findings[0].fix


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (replace(ALICE, subuid=(), subgid=()),
         [(WARNING, "alice has 0 subordinate ids in /etc/subuid"),
          (WARNING, "alice has 0 subordinate ids in /etc/subgid")]),
        (replace(ALICE, subuid=((100000, 1000),)),
         [(WARNING, "alice has 1000 subordinate ids in /etc/subuid")]),
        (replace(ALICE, subuid=((100000, 32768), (200000, 32768))), []),
        (replace(ALICE, max_user_namespaces=0),
         [(ERROR, "user namespaces are disabled (user.max_user_namespaces = 0)")]),
        (replace(ROOT, max_user_namespaces=0),
         [(WARNING, "user namespaces are disabled (user.max_user_namespaces = 0)")]),
        (replace(ALICE, unshare="failed: unshare: unshare failed: Operation not permitted"),
         [(ERROR, "cannot create a user namespace")]),
        (replace(ROOT, unshare="failed: Operation not permitted"), []),  # chroot needs none as root
        (replace(ALICE, newuidmap=None), [(WARNING, "newuidmap/newgidmap are not installed")]),
        (replace(ALICE, newuidmap="plain"), [(WARNING, "newuidmap is neither setuid")]),
        (replace(ROOT, subuid=(), newuidmap=None), []),  # root needs neither
    ],
)  # fmt: skip
def test_rootless_findings(host: HostStatus, expected: list[tuple[str, str]]) -> None:
    findings = assess(report(host=host))
    pairs = zip(findings, expected, strict=False)
    assert [(f.severity, f.message[: len(m)]) for f, (_, m) in pairs] == expected
    assert len(findings) == len(expected)
    for finding in findings:
        assert finding.fix  # every problem comes with a fix
    if any("subordinate" in m for _, m in expected):
        assert "usermod --add-subuids" in findings[0].fix
        assert "podman system migrate" in findings[0].fix


REFUSED = "failed: unshare: unshare failed: Operation not permitted"
CHROOT = "the root directory is not pid 1's (/proc/1/root)"


@pytest.mark.parametrize(
    ("host", "severity", "message", "fix"),
    [
        (replace(ALICE, unshare=REFUSED, chroot=CHROOT), ERROR,
         f"inside a chroot ({CHROOT}): user namespaces are refused", fixes.CHROOT_FIX),
        # a chroot wins over every other explanation: no sysctl/seccomp change helps there
        (replace(ALICE, unshare=REFUSED, chroot=CHROOT, max_user_namespaces=0, in_container=True),
         ERROR, "inside a chroot", fixes.CHROOT_FIX),
        (replace(ROOT, unshare=REFUSED, chroot=CHROOT), WARNING, "inside a chroot",
         fixes.CHROOT_FIX),
        (replace(ALICE, unshare=REFUSED, max_user_namespaces=0), ERROR,
         "user namespaces are disabled (user.max_user_namespaces = 0)", fixes.SYSCTL_FIX),
        (replace(ALICE, unshare=REFUSED, userns_clone=0), ERROR,
         "cannot create a user namespace", fixes.USERNS_CLONE_FIX),
        (replace(ALICE, unshare=REFUSED, apparmor_userns=True), WARNING,
         "cannot create a user namespace", fixes.APPARMOR_FIX),
        (replace(ALICE, unshare=REFUSED, in_container=True), ERROR,
         "cannot create a user namespace", fixes.SECCOMP_FIX),
        (replace(ALICE, unshare=REFUSED), ERROR, "cannot create a user namespace",
         fixes.USERNS_FIX),
    ],
)  # fmt: skip
def test_refused_user_namespaces_get_the_fix_for_their_cause(
    host: HostStatus, severity: str, message: str, fix: str
) -> None:
    findings = assess(report(host=host))
    assert [(f.severity, f.message[: len(message)], f.fix) for f in findings] == [
        (severity, message, fix)
    ]


def test_the_chroot_fix_says_what_to_do_instead() -> None:
    assert "not a bare chroot" in fixes.CHROOT_FIX
    assert "pivot_root" in fixes.CHROOT_FIX
    assert "sysctl -w" not in fixes.CHROOT_FIX
    assert "seccomp=unconfined" not in fixes.CHROOT_FIX


def test_a_chroot_where_user_namespaces_work_is_not_a_finding() -> None:
    """The evidence is a heuristic: unshare succeeding overrules it."""
    assert not assess(report(host=replace(ALICE, chroot=CHROOT)))


def test_rootless_checks_do_not_apply_to_docker() -> None:
    host = replace(ALICE, subuid=(), subgid=(), max_user_namespaces=0)
    backends = (MISSING["buildah"], MISSING["podman"], OK["docker"])
    findings = assess(report(backends=backends, selected="docker", host=host))
    assert all("subordinate" not in f.message and "namespaces" not in f.message for f in findings)


def test_storage_findings() -> None:
    vfs = assess(report(storage=StorageChoice("vfs", "no overlay")))
    assert kinds(vfs) == [(WARNING, "storage driver vfs: every layer is a full copy (slow, large)")]
    podman = report(selected="podman", storage=StorageChoice("vfs", "set", explicit=True))
    findings = assess(podman)
    assert findings[0].severity == ERROR
    assert "podman's storage uses overlay" in findings[0].message
    assert "podman system reset" in findings[0].fix
    # ocirel's automatic choice differs: podman's driver is respected, nothing to fix
    assert assess(replace(podman, storage=StorageChoice("vfs", "auto"))) == ()


@pytest.mark.parametrize(
    ("status", "severity"),
    [
        (RegistryStatus("r.io", True, "answers /v2/ (https, HTTP 200)"), None),
        (
            RegistryStatus("r.io", False, "cannot reach https://r.io/v2/: refused", "check it"),
            ERROR,
        ),
        (RegistryStatus("r.io", True, "refuses our credentials", "log in", auth_ok=False), ERROR),
    ],
)
def test_registry_findings(status: RegistryStatus, severity: str | None) -> None:
    findings = assess(report(registry=status))
    assert [f.severity for f in findings] == ([severity] if severity else [])
    if severity:
        assert findings[0].message.startswith("registry r.io: ")
        assert findings[0].fix == status.fix


def test_ok_follows_the_errors() -> None:
    assert report().ok
    assert replace(report(), problems=(Problem(WARNING, "w", "f"),)).ok
    assert not replace(report(), problems=(Problem(ERROR, "e", "f"),)).ok


# -- probes ------------------------------------------------------------------------------


def _raise(exc: Exception) -> Callable[[], str]:
    def ping() -> str:
        raise exc

    return ping


@pytest.mark.parametrize(
    ("ping", "reachable", "auth_ok", "fix_fragment"),
    [
        (lambda: "http, HTTP 200", True, True, None),
        (_raise(RegistryAuthError("401 Unauthorized", status=401)), True, False, "OCIREL_USERNAME"),
        (_raise(RegistryError("cannot reach https://h/v2/: connection refused")), False, True,
         "nothing answers"),
        (_raise(RegistryError("TLS: certificate verify failed")), False, True, "--ca-file"),
        (_raise(RegistryError("plain http refused", hint="use --insecure")), False, True,
         "use --insecure"),
    ],
)  # fmt: skip
def test_registry_status(
    ping: Callable[[], str], reachable: bool, auth_ok: bool, fix_fragment: str | None
) -> None:
    status = registry_status("h", ping)
    assert (status.reachable, status.auth_ok) == (reachable, auth_ok)
    if fix_fragment is None:
        assert status.fix is None
        assert status.detail == "answers /v2/ (http, HTTP 200)"
    else:
        assert status.fix is not None
        assert fix_fragment in status.fix


@dataclass
class StubBackend:
    name: str
    trouble: str | None
    program: str = ""
    install_hint: str = "install it"
    reproducible: bool = True
    multi_platform: bool = True

    def problem(self) -> str | None:
        return self.trouble

    def version(self) -> str | None:
        return "9.9"


def test_diagnose_gathers_and_selects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # fuse-overlayfs usable: the storage choice is not vfs (which doctor warns about)
    monkeypatch.setattr(hostinfo, "fuse_device_usable", lambda: True)
    stubs = {
        "buildah": StubBackend("buildah", None, "buildah"),
        "podman": StubBackend("podman", None, "podman"),
        "docker": StubBackend(
            "docker", "no reachable Docker daemon (x)", "docker", reproducible=False
        ),
    }
    installed = {
        "podman": "/bin/podman", "docker": "/bin/docker", "fuse-overlayfs": "/bin/fuse-overlayfs",
    }  # fmt: skip
    auth = tmp_path / "containers" / "auth.json"
    auth.parent.mkdir()
    auth.write_text('{"auths": {"r.io": {"auth": "c2VjcmV0OnNlY3JldA=="}}}')
    result = diagnose(
        requested="auto", storage_setting=None, isolation_setting=None,
        env={"HOME": str(tmp_path), "REGISTRY_AUTH_FILE": str(auth)},
        registry="r.io", ping=lambda: "https, HTTP 200",
        factory=lambda name: stubs[name],  # type: ignore[arg-type,return-value]
        which=installed.get, host=ROOT,
    )  # fmt: skip
    assert [(b.name, b.installed, b.usable) for b in result.backends] == [
        ("buildah", False, False), ("podman", True, True), ("docker", True, False),
    ]  # fmt: skip
    assert result.selected == "podman"
    assert result.selected_reason == "podman (auto: buildah: buildah is not installed)"
    assert result.backends[2].fix == DOCKER_DAEMON_FIX
    assert result.auth_files == (str(auth),)
    assert result.registry is not None
    assert result.registry.reachable
    assert [f.severity for f in result.problems] == [WARNING]  # docker without daemon
    assert result.ok
    data = json.loads(json.dumps(result.to_json()))
    assert "c2VjcmV0" not in json.dumps(data)  # names of auth files only, never contents
    assert set(data) == {
        "ok", "backend", "backends", "host", "storage", "isolation", "auth_files", "registry",
        "problems", "emulation", "platforms",
    }  # fmt: skip
    assert data["backend"] == {
        "requested": "auto", "selected": "podman",
        "reason": "podman (auto: buildah: buildah is not installed)",
    }  # fmt: skip
    assert data["backends"][0] == {
        "name": "buildah", "installed": False, "path": None, "version": None, "usable": False,
        "problem": "buildah is not installed", "fix": "install it", "storage_driver": None,
        "notes": [],
    }  # fmt: skip
    assert data["host"]["user_namespaces"] == {"max": 15000, "unshare": "ok"}
    assert data["problems"] == [{"severity": WARNING, "fix": DOCKER_DAEMON_FIX,
                                 "message": "docker is installed but not usable: "
                                            "no reachable Docker daemon (x)"}]  # fmt: skip


def test_diagnose_with_an_unusable_requested_backend() -> None:
    stubs = {n: StubBackend(n, "nope", n) for n in ("buildah", "podman", "docker")}
    result = diagnose(
        requested="podman", storage_setting=None, isolation_setting="oci",
        factory=lambda name: stubs[name],  # type: ignore[arg-type,return-value]
        which=lambda program: f"/bin/{program}", host=ROOT,
    )  # fmt: skip
    assert result.selected is None
    assert result.selected_reason == "podman was asked for but is not usable"
    assert (result.isolation, result.isolation_reason) == ("oci", "set by the isolation setting")
    assert not result.ok


def test_probe_unshare_without_unshare() -> None:
    assert doctor.probe_unshare(lambda _p: None).startswith("not tried")


# -- the command -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "fix"),
    [
        ("no reachable Docker daemon (Cannot connect to the Docker daemon at unix:///x)",
         DOCKER_DAEMON_FIX),
        ("no reachable Docker daemon (permission denied while trying to connect to the Docker "
         "daemon socket at unix:///var/run/docker.sock)", DOCKER_SOCKET_FIX),
    ],
)  # fmt: skip
def test_docker_fix_follows_the_problem(problem: str, fix: str) -> None:
    stub = StubBackend("docker", problem, "docker", reproducible=False)
    status = doctor.backend_status(stub, lambda program: f"/usr/bin/{program}")  # type: ignore[arg-type]
    assert (status.installed, status.usable, status.fix) == (True, False, fix)
    assert status.notes == (
        "the classic builder stamps the build time into images: not reproducible",
    )
