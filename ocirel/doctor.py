"""``ocirel doctor``: can this machine publish, and if not, what to do about it.

:func:`diagnose` gathers the facts (builders, rootless setup, storage, credentials
files, the registry) through small probes that tests can replace, and :func:`assess`
turns the facts into problems, each with a concrete fix. Nothing here prints: the
CLI renders the :class:`DoctorReport` (``cli/doctor.py``).

The verdict (``DoctorReport.ok``) is False when publishing could not work: no usable
builder (or the one asked for is unusable), no user namespaces for a rootless
build, or a registry that was named but does not answer ``/v2/``.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ocirel import hostinfo, runner
from ocirel.backends import AUTO_ORDER, Backend, get_backend
from ocirel.errors import OcirelError, RegistryAuthError, RegistryError
from ocirel.hostinfo import StorageChoice

SUBIDS_NEEDED = 65536
UNSHARE_TIMEOUT = 10.0

SUBID_FIX = (
    "add 65536 subordinate ids for {user}: usermod --add-subuids 100000-165535 "
    "--add-subgids 100000-165535 {user} (as root), then run: podman system migrate"
)
USERNS_FIX = (
    "enable user namespaces: sysctl -w user.max_user_namespaces=15000 (and "
    "kernel.unprivileged_userns_clone=1 on older Debian kernels); in a container, allow "
    "unshare/clone in its seccomp profile (e.g. --security-opt seccomp=unconfined)"
)
SYSCTL_FIX = (
    "enable user namespaces: sysctl -w user.max_user_namespaces=15000 (persist it in "
    "/etc/sysctl.d/)"
)
USERNS_CLONE_FIX = (
    "allow unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 "
    "(persist it in /etc/sysctl.d/)"
)
APPARMOR_FIX = (
    "AppArmor refuses user namespaces to programs without a profile that allows them: "
    "rootless builds work only if buildah/podman have such a profile loaded (see "
    "/etc/apparmor.d/), else sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
)
SECCOMP_FIX = (
    "the container's seccomp profile refuses unshare/clone: run it with a profile that "
    "allows them (e.g. --security-opt seccomp=unconfined, or podman's default profile), "
    "or build as root in the container with chroot isolation"
)
CHROOT_FIX = (
    "this process is inside a chroot, where the kernel refuses user namespaces and "
    "buildah cannot remount /; no sysctl or seccomp change helps: run on the host, or in "
    "a container or a mount namespace entered with pivot_root (e.g. unshare --mount "
    "--pid --fork, then pivot_root), not a bare chroot"
)
DOCKER_SOCKET_FIX = (
    "this user may not use the Docker socket: add it to the docker group (usermod -aG "
    "docker USER, then log in again), or let ocirel use buildah or podman, which need no daemon"
)
NEWUIDMAP_FIX = "install newuidmap/newgidmap setuid root: apt-get install uidmap"
NO_BUILDER_FIX = (
    "install buildah (Debian/Ubuntu: apt-get install buildah) or podman (apt-get install "
    "podman), or start a Docker engine"
)
DOCKER_DAEMON_FIX = (
    "start the Docker engine (systemctl start docker, or dockerd), check DOCKER_HOST / "
    "`docker context ls`, or let ocirel use buildah or podman, which need no daemon"
)


class Severity(StrEnum):
    ERROR = "error"  # publishing cannot work
    WARNING = "warning"  # it may, but see the fix


ERROR, WARNING = Severity.ERROR, Severity.WARNING


@dataclass(frozen=True)
class Problem:
    """Something :func:`assess` found wrong with this machine, and how to fix it."""

    severity: Severity
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {"severity": str(self.severity), "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class BackendStatus:
    name: str
    path: str | None  # None: not installed
    version: str | None
    problem: str | None  # None: usable
    fix: str | None = None
    storage_driver: str | None = None  # the driver the builder's store already uses
    notes: tuple[str, ...] = ()

    @property
    def installed(self) -> bool:
        return self.path is not None

    @property
    def usable(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "installed": self.installed, "path": self.path,
            "version": self.version, "usable": self.usable, "problem": self.problem,
            "fix": self.fix, "storage_driver": self.storage_driver, "notes": list(self.notes),
        }  # fmt: skip


@dataclass(frozen=True)
class RegistryStatus:
    registry: str
    reachable: bool
    detail: str
    fix: str | None = None
    auth_ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry, "reachable": self.reachable, "auth_ok": self.auth_ok,
            "detail": self.detail, "fix": self.fix,
        }  # fmt: skip


@dataclass(frozen=True)
class HostStatus:
    user: str
    uid: int
    rootless: bool
    in_container: bool
    subuid: tuple[tuple[int, int], ...] = ()
    subgid: tuple[tuple[int, int], ...] = ()
    max_user_namespaces: int | None = None
    unshare: str = "not tried"  # "ok", "failed: …", "not tried (…)"
    newuidmap: str | None = None  # "setuid", "capabilities", "plain" or None (missing)
    chroot: str | None = None  # why this process looks chrooted, or None
    userns_clone: int | None = None  # kernel.unprivileged_userns_clone, where it exists
    apparmor_userns: bool = False  # kernel.apparmor_restrict_unprivileged_userns = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user, "uid": self.uid, "rootless": self.rootless,
            "in_container": self.in_container,
            "subuid": [{"start": s, "count": c} for s, c in self.subuid],
            "subgid": [{"start": s, "count": c} for s, c in self.subgid],
            "user_namespaces": {"max": self.max_user_namespaces, "unshare": self.unshare},
            "newuidmap": self.newuidmap, "chroot": self.chroot,
        }  # fmt: skip


@dataclass(frozen=True)
class DoctorReport:
    requested: str  # the backend setting: auto, buildah, podman or docker
    backends: tuple[BackendStatus, ...]
    selected: str | None
    selected_reason: str
    host: HostStatus
    storage: StorageChoice
    isolation: str
    isolation_reason: str
    auth_files: tuple[str, ...]
    registry: RegistryStatus | None
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Publishing could work (no problem of severity ``error``)."""
        return not any(p.severity is Severity.ERROR for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "backend": {"requested": self.requested, "selected": self.selected,
                        "reason": self.selected_reason},
            "backends": [b.to_json() for b in self.backends],
            "host": self.host.to_json(),
            "storage": {"driver": self.storage.driver, "reason": self.storage.reason,
                        "options": list(self.storage.options)},
            "isolation": {"name": self.isolation, "reason": self.isolation_reason},
            "auth_files": list(self.auth_files),
            "registry": self.registry.to_json() if self.registry else None,
            "problems": [p.to_json() for p in self.problems],
        }  # fmt: skip


