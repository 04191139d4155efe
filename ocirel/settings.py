"""One frozen settings object, built from four sources.

Precedence, highest first:

1. command-line flags;
2. environment variables ``OCIREL_<NAME>`` (e.g. ``OCIREL_SCHEME=semver``);
3. ``ocirel.toml`` in the working directory (top-level keys), or else the
   ``[tool.ocirel]`` table of ``pyproject.toml`` there;
4. the defaults below.

Keys use underscores in TOML and upper case in the environment (``ca_file`` /
``OCIREL_CA_FILE``). Relative paths from a file are relative to that file's
directory. Lists in the environment are comma-separated; booleans are
``1/true/yes/on`` or ``0/false/no/off``.

Credentials are not settings: see :mod:`ocirel.auth` (``OCIREL_USERNAME`` and
``OCIREL_PASSWORD`` are read there, never from a file).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ocirel.errors import ConfigError, VersionError
from ocirel.versioning import BUMPS, SCHEMES, check_prefix

BACKENDS = ("auto", "buildah", "podman", "docker")
#: waits that must be longer than zero (a zero timeout fails every request at once)
POSITIVE = frozenset(
    {"connect_timeout", "read_timeout", "build_timeout", "push_timeout", "verify_timeout"}
)


@dataclass(frozen=True)
class Settings:
    # registry access
    insecure: bool = False
    insecure_registries: tuple[str, ...] = ()
    ca_file: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 4
    max_retry_wait: float = 30.0
    # versions
    scheme: str = "counter"
    prefix: str | None = None
    bump: str = "patch"
    floating_tags: tuple[str, ...] = ()
    # publishing
    lockfile: Path = Path("ocirel.lock.json")
    backend: str = "auto"
    max_attempts: int = 5
    settle_seconds: float = 0.02
    verify_timeout: float = 30.0
    build_timeout: float = 3600.0
    push_timeout: float = 1800.0
    isolation: str | None = None
    storage_driver: str | None = None
    keep_image: bool = False
    reproducible: bool = True
    cache_repo: str | None = None
    # where the values came from, for `ocirel doctor` and --debug
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)


_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}
_FIELD_TYPES: dict[str, str] = {
    f.name: str(f.type) for f in fields(Settings) if f.name != "origins"
}


def _to_bool(value: Any, _kind: str, _base: Path | None) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _to_number(value: Any, kind: str, _base: Path | None) -> float:
    whole = kind == "int"
    if isinstance(value, bool) or (whole and isinstance(value, float)):
        raise ValueError(f"expected a {'whole ' if whole else ''}number, got {value!r}")
    number = int(value) if whole else float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"must be a finite number, not negative; got {value!r}")
    return number


def _to_tuple(value: Any, _kind: str, _base: Path | None) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of strings")
    return tuple(i.strip() for i in items if i.strip())


def _to_path(value: Any, kind: str, base: Path | None) -> Path | None:
    if value is None or value == "":
        return None if "None" in kind else Path()
    path = Path(str(value)).expanduser()
    return base / path if base is not None and not path.is_absolute() else path


def _to_str(value: Any, _kind: str, _base: Path | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _coercer(kind: str) -> Callable[[Any, str, Path | None], Any]:
    if kind == "bool":
        return _to_bool
    if kind in ("int", "float"):
        return _to_number
    if kind.startswith("tuple"):
        return _to_tuple
    if "Path" in kind:
        return _to_path
    return _to_str


def _coerce(name: str, value: Any, origin: str, base: Path | None) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        coerced = _coercer(kind)(value, kind, base)
        if name in POSITIVE:
            _check_positive(coerced, value)
    except ValueError as exc:
        raise ConfigError(f"invalid value for {name} from {origin}: {exc}") from None
    return coerced


def _check_positive(number: float, given: Any) -> None:
    if number <= 0:
        raise ValueError(f"must be more than 0 seconds; got {given!r}")


def _read_file_config(cwd: Path) -> tuple[dict[str, Any], str, Path | None]:
    for candidate, table in ((cwd / "ocirel.toml", None), (cwd / "pyproject.toml", "tool.ocirel")):
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{candidate} is not valid TOML: {exc}") from None
        if table:
            tool = data.get("tool", {})
            if not isinstance(tool, dict):
                raise ConfigError(f"{candidate}: [tool] must be a table")
            table_data = tool.get("ocirel")
            if table_data is None:
                continue
            data = table_data
        if not isinstance(data, dict):
            raise ConfigError(f"{candidate}: [{table}] must be a table")
        return data, str(candidate), candidate.parent
    return {}, "", None


def load(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Merge the four sources. ``flags`` holds only options given on the command line."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    file_values, file_name, file_dir = _read_file_config(cwd)
    unknown = sorted(set(file_values) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(f"{file_name}: unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in _FIELD_TYPES:
        env_name = f"OCIREL_{name.upper()}"
        if flags and flags.get(name) is not None:
            values[name] = _coerce(name, flags[name], f"--{name.replace('_', '-')}", None)
            origins[name] = "flag"
        elif env_name in env:
            values[name] = _coerce(name, env[env_name], env_name, None)
            origins[name] = "env"
        elif name in file_values:
            values[name] = _coerce(name, file_values[name], file_name, file_dir)
            origins[name] = file_name
    settings = Settings(**values, origins=origins)
    return _validate(settings)


def _origin(settings: Settings, name: str) -> str:
    """Where ``name`` came from, as the user wrote it: ``--bump``, ``OCIREL_BUMP``, a file."""
    origin = settings.origins.get(name, "default")
    if origin == "flag":
        return f"--{name.replace('_', '-')}"
    if origin == "env":
        return f"OCIREL_{name.upper()}"
    return origin


def _validate_versions(settings: Settings) -> None:
    if settings.scheme not in SCHEMES:
        raise ConfigError(
            f"unknown version scheme {settings.scheme!r} from {_origin(settings, 'scheme')}; "
            f"choose one of {', '.join(SCHEMES)}"
        )
    if settings.bump not in BUMPS:
        raise ConfigError(
            f"unknown bump {settings.bump!r} from {_origin(settings, 'bump')}; "
            f"choose one of {', '.join(BUMPS)}"
        )
    if settings.prefix is not None:
        try:
            check_prefix(settings.prefix)
        except VersionError as exc:
            raise ConfigError(f"{exc} (from {_origin(settings, 'prefix')})") from None


def _validate(settings: Settings) -> Settings:
    if settings.backend not in BACKENDS:
        raise ConfigError(
            f"unknown backend {settings.backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    if settings.isolation not in (None, "chroot", "oci", "rootless"):
        raise ConfigError(f"unknown isolation {settings.isolation!r}; use chroot, oci or rootless")
    if settings.ca_file is not None and not settings.ca_file.is_file():
        raise ConfigError(f"CA file {settings.ca_file} does not exist or is not a file")
    if settings.max_attempts < 1:
        raise ConfigError("max_attempts must be at least 1")
    _validate_versions(settings)
    return settings
