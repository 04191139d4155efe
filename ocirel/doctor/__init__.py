"""``ocirel doctor``: can this machine publish, and if not, what to do about it.

:func:`diagnose` gathers the facts (builders, rootless setup, storage, credentials
files, the registry) through small probes that tests can replace, and :func:`assess`
turns the facts into problems, each with a concrete fix. Nothing here prints: the
CLI renders the :class:`DoctorReport` (``cli/doctor.py``).

The verdict (``DoctorReport.ok``) is False when publishing could not work: no usable
builder (or the one asked for is unusable), no user namespaces for a rootless
build, or a registry that was named but does not answer ``/v2/``.

The parts: :mod:`~ocirel.doctor.probes` (the facts), :mod:`~ocirel.doctor.verdict`
(the problems, pure), :mod:`~ocirel.doctor.fixes` (what to do); this module puts
them together and re-exports the names a caller needs (the fix texts stay in
:mod:`~ocirel.doctor.fixes`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ocirel import emulation, hostinfo, runner
from ocirel.backends import AUTO_ORDER, Backend, choose, get_backend
from ocirel.doctor.probes import (
    BackendStatus,
    HostStatus,
    RegistryStatus,
    backend_status,
    host_status,
    newuidmap_kind,
    probe_unshare,
    registry_status,
)
from ocirel.doctor.verdict import ERROR, WARNING, DoctorReport, Problem, Severity, assess


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
    platforms: Sequence[str] = (),
    binfmt: Path = emulation.BINFMT_MISC,
) -> DoctorReport:
    """Gather everything and assess it. ``ping`` is called when ``registry`` is given;
    ``platforms`` (the platform setting) are checked for emulation under ``binfmt``."""
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
        emulation=emulation_status(platforms, binfmt), platforms=tuple(platforms),
    )  # fmt: skip
    return DoctorReport(**{**report.__dict__, "problems": assess(report)})


def emulation_status(
    platforms: Sequence[str], root: Path = emulation.BINFMT_MISC
) -> tuple[emulation.Emulation, ...]:
    """Emulation of this host's platform, the common ones and ``platforms``, each once."""
    wanted = dict.fromkeys((emulation.host_platform(), *emulation.COMMON_PLATFORMS, *platforms))
    return tuple(emulation.emulation(platform, root=root) for platform in wanted)


def _select(requested: str, statuses: Sequence[BackendStatus]) -> tuple[str | None, str]:
    """What ``select_backend`` would choose (the same rule, :func:`~ocirel.backends.choose`),
    from the statuses already gathered."""
    chosen = choose(requested, ((s.name, s.problem) for s in statuses))
    if chosen.name is not None:
        return chosen.name, chosen.reason
    if requested != "auto":
        return None, f"{requested} was asked for but is not usable"
    return None, "none usable (" + chosen.passed_text + ")"


__all__ = [
    "ERROR",
    "WARNING",
    "BackendStatus",
    "DoctorReport",
    "HostStatus",
    "Problem",
    "RegistryStatus",
    "Severity",
    "assess",
    "backend_status",
    "diagnose",
    "emulation_status",
    "host_status",
    "newuidmap_kind",
    "probe_unshare",
    "registry_status",
]
