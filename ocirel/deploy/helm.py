"""Helm values: which key of an image map carries the digest, and what the chart renders.

A chart turns an image map into a reference in its templates, and charts disagree on
how. bitnami's ``common.images.image`` renders ``repository@digest`` when ``digest``
is set; kube-state-metrics, kube-prometheus-stack and most prometheus-community charts
append ``@sha256:{{ .Values.image.sha }}`` (hex *without* ``sha256:``); many charts read
no digest key at all and render ``repository:tag``. A digest written where the chart
never looks is a silent false "pinned", so pinning picks its key (:func:`target_for`):

* ``auto`` (the default): the map's own ``digest`` key if it has one, else its ``sha``
  key, else ``tag`` — written ``tag: "<tag>@sha256:…"``, which every chart rendering
  ``repository:tag`` turns into a pinned reference. With the chart at hand, a key its
  templates never mention is passed over.
* ``digest``, ``sha`` or ``tag``: that key, from ``--helm-digest-field``, or
  ``helm_digest_field`` / ``helm_digest_fields`` (per file) in the configuration.

``sha`` comes in two forms. grafana and kube-prometheus-stack render
``tag@sha256:{{ .sha }}`` (bare hex); kube-state-metrics renders
``printf "%s:%s@%s" … .Values.image.sha`` (the whole ``sha256:…``). A ``sha`` that
already holds a value keeps its form; else, with the chart at hand, hex when a
template writes ``@sha256:{{`` itself and the whole digest otherwise; without the
chart, hex.

The chart is *at hand* when ``Chart.yaml`` sits next to the values file, or is named
with ``--chart DIR`` (:func:`find_chart`). Then:

* ``values.schema.json`` is read, and a key the schema forbids in that map
  (``additionalProperties: false`` without the key under ``properties``) is never
  added: :func:`check_allowed` refuses and names the key to use instead. The walk is
  deliberately small: ``$ref`` to local ``#/definitions``/``#/$defs``, ``properties``,
  ``additionalProperties``, ``items``; anything else means "allowed".
* the templates (``templates/`` and unpacked ``charts/*/templates/``) are searched for
  ``.digest``/``.sha``: a key never mentioned is not rendered. When a dependency is
  missing or packaged (``charts/*.tgz``) its templates cannot be read, so the rule
  without the chart applies: a digest in ``digest``, ``sha`` or ``tag`` counts.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ocirel.deploy.sites import FieldsSite, HelmTarget, ImageOccurrence
from ocirel.errors import ConfigError, ManifestError

AUTO = "auto"
#: The keys a digest can be written to, in the order ``auto`` prefers existing ones.
DIGEST_FIELDS = ("digest", "sha", "tag")
FIELD_CHOICES = (AUTO, *DIGEST_FIELDS)
SHA256 = "sha256:"
_MENTION_RE = re.compile(r"""[."](digest|sha)\b""")
_ADDS_PREFIX = "@sha256:{{"
_MAX_REFS = 32


@dataclass(frozen=True)
class HelmOptions:
    """How Helm values are pinned.

    ``forced`` (``--helm-digest-field``) wins; else the first ``per_path`` glob that
    matches the file's absolute path; else ``default``. ``chart`` is ``--chart DIR``.
    """

    forced: str | None = None
    default: str = AUTO
    per_path: tuple[tuple[str, str], ...] = ()
    chart: Path | None = None

    def field_for(self, file: Path | None) -> str:
        if self.forced is not None:
            return self.forced
        if file is not None:
            where = str(Path(file).resolve())
            for pattern, field in self.per_path:
                if fnmatch.fnmatchcase(where, pattern):
                    return field
        return self.default


@dataclass(frozen=True)
class Chart:
    """What ocirel reads of a chart: its schema and which digest keys it renders.

    ``reads`` is None when some templates cannot be read (a missing or packaged
    dependency): then every digest key counts as rendered. ``sha_hex``: a template
    adds ``@sha256:`` in front of a ``sha`` itself (None: cannot tell).
    """

    directory: Path
    schema: Mapping[str, Any] | None
    reads: frozenset[str] | None
    sha_hex: bool | None = None


@dataclass(frozen=True)
class HelmFile:
    """The Helm setting for one values file: the key to write and the chart, if any."""

    field: str
    chart: Chart | None


def check_field(value: str, origin: str) -> str:
    if value not in FIELD_CHOICES:
        raise ConfigError(
            f"unknown Helm digest field {value!r} from {origin}; "
            f"choose one of {', '.join(FIELD_CHOICES)}"
        )
    return value


def helm_file(options: HelmOptions, file: Path | None) -> HelmFile:
    """The key and chart for the values file ``file`` (None: a text without a file)."""
    return HelmFile(options.field_for(file), find_chart(file, options.chart))


