"""Builder adapters behind one protocol, and the name → adapter table.

``auto`` takes the first of buildah, podman, docker that is installed *and usable*
(a docker CLI without a reachable daemon is not usable); see :func:`select_backend`.
"""

from __future__ import annotations

from collections.abc import Callable

from ocirel.backends.base import Backend, BuildEnv, BuildSpec
from ocirel.errors import BackendNotFoundError, ConfigError

AUTO_ORDER = ("buildah", "podman", "docker")
NO_BUILDER_HINT = (
    "install buildah (Debian/Ubuntu: apt-get install buildah) or podman "
    "(apt-get install podman), or start a Docker engine; `ocirel doctor` shows what is missing"
)


def _buildah() -> Backend:
    from ocirel.backends.buildah import Buildah  # noqa: PLC0415

    return Buildah()


def _podman() -> Backend:
    from ocirel.backends.podman import Podman  # noqa: PLC0415

    return Podman()


def _docker() -> Backend:
    from ocirel.backends.docker import Docker  # noqa: PLC0415

    return Docker()


ADAPTERS: dict[str, Callable[[], Backend]] = {
    "buildah": _buildah,
    "podman": _podman,
    "docker": _docker,
}


def get_backend(name: str) -> Backend:
    try:
        factory = ADAPTERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}; choose one of auto, {', '.join(ADAPTERS)}"
        ) from None
    return factory()


def select_backend(
    name: str, factory: Callable[[str], Backend] = get_backend
) -> tuple[Backend, str]:
    """The backend to use and why it was chosen.

    A named backend must be usable (installed; for docker, a daemon that answers),
    else :class:`BackendNotFoundError` with what to install or start. ``auto`` tries
    :data:`AUTO_ORDER` and takes the first usable one; the reason names the ones it
    passed over, e.g. ``"docker (auto: buildah: not installed; podman: not installed)"``.
    """
    if name != "auto":
        backend = factory(name)
        problem = backend.problem()
        if problem is not None:
            raise BackendNotFoundError(
                f"backend {name} is not usable: {problem}",
                hint=backend.install_hint,
            )
        return backend, f"{name} (asked for)"
    skipped: list[str] = []
    for candidate in AUTO_ORDER:
        if candidate not in ADAPTERS:
            continue
        backend = factory(candidate)
        problem = backend.problem()
        if problem is not None:
            skipped.append(f"{candidate}: {problem}")
            continue
        why = "; ".join(skipped) if skipped else "first of " + ", ".join(AUTO_ORDER)
        return backend, f"{candidate} (auto: {why})"
    raise BackendNotFoundError(
        "no usable builder found (" + "; ".join(skipped) + ")", hint=NO_BUILDER_HINT
    )


__all__ = [
    "ADAPTERS",
    "AUTO_ORDER",
    "Backend",
    "BuildEnv",
    "BuildSpec",
    "get_backend",
    "select_backend",
]
