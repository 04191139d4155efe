"""ocirel.deploy.compose and the scan of large files: libyaml, one document at a time.

Speed and memory (issue 13): the documents of a file are composed one at a time and
a Kubernetes document that spells no container key is not walked, so scanning an
argo-cd-like file costs about a bare libyaml parse. The texts libyaml reads
differently from ruamel.yaml (a BOM, redefined or dotted anchors, LINE SEPARATOR)
keep their exact offsets and line numbers.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterable
from typing import Any

import pytest

from ocirel.deploy import compose as compose_module
from ocirel.deploy import scan as scan_module
from ocirel.deploy.compose import compose
from ocirel.deploy.kinds import DocumentScanner
from ocirel.deploy.kinds import classify as kinds_classify
from ocirel.deploy.resolvers import tag_resolver
from ocirel.deploy.scan import scan_text
from ocirel.deploy.splice import pin_text
from ocirel.reference import parse
from tests.unit.deploy.samples import D_NGINX, D_REDIS

RESOLVE = tag_resolver({parse("nginx:1.25"): D_NGINX, parse("redis:7"): D_REDIS})

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: redis:7
      containers:
      - name: web
        image: nginx:1.25
        imagePullPolicy: IfNotPresent
"""


def schema(depth: int, width: int) -> str:
    """An openAPI v3 schema the way controller-gen writes a CRD's (no container key)."""
    lines: list[str] = []

    def node(indent: int, level: int) -> None:
        pad = " " * indent
        lines.append(f"{pad}description: The settings of this level, as the controller reads")
        lines.append(f"{pad}  them when it reconciles; see the documentation for the values.")
        if level == depth:
            lines.append(f"{pad}type: string")
            return
        lines.append(f"{pad}properties:")
        for index in range(width):
            lines.append(f"{pad}  field{index}:")
            node(indent + 4, level + 1)
        lines.append(f"{pad}required:\n{pad}- field0\n{pad}type: object")

    node(8, 0)
    return "\n".join(lines) + "\n"


def crd(name: str, depth: int = 4, width: int = 5) -> str:
    return (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        f"metadata:\n  name: {name}.example.com\nspec:\n  group: example.com\n"
        "  versions:\n  - name: v1\n    schema:\n      openAPIV3Schema:\n" + schema(depth, width)
    )


def install_yaml(copies: int) -> str:
    """CRDs with long schemas, then workloads: the shape of argo-cd's install.yaml."""
    docs = [crd(f"things{i}") for i in range(3)] + [DEPLOYMENT]
    return "---\n".join(docs * copies)


# ------------------------------------------------------------- speed and memory


def test_a_large_manifest_is_read_by_libyaml_walking_only_documents_with_containers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why a large install.yaml costs about a bare libyaml parse (the figures are in
    bench/pin_large.py): libyaml composes it, ruamel.yaml is never asked, and of its
    CRDs and workloads only the documents that spell a container key are walked."""
    text = install_yaml(copies=3)  # about 1.8 MB, 12 documents
    assert len(text) > 1_000_000

    def no_ruamel(*_args: object) -> Iterable[Any]:
        raise AssertionError("ruamel.yaml composed a file libyaml reads")

    walked: list[int] = []
    scan_document = DocumentScanner.scan_document

    def counting(self: DocumentScanner, doc: Any, kind: Any) -> None:
        walked.append(doc.start_mark.line)
        scan_document(self, doc, kind)

    monkeypatch.setattr(compose_module, "_ruamel_documents", no_ruamel)
    monkeypatch.setattr(DocumentScanner, "scan_document", counting)
    scanned = scan_text(text, filename="install.yaml")
    assert [o.ref_text for o in scanned.occurrences] == ["redis:7", "nginx:1.25"] * 3
    assert len(walked) == 3  # the three Deployments; the nine CRDs are passed over


def test_documents_are_composed_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No earlier document's nodes are alive when the next one is classified."""
    alive: list[int] = []
    seen: list[weakref.ref[Any]] = []
    classify = kinds_classify

    def counting(doc: Any, hint: Any) -> Any:
        gc.collect()
        alive.append(sum(1 for ref in seen if ref() is not None))
        seen.append(weakref.ref(doc))
        return classify(doc, hint)

    monkeypatch.setattr(scan_module, "classify", counting)
    scanned = scan_text("---\n".join([crd("a", 2, 2), DEPLOYMENT] * 3), filename="all.yaml")
    assert len(scanned.occurrences) == 6
    assert alive == [0] * 6


