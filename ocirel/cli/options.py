"""Options shared by several commands, and the step from flags to :class:`Settings`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ocirel.lockfile import Lockfile
    from ocirel.settings import Settings

RepositoryArg = Annotated[
    str, typer.Argument(help="repository, e.g. registry.example.com/team/app")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="allow plain http or unverified TLS for the target registry "
        "(loopback registries may use plain http without it)",
    ),
]
CaFileOpt = Annotated[
    Path | None,
    typer.Option("--ca-file", help="CA certificate(s) for the registry's TLS", dir_okay=False),
]
SchemeOpt = Annotated[
    str | None, typer.Option("--scheme", help="version scheme: counter (default), semver, calver")
]
PrefixOpt = Annotated[
    str | None, typer.Option("--prefix", help="version prefix (counter default 'v', others none)")
]
BumpOpt = Annotated[
    str | None, typer.Option("--bump", help="semver part to bump: patch (default), minor, major")
]
BackendOpt = Annotated[
    str | None, typer.Option("--backend", help="auto (default), buildah, podman or docker")
]
#: ``--lockfile`` for publish and next (the file may be about to be created)
LockfileOpt = Annotated[
    Path | None, typer.Option("--lockfile", help="lockfile path (default ./ocirel.lock.json)")
]
#: ``--lockfile`` for the deploy-side commands, which read an existing file
LockfileFileOpt = Annotated[
    Path | None,
    typer.Option("--lockfile", help="lockfile path (default ./ocirel.lock.json)", dir_okay=False),
]


def load_settings(**flags: Any) -> Settings:
    """Settings from the flags that were given (None or False: not given) and the rest."""
    from ocirel import settings  # noqa: PLC0415

    return settings.load({k: v for k, v in flags.items() if v not in (None, False)})


def load_lock(path: Path, *, required: bool) -> Lockfile:
    from ocirel import lockfile  # noqa: PLC0415
    from ocirel.errors import ConfigError  # noqa: PLC0415

    if required and not path.exists():
        raise ConfigError(
            f"no lockfile at {path}",
            hint="publish an image first (ocirel publish), or name the file with --lockfile",
        )
    return lockfile.load(path)
