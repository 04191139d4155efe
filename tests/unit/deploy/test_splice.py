"""ocirel.deploy.splice: golden files byte for byte, then behaviour tables.

Golden files: ``golden/manifests/<case>.in.yaml`` pinned with :func:`golden_resolver`
must give ``<case>.out.yaml`` (and ``<case>.digest-only.out.yaml`` when present, with
``digest_only=True``), byte for byte. Regenerate after a deliberate change with
``OCIREL_UPDATE_GOLDEN=1 pytest tests/unit/deploy/test_splice.py`` and review the diff.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

import pytest

from ocirel.deploy.files import collect_paths
from ocirel.deploy.resolvers import Pin, Resolver, chain, lock_resolver, tag_resolver
from ocirel.deploy.scan import scan_files, scan_text
from ocirel.deploy.splice import PinResult, pin_file, pin_text, unified_diff, write_results
from ocirel.errors import InvalidReferenceError, ManifestError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.reference import Reference, parse
from tests.support.kubectl import assert_pinned, rendered_images
from tests.unit.deploy.samples import (
    APP,
    D_APP6,
    D_APP7,
    D_BITNAMI,
    D_BUSYBOX,
    D_NGINX,
    D_NGINX_LATEST,
    D_REDIS,
    D_STALE,
    LOCK,
    POD,
    write,
)

GOLDEN = Path(__file__).parent / "golden" / "manifests"
UPDATE = os.environ.get("OCIREL_UPDATE_GOLDEN") == "1"


REGISTRY = {
    parse("nginx:1.25"): D_NGINX,
    parse("nginx:latest"): D_NGINX_LATEST,
    parse("busybox:1.36"): D_BUSYBOX,
    parse("redis:7"): D_REDIS,
    parse("bitnami/redis:7.2.4-debian-12-r9"): D_BITNAMI,
}


def golden_resolver() -> Resolver:
    """The lockfile first (app → v7), then a fake registry for the public images."""
    return chain(lock_resolver(LOCK), tag_resolver(REGISTRY))


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def golden_filename(case: str) -> str:
    """The name the case is scanned under (kind detection looks at file names)."""
    return "kustomization.yaml" if case.startswith("kustomization") else f"{case}.yaml"


def golden_cases() -> list[tuple[str, bool]]:
    cases = []
    for source in sorted(GOLDEN.glob("*.in.yaml")):
        case = source.name.removesuffix(".in.yaml")
        cases.append((case, False))
        if (GOLDEN / f"{case}.digest-only.out.yaml").exists():
            cases.append((case, True))
    return cases


def expected_path(case: str, digest_only: bool) -> Path:
    return GOLDEN / (f"{case}.digest-only.out.yaml" if digest_only else f"{case}.out.yaml")


@pytest.mark.parametrize(("case", "digest_only"), golden_cases())
def test_golden(case: str, digest_only: bool) -> None:
    source = read(GOLDEN / f"{case}.in.yaml")
    result = pin_text(
        source, filename=golden_filename(case), resolve=golden_resolver(), digest_only=digest_only
    )
    expected = expected_path(case, digest_only)
    if UPDATE:
        expected.write_bytes(result.text.encode("utf-8"))
    assert result.text == read(expected)


@pytest.mark.parametrize(("case", "digest_only"), golden_cases())
def test_golden_is_idempotent(case: str, digest_only: bool) -> None:
    pinned = read(expected_path(case, digest_only))
    again = pin_text(
        pinned, filename=golden_filename(case), resolve=golden_resolver(), digest_only=digest_only
    )
    assert again.text == pinned
    assert again.changes == ()


def test_golden_crlf_and_bom_survive() -> None:
    crlf_in, crlf_out = read(GOLDEN / "crlf.in.yaml"), read(GOLDEN / "crlf.out.yaml")
    assert crlf_out.count("\r\n") == crlf_in.count("\r\n") == crlf_out.count("\n")
    assert read(GOLDEN / "bom.out.yaml").startswith("\ufeffapiVersion")


def pin_image(image: str, answer: Pin | str | None, *, digest_only: bool = False) -> PinResult:
    text = f"kind: Pod\nspec:\n  containers:\n  - image: {image}\n"
    return pin_text(text, filename="p.yaml", resolve=lambda ref: answer, digest_only=digest_only)


@pytest.mark.parametrize(
    ("image", "answer", "digest_only", "new", "reason"),
    [
        ("nginx:1.25", D_NGINX, False, f"nginx:1.25@{D_NGINX}", "pinned"),
        ("nginx:1.25", D_NGINX, True, f"nginx@{D_NGINX}", "pinned"),
        ("nginx", D_NGINX, False, f"nginx@{D_NGINX}", "pinned"),
        (
            "docker.io/library/nginx:1.25",
            D_NGINX,
            False,
            f"docker.io/library/nginx:1.25@{D_NGINX}",
            "pinned",
        ),
        ("localhost:5000/a:1", D_NGINX, False, f"localhost:5000/a:1@{D_NGINX}", "pinned"),
        (
            f"nginx:1.25@{D_STALE}",
            D_NGINX,
            False,
            f"nginx:1.25@{D_NGINX}",
            "re-pinned (the digest changed)",
        ),
        (f"nginx:1.25@{D_NGINX}", D_NGINX, True, f"nginx@{D_NGINX}", "tag dropped (digest-only)"),
        (
            f"{APP}:v6",
            Pin(D_APP7, "v7"),
            False,
            f"{APP}:v7@{D_APP7}",
            "updated to the locked version v7",
        ),
        (
            f"{APP}:v6@{D_APP6}",
            Pin(D_APP7, "v7", "x"),
            False,
            f"{APP}:v7@{D_APP7}",
            "updated to the locked version v7 (x)",
        ),
        (f"{APP}", Pin(D_APP7, "v7"), False, f"{APP}@{D_APP7}", "pinned"),
    ],
)
def test_pin_reasons(
    image: str, answer: Pin | str, digest_only: bool, new: str, reason: str
) -> None:
    result = pin_image(image, answer, digest_only=digest_only)
    (change,) = result.changes
    assert (change.old, change.new, change.reason) == (image, new, reason)
    assert (change.line, change.column) == (4, 12)
    assert result.text.endswith(f"image: {new}\n")


@pytest.mark.parametrize(
    ("image", "answer", "digest_only"),
    [
        ("nginx:1.25", None, False),
        (f"nginx:1.25@{D_NGINX}", D_NGINX, False),
        (f"nginx@{D_NGINX}", D_NGINX, True),
        (f"nginx@{D_NGINX}", D_NGINX, False),
        (f"{APP}:v7@{D_APP7}", Pin(D_APP7, "v7"), False),
    ],
)
def test_pin_leaves_settled_references_alone(
    image: str, answer: str | None, digest_only: bool
) -> None:
    result = pin_image(image, answer, digest_only=digest_only)
    assert not result.changed
    assert result.changes == ()


def test_resolver_answers_are_validated() -> None:
    with pytest.raises(InvalidReferenceError):
        pin_image("nginx:1.25", "sha256:short")
    with pytest.raises(InvalidReferenceError):
        pin_image("nginx:1.25", Pin(D_NGINX, "bad tag"))


def test_helm_tag_that_looks_like_a_number_is_quoted() -> None:
    lock = Lockfile({"app": LockEntry("app", APP, "1.10", D_APP7)})
    text = f"image:\n  repository: {APP}\n  tag: v1\n  digest:\n"
    result = pin_text(text, filename="values.yaml", resolve=lock_resolver(lock))
    assert result.text == f'image:\n  repository: {APP}\n  tag: "1.10"\n  digest: {D_APP7}\n'


def test_helm_map_without_tag_gets_the_locked_tag() -> None:
    lock = Lockfile({"app": LockEntry("app", APP, "v7", D_APP7)})
    text = f"image:\n  repository: {APP}\n  digest: ''\n  pullPolicy: IfNotPresent\n"
    result = pin_text(text, filename="values.yaml", resolve=lock_resolver(lock))
    assert result.text == (
        f"image:\n  repository: {APP}\n  tag: v7\n  digest: '{D_APP7}'\n"
        "  pullPolicy: IfNotPresent\n"
    )
    assert result.changes[0].reason == "tag v7 added to match the digest (lockfile entry 'app')"


def test_helm_keeps_tag_in_digest_only_mode() -> None:
    text = "image:\n  repository: nginx\n  tag: '1.25'\n"
    result = pin_text(text, filename="values.yaml", resolve=lambda r: D_NGINX, digest_only=True)
    assert result.text == f"image:\n  repository: nginx\n  tag: '1.25@{D_NGINX}'\n"
    with_digest = text + "  digest: ''\n"
    result = pin_text(
        with_digest, filename="values.yaml", resolve=lambda r: D_NGINX, digest_only=True
    )
    assert result.text == with_digest.replace("''", f"'{D_NGINX}'")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            "- newTag: '1'\n  name: a\n  digest: D\n",
            "- name: a\n  digest: N\n",
            id="tag-first-on-dash-line",
        ),
        pytest.param(
            "- name: a\n  newTag: '1' # c\n  digest: D\n",
            "- name: a\n  digest: N\n",
            id="tag-in-the-middle",
        ),
        pytest.param(
            "- name: a\n  digest: D\n  newTag: '1'",
            "- name: a\n  digest: N",
            id="tag-last-at-end-of-file",
        ),
        pytest.param(
            "- {newTag: '1', name: a, digest: D}\n",
            "- {name: a, digest: N}\n",
            id="flow-tag-first",
        ),
        pytest.param(
            "- {name: a, digest: D, newTag: '1'}\n",
            "- {name: a, digest: N}\n",
            id="flow-tag-last",
        ),
        pytest.param(
            "- name: a\n  newTag: '1'\n",
            "- name: a\n  digest: 'N'\n",
            id="digest-takes-the-tag-place",
        ),
    ],
)
def test_kustomize_digest_only_drops_new_tag(entry: str, expected: str) -> None:
    text = "images:\n" + entry.replace("D", D_STALE)
    result = pin_text(
        text, filename="kustomization.yaml", resolve=lambda r: D_NGINX, digest_only=True
    )
    assert result.text == "images:\n" + expected.replace("N", D_NGINX)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "images:\n- name: a\n  newTag: '1'",
            "images:\n- name: a\n  newTag: '1'\n  digest: 'N'",
            id="no-final-newline",
        ),
        pytest.param(
            "images:\r\n- name: a\r\n  newTag: x\r\n",
            "images:\r\n- name: a\r\n  newTag: x\r\n  digest: N\r\n",
            id="crlf",
        ),
        pytest.param(
            "images:\n  -   name: a\n      newTag: x  # c\n",
            "images:\n  -   name: a\n      newTag: x  # c\n      digest: N\n",
            id="wide-indent",
        ),
        pytest.param(
            "images:\n- name: a\n  newTag: x\n  digest: null\n",
            "images:\n- name: a\n  newTag: x\n  digest: N\n",
            id="explicit-null",
        ),
        pytest.param(
            "images:\n- name: a\n  newTag: x\n  digest:   # later\n",
            "images:\n- name: a\n  newTag: x\n  digest: N   # later\n",
            id="empty-with-comment",
        ),
    ],
)
def test_kustomize_digest_insertion(text: str, expected: str) -> None:
    result = pin_text(text, filename="kustomization.yaml", resolve=lambda r: D_NGINX)
    assert result.text == expected.replace("N", D_NGINX)


def test_fields_from_merge_or_alias_are_not_rewritten() -> None:
    text = (
        "base: &b {name: a, newTag: '1'}\ntag: &t '2'\nimages:\n- <<: *b\n- name: c\n  newTag: *t\n"
    )
    manifest = scan_text(text, filename="kustomization.yaml")
    assert manifest.occurrences == ()
    assert len(manifest.skipped) == 2
    assert pin_text(text, filename="kustomization.yaml", resolve=lambda r: D_NGINX).text == text


def test_each_reference_is_resolved_with_its_own_answer() -> None:
    seen: list[Reference] = []

    def resolve(ref: Reference) -> str | None:
        seen.append(ref)
        return D_NGINX if ref.repository == "library/nginx" else None

    result = pin_text(
        "kind: Pod\nspec:\n  containers:\n  - image: nginx:1\n  - image: redis:7\n", resolve=resolve
    )
    assert seen == [parse("nginx:1"), parse("redis:7")]
    assert [c.old for c in result.changes] == ["nginx:1"]


def test_pinning_scales_linearly() -> None:
    containers = "".join(
        f"  - name: c{i}\n    image: registry.example.com/img{i % 100}:v1\n" for i in range(3000)
    )
    text = "kind: Pod\nspec:\n  containers:\n" + containers
    result = pin_text(text, resolve=lambda ref: D_NGINX)
    assert len(result.changes) == 3000
    assert result.text.count(f":v1@{D_NGINX}\n") == 3000


def test_pin_files_is_all_or_nothing(tmp_path: Path) -> None:
    good = write(tmp_path / "a-good.yaml", POD)
    bad = write(tmp_path / "b-bad.yaml", "kind: Pod\nspec: [\n")
    worse = write(tmp_path / "c-bad.yaml", "x: {\n")
    before = {p: p.read_bytes() for p in (good, bad, worse)}
    with pytest.raises(ManifestError, match=r"b-bad\.yaml:3:1: invalid YAML") as info:
        pin_files([tmp_path], lambda ref: D_NGINX)
    assert info.value.hint is not None
    assert "c-bad.yaml" in info.value.hint
    assert {p: p.read_bytes() for p in (good, bad, worse)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-good.yaml", "b-bad.yaml", "c-bad.yaml"]


def test_write_results_writes_exact_bytes_and_keeps_mode_and_links(tmp_path: Path) -> None:
    crlf = write(tmp_path / "crlf.yaml", POD.replace("\n", "\r\n"))
    crlf.chmod(0o640)
    untouched = write(tmp_path / "other.yaml", "kind: Service\n")
    target = write(tmp_path / "real" / "linked.yaml", POD)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    untouched_inode = untouched.stat().st_ino

    results = pin_files([crlf, untouched, link], lambda ref: D_NGINX)
    written = write_results(results)

    assert written == [crlf, link]
    pinned = POD.replace("nginx:1.25", f"nginx:1.25@{D_NGINX}")
    assert crlf.read_bytes() == pinned.replace("\n", "\r\n").encode()
    assert stat.S_IMODE(crlf.stat().st_mode) == 0o640
    assert link.is_symlink()
    assert target.read_bytes() == pinned.encode()
    assert untouched.stat().st_ino == untouched_inode
    assert write_results(pin_files([crlf, link], lambda ref: D_NGINX)) == []


def test_write_results_refuses_a_file_changed_meanwhile(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", POD)
    results = pin_files([path], lambda ref: D_NGINX)
    write(path, POD + "# edited by someone else\n")
    with pytest.raises(ManifestError, match="changed while"):
        write_results(results)
    assert path.read_text() == POD + "# edited by someone else\n"


def test_unified_diff() -> None:
    result = pin_text(POD, filename="k8s/pod.yaml", resolve=lambda ref: D_NGINX)
    assert unified_diff(result) == (
        "--- a/k8s/pod.yaml\n+++ b/k8s/pod.yaml\n@@ -1,4 +1,4 @@\n"
        " apiVersion: v1\n kind: Pod\n spec:\n"
        "-  containers: [{name: a, image: nginx:1.25}]\n"
        f"+  containers: [{{name: a, image: nginx:1.25@{D_NGINX}}}]\n"
    )
    no_eol = pin_text(POD.rstrip("\n"), filename="p.yaml", resolve=lambda ref: D_NGINX)
    assert unified_diff(no_eol).endswith("}]\n\\ No newline at end of file\n")
    assert unified_diff(pin_text(POD, resolve=lambda ref: None)) == ""


KUSTOMIZE_RESOURCE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: a, image: "nginx:1.25"}
      - {name: b, image: "registry.example.com/team/app:v6"}
      - {name: c, image: "redis:7"}
      - {name: d, image: "app-placeholder"}
      - {name: e, image: "busybox:1.36"}
      - {name: f, image: "quay.io/other/tool:2.0"}
"""


