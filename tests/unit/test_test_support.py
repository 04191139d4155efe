"""The test-support helpers that decide what a passing test means."""

from __future__ import annotations

import pytest

from tests.support.kubectl import assert_pinned, without_tag

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"nginx:1.25@{D}", f"nginx@{D}"),
        (f"localhost:5000/a/b:v1@{D}", f"localhost:5000/a/b@{D}"),
        (f"localhost:5000/a/b@{D}", f"localhost:5000/a/b@{D}"),
        ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1"),
    ],
)
def test_without_tag(image: str, expected: str) -> None:
    assert without_tag(image) == expected


def test_assert_pinned_accepts_both_kubectl_renderings() -> None:
    want = [f"registry.example.com/app:v7@{D}", "quay.io/other/tool:2.0"]
    assert_pinned([f"registry.example.com/app:v7@{D}", "quay.io/other/tool:2.0"], want)  # 1.21+
    assert_pinned([f"registry.example.com/app@{D}", "quay.io/other/tool:2.0"], want)  # 1.20


@pytest.mark.parametrize(
    "rendered",
    [
        "registry.example.com/app:v7",  # not pinned
        f"registry.example.com/app:v6@{D}",  # the wrong tag kept
        "registry.example.com/app@sha256:" + "cd" * 32,  # another digest
        f"registry.example.com/other@{D}",  # another name
    ],
)
def test_assert_pinned_rejects_what_a_deployment_would_notice(rendered: str) -> None:
    with pytest.raises(AssertionError):
        assert_pinned([rendered], [f"registry.example.com/app:v7@{D}"])
