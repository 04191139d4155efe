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
    for line in _lines(shown):
        out(_printable(line))


def _lines(shown: Shown) -> list[str]:
    lines: list[str] = []
    add = lines.append
    add(f"{shown.repository}@{shown.digest}")
    if shown.entry is not None:
        add(f"  lockfile entry  {shown.entry.name} ({shown.entry.tag})")
    add(f"  media type      {shown.media_type}")
    add(f"  platforms       {', '.join(shown.platforms) or '-'}")
    tags = "(too many to check)" if shown.tags is None else ", ".join(shown.tags) or "-"
    add(f"  tags            {tags}")
    if not shown.records:
        add("  build records   none")
    for attached in shown.records:
        add(f"  build record    {attached.digest}")
        for line in _record_lines(attached.record):
            add(f"    {line}")
    return lines


def _record_lines(record: dict[str, Any]) -> list[str]:
    """The record as lines; members of an unexpected shape (a record written by
    another tool) show as unknown rather than failing."""
    source, backend = _obj(record.get("source")), _obj(record.get("backend"))
    dirty = " (dirty)" if source.get("dirty") is True else ""
    lines = [
        f"source          {source.get('url') or '-'} @ {source.get('revision') or '-'}{dirty}",
        f"backend         {backend.get('name') or '-'} {backend.get('version') or ''}".rstrip(),
        f"SOURCE_DATE_EPOCH {record.get('sourceDateEpoch')}",
        f"ocirel          {record.get('ocirelVersion')}",
    ]
    bases = record.get("baseImages")
    for base in map(_obj, bases if isinstance(bases, list) else []):
        lines.append(
            f"base image      {base.get('ref')} {base.get('digest') or '(digest unknown)'}"
        )
    for key, value in sorted(_obj(record.get("buildArgs")).items()):
        lines.append(f"build arg       {key}={value}")
    return lines


def _printable(text: str) -> str:
    """A record comes from the registry (anyone who may push wrote it): no terminal
    control sequences reach the screen."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
