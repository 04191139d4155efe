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

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from ocirel.coercers import COERCERS, HelmDigestField
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
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)
ISOLATIONS: tuple[Isolation, ...] = get_args(Isolation)


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
    #: ``os/arch[/variant]`` to build for; two or more make a multi-platform index
    platform: tuple[str, ...] = ()
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