@pytest.mark.parametrize(
    "key",
    [
        '"c\\x6fntainers"',  # an escape: the text never spells the key
        '"initC\\u006Fntainers"',
    ],
)
def test_a_container_key_written_with_escapes_is_still_found(key: str) -> None:
    text = DEPLOYMENT.replace("      initContainers:", "      x:").replace("containers", key)
    assert "ontainers:" not in text
    scanned = scan_text(text, filename="app.yaml")
    assert [o.ref_text for o in scanned.occurrences] == ["nginx:1.25"]


def test_a_crd_whose_schema_default_holds_containers_is_scanned() -> None:
    text = crd("pools", 1, 1).replace(
        "        type: object\n",
        "        type: object\n        default:\n          containers:\n"
        "          - name: worker\n            image: nginx:1.25\n",
    )
    line = text.splitlines().index("            image: nginx:1.25") + 1
    scanned = scan_text(text, filename="crd.yaml")
    assert [(o.ref_text, o.line) for o in scanned.occurrences] == [("nginx:1.25", line)]


# ------------------------------------------ texts libyaml reads differently


def test_a_bom_keeps_offsets_exact_with_anchors_and_wide_characters() -> None:
    text = (
        "\ufeff# café ☕ 😀\r\nkind: Pod\r\nmetadata:\r\n  labels: {tier: &t 'wéb'}\r\n"
        "spec:\r\n  containers:\r\n  - name: a\r\n    image: &img nginx:1.25\r\n"
        "  - name: b\r\n    image: *img\r\n    env: [{name: T, value: *t}]\r\n"
    )
    result = pin_text(text, filename="pod.yaml", resolve=RESOLVE)
    assert result.text == text.replace("&img nginx:1.25", f"&img nginx:1.25@{D_NGINX}")
    [occurrence] = scan_text(text, filename="pod.yaml").occurrences
    assert (occurrence.line, occurrence.column) == (8, 17)


@pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")
@pytest.mark.parametrize(
    "anchors",
    [
        ("&c", "&c"),  # redefined: YAML 1.2 allows it, libyaml refuses
        ("&app.env", "&other.env"),  # a dot: YAML 1.2 allows it, libyaml refuses
    ],
)
def test_anchors_libyaml_refuses_are_still_read(anchors: tuple[str, str]) -> None:
    first, second = anchors
    text = (
        f"x-env: {first} {{A: '1'}}\nx-more: {second} {{B: '2'}}\n"
        f"services:\n  web:\n    image: nginx:1.25\n    environment: *{second[1:]}\n"
    )
    result = pin_text(text, filename="compose.yaml", resolve=RESOLVE)
    assert result.text == text.replace("nginx:1.25", f"nginx:1.25@{D_NGINX}")
    assert result.changes[0].line == 5


def test_a_line_separator_in_a_string_does_not_move_line_numbers() -> None:
    text = 'kind: Pod\nmetadata:\n  name: "a\u2028b"\nspec:\n  containers:\n  - image: redis:7\n'
    [occurrence] = scan_text(text, filename="pod.yaml").occurrences
    assert (occurrence.line, occurrence.column) == (6, 12)


def test_plain_scalars_have_no_style_and_quoted_ones_keep_theirs() -> None:
    def styles(documents: Iterable[Any]) -> list[str | None]:
        return [value.style for doc in documents for _, value in doc.value]

    assert compose("a: b\nc: 'd'\ne: \"f\"\ng: |\n  h\n", "s.yaml", styles) == [
        None, "'", '"', "|",
    ]  # fmt: skip
