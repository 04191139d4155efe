"""Helm values: the digest goes where the chart renders it (ocirel.deploy.helm).

Golden files: ``golden/charts/<chart>/values.yaml`` (faithful shapes of public charts,
see ``golden/charts/README.md``) pinned with :data:`LOCK` must give
``golden/charts/<chart>.out.yaml`` byte for byte. Regenerate after a deliberate change
with ``OCIREL_UPDATE_GOLDEN=1 pytest tests/unit/deploy/test_helm.py``.

``helm`` cannot be installed from the package registries this project uses (no Debian
package; on PyPI only bindings needing Python 3.12 and no ``template`` call), so the
image expressions of each chart's templates are evaluated by :func:`rendered` below,
one small function per chart, each checked against the template text it copies.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from ocirel.deploy.helm import HelmOptions, find_chart, schema_allowed
from ocirel.deploy.lint import lint_file
from ocirel.deploy.resolvers import lock_resolver
from ocirel.deploy.scan import scan_file, scan_text
from ocirel.deploy.splice import PinResult, pin_file
from ocirel.errors import ManifestError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from ocirel.reference import parse

CHARTS = Path(__file__).parent / "golden" / "charts"
UPDATE = os.environ.get("OCIREL_UPDATE_GOLDEN") == "1"

D_ALERTMANAGER = Digest("sha256:" + "a1" * 32)
D_KSM = Digest("sha256:" + "b2" * 32)
D_RBAC_PROXY = Digest("sha256:" + "c3" * 32)
D_GRAFANA = Digest("sha256:" + "d4" * 32)
D_BUSYBOX = Digest("sha256:" + "e5" * 32)
D_BITNAMI = Digest("sha256:" + "f6" * 32)
D_NGINX = Digest("sha256:" + "07" * 32)
D_STALE = Digest("sha256:" + "0" * 64)

#: what was released: (reference as a chart would render it, digest)
RELEASED = {
    "alertmanager": ("quay.io/prometheus/alertmanager:v0.28.0", D_ALERTMANAGER),
    "config-reloader": ("quay.io/prometheus-operator/prometheus-config-reloader:v0.66.0", D_STALE),
    "ksm": ("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.14.0", D_KSM),
    "rbac-proxy": ("quay.io/brancz/kube-rbac-proxy:v0.18.1", D_RBAC_PROXY),
    "grafana": ("docker.io/grafana/grafana:11.4.0", D_GRAFANA),
    "busybox": ("docker.io/library/busybox:1.31.1", D_BUSYBOX),
    "bitnami-nginx": ("docker.io/bitnami/nginx:1.27.3-debian-12-r5", D_BITNAMI),
    "nginx": ("nginx:1.25", D_NGINX),
}
LOCK = Lockfile({
    name: LockEntry(name, parse(ref).name, parse(ref).tag or "", digest)
    for name, (ref, digest) in RELEASED.items()
})  # fmt: skip
CHART_NAMES = ("alertmanager", "grafana", "kube-state-metrics", "mychart", "nginx")


def load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def pin_values(path: Path, options: HelmOptions | None = None) -> PinResult:
    return pin_file(scan_file(path, helm=options or HelmOptions()), lock_resolver(LOCK))


def copy_chart(name: str, to: Path) -> Path:
    """A copy of the chart (to pin and write); returns its values.yaml."""
    shutil.copytree(CHARTS / name, to / name)
    return to / name / "values.yaml"


# -- the charts' image expressions, evaluated ---------------------------------------


def _alertmanager(values: Mapping[str, Any], app: str) -> list[str]:
    # "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
    image = values["image"]
    return [f"{image['repository']}:{image['tag'] or app}"]


def _kube_state_metrics(values: Mapping[str, Any], app: str) -> list[str]:
    # printf "%s/%s:%s@%s" .registry .repository (default (printf "v%s" .AppVersion) .tag) .sha
    found = []
    for image in (values["image"], values["kubeRBACProxy"]["image"]):
        registry = values["global"]["imageRegistry"] or image["registry"]
        text = f"{registry}/{image['repository']}:{image['tag'] or 'v' + app}"
        found.append(text + (f"@{image['sha']}" if image["sha"] else ""))
    return found


def _grafana(values: Mapping[str, Any], app: str) -> list[str]:
    # "{{ $registry }}/{{ .repository }}:{{ .tag | default .AppVersion }}@sha256:{{ .sha }}"
    found = []
    for image in (values["image"], values["initChownData"]["image"]):
        text = f"{image['registry']}/{image['repository']}:{image['tag'] or app}"
        found.append(text + (f"@sha256:{image['sha']}" if image["sha"] else ""))
    return found


def _bitnami(values: Mapping[str, Any], app: str) -> list[str]:
    # common.images.image: registry/repository, then "@" digest if set, else ":" tag
    image = values["image"]
    registry = values["global"]["imageRegistry"] or image["registry"]
    end = f"@{image['digest']}" if image["digest"] else f":{image['tag']}"
    return [f"{registry}/{image['repository']}{end}"]


RENDER: dict[str, tuple[Callable[[Mapping[str, Any], str], list[str]], str, str]] = {
    # chart: (evaluator, template file, the expression it re-implements)
    "alertmanager": (
        _alertmanager,
        "templates/statefulset.yaml",
        '"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"',
    ),
    "kube-state-metrics": (
        _kube_state_metrics,
        "templates/_helpers.tpl",
        '{{- printf "%s/%s:%s@%s" .Values.image.registry .Values.image.repository '
        '(default (printf "v%s" .Chart.AppVersion) .Values.image.tag) .Values.image.sha }}',
    ),
    "grafana": (_grafana, "templates/_pod.tpl", "@sha256:{{ .Values.image.sha }}"),
    "nginx": (_bitnami, "Chart.yaml", "name: common"),
    "mychart": (
        _alertmanager,
        "templates/deployment.yaml",
        '"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"',
    ),
}


def rendered(chart: str, values_text: str) -> list[str]:
    """The image references the chart's templates make of ``values_text``."""
    evaluate, template, expression = RENDER[chart]
    assert expression in (CHARTS / chart / template).read_text(encoding="utf-8")
    app = load((CHARTS / chart / "Chart.yaml").read_text(encoding="utf-8"))["appVersion"]
    return evaluate(load(values_text), str(app))


