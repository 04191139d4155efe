"""ocirel.deploy.scan: what is found where, what is skipped, and the parallel scan."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from ocirel.deploy.scan import (
    CHUNK_SIZE,
    PARALLEL_THRESHOLD,
    ScannedFile,
    scan_file,
    scan_files,
    scan_text,
    worker_count,
)
from ocirel.deploy.sites import ManifestKind, StringSite
from ocirel.deploy.splice import pin_text
from ocirel.errors import ManifestError
from ocirel.reference import Reference
from tests.unit.deploy.samples import D_NGINX, POD


@pytest.mark.parametrize(
    ("filename", "text", "expected"),
    [
        pytest.param(
            "pod.yaml",
            POD,
            [("spec.containers[0].image", "nginx:1.25", "kubernetes")],
            id="pod",
        ),
        pytest.param(
            "deploy.yaml",
            "kind: Deployment\nspec:\n  template:\n    spec:\n"
            "      initContainers: [{image: a:1}]\n"
            "      containers: [{image: b:1}]\n"
            "      ephemeralContainers: [{image: c:1}]\n",
            [
                ("spec.template.spec.initContainers[0].image", "a:1", "kubernetes"),
                ("spec.template.spec.containers[0].image", "b:1", "kubernetes"),
                ("spec.template.spec.ephemeralContainers[0].image", "c:1", "kubernetes"),
            ],
            id="workload-container-lists",
        ),
        pytest.param(
            "cron.yaml",
            "kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n"
            "          containers:\n          - image: a:1\n",
            [("spec.jobTemplate.spec.template.spec.containers[0].image", "a:1", "kubernetes")],
            id="cronjob",
        ),
        pytest.param(
            "list.yaml",
            "kind: List\nitems:\n- kind: Pod\n  spec: {containers: [{image: a:1}]}\n",
            [("items[0].spec.containers[0].image", "a:1", "kubernetes")],
            id="list",
        ),
        pytest.param(
            "cr.yaml",
            "kind: Thing\nspec:\n  deep:\n  - podTemplate: {spec: {containers: [{image: a:1}]}}\n"
            "  image: b:1\n",
            [("spec.deep[0].podTemplate.spec.containers[0].image", "a:1", "kubernetes")],
            id="custom-resource",
        ),
        pytest.param(
            "Kustomization",
            "images:\n- {name: a, newTag: '1'}\n",
            [("images[0]", "a:1", "kustomization")],
            id="kustomization-by-filename",
        ),
        pytest.param(
            "overlay.yaml",
            "kind: Kustomization\nimages:\n- {name: a, newName: b, digest: " + D_NGINX + "}\n",
            [("images[0]", f"b@{D_NGINX}", "kustomization")],
            id="kustomization-by-kind",
        ),
        pytest.param(
            "flux.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
            "spec:\n  images:\n  - {name: a, newTag: '2'}\n",
            [("spec.images[0]", "a:2", "kustomization")],
            id="flux-kustomization",
        ),
        pytest.param(
            "values-prod.yml",
            "image: {registry: r.io, repository: x/y, tag: '1'}\nextra:\n  image: z:2\n",
            [("image", "r.io/x/y:1", "helm"), ("extra.image", "z:2", "helm")],
            id="helm-values-by-filename",
        ),
        pytest.param(
            "compose.yaml",
            "services:\n  a: {image: a:1}\n  b: {build: .}\n",
            [("services.a.image", "a:1", "compose")],
            id="compose",
        ),
        pytest.param(
            "ci.yml",
            "image: node:18\njobs:\n  build:\n    container: {image: node:18}\n",
            [],
            id="unrelated-yaml",
        ),
        pytest.param("scalar.yaml", "just text\n---\n- a\n", [], id="non-mapping-documents"),
        pytest.param("empty.yaml", "", [], id="empty-file"),
    ],
)
def test_scan_finds(filename: str, text: str, expected: list[tuple[str, str, str]]) -> None:
    manifest = scan_text(text, filename=filename)
    found = [(o.yaml_path, o.ref_text, str(o.kind)) for o in manifest.occurrences]
    assert found == expected


def test_explicit_kind_overrides_file_name() -> None:
    manifest = scan_text("app:\n  image: a:1\n", filename="chart.yaml", kind=ManifestKind.HELM)
    assert [o.ref_text for o in manifest.occurrences] == ["a:1"]
    assert scan_text("app:\n  image: a:1\n", filename="chart.yaml").occurrences == ()


def test_occurrence_position_skips_anchor_and_tag() -> None:
    text = "kind: Pod\nspec:\n  containers:\n  - image: &i !!str 'nginx:1.25'\n"
    (occ,) = scan_text(text).occurrences
    assert (occ.line, occ.column) == (4, 21)
    assert isinstance(occ.site, StringSite)
    assert text[occ.site.scalar.start : occ.site.scalar.end] == "'nginx:1.25'"


def test_missing_tag_means_latest() -> None:
    (occ,) = scan_text("kind: Pod\nspec: {containers: [{image: nginx}]}\n").occurrences
    assert occ.implicit_tag
    assert occ.reference == Reference("docker.io", "library/nginx", "latest")
    assert occ.ref_text == "nginx"


def test_pull_policy_is_recorded() -> None:
    text = "kind: Pod\nspec:\n  containers:\n  - image: a:1\n    imagePullPolicy: Always\n"
    (occ,) = scan_text(text).occurrences
    assert occ.pull_policy is not None
    assert (occ.pull_policy.value, occ.pull_policy.line) == ("Always", 5)


@pytest.mark.parametrize(
    ("image", "templated"),
    [
        ('"{{ .Values.image }}"', True),
        ("${REGISTRY}/app:${TAG}", True),
        ("$(IMAGE)", True),
        ("$SNUBA_IMAGE", True),  # compose and envsubst: $VAR is ${VAR}
        ("getsentry/vroom:$VROOM_TAG", True),
        ("app:$$TAG", False),  # $$ is a literal "$": not a variable
        ("app:$${TAG}", False),
        ("app:$$$TAG", True),  # a literal "$", then $TAG
        ("Upper/Case:1", False),
        ("app:bad tag", False),
    ],
)
def test_unparseable_images_are_skipped(image: str, templated: bool) -> None:
    text = f"kind: Pod\nspec:\n  containers:\n  - image: {image}\n"
    manifest = scan_text(text, filename="p.yaml")
    assert manifest.occurrences == ()
    (skipped,) = manifest.skipped
    assert (skipped.line, skipped.templated) == (4, templated)
    result = pin_text(text, filename="p.yaml", resolve=lambda ref: D_NGINX)
    assert result.text == text


def test_block_scalar_image_is_skipped() -> None:
    text = "kind: Pod\nspec:\n  containers:\n  - image: |\n      nginx:1.25\n"
    manifest = scan_text(text)
    assert manifest.occurrences == ()
    assert manifest.skipped[0].reason == "block scalars are not rewritten"


def test_helm_image_next_to_tag_key_is_skipped() -> None:
    manifest = scan_text("image: nginx\nimageTag: '1.25'\n", filename="values.yaml")
    assert manifest.occurrences == ()
    assert "separate keys" in manifest.skipped[0].reason


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("kind: Pod\nspec: [unclosed\n", 3),
        ("a: b\n  c: d\n", 2),
        ("a:\n\tb: c\n", 2),
        ("kind: Pod\nspec: *missing\n", 2),
        ("ok: 1\n---\nbad: [\n", 4),
        ("a: \x07\n", 1),
    ],
)
def test_invalid_yaml_names_file_and_line(text: str, line: int) -> None:
    with pytest.raises(ManifestError, match=rf"^deploy/app\.yaml:{line}(:\d+)?: invalid YAML"):
        scan_text(text, filename="deploy/app.yaml")


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"kind: Pod\n# caf\xe9\n")
    with pytest.raises(ManifestError, match=r"latin1\.yaml:2: not UTF-8"):
        scan_file(path)


@pytest.mark.parametrize(
    "text",
    [
        "image:\n  repository: nginx\n  tag: '1.25'\n  digest: {}\n",
        "t: &t '1'\nimage: {repository: nginx, tag: *t}\n",
        "image:\n  repository: nginx\n  tag: |\n    1.25\n",
    ],
)
def test_helm_maps_that_cannot_be_edited_in_place_are_skipped(text: str) -> None:
    manifest = scan_text(text, filename="values.yaml")
    assert manifest.occurrences == ()
    assert manifest.skipped


def test_backstage_component_is_not_a_kustomization() -> None:
    text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nimages:\n- name: a\n  newTag: '1'\n"
    assert scan_text(text).occurrences == ()
    component = text.replace("backstage.io/v1alpha1", "kustomize.config.k8s.io/v1alpha1")
    assert [o.ref_text for o in scan_text(component).occurrences] == ["a:1"]


# --------------------------------------------------------------------------- many files


def pod(index: int) -> str:
    return f"kind: Pod\nspec:\n  containers:\n  - {{name: c, image: 'r.test/app{index}:v1'}}\n"


def make_tree(root: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        path = root / f"f{index:03d}.yaml"
        path.write_text(pod(index) if index % 7 else "kind: Service\n", encoding="utf-8")
        paths.append(path)
    return paths


def test_parallel_scan_equals_the_sequential_scan(tmp_path: Path) -> None:
    paths = make_tree(tmp_path, 3 * CHUNK_SIZE + 5)
    delivered: list[str] = []
    parallel = scan_files(paths, workers=3, on_file=lambda m: delivered.append(m.path))
    assert parallel == scan_files(paths, workers=1)  # same objects, in the order of paths
    assert sorted(delivered) == sorted(str(p) for p in paths)  # each once, any order


def test_errors_from_workers_are_reported_in_path_order(tmp_path: Path) -> None:
    paths = make_tree(tmp_path, 2 * CHUNK_SIZE)
    paths[30].write_text("kind: Pod\nspec: [\n", encoding="utf-8")
    paths[3].write_bytes(b"kind: Pod\n\xff\n")
    delivered: list[ScannedFile] = []
    with pytest.raises(ManifestError) as info:
        scan_files(paths, workers=2, on_file=delivered.append)
    assert info.value.message == f"{paths[3]}:2: not UTF-8 text"
    assert (info.value.hint or "").startswith(f"1 more: {paths[30]}:3:1: invalid YAML")
    assert len(delivered) == len(paths) - 2


def test_worker_count() -> None:
    assert worker_count(PARALLEL_THRESHOLD - 1) == 1
    assert worker_count(10_000) >= 1
    assert worker_count(5, 8) == 5
    assert worker_count(0, 2) == 1


def test_without_a_process_pool_files_are_scanned_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_semaphores(method: str) -> None:
        raise OSError(38, "Function not implemented")  # no /dev/shm

    monkeypatch.setattr(multiprocessing, "get_context", no_semaphores)
    paths = make_tree(tmp_path, 2 * CHUNK_SIZE)
    assert scan_files(paths, workers=2) == scan_files(paths, workers=1)