# ------------------------------------------------------------------- probes


def backend_status(
    backend: Backend, which: Callable[[str], str | None] = runner.which
) -> BackendStatus:
    path = which(backend.program)
    if path is None:
        return BackendStatus(
            backend.name, None, None, f"{backend.program} is not installed",
            getattr(backend, "install_hint", None),
        )  # fmt: skip
    problem = backend.problem()
    fix = None
    if problem is not None and backend.name == "docker":
        fix = DOCKER_SOCKET_FIX if "permission denied" in problem.lower() else DOCKER_DAEMON_FIX
    elif problem is not None:
        fix = getattr(backend, "install_hint", None)
    driver = None
    store_driver = getattr(backend, "store_driver", None)
    if problem is None and callable(store_driver):
        driver = store_driver()
    notes: tuple[str, ...] = ()
    if getattr(backend, "reproducible", True) is False:
        notes = ("the classic builder stamps the build time into images: not reproducible",)
    return BackendStatus(backend.name, path, backend.version(), problem, fix, driver, notes)


def probe_unshare(which: Callable[[str], str | None] = runner.which) -> str:
    """``unshare --user true``: can this process create a user namespace?"""
    if which("unshare") is None:
        return "not tried (unshare not installed; package util-linux)"
    try:
        result = runner.run(["unshare", "--user", "true"], timeout=UNSHARE_TIMEOUT, check=False)
    except OcirelError as exc:
        return f"failed: {exc}"
    if result.ok:
        return "ok"
    lines = (result.stderr or result.stdout).strip().splitlines()
    return "failed: " + (lines[-1] if lines else f"exit code {result.returncode}")


def newuidmap_kind(path: str | None) -> str | None:
    """How ``newuidmap`` gets its privilege: setuid, file capabilities, or neither."""
    if path is None:
        return None
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    if mode & stat.S_ISUID:
        return "setuid"
    try:
        if os.getxattr(path, "security.capability"):
            return "capabilities"
    except OSError:
        pass
    return "plain"


def host_status(
    env: Mapping[str, str],
    *,
    root: Path = Path("/"),
    which: Callable[[str], str | None] = runner.which,
    unshare: Callable[[], str] | None = None,
) -> HostStatus:
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = env.get("USER") or str(uid)
    return HostStatus(
        user=user,
        uid=uid,
        rootless=hostinfo.is_rootless(),
        in_container=hostinfo.in_container(root),
        subuid=tuple(hostinfo.subid_ranges(user, root / "etc/subuid")),
        subgid=tuple(hostinfo.subid_ranges(user, root / "etc/subgid")),
        max_user_namespaces=hostinfo.max_user_namespaces(root),
        unshare=(unshare or (lambda: probe_unshare(which)))(),
        newuidmap=newuidmap_kind(which("newuidmap")),
        chroot=hostinfo.chroot_evidence(root),
        userns_clone=hostinfo.unprivileged_userns_clone(root),
        apparmor_userns=hostinfo.apparmor_restricts_userns(root),
    )