def digests(chart: str, values_text: str) -> list[str | None]:
    return [parse(image).digest for image in rendered(chart, values_text)]


# -- golden files and rendering -----------------------------------------------------


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_golden_chart_values(chart: str) -> None:
    result = pin_values(CHARTS / chart / "values.yaml")
    expected = CHARTS / f"{chart}.out.yaml"
    if UPDATE:
        expected.write_bytes(result.text.encode("utf-8"))
    assert result.text == expected.read_bytes().decode("utf-8")


@pytest.mark.parametrize(
    ("chart", "before", "after"),
    [
        ("alertmanager", [None], [D_ALERTMANAGER]),
        ("kube-state-metrics", [None, None], [D_KSM, D_RBAC_PROXY]),
        ("grafana", [None, None], [D_GRAFANA, D_BUSYBOX]),
        ("nginx", [None], [D_BITNAMI]),
        ("mychart", [None], [D_NGINX]),
    ],
)
def test_the_chart_renders_the_pinned_digest(
    chart: str, before: list[str | None], after: list[str]
) -> None:
    source = (CHARTS / chart / "values.yaml").read_text(encoding="utf-8")
    assert digests(chart, source) == before
    pinned = (CHARTS / f"{chart}.out.yaml").read_text(encoding="utf-8")
    assert digests(chart, pinned) == after


