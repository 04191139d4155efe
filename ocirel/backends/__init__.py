"""Builder adapters behind one protocol, and the name → adapter table.

``auto`` takes the first of buildah, podman, docker that is installed *and usable*
(a docker CLI without a reachable daemon is not usable).
"""

from __future__ import annotations

from collections.abc import Callable

from ocirel.backends.base import Backend, BuildEnv, BuildSpec
from ocirel.errors import BackendNotFoundError, ConfigError

AUTO_ORDER = ("buildah", "podman", "docker")


def _buildah() -> Backend:
    from ocirel.backends.buildah import Buildah  # noqa: PLC0415

    return Buildah()


ADAPTERS: dict[str, Callable[[], Backend]] = {"buildah": _buildah}


def get_backend(name: str) -> Backend:
    try:
        factory = ADAPTERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}; choose one of auto, {', '.join(ADAPTERS)}"
        ) from None
    return factory()


def select_backend(name: str) -> tuple[Backend, str]:
    """The backend to use and why it was chosen."""
    from ocirel import runner  # noqa: PLC0415

    if name != "auto":
        backend = get_backend(name)
        if runner.which(backend.program) is None:
            raise BackendNotFoundError(
                f"backend {name} is not installed ({backend.program} not on PATH)",
                hint=getattr(backend, "install_hint", None),
            )
        return backend, f"{name} (asked for)"
    missing: list[str] = []
    for candidate in AUTO_ORDER:
        if candidate not in ADAPTERS:
            continue
        backend = get_backend(candidate)
        if runner.which(backend.program) is None:
            missing.append(f"{candidate}: not installed")
            continue
        return backend, f"{candidate} (auto: first usable of {', '.join(AUTO_ORDER)})"
    raise BackendNotFoundError(
        "no usable builder found (" + "; ".join(missing) + ")",
        hint="install buildah (apt-get install buildah), or podman, or run a Docker engine",
    )


__all__ = ["ADAPTERS", "AUTO_ORDER", "Backend", "BuildEnv", "BuildSpec", "get_backend", "select_backend"]
