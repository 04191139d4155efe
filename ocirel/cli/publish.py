"""``ocirel publish``: build, push under the next unique version tag, record the digest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocirel.cli.options import (
    BackendOpt,
    BumpOpt,
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    LockfileOpt,
    PrefixOpt,
    SchemeOpt,
    load_settings,
)
from ocirel.cli.output import handle_errors, out, out_json

if TYPE_CHECKING:
    from ocirel.publish import PublishResult


ContextArg = Annotated[Path, typer.Argument(help="build context directory")]
ImageOpt = Annotated[
    str,
    typer.Option(
        "--image",
        "-i",
        help="repository to publish to, e.g. registry.example.com/team/app, or oci:PATH "
        "for an OCI image layout directory",
    ),
]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="lockfile key (default: last path component)")
]
FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file", "-f", help="Containerfile (default: CONTEXT/Containerfile or Dockerfile)"
    ),
]
BuildArgOpt = Annotated[
    list[str] | None, typer.Option("--build-arg", help="KEY=VALUE build argument (repeatable)")
]
TargetOpt = Annotated[str | None, typer.Option("--target", help="build stage to publish")]
PlatformOpt = Annotated[
    str | None,
    typer.Option(
        "--platform",
        help="os/arch[,os/arch…] to build for; two or more are pushed as one OCI index",
    ),
]
TagOpt = Annotated[
    str | None, typer.Option("--tag", help="publish exactly this tag (must not exist yet)")
]
KeepImageOpt = Annotated[
    bool, typer.Option("--keep-image", help="keep the local image after pushing")
]
MaxAttemptsOpt = Annotated[
    int | None, typer.Option("--max-attempts", help="tags to try when other publishers race us")
]
NoReproducibleOpt = Annotated[
    bool, typer.Option("--no-reproducible", help="build with wall-clock timestamps")
]
AlwaysNewVersionOpt = Annotated[
    bool,
    typer.Option("--always-new-version", help="push a new version even if nothing changed"),
]
CacheRepoOpt = Annotated[
    str | None,
    typer.Option("--cache-repo", help="registry repository for the builder's layer cache"),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="do not reuse cached layers")]
ExplainOpt = Annotated[
    bool,
    typer.Option("--explain", help="build, then say whether a new version would be pushed and why"),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="print the next tag and the commands; build nothing")
]
NoAttachOpt = Annotated[
    bool,
    typer.Option("--no-attach", help="do not attach a build record to the pushed image"),
]


@handle_errors
def publish(
    context: ContextArg = Path(),
    image: ImageOpt = "",
    name: NameOpt = None,
    file: FileOpt = None,
    build_arg: BuildArgOpt = None,
    target: TargetOpt = None,
    platform: PlatformOpt = None,
    tag: TagOpt = None,
    scheme: SchemeOpt = None,
    prefix: PrefixOpt = None,
    bump: BumpOpt = None,
    lockfile_path: LockfileOpt = None,
    backend: BackendOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    keep_image: KeepImageOpt = False,
    max_attempts: MaxAttemptsOpt = None,
    no_reproducible: NoReproducibleOpt = False,
    always_new_version: AlwaysNewVersionOpt = False,
    cache_repo: CacheRepoOpt = None,
    no_cache: NoCacheOpt = False,
    explain: ExplainOpt = False,
    dry_run: DryRunOpt = False,
    no_attach: NoAttachOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Build CONTEXT, push it under the next unique version tag, record the digest.

    Nothing is pushed when the build has the same content as the latest version:
    the lockfile then points at that version (--always-new-version to push anyway).
    A new version gets a build record attached in the registry (see ocirel show);
    --no-attach skips it.
    """
    from ocirel.cli import wiring  # noqa: PLC0415
    from ocirel.cli.progress import stages  # noqa: PLC0415

    config = load_settings(
        scheme=scheme, prefix=prefix, bump=bump, lockfile=lockfile_path, backend=backend,
        insecure=insecure, ca_file=ca_file, keep_image=keep_image, max_attempts=max_attempts,
        cache_repo=cache_repo, platform=platform,
    )  # fmt: skip
    with stages("prepare") as display:
        result = wiring.publish(
            config, context, image=image, name=name, containerfile=file,
            build_args=build_arg or [], target=target, tag=tag, reproducible=not no_reproducible,
            always_new_version=always_new_version, no_cache=no_cache, explain=explain,
            dry_run=dry_run, attach=not no_attach, stage=display.stage,
        )  # fmt: skip
    render_publish(result, as_json)


def render_publish(result: PublishResult, as_json: bool) -> None:
    from ocirel.publish.outcome import Explained, Planned, Published, Reused  # noqa: PLC0415

    if as_json:
        out_json(result.to_json())
        return
    match result.outcome:
        case Planned(steps=steps):
            out(f"next tag: {result.repository}:{result.tag}")
            out("plan:")
            for step in steps:
                out(f"  {step}")
        case Explained(new_version=new_version):
            verdict = "a new version would be pushed" if new_version else "no new version: reuse"
            out(f"{verdict}{'' if new_version else ' ' + result.tag}")
            for reason in result.explanation:
                out(f"  {reason}")
        case Published() | Reused():
            verb = "unchanged, reusing " if isinstance(result.outcome, Reused) else "published "
            out(verb + result.reference)
            out(f"  tag       {result.tag}")
            out(f"  digest    {result.digest}")
            out(f"  lockfile  {result.lockfile} (entry {result.name!r})")
