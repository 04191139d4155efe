"""``ocirel show REF``: what a tag, digest or lockfile entry is, and where it came from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ocirel.cli.options import CaFileOpt, InsecureOpt, JsonOpt, LockfileOpt, load_settings
from ocirel.cli.output import handle_errors, out, out_json

if TYPE_CHECKING:
    from ocirel.records.show import Shown


@handle_errors
def show(
    ref: Annotated[
        str,
        typer.Argument(
            help="a tag (registry/repo:v3), a digest (registry/repo@sha256:…) "
            "or a lockfile entry name"
        ),
    ],
    lockfile_path: LockfileOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the digest, platforms, tags and attached build records of REF."""
    from ocirel.cli.wiring import make_registry  # noqa: PLC0415
    from ocirel.records.show import show as show_image  # noqa: PLC0415
    from ocirel.records.show import target_of  # noqa: PLC0415

    config = load_settings(lockfile=lockfile_path, insecure=insecure, ca_file=ca_file)
    target = target_of(ref, config.publish.lockfile)
    shown = show_image(make_registry(config.registry, target.repo), target)
    if as_json:
        out_json(shown.to_json())
    else:
        render(shown)


def render(shown: Shown) -> None:
    out(f"{shown.repository}@{shown.digest}")
    if shown.entry is not None:
        out(f"  lockfile entry  {shown.entry.name} ({shown.entry.tag})")
    out(f"  media type      {shown.media_type}")
    out(f"  platforms       {', '.join(shown.platforms) or '-'}")
    tags = "(too many to check)" if shown.tags is None else ", ".join(shown.tags) or "-"
    out(f"  tags            {tags}")
    if not shown.records:
        out("  build records   none")
    for attached in shown.records:
        out(f"  build record    {attached.digest}")
        for line in _record_lines(attached.record):
            out(f"    {line}")


def _record_lines(record: dict[str, Any]) -> list[str]:
    source, backend = record.get("source") or {}, record.get("backend") or {}
    dirty = " (dirty)" if source.get("dirty") else ""
    lines = [
        f"source          {source.get('url') or '-'} @ {source.get('revision') or '-'}{dirty}",
        f"backend         {backend.get('name') or '-'} {backend.get('version') or ''}".rstrip(),
        f"SOURCE_DATE_EPOCH {record.get('sourceDateEpoch')}",
        f"ocirel          {record.get('ocirelVersion')}",
    ]
    for base in record.get("baseImages") or []:
        lines.append(
            f"base image      {base.get('ref')} {base.get('digest') or '(digest unknown)'}"
        )
    for key, value in sorted((record.get("buildArgs") or {}).items()):
        lines.append(f"build arg       {key}={value}")
    return lines