def find_chart(values_file: Path | None, chart: Path | None) -> Chart | None:
    """``chart`` (``--chart``), else the chart whose ``Chart.yaml`` is next to the file."""
    if chart is not None:
        require_chart(chart)
        return load_chart(chart)
    if values_file is not None and (values_file.parent / "Chart.yaml").is_file():
        return load_chart(values_file.parent)
    return None


def require_chart(chart: Path) -> None:
    """``--chart DIR`` must name a chart: a directory holding ``Chart.yaml``."""
    if not (chart / "Chart.yaml").is_file():
        raise ConfigError(
            f"--chart {chart}: no Chart.yaml there",
            hint="name the chart's directory: the one holding Chart.yaml and values.yaml",
        )


def load_chart(directory: Path) -> Chart:
    schema = _load_schema(directory)
    texts = _templates(directory)
    if texts is None:
        return Chart(directory, schema, None)
    reads = frozenset(name for text in texts for name in _MENTION_RE.findall(text))
    return Chart(directory, schema, reads, any(_ADDS_PREFIX in text for text in texts))


def _load_schema(directory: Path) -> Mapping[str, Any] | None:
    path = directory / "values.schema.json"
    if not path.is_file():
        return None
    try:
        schema = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ManifestError(
            f"{path}: cannot read the chart's schema: {exc}",
            hint="fix the file (helm lint reads it too), or pass --chart for another chart",
        ) from None
    return schema if isinstance(schema, dict) else None


def _templates(directory: Path) -> list[str] | None:
    """The text of every template of the chart; None if some cannot be read."""
    charts = directory / "charts"
    unpacked = {p.name for p in charts.iterdir() if p.is_dir()} if charts.is_dir() else set()
    if charts.is_dir() and any(p.suffix == ".tgz" for p in charts.iterdir()):
        return None
    if any(name not in unpacked for name in _dependencies(directory)):
        return None
    texts: list[str] = []
    roots = [directory / "templates", *(charts / name / "templates" for name in sorted(unpacked))]
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                texts.append(Path(folder, name).read_text(encoding="utf-8", errors="replace"))
    return texts


def _dependencies(directory: Path) -> list[str]:
    names: list[str] = []
    for file in ("Chart.yaml", "requirements.yaml"):
        path = directory / file
        if not path.is_file():
            continue
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ManifestError(f"{path}: cannot read the chart: {exc}") from None
        deps = data.get("dependencies") if isinstance(data, dict) else None
        for dep in deps if isinstance(deps, list) else []:
            if isinstance(dep, dict) and isinstance(dep.get("name"), str):
                names.append(dep["name"])
    return names


def schema_allowed(schema: Mapping[str, Any], path: Sequence[str | int]) -> frozenset[str] | None:
    """The keys the schema allows in the mapping at ``path``; None when it allows any."""
    node: Any = schema
    for part in path:
        node = _resolve(schema, node)
        if node is None:
            return None
        if isinstance(part, int):
            node = node.get("items")
        elif isinstance(node.get("properties"), dict) and part in node["properties"]:
            node = node["properties"][part]
        else:
            node = node.get("additionalProperties")
    node = _resolve(schema, node)
    if node is None or node.get("additionalProperties") is not False:
        return None
    properties = node.get("properties")
    return frozenset(properties) if isinstance(properties, dict) else frozenset()


def _resolve(schema: Mapping[str, Any], node: Any) -> Mapping[str, Any] | None:
    """``node`` with local ``$ref`` followed; None when it is not a schema object."""
    for _ in range(_MAX_REFS):
        if not isinstance(node, dict):
            return None
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        node = _pointer(schema, ref)
    return None


