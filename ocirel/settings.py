"""One frozen settings object in three typed groups, built from four sources.

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

The groups: :class:`RegistryOptions` (how to reach registries), :class:`BuildOptions`
(how the builder runs), :class:`PublishOptions` (versions, the lockfile, the
publish waits) and :class:`DeployOptions` (how ``pin`` and ``lint`` read files and
where ``pin`` writes Helm digests). The files and the environment stay flat
(``OCIREL_SCHEME``, not a group name): each key belongs to exactly one group. The
defaults are written once, in these classes; :data:`COERCERS` says how each key is
read from text or TOML.

Credentials are not settings: see :mod:`ocirel.auth` (``OCIREL_USERNAME`` and
``OCIREL_PASSWORD`` are read there, never from a file).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from ocirel.errors import ConfigError, VersionError
from ocirel.versioning import (
    BUMPS,
    FLOATING_TAGS,
    SCHEMES,
    Bump,
    Scheme,
    SchemeName,
    check_prefix,
    make_scheme,
)

BackendName = Literal["auto", "buildah", "podman", "docker"]
Isolation = Literal["chroot", "oci", "rootless"]
HelmDigestField = Literal["auto", "digest", "sha", "tag"]
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)
ISOLATIONS: tuple[Isolation, ...] = get_args(Isolation)
HELM_DIGEST_FIELDS: tuple[HelmDigestField, ...] = get_args(HelmDigestField)


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach registries: TLS, timeouts, retries."""

    insecure: bool = False
    insecure_registries: tuple[str, ...] = ()
    ca_file: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 4
    max_retry_wait: float = 30.0


@dataclass(frozen=True)
class BuildOptions:
    """Which builder, and how it runs."""

    backend: BackendName = "auto"
    isolation: Isolation | None = None
    storage_driver: str | None = None
    reproducible: bool = True
    cache_repo: str | None = None
    build_timeout: float = 3600.0
    keep_image: bool = False


@dataclass(frozen=True)
class PublishOptions:
    """Versions, the lockfile, and how a publish claims and verifies its tag."""

    scheme: SchemeName = "counter"
    prefix: str | None = None
    bump: Bump = "patch"
    floating_tags: tuple[str, ...] = ()
    lockfile: Path = Path("ocirel.lock.json")
    max_attempts: int = 5
    settle_seconds: float = 0.02
    verify_timeout: float = 30.0
    push_timeout: float = 1800.0

    def version_scheme(self) -> Scheme:
        return make_scheme(self.scheme, prefix=self.prefix, bump=self.bump)

    def floating(self) -> frozenset[str]:
        """The tags never published to: the built-in ones and ``floating_tags``."""
        return FLOATING_TAGS | frozenset(self.floating_tags)


@dataclass(frozen=True)
class DeployOptions:
    """How ``pin`` and ``lint`` read manifests and where ``pin`` writes Helm digests.

    ``helm_digest_fields`` holds ``(absolute glob, key)`` pairs, first match wins; a
    file no glob matches gets ``helm_digest_field`` (see :mod:`ocirel.deploy.helm`).
    """

    max_file_size: int = 64 * 1024 * 1024  # bytes; ocirel.deploy.files.DEFAULT_MAX_FILE_SIZE
    helm_digest_field: HelmDigestField = "auto"
    helm_digest_fields: tuple[tuple[str, str], ...] = ()
    registry_map: tuple[tuple[str, str], ...] = ()  # (OLD, NEW) as written


@dataclass(frozen=True)
class Settings:
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    build: BuildOptions = field(default_factory=BuildOptions)
    publish: PublishOptions = field(default_factory=PublishOptions)
    deploy: DeployOptions = field(default_factory=DeployOptions)
    # where the values came from (key -> "flag", "env" or a file), for messages and --debug
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)


