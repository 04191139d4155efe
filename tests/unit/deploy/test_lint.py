"""Tests for ocirel.deploy.lint: one table of manifests and the findings they must give."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from ocirel.deploy import lint
from ocirel.deploy.lint import Severity
from ocirel.errors import ManifestError

D = "sha256:" + "a" * 64


def pod(*images: str, policy: str | None = None) -> str:
    lines = ["apiVersion: v1", "kind: Pod", "spec:", "  containers:"]
    for image in images:
        lines.append(f"  - image: {image}")
        if policy:
            lines.append(f"    imagePullPolicy: {policy}")
    return "\n".join(lines) + "\n"


E, W = Severity.ERROR, Severity.WARNING


@pytest.mark.parametrize(
    ("filename", "text", "expected"),
    [
        pytest.param("p.yaml", pod(f"nginx:1.25@{D}"), [], id="pinned-is-clean"),
        pytest.param("p.yaml", pod(f"nginx@{D}"), [], id="digest-only-is-clean"),
        pytest.param("p.yaml", pod("nginx:1.25"), [(5, "unpinned", E)], id="unpinned-version-tag"),
        pytest.param(
            "p.yaml",
            pod("nginx:latest"),
            [(5, "unpinned", E), (5, "floating-tag", E)],
            id="latest",
        ),
        pytest.param(
            "p.yaml", pod("nginx"), [(5, "unpinned", E), (5, "floating-tag", E)], id="no-tag"
        ),
        pytest.param(
            "p.yaml",
            pod("registry.example.com/app:Nightly"),
            [(5, "unpinned", E), (5, "floating-tag", E)],
            id="floating-case-insensitive",
        ),
        pytest.param(
            "p.yaml",
            pod(f"nginx:stable@{D}"),
            [(5, "floating-tag", W)],
            id="floating-tag-with-digest-is-a-warning",
        ),
        pytest.param(
            "p.yaml",
            pod(f"nginx:1.25@{D}", policy="Always"),
            [(6, "pull-policy-always", W)],
            id="pull-policy-always-pinned",
        ),
        pytest.param(
            "p.yaml",
            pod(f"nginx:1.25@{D}", policy="IfNotPresent"),
            [],
            id="pull-policy-if-not-present",
        ),
        pytest.param(
            "p.yaml",
            pod('"{{ .Values.image }}"', "Bad/Name:1"),
            [(6, "invalid-reference", W)],
            id="templated-skipped-invalid-warned",
        ),
        pytest.param(
            "compose.yaml",
            "services:\n  web:\n    image: app:v1\n    pull_policy: always\n",
            [(3, "unpinned", E), (4, "pull-policy-always", W)],
            id="compose",
        ),
        pytest.param(
            "values.yaml",
            "image:\n  repository: app\n  tag: main\n  pullPolicy: Always\n",
            [(2, "unpinned", E), (2, "floating-tag", E), (4, "pull-policy-always", W)],
            id="helm-map",
        ),
        pytest.param(
            "values.yaml",
            f"image:\n  repository: app\n  digest: {D}\n",
            [],
            id="helm-map-without-tag-but-digest",
        ),
        pytest.param(
            "kustomization.yaml",
            "images:\n- name: app\n  newName: registry.example.com/app\n",
            [(2, "unpinned", E)],
            id="kustomize-rename-inherits-the-tag",
        ),
        pytest.param(
            "kustomization.yaml",
            f"images:\n- name: app\n  newTag: v3\n  digest: {D}\n",
            [],
            id="kustomize-pinned",
        ),
        pytest.param("other.yaml", "image: nginx:latest\n", [], id="unrelated-yaml"),
    ],
)
def test_findings(filename: str, text: str, expected: list[tuple[int, str, Severity]]) -> None:
    findings = lint.lint_text(text, filename=filename)
    assert [(f.line, f.rule, f.severity) for f in findings] == expected
    assert lint.has_errors(findings) == any(s is E for _, _, s in expected)


def test_floating_set_is_configurable() -> None:
    text = pod("app:release", "app:latest")
    default = lint.lint_text(text)
    assert [f.rule for f in default].count("floating-tag") == 2
    custom = lint.lint_text(text, floating={"release"})
    assert [(f.line, f.rule) for f in custom if f.rule == "floating-tag"] == [(5, "floating-tag")]
    none = lint.lint_text(pod("app"), floating=())
    assert [f.rule for f in none] == ["unpinned"]


def to_json(findings: Iterable[lint.Finding]) -> str:
    """A list of finding objects, stable key order, trailing newline."""
    return json.dumps([f.to_json() for f in findings], indent=2, sort_keys=True) + "\n"


def test_finding_text_and_json() -> None:
    (finding,) = lint.lint_text(pod("nginx:1.25"), filename="k8s/pod.yaml")
    assert str(finding) == (
        "k8s/pod.yaml:5:12: error: nginx:1.25 is not pinned by digest; run 'ocirel pin' [unpinned]"
    )
    data = json.loads(to_json([finding]))
    assert data == [
        {
            "column": 12,
            "line": 5,
            "message": "nginx:1.25 is not pinned by digest; run 'ocirel pin'",
            "path": "k8s/pod.yaml",
            "reference": "nginx:1.25",
            "rule": "unpinned",
            "severity": "error",
        }
    ]
    assert set(lint.RULES) >= {d["rule"] for d in data}


def test_lint_paths(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(pod("nginx:1.25"))
    (tmp_path / "b.yaml").write_text(pod(f"nginx:1.25@{D}", policy="Always"))
    findings = lint.lint_paths([tmp_path])
    assert [(Path(f.path).name, f.rule) for f in findings] == [
        ("a.yaml", "unpinned"),
        ("b.yaml", "pull-policy-always"),
    ]
    (tmp_path / "c.yaml").write_text("kind: Pod\nspec: [\n")
    with pytest.raises(ManifestError, match=r"c\.yaml:3"):
        lint.lint_paths([tmp_path])