@pytest.mark.parametrize("chart", CHART_NAMES)
def test_pinning_the_pinned_chart_values_changes_nothing(chart: str, tmp_path: Path) -> None:
    values = copy_chart(chart, tmp_path)
    values.write_bytes((CHARTS / f"{chart}.out.yaml").read_bytes())
    again = pin_values(values)
    assert again.changes == ()
    assert not again.changed
    assert [f.rule for f in lint_file(scan_file(values)) if f.rule == "unpinned"] == []


def test_alertmanager_values_stay_valid_for_the_schema() -> None:
    schema = (CHARTS / "alertmanager" / "values.schema.json").read_text(encoding="utf-8")
    allowed = set(load(schema)["definitions"]["image"]["properties"])
    pinned = load((CHARTS / "alertmanager.out.yaml").read_text(encoding="utf-8"))
    assert set(pinned["image"]) <= allowed


# -- the schema refuses a key -------------------------------------------------------


def test_a_key_the_schema_forbids_is_refused_and_the_error_names_the_key_to_use(
    tmp_path: Path,
) -> None:
    values = copy_chart("alertmanager", tmp_path)
    with pytest.raises(ManifestError) as caught:
        pin_values(values, HelmOptions(forced="digest"))
    assert "forbids 'digest' in image (additionalProperties: false)" in caught.value.message
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("use --helm-digest-field tag")
    assert "the schema allows: pullPolicy, repository, tag" in caught.value.hint


def test_chart_named_with_chart_option_is_read_for_values_elsewhere(tmp_path: Path) -> None:
    values = tmp_path / "values-prod.yaml"
    values.write_text("image:\n  repository: quay.io/prometheus/alertmanager\n  tag: v0.28.0\n")
    with pytest.raises(ManifestError, match="forbids 'sha'"):
        pin_values(values, HelmOptions(forced="sha", chart=CHARTS / "alertmanager"))
    pinned = pin_values(values, HelmOptions(chart=CHARTS / "alertmanager"))
    assert pinned.text.endswith(f"  tag: v0.28.0@{D_ALERTMANAGER}\n")


def test_a_key_the_templates_never_read_is_refused(tmp_path: Path) -> None:
    values = copy_chart("mychart", tmp_path)
    with pytest.raises(ManifestError, match="never reads 'digest'"):
        pin_values(values, HelmOptions(forced="digest"))


# -- lint: pinned only where rendered -----------------------------------------------


KSM_OLD_PIN = f"""\
image:
  registry: registry.k8s.io
  repository: kube-state-metrics/kube-state-metrics
  tag: ""
  sha: ""
  digest: {D_KSM}
  pullPolicy: IfNotPresent
"""


def test_a_digest_the_chart_never_reads_is_not_pinned(tmp_path: Path) -> None:
    """What ocirel wrote before: 'digest:' in kube-state-metrics values."""
    chart = tmp_path / "kube-state-metrics"
    shutil.copytree(CHARTS / "kube-state-metrics", chart)
    values = chart / "values.yaml"
    values.write_text(KSM_OLD_PIN)
    findings = lint_file(scan_file(values))
    assert [(f.line, f.rule) for f in findings] == [(3, "unpinned")]
    assert "its digest is in 'digest', which the chart" in findings[0].message
    pinned = pin_values(values)
    assert pinned.text == KSM_OLD_PIN.replace('sha: ""', f'sha: "{D_KSM}"').replace(
        'tag: ""', 'tag: "v2.14.0"'
    )
    values.write_text(pinned.text)
    assert lint_file(scan_file(values)) == []
    # without the chart the rule is the convention: a digest in 'digest' counts
    alone = tmp_path / "values.yaml"
    alone.write_text(KSM_OLD_PIN)
    assert lint_file(scan_file(alone)) == []


def test_a_chart_with_a_dependency_not_at_hand_renders_every_key(tmp_path: Path) -> None:
    chart = find_chart(CHARTS / "nginx" / "values.yaml", None)
    assert chart is not None
    assert chart.reads is None  # bitnami's 'common' is not unpacked: cannot tell
    assert find_chart(CHARTS / "mychart" / "values.yaml", None).reads == frozenset()  # type: ignore[union-attr]