def registry_status(registry: str, ping: Callable[[], str]) -> RegistryStatus:
    """``ping()`` sends ``GET /v2/`` and returns how (e.g. ``"https, HTTP 200"``)."""
    try:
        how = ping()
    except RegistryAuthError as exc:
        return RegistryStatus(
            registry, True, f"answers /v2/, but refuses our credentials: {exc}",
            "log in (podman login / docker login writes an auth file ocirel reads) or set "
            "OCIREL_USERNAME and OCIREL_PASSWORD",
            auth_ok=False,
        )  # fmt: skip
    except RegistryError as exc:
        return RegistryStatus(registry, False, str(exc), exc.hint or _registry_fix(str(exc)))
    except OcirelError as exc:
        return RegistryStatus(registry, False, str(exc), exc.hint or _registry_fix(str(exc)))
    return RegistryStatus(registry, True, f"answers /v2/ ({how})")


def _registry_fix(message: str) -> str:
    text = message.lower()
    if "http response to https" in text or "plain http" in text:
        return "the registry speaks plain http: pass --insecure (or list it in insecure_registries)"
    if "certificate" in text or "ssl" in text or "tls" in text:
        return "pass the registry's CA with --ca-file, or --insecure for a test registry"
    if "refused" in text:
        return "nothing answers on that host and port: check --image and that the registry runs"
    return "check the host and port, DNS, proxies (HTTPS_PROXY/NO_PROXY) and that the registry runs"


# ------------------------------------------------------------------ verdict


def assess(report: DoctorReport) -> tuple[Problem, ...]:
    """The problems in ``report``, each with a fix. Pure."""
    problems: list[Problem] = []
    by_name = {b.name: b for b in report.backends}
    problems += _backend_problems(report, by_name)
    chosen = by_name.get(report.selected or "")
    if chosen is not None and chosen.name != "docker":
        problems += _rootless_problems(report.host)
        problems += _storage_problems(report.storage, chosen)
    if report.registry is not None and not (report.registry.reachable and report.registry.auth_ok):
        problems.append(Problem(
            ERROR, f"registry {report.registry.registry}: {report.registry.detail}",
            report.registry.fix or "check the registry",
        ))  # fmt: skip
    return tuple(problems)


def _backend_problems(report: DoctorReport, by_name: Mapping[str, BackendStatus]) -> list[Problem]:
    problems: list[Problem] = []
    if report.requested != "auto":
        asked = by_name.get(report.requested)
        if asked is not None and not asked.usable:
            problems.append(Problem(
                ERROR, f"the backend asked for ({report.requested}) is not usable: {asked.problem}",
                asked.fix or "choose another --backend",
            ))  # fmt: skip
    elif report.selected is None:
        problems.append(
            Problem(ERROR, "no usable builder (buildah, podman or docker)", NO_BUILDER_FIX)
        )
    docker = by_name.get("docker")
    if (
        docker is not None
        and docker.installed
        and not docker.usable
        and report.selected != "docker"
    ):
        problems.append(Problem(
            WARNING, f"docker is installed but not usable: {docker.problem}",
            docker.fix or DOCKER_DAEMON_FIX,
        ))  # fmt: skip
    if report.selected == "docker":
        problems.append(Problem(
            WARNING, "only docker is usable: builds need the daemon and are not reproducible "
            "with the classic builder",
            "install buildah (apt-get install buildah) for rootless, reproducible builds",
        ))  # fmt: skip
    return problems


def _rootless_problems(host: HostStatus) -> list[Problem]:
    problems: list[Problem] = []
    refused = host.unshare.startswith("failed")
    if host.chroot is not None and refused:
        # The kernel's own reason: sysctls and seccomp are beside the point here.
        problems.append(Problem(
            ERROR if host.rootless else WARNING,
            f"inside a chroot ({host.chroot}): user namespaces are refused "
            f"(unshare --user true: {host.unshare})", CHROOT_FIX,
        ))  # fmt: skip
    elif host.max_user_namespaces == 0:
        problems.append(Problem(
            ERROR if host.rootless else WARNING,
            "user namespaces are disabled (user.max_user_namespaces = 0)", SYSCTL_FIX,
        ))  # fmt: skip
    elif host.rootless and refused:
        message = f"cannot create a user namespace (unshare --user true: {host.unshare})"
        severity = ERROR
        if host.userns_clone == 0:
            message, fix = f"{message}: kernel.unprivileged_userns_clone = 0", USERNS_CLONE_FIX
        elif host.apparmor_userns:
            # unshare is unconfined; buildah/podman may still have a profile that allows it
            message = f"{message}: kernel.apparmor_restrict_unprivileged_userns = 1"
            severity, fix = WARNING, APPARMOR_FIX
        elif host.in_container:
            message, fix = f"{message}: refused inside a container (seccomp)", SECCOMP_FIX
        else:
            fix = USERNS_FIX
        problems.append(Problem(severity, message, fix))
    if not host.rootless:
        return problems
    for kind, ranges in (("subuid", host.subuid), ("subgid", host.subgid)):
        total = sum(count for _, count in ranges)
        if total < SUBIDS_NEEDED:
            problems.append(Problem(
                WARNING,
                f"{host.user} has {total} subordinate ids in /etc/{kind} (65536 needed for "
                "images with files owned by other users)",
                SUBID_FIX.format(user=host.user),
            ))  # fmt: skip
    if host.newuidmap is None:
        problems.append(Problem(WARNING, "newuidmap/newgidmap are not installed", NEWUIDMAP_FIX))
    elif host.newuidmap == "plain":
        problems.append(Problem(
            WARNING, "newuidmap is neither setuid root nor has file capabilities", NEWUIDMAP_FIX,
        ))  # fmt: skip
    return problems


