"""Anchored image and tag scalars aliased elsewhere (issue 13 item 9).

ocirel's choice: when pinning rewrites an anchored scalar, every alias of it that is
not itself the same image gets the old value written out, byte for byte, so it keeps
meaning what it meant; where an alias cannot be located exactly, pinning refuses and
names both lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel.deploy.pin import plan_pins
from ocirel.deploy.resolvers import Pin
from ocirel.deploy.scan import scan_text
from ocirel.deploy.splice import pin_text
from ocirel.errors import ManifestError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest

D = Digest("sha256:" + "a" * 64)

#: the shape of a bitnami chart's values.yaml, with the tag anchored for the labels
VALUES = """\
image:
  registry: docker.io
  repository: bitnami/nginx
  tag: &ver 1.25.3-debian-11-r0
  digest: ""
  pullPolicy: IfNotPresent
commonLabels:
  app.kubernetes.io/version: *ver # the release
podLabels: {version: *ver, tier: web}
extraArgs:
  - --version
  - *ver
"""


def test_a_tag_that_changes_keeps_its_aliases_meaning_by_writing_the_value_out() -> None:
    result = pin_text(
        VALUES, filename="values.yaml", resolve=lambda ref: Pin(D, tag="1.27.1-debian-12-r0")
    )
    assert result.text == (
        "image:\n"
        "  registry: docker.io\n"
        "  repository: bitnami/nginx\n"
        "  tag: &ver 1.27.1-debian-12-r0\n"
        f'  digest: "{D}"\n'
        "  pullPolicy: IfNotPresent\n"
        "commonLabels:\n"
        "  app.kubernetes.io/version: 1.25.3-debian-11-r0 # the release\n"
        "podLabels: {version: 1.25.3-debian-11-r0, tier: web}\n"
        "extraArgs:\n"
        "  - --version\n"
        "  - 1.25.3-debian-11-r0\n"
    )
    again = pin_text(
        result.text, filename="values.yaml", resolve=lambda ref: Pin(D, tag="1.27.1-debian-12-r0")
    )
    assert again.text == result.text


def test_a_tag_that_pinning_does_not_touch_keeps_its_aliases() -> None:
    result = pin_text(VALUES, filename="values.yaml", resolve=lambda ref: D)
    assert result.text == VALUES.replace('digest: ""', f'digest: "{D}"')


def test_an_anchored_container_image_aliased_by_an_env_value() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
        "  - name: web\n    image: &img 'nginx:1.25'\n    env:\n"
        "    - {name: IMAGE, value: *img}\n"
        "  - name: sidecar\n    image: *img\n"
    )
    result = pin_text(text, resolve=lambda ref: D)
    # the env value keeps its meaning (and its quotes); the second container's image
    # is the same image, so it stays an alias and is pinned with its anchor
    assert result.text == text.replace("'nginx:1.25'\n", f"'nginx:1.25@{D}'\n").replace(
        "value: *img", "value: 'nginx:1.25'"
    )
    assert [occ.line for occ in scan_text(result.text).occurrences] == [7]


def test_a_kustomize_new_tag_dropped_by_digest_only_is_written_out_at_its_alias() -> None:
    text = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        'images:\n- name: nginx\n  newTag: &tag "1.25"\n'
        "labels:\n- pairs: {version: *tag}\n"
    )
    result = pin_text(text, filename="kustomization.yaml", resolve=lambda ref: D, digest_only=True)
    assert result.text == (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f'images:\n- name: nginx\n  digest: "{D}"\n'
        'labels:\n- pairs: {version: "1.25"}\n'
    )


def test_aliases_in_a_row_are_each_written_out() -> None:
    text = (
        "image:\n  repository: r.test/app\n  tag: &v v5\n  digest: ''\nversions: &all\n- *v\n- *v\n"
    )
    result = pin_text(text, filename="values.yaml", resolve=lambda ref: Pin(D, tag="v7"))
    assert result.text == (
        f"image:\n  repository: r.test/app\n  tag: &v v7\n  digest: '{D}'\n"
        "versions: &all\n- v5\n- v5\n"
    )


def test_an_alias_that_cannot_be_located_is_refused_naming_both_lines(tmp_path: Path) -> None:
    text = (
        "first: &first 1\nimage:\n  repository: r.test/app\n  tag: &v v5\n"
        "versions:\n- *first\n- *v\n"
    )
    path = tmp_path / "values.yaml"
    path.write_text(text)
    lock = Lockfile({"app": LockEntry("app", "r.test/app", "v7", D)})
    with pytest.raises(ManifestError) as caught:
        plan_pins([path], lock)
    message = str(caught.value)
    assert (
        f"{path}:4: cannot pin 'v5': its anchor &v is also used in the mapping or list at "
        "line 6 (*v), where ocirel cannot write the value out" in message
    )
    assert "replace *v in the mapping or list at line 6" in (caught.value.hint or "")
    assert path.read_text() == text