@pytest.mark.parametrize("digest_only", [False, True])
def test_kubectl_kustomize_renders_the_pinned_digests(tmp_path: Path, digest_only: bool) -> None:
    write(tmp_path / "deployment.yaml", KUSTOMIZE_RESOURCE)
    source = read(GOLDEN / "kustomization-no-digest.in.yaml")
    pinned = pin_text(
        source, filename="kustomization.yaml", resolve=golden_resolver(), digest_only=digest_only
    )
    write(tmp_path / "kustomization.yaml", pinned.text)
    if digest_only:
        expected = [
            f"nginx@{D_NGINX}",
            f"{APP}@{D_APP7}",
            f"redis@{D_REDIS}",
            f"{APP}@{D_APP7}",
            f"busybox@{D_BUSYBOX}",
            "quay.io/other/tool:2.0",
        ]
    else:
        expected = [
            f"nginx:1.25@{D_NGINX}",
            f"{APP}:v7@{D_APP7}",
            f"redis:7@{D_REDIS}",
            f"{APP}:v7@{D_APP7}",
            f"busybox:1.36@{D_BUSYBOX}",
            "quay.io/other/tool:2.0",
        ]
    assert_pinned(rendered_images(tmp_path), expected)


@pytest.mark.parametrize(
    "text",
    [
        "kind: Pod\nspec: &s\n  containers: [{image: a:1}]\n  again: *s\n",
        "kind: Pod\nx: &a [*a]\n",
        "kind: Pod\nspec: &s {<<: *s, containers: [{image: a:1}]}\n",
        "services:\n  a: &a\n    <<: *a\n    image: a:1\n",
    ],
)
def test_recursive_aliases_terminate(text: str) -> None:
    result = pin_text(text, resolve=lambda ref: D_NGINX)
    assert result.text == text.replace("a:1", f"a:1@{D_NGINX}")


def test_helm_map_with_aliased_extra_key_is_still_pinned() -> None:
    text = "secrets: &s [a]\nimage:\n  repository: nginx\n  tag: '1.25'\n  pullSecrets: *s\n"
    result = pin_text(text, filename="values.yaml", resolve=lambda ref: D_NGINX)
    assert result.text == text.replace("'1.25'\n", f"'1.25@{D_NGINX}'\n")


def pin_files(paths: Iterable[Path], resolve: Resolver) -> list[PinResult]:
    """Compute the pinned text of every YAML file under ``paths``; write nothing."""
    return [pin_file(one, resolve) for one in scan_files(collect_paths(paths))]