def _storage_problems(storage: StorageChoice, chosen: BackendStatus) -> list[Problem]:
    problems: list[Problem] = []
    in_use = chosen.storage_driver
    if storage.explicit and in_use and storage.driver and in_use != storage.driver:
        problems.append(Problem(
            ERROR,
            f"{chosen.name}'s storage uses {in_use}, but the storage_driver setting asks for "
            f"{storage.driver}",
            f"unset OCIREL_STORAGE_DRIVER / storage_driver, or `{chosen.name} system reset` "
            f"(deletes its images) to start over with {storage.driver}",
        ))  # fmt: skip
    effective = in_use or storage.driver
    if effective == "vfs":
        problems.append(Problem(
            WARNING, "storage driver vfs: every layer is a full copy (slow, large)",
            "apt-get install fuse-overlayfs and let this user open /dev/fuse (ocirel then uses "
            "overlay through fuse-overlayfs, whose digests match root's and vfs's); native "
            "overlay (storage_driver = \"overlay\") is faster but not reproducible across users",
        ))  # fmt: skip
    return problems


# ------------------------------------------------------------------ diagnose


def diagnose(
    *,
    requested: str,
    storage_setting: str | None,
    isolation_setting: str | None,
    env: Mapping[str, str] | None = None,
    registry: str | None = None,
    ping: Callable[[], str] | None = None,
    backends: Sequence[str] = AUTO_ORDER,
    factory: Callable[[str], Backend] = get_backend,
    which: Callable[[str], str | None] = runner.which,
    host: HostStatus | None = None,
) -> DoctorReport:
    """Gather everything and assess it. ``ping`` is called when ``registry`` is given."""
    from ocirel import auth  # noqa: PLC0415

    env = os.environ if env is None else env
    statuses = tuple(backend_status(factory(name), which) for name in backends)
    selected, reason = _select(requested, statuses)
    host = host or host_status(env, which=which)
    storage = hostinfo.choose_storage(
        storage_setting, env, rootless=host.rootless, kernel=hostinfo.kernel_version(),
        overlay_available=hostinfo.overlay_in_kernel(), fuse_overlayfs=which("fuse-overlayfs"),
    )  # fmt: skip
    isolation = isolation_setting or "chroot"
    isolation_reason = (
        "set by the isolation setting" if isolation_setting
        else "default: works unprivileged and inside containers, needs no OCI runtime"
    )  # fmt: skip
    registry_result = registry_status(registry, ping) if registry and ping else None
    report = DoctorReport(
        requested=requested, backends=statuses, selected=selected, selected_reason=reason,
        host=host, storage=storage, isolation=isolation, isolation_reason=isolation_reason,
        auth_files=tuple(str(p) for p in auth.existing_auth_files(env)), registry=registry_result,
    )  # fmt: skip
    return DoctorReport(**{**report.__dict__, "problems": assess(report)})


def _select(requested: str, statuses: Sequence[BackendStatus]) -> tuple[str | None, str]:
    """What ``select_backend`` would choose, from the statuses already gathered."""
    if requested != "auto":
        status = next((s for s in statuses if s.name == requested), None)
        if status is not None and status.usable:
            return requested, f"{requested} (asked for)"
        return None, f"{requested} was asked for but is not usable"
    skipped = [f"{s.name}: {s.problem}" for s in statuses if not s.usable]
    for status in statuses:
        if status.usable:
            passed = skipped[: [s.name for s in statuses].index(status.name)]
            why = "; ".join(passed) if passed else "first of " + ", ".join(AUTO_ORDER)
            return status.name, f"{status.name} (auto: {why})"
    return None, "none usable (" + "; ".join(skipped) + ")"
