"""The Helm values options of ``pin`` and ``lint``, and the step to :class:`HelmOptions`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ocirel.deploy.helm import HelmOptions
    from ocirel.settings import Settings

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


def helm_options(config: Settings, field: str | None, chart: Path | None) -> HelmOptions:
    """``--helm-digest-field`` wins over the configuration; ``--chart`` must be a chart."""
    from ocirel.deploy import helm  # noqa: PLC0415

    if field is not None:
        helm.check_field(field, "--helm-digest-field")
    if chart is not None:
        helm.require_chart(chart)
    deploy = config.deploy
    return helm.HelmOptions(field, deploy.helm_digest_field, deploy.helm_digest_fields, chart)
