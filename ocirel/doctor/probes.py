"""The facts ``ocirel doctor`` gathers: builders, the rootless setup, the registry.

Each probe takes what it touches (``which``, a root directory, a ping) as a
parameter, so tests can replace it.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocirel import hostinfo, runner
from ocirel.backends import Backend
from ocirel.doctor.fixes import DOCKER_DAEMON_FIX, DOCKER_SOCKET_FIX
from ocirel.errors import OcirelError, RegistryAuthError, RegistryError

UNSHARE_TIMEOUT = 10.0


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
