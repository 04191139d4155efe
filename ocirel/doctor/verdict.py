"""The verdict: the problems in a :class:`DoctorReport`, each with a fix. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ocirel.doctor.fixes import (
    APPARMOR_FIX,
    CHROOT_FIX,
    DOCKER_DAEMON_FIX,
    NEWUIDMAP_FIX,
    NO_BUILDER_FIX,
    SECCOMP_FIX,
    SUBID_FIX,
    SYSCTL_FIX,
    USERNS_CLONE_FIX,
    USERNS_FIX,
)
from ocirel.doctor.probes import BackendStatus, HostStatus, RegistryStatus
from ocirel.emulation import EMULATION_FIX, Emulation
from ocirel.hostinfo import StorageChoice

SUBIDS_NEEDED = 65536


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
    #: whether RUN steps can run for each platform (this host's, the common ones and
    #: the configured ``platform`` setting's), and which of them are configured
    emulation: tuple[Emulation, ...] = ()
    platforms: tuple[str, ...] = ()

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
            "emulation": [e.to_json() for e in self.emulation],
            "platforms": list(self.platforms),
        }  # fmt: skip


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
    problems += [
        Problem(
            WARNING,
            f"RUN steps for {e.platform} (in the platform setting) cannot run here: {e.detail}; "
            "only images without RUN steps for it (COPY-only, cross-compiled) can be built",
            EMULATION_FIX,
        )
        for e in report.emulation
        if e.platform in report.platforms and not e.available
    ]
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
