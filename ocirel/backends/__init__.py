"""Builder adapters behind one protocol, and the name → adapter table.

``auto`` takes the first of buildah, podman, docker that is installed *and usable*
(a docker CLI without a reachable daemon is not usable); see :func:`select_backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Selection:
    """What :func:`choose` picked: ``name`` (None: nothing usable), why, and the
    ``(name, problem)`` of each backend looked at and passed over."""

    name: str | None
    reason: str
    passed: tuple[tuple[str, str], ...] = ()

    @property
    def passed_text(self) -> str:
        """``"buildah: not installed; podman: not installed"``."""
        return _joined(self.passed)


def _joined(passed: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}: {problem}" for name, problem in passed)


def choose(requested: str, problems: Iterable[tuple[str, str | None]]) -> Selection:
    """The selection rule, over ``(name, problem)`` pairs in :data:`AUTO_ORDER` (a
    problem of None: usable). A named backend is taken when it is usable; ``auto``
    takes the first usable one. ``problems`` is read lazily and no further than the
    choice: a probe that is not needed (a docker daemon behind a usable buildah) is
    not made. Used by :func:`select_backend` and by ``ocirel doctor``."""
    passed: list[tuple[str, str]] = []
    for name, problem in problems:
        if requested not in ("auto", name):
            continue
        if problem is not None:
            passed.append((name, problem))
            continue
        if requested != "auto":
            return Selection(name, f"{name} (asked for)")
        why = _joined(passed) if passed else "first of " + ", ".join(AUTO_ORDER)
        return Selection(name, f"{name} (auto: {why})", tuple(passed))
    return Selection(None, "", tuple(passed))


def select_backend(
    name: str, factory: Callable[[str], Backend] = get_backend
) -> tuple[Backend, str]:
    """The backend to use and why it was chosen.

    A named backend must be usable (installed; for docker, a daemon that answers),
    else :class:`BackendNotFoundError` with what to install or start. ``auto`` tries
    :data:`AUTO_ORDER` and takes the first usable one; the reason names the ones it
    passed over, e.g. ``"docker (auto: buildah: not installed; podman: not installed)"``.
    """
    built: dict[str, Backend] = {}

    def problems() -> Iterator[tuple[str, str | None]]:
        candidates = [c for c in AUTO_ORDER if c in ADAPTERS] if name == "auto" else [name]
        for candidate in candidates:
            built[candidate] = backend = factory(candidate)
            yield candidate, backend.problem()

    chosen = choose(name, problems())
    if chosen.name is not None:
        return built[chosen.name], chosen.reason
    if name != "auto":
        raise BackendNotFoundError(
            f"backend {name} is not usable: {chosen.passed[0][1]}",
            hint=built[name].install_hint,
        )
    raise BackendNotFoundError(
        "no usable builder found (" + chosen.passed_text + ")", hint=NO_BUILDER_HINT
    )


__all__ = [
    "ADAPTERS",
    "AUTO_ORDER",
    "Backend",
    "BuildEnv",
    "BuildSpec",
    "Selection",
    "choose",
    "get_backend",
    "select_backend",
]
