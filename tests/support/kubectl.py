"""``kubectl kustomize`` in tests, for every kubectl a user may have.

kustomize renders an ``images:`` entry with both ``newTag`` and ``digest``
differently by version: kubectl 1.20 (Debian 12's ``kubernetes-client``) writes
``name@digest`` and drops the tag; kubectl >= 1.21 (kustomize 4+) writes
``name:tag@digest``. What a deployment depends on is the same in both: the image
name and the digest it is pinned to. :func:`assert_pinned` checks exactly that, and
that the tag, when kubectl keeps it, is the expected one.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.support import engines


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if engines.required():
            pytest.fail("kubectl is required (install kubernetes-client)", pytrace=False)
        pytest.skip("kubectl is not installed (install kubernetes-client)")
    return kubectl


def rendered_images(directory: Path) -> list[str]:
    """The ``image:`` of each container of the Deployment ``kubectl kustomize`` renders."""
    rendered = subprocess.run(
        [_kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    doc = YAML(typ="safe", pure=True).load(rendered.stdout)
    return [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]]


def without_tag(image: str) -> str:
    """``name:tag@digest`` → ``name@digest``; anything without a digest is unchanged."""
    name, at, digest = image.partition("@")
    if not at:
        return image
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:  # a tag, not a registry port
        name = name[:colon]
    return f"{name}@{digest}"


def renderings(image: str) -> set[str]:
    """The forms kubectl may render for an expected ``image`` (both when it has tag+digest)."""
    return {image, without_tag(image)}


def assert_pinned(rendered: Sequence[str], expected: Sequence[str]) -> None:
    """Each rendered image is the expected one, or it with the tag dropped (kubectl 1.20).

    The name and digest must match exactly either way: that is what the deployment runs.
    """
    assert len(rendered) == len(expected), (rendered, expected)
    for got, want in zip(rendered, expected, strict=True):
        assert got in renderings(want), f"kubectl rendered {got!r}, expected {want!r}"
        assert without_tag(got) == without_tag(want)
