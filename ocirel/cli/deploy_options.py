"""The options of the deploy commands (``pin``, ``lint``, ``lock export``), and the
steps from them to :class:`~ocirel.deploy.files.FileOptions` and
:class:`~ocirel.deploy.helm.HelmOptions`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocirel.cli.output import err

if TYPE_CHECKING:
    from ocirel.deploy.files import FileOptions
    from ocirel.deploy.helm import HelmOptions
    from ocirel.deploy.regmap import RegistryMap
    from ocirel.settings import Settings

PathsArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="PATH...",
        help="YAML files, or directories searched recursively for *.yaml, *.yml and "
        "Kustomization (only regular files are read; others are reported and skipped)",
    ),
]
MaxFileSizeOpt = Annotated[
    str | None,
    typer.Option(
        "--max-file-size",
        metavar="SIZE",
        help="refuse files larger than this, in bytes or with K/M/G (default 64M; "
        "also max_file_size in ocirel.toml)",
    ),
]
ResolveOpt = Annotated[
    bool,
    typer.Option(
        "--resolve",
        help="also pin every other tag reference to the digest its tag has in the "
        "registry now (each distinct reference looked up once, in parallel)",
    ),
]
DigestOnlyOpt = Annotated[
    bool,
    typer.Option("--digest-only", help="write repo@sha256:… instead of repo:tag@sha256:…"),
]
CheckOpt = Annotated[
    bool,
    typer.Option(
        "--check",
        help="write nothing; list file:line and the reason for each reference that "
        "would change, and exit 1 if any would",
    ),
]
DiffOpt = Annotated[
    bool,
    typer.Option(
        "--diff",
        help="write nothing; print a unified diff of the changes on stdout "
        "(exit 0; with --check, exit 1 on changes)",
    ),
]
FloatingOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--floating",
        help="another tag to treat as floating (repeatable); added to the defaults "
        "and to floating_tags from the configuration",
    ),
]
ProvenanceOpt = Annotated[
    bool,
    typer.Option(
        "--provenance",
        help="also check that each digest has a build record naming the locked revision",
    ),
]
ExportFormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="json (name -> reference), env (APP_IMAGE=…), kustomize (images: block), "
        "helm (values with repository/tag/digest) or images-lock (Carvel imgpkg)",
    ),
]
ChartOpt = Annotated[
    Path | None,
    typer.Option(
        "--chart",
        metavar="DIR",
        help="the Helm chart the values files are for (default: the chart whose Chart.yaml "
        "is next to the values file): its values.schema.json and templates decide which "
        "image-map keys may be added and which are rendered",
    ),
]
HelmDigestFieldOpt = Annotated[
    str | None,
    typer.Option(
        "--helm-digest-field",
        metavar="auto|digest|sha|tag",
        help="which key of a Helm image map gets the digest: auto (default: the map's "
        "digest key, else its sha key, else tag as tag@sha256:…), digest, sha or tag; "
        "overrides helm_digest_field(s) from the configuration",
    ),
]
RegistryMapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--registry-map",
        metavar="OLD=NEW",
        help="pin lockfile images whose repository starts with OLD (host[:port][/path]) "
        "at NEW/… instead, with the same digest (a mirror, e.g. after 'ocirel bundle "
        "import'); repeatable, longest OLD wins; added to registry_map in ocirel.toml",
    ),
]


def registry_map(config: Settings, flags: list[str] | None) -> RegistryMap:
    """``--registry-map`` entries first (they win for the same OLD), then the config's."""
    from ocirel.deploy.regmap import parse_pairs  # noqa: PLC0415

    return parse_pairs([*(flags or []), *config.deploy.registry_map])


def helm_options(config: Settings, field: str | None, chart: Path | None) -> HelmOptions:
    """``--helm-digest-field`` wins over the configuration; ``--chart`` must be a chart."""
    from ocirel.deploy import helm  # noqa: PLC0415

    if field is not None:
        helm.check_field(field, "--helm-digest-field")
    if chart is not None:
        helm.require_chart(chart)
    deploy = config.deploy
    return helm.HelmOptions(field, deploy.helm_digest_field, deploy.helm_digest_fields, chart)


def file_options(max_size: int) -> FileOptions:
    """The deploy commands' file selection: the size cap, skipped entries as warnings."""
    from ocirel.deploy.files import FileOptions, skip_message  # noqa: PLC0415

    return FileOptions(max_size, lambda path, what: err(f"warning: {skip_message(path, what)}"))