def _pointer(schema: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = schema
    for escaped in ref[2:].split("/"):
        part = escaped.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def target_for(
    keys: frozenset[str], sha: str | None, path: Sequence[str | int], helm: HelmFile | None
) -> HelmTarget:
    """Where the digest of the image map with ``keys`` (and ``sha`` value) at ``path`` goes."""
    chart = helm.chart if helm is not None else None
    reads = chart.reads if chart is not None and chart.reads is not None else {"digest", "sha"}
    rendered = frozenset({"tag", *reads})
    allowed = None
    if chart is not None and chart.schema is not None:
        allowed = schema_allowed(chart.schema, path)
    field = helm.field if helm is not None else AUTO
    if field == AUTO:
        present = [key for key in ("digest", "sha") if key in keys and key in rendered]
        field = present[0] if present else "tag"
    where = str(chart.directory) if chart is not None else None
    if sha is not None:
        sha_hex = not sha.startswith(SHA256)
    else:
        sha_hex = chart is None or chart.sha_hex is None or chart.sha_hex
    return HelmTarget(field, rendered, allowed, where, sha_hex)


def split_tag(value: str | None) -> tuple[str | None, str | None]:
    """``tag`` and ``digest`` of a Helm ``tag`` value (``v1@sha256:…`` holds both)."""
    if value is None:
        return None, None
    tag, _, digest = value.partition("@")
    return tag or None, digest or None


def digests_in(site: FieldsSite) -> dict[str, str]:
    """Every digest the map holds, by key (``sha`` given its ``sha256:`` prefix)."""
    found: dict[str, str] = {}
    digest, sha = site.value("digest"), site.value("sha")
    if digest is not None:
        found["digest"] = digest
    if sha is not None:
        found["sha"] = sha if sha.startswith(SHA256) else SHA256 + sha
    embedded = split_tag(site.value("tag"))[1]
    if embedded is not None:
        found["tag"] = embedded
    return found


def rendered_digest(site: FieldsSite) -> str | None:
    """The digest the chart renders for this map (None: it renders ``repository:tag``)."""
    rendered = site.helm.rendered if site.helm is not None else frozenset(DIGEST_FIELDS)
    found = digests_in(site)
    return next((found[key] for key in DIGEST_FIELDS if key in found and key in rendered), None)


def unrendered_digest(site: FieldsSite) -> str | None:
    """A key holding a digest that the chart never renders, for lint's message."""
    if site.helm is None:
        return None
    return next((key for key in digests_in(site) if key not in site.helm.rendered), None)


def wanted_values(site: FieldsSite, tag: str | None, digest: str, where: str) -> dict[str, str]:
    """The values of ``tag``/``digest``/``sha`` that pin the map to ``digest``.

    The chosen key gets the digest; a ``digest``/``sha`` key that already holds one is
    kept in step, and a ``tag`` keeps only the tag, so no stale digest stays behind.
    """
    assert site.helm is not None  # only Helm maps get here
    field = site.helm.field
    if field == "tag":
        if tag is None:
            raise ManifestError(
                f"{where}: the image map has no tag to carry the digest",
                hint="set its tag, or choose another key with --helm-digest-field digest|sha",
            )
        wanted = {"tag": f"{tag}@{digest}"}
    else:
        wanted = {} if tag is None else {"tag": tag}
        wanted[field] = _sha_value(site.helm, digest, where) if field == "sha" else digest
    for key in ("digest", "sha"):
        if key != field and site.value(key) is not None:
            wanted[key] = _sha_value(site.helm, digest, where) if key == "sha" else digest
    return wanted


def _sha_value(helm: HelmTarget, digest: str, where: str) -> str:
    if not helm.sha_hex:
        return digest
    if not digest.startswith(SHA256):
        raise ManifestError(
            f"{where}: a 'sha' key holds sha256 hex, and {digest} is not sha256",
            hint="choose another key with --helm-digest-field digest|tag",
        )
    return digest.removeprefix(SHA256)


def check_target(occ: ImageOccurrence, site: FieldsSite) -> None:
    """Refuse a chosen key that the schema forbids or the templates never read."""
    helm = site.helm
    assert helm is not None  # only Helm maps get here
    if site.get(helm.field) is None:
        check_allowed(occ, site, helm.field)
    if helm.field not in helm.rendered:
        raise ManifestError(
            f"{occ.path}:{occ.line}: the chart ({helm.chart}) never reads {helm.field!r} "
            f"in {occ.yaml_path}: a digest there would not be rendered; no file was written",
            hint="use --helm-digest-field tag, or auto (the default)",
        )


def check_allowed(occ: ImageOccurrence, site: FieldsSite, key: str) -> None:
    """Refuse to add ``key`` to a map whose chart schema forbids it."""
    helm = site.helm
    if helm is None or helm.allowed is None or key in helm.allowed:
        return
    usable = [k for k in DIGEST_FIELDS if k in helm.allowed and k in helm.rendered]
    instead = (
        f"use --helm-digest-field {usable[0]} (or helm_digest_field in ocirel.toml)"
        if usable
        else "this chart's schema leaves no key for a digest here"
    )
    raise ManifestError(
        f"{occ.path}:{occ.line}: the chart's values.schema.json ({helm.chart}) forbids "
        f"{key!r} in {occ.yaml_path} (additionalProperties: false); no file was written",
        hint=f"{instead}; the schema allows: {', '.join(sorted(helm.allowed)) or 'nothing'}",
    )


__all__ = [
    "AUTO",
    "DIGEST_FIELDS",
    "FIELD_CHOICES",
    "Chart",
    "HelmFile",
    "HelmOptions",
    "check_allowed",
    "check_field",
    "check_target",
    "digests_in",
    "find_chart",
    "helm_file",
    "load_chart",
    "rendered_digest",
    "require_chart",
    "schema_allowed",
    "split_tag",
    "target_for",
    "unrendered_digest",
    "wanted_values",
]