GROUPS: dict[str, type[RegistryOptions | BuildOptions | PublishOptions | DeployOptions]] = {
    "registry": RegistryOptions,
    "build": BuildOptions,
    "publish": PublishOptions,
    "deploy": DeployOptions,
}
#: each key's group
GROUP_OF: dict[str, str] = {f.name: group for group, cls in GROUPS.items() for f in fields(cls)}

#: value as given (text from the environment, any TOML value), the directory of the
#: file it came from (None for flags and the environment) -> typed value
Coercer = Callable[[Any, Path | None], Any]

_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _to_bool(value: Any, _base: Path | None) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _number(value: Any, *, whole: bool) -> float:
    if isinstance(value, bool) or (whole and isinstance(value, float)):
        raise ValueError(f"expected a {'whole ' if whole else ''}number, got {value!r}")
    number = int(value) if whole else float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"must be a finite number, not negative; got {value!r}")
    return number


def _to_int(value: Any, _base: Path | None) -> int:
    return int(_number(value, whole=True))


def _to_float(value: Any, _base: Path | None) -> float:
    return _number(value, whole=False)


def _to_seconds(value: Any, _base: Path | None) -> float:
    """A wait that must be longer than zero (a zero timeout fails every request at once)."""
    seconds = _number(value, whole=False)
    if seconds <= 0:
        raise ValueError(f"must be more than 0 seconds; got {value!r}")
    return seconds


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _to_size(value: Any, _base: Path | None) -> int:
    """A size in bytes: a whole number, or one with K, M or G (also KiB, MB...; all 1024s)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
        if isinstance(value, bool) or match is None:
            raise ValueError(f"expected a size such as 67108864, 64M or 64MiB; got {value!r}")
        size = int(match[1]) * _SIZE_UNITS[match[2].lower()]
    if size < 1:
        raise ValueError(f"must be at least 1 byte; got {value!r}")
    return size


def _to_strings(value: Any, _base: Path | None) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of strings")
    return tuple(i.strip() for i in items if i.strip())


def _to_optional_path(value: Any, base: Path | None) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(str(value)).expanduser()
    return base / path if base is not None and not path.is_absolute() else path


def _to_path(value: Any, base: Path | None) -> Path:
    return _to_optional_path(value, base) or Path()


def _to_str(value: Any, _base: Path | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _to_helm_field(value: Any, _base: Path | None) -> str:
    if value not in HELM_DIGEST_FIELDS:
        raise ValueError(f"expected one of {', '.join(HELM_DIGEST_FIELDS)}, got {value!r}")
    return str(value)


def _to_helm_fields(value: Any, base: Path | None) -> tuple[tuple[str, str], ...]:
    """``{glob = key}`` from a file (globs relative to it) or ``glob=key,…`` from the
    environment (relative to the working directory); globs are made absolute."""
    items: list[tuple[Any, Any]] | None = None
    if isinstance(value, str):
        items = [item.partition("=")[::2] for item in value.split(",") if item.strip()]
    elif isinstance(value, dict):
        items = list(value.items())
    if items is None:
        raise ValueError("expected a table of glob = key")
    pairs: list[tuple[str, str]] = []
    for pattern, key in items:
        if not str(pattern).strip():
            raise ValueError(f"empty file pattern for {key!r}")
        where = Path(str(pattern).strip()).expanduser()
        where = base / where if base is not None and not where.is_absolute() else where
        pairs.append((str(where.resolve()), _to_helm_field(str(key).strip(), None)))
    return tuple(pairs)


def _to_registry_map(value: Any, _base: Path | None) -> tuple[tuple[str, str], ...]:
    """``{OLD = NEW}`` from a file, ``OLD=NEW,…`` from the environment (checked by
    :func:`ocirel.deploy.regmap.parse_pairs` when used)."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, dict):
        return tuple((str(old), str(new)) for old, new in items.items())
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a table of OLD = NEW")
    pairs = [item.partition("=") for item in items if item.strip()]
    if any(not sep for _, sep, _ in pairs):
        raise ValueError("expected OLD=NEW")
    return tuple((old.strip(), new.strip()) for old, _, new in pairs)