# -- the key, and the form of sha ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "line"),
    [
        ("auto", f"  tag: v7@{D_STALE}\n"),
        ("tag", f"  tag: v7@{D_STALE}\n"),
        ("digest", f"  tag: v7\n  digest: {D_STALE}\n"),
        ("sha", f'  tag: v7\n  sha: "{"0" * 64}"\n'),  # all digits: quoted
    ],
)
def test_without_the_chart_every_key_can_be_chosen(field: str, line: str) -> None:
    text = "image:\n  repository: r.example/app\n  tag: v7\n"
    options = HelmOptions(forced=field)
    scanned = scan_text(text, filename="values.yaml", helm=options)
    result = pin_file(scanned, lambda ref: D_STALE)
    assert result.text == "image:\n  repository: r.example/app\n" + line
    again = pin_file(
        scan_text(result.text, filename="values.yaml", helm=options), lambda r: D_STALE
    )
    assert again.changes == ()


@pytest.mark.parametrize(
    ("sha", "written"),
    [('""', f'"{D_GRAFANA[7:]}"'), ("e" * 64, D_GRAFANA[7:]), (D_STALE, D_GRAFANA)],
)
def test_sha_keeps_the_form_it_has(sha: str, written: str) -> None:
    text = f"image:\n  repository: r.example/app\n  tag: v7\n  sha: {sha}\n"
    result = pin_file(scan_text(text, filename="values.yaml"), lambda ref: D_GRAFANA)
    assert result.text.endswith(f"  sha: {written}\n")


def test_a_stale_digest_in_another_key_is_kept_in_step() -> None:
    text = f"image:\n  repository: r.example/app\n  tag: v7@{D_STALE}\n  digest: ''\n"
    result = pin_file(scan_text(text, filename="values.yaml"), lambda ref: D_NGINX)
    assert result.text == f"image:\n  repository: r.example/app\n  tag: v7\n  digest: '{D_NGINX}'\n"


def test_per_path_setting_chooses_the_key(tmp_path: Path) -> None:
    values = tmp_path / "deploy" / "values-ksm.yaml"
    values.parent.mkdir()
    values.write_text("image:\n  repository: r.example/app\n  tag: v7\n")
    options = HelmOptions(per_path=((str(tmp_path / "deploy" / "values-*.yaml"), "sha"),))
    assert options.field_for(values) == "sha"
    assert options.field_for(tmp_path / "values.yaml") == "auto"
    assert HelmOptions(forced="tag", per_path=options.per_path).field_for(values) == "tag"


# -- the schema walk ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "path", "allowed"),
    [
        ({"properties": {"image": {"$ref": "#/definitions/i"}}, "definitions": {
            "i": {"additionalProperties": False, "properties": {"tag": {}}}}},
         ("image",), frozenset({"tag"})),
        ({"properties": {"a": {"$ref": "#/$defs/x~1y"}}, "$defs": {
            "x/y": {"type": "array", "items": {"additionalProperties": False}}}},
         ("a", 0), frozenset()),
        ({"additionalProperties": {"additionalProperties": False, "properties": {"t": {}}}},
         ("any",), frozenset({"t"})),
        ({"properties": {"image": {"type": "object"}}}, ("image",), None),
        ({"properties": {"image": {"$ref": "other.json#/x"}}}, ("image",), None),
        ({"properties": {"image": {"$ref": "#/definitions/loop"}},
          "definitions": {"loop": {"$ref": "#/definitions/loop"}}}, ("image",), None),
    ],
)  # fmt: skip
def test_schema_walk(
    schema: dict[str, Any], path: tuple[str | int, ...], allowed: frozenset[str] | None
) -> None:
    assert schema_allowed(schema, path) == allowed