#: how each key is read, in the order the sources are checked
COERCERS: dict[str, Coercer] = {
    "insecure": _to_bool,
    "insecure_registries": _to_strings,
    "ca_file": _to_optional_path,
    "connect_timeout": _to_seconds,
    "read_timeout": _to_seconds,
    "retries": _to_int,
    "max_retry_wait": _to_float,
    "scheme": _to_str,
    "prefix": _to_str,
    "bump": _to_str,
    "floating_tags": _to_strings,
    "lockfile": _to_path,
    "backend": _to_str,
    "max_attempts": _to_int,
    "settle_seconds": _to_float,
    "verify_timeout": _to_seconds,
    "build_timeout": _to_seconds,
    "push_timeout": _to_seconds,
    "isolation": _to_str,
    "storage_driver": _to_str,
    "keep_image": _to_bool,
    "reproducible": _to_bool,
    "cache_repo": _to_str,
    "max_file_size": _to_size,
    "helm_digest_field": _to_helm_field,
    "helm_digest_fields": _to_helm_fields,
    "registry_map": _to_registry_map,
}


def _coerce(name: str, value: Any, origin: str, base: Path | None) -> Any:
    try:
        return COERCERS[name](value, base)
    except ValueError as exc:
        raise ConfigError(f"invalid value for {name} from {origin}: {exc}") from None


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
    unknown = sorted(set(file_values) - set(COERCERS))
    if unknown:
        raise ConfigError(f"{file_name}: unknown setting(s): {', '.join(unknown)}")
    groups: dict[str, dict[str, Any]] = {group: {} for group in GROUPS}
    origins: dict[str, str] = {}
    for name in COERCERS:
        env_name = f"OCIREL_{name.upper()}"
        values = groups[GROUP_OF[name]]
        if flags and flags.get(name) is not None:
            values[name] = _coerce(name, flags[name], f"--{name.replace('_', '-')}", None)
            origins[name] = "flag"
        elif env_name in env:
            values[name] = _coerce(name, env[env_name], env_name, None)
            origins[name] = "env"
        elif name in file_values:
            values[name] = _coerce(name, file_values[name], file_name, file_dir)
            origins[name] = file_name
    settings = Settings(
        registry=RegistryOptions(**groups["registry"]),
        build=BuildOptions(**groups["build"]),
        publish=PublishOptions(**groups["publish"]),
        deploy=DeployOptions(**groups["deploy"]),
        origins=origins,
    )
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
    publish = settings.publish
    if publish.scheme not in SCHEMES:
        raise ConfigError(
            f"unknown version scheme {publish.scheme!r} from {_origin(settings, 'scheme')}; "
            f"choose one of {', '.join(SCHEMES)}"
        )
    if publish.bump not in BUMPS:
        raise ConfigError(
            f"unknown bump {publish.bump!r} from {_origin(settings, 'bump')}; "
            f"choose one of {', '.join(BUMPS)}"
        )
    if publish.prefix is not None:
        try:
            check_prefix(publish.prefix)
        except VersionError as exc:
            raise ConfigError(f"{exc} (from {_origin(settings, 'prefix')})") from None


def _validate(settings: Settings) -> Settings:
    build, ca_file = settings.build, settings.registry.ca_file
    if build.backend not in BACKENDS:
        raise ConfigError(f"unknown backend {build.backend!r}; choose one of {', '.join(BACKENDS)}")
    if build.isolation is not None and build.isolation not in ISOLATIONS:
        raise ConfigError(f"unknown isolation {build.isolation!r}; use chroot, oci or rootless")
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"CA file {ca_file} does not exist or is not a file")
    if settings.publish.max_attempts < 1:
        raise ConfigError("max_attempts must be at least 1")
    _validate_versions(settings)
    return settings
