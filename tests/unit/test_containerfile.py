"""containerfile.base_images, and which registries the builder is configured for."""

from __future__ import annotations

import pytest

from ocirel.cli.wiring import builder_registries
from ocirel.containerfile import base_images, from_arguments, logical_lines
from ocirel.reference import parse_repository


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM scratch\nCOPY x /x\n", []),
        ("FROM reg:5000/base/deb:1\nCOPY app /app\n", ["reg:5000/base/deb:1"]),
        ("from golang:1.22 AS build\nRUN go build\nFROM build\n", ["golang:1.22"]),
        (
            "FROM --platform=$BUILDPLATFORM reg/a:1 AS one\nFROM one AS two\nFROM reg/b@sha256:"
            + "a" * 64 + "\n",
            ["reg/a:1", "reg/b@sha256:" + "a" * 64],
        ),
        ("# FROM commented/out\nFROM \\\n  reg/x:1 \\\n  AS x\n", ["reg/x:1"]),
        ("ARG BASE=reg/x:1\nFROM $BASE\n", ["reg/x:1"]),  # the ARG's default
        ("ARG BASE\nFROM $BASE\n", None),  # no default, no --build-arg: unknown
        ("FROM ${REGISTRY}/x:1\n", None),
        ("FROM Build AS build\n", ["Build"]),  # not yet a stage when it is named
        # images pulled by COPY --from and RUN --mount from=, but not stages or numbers
        (
            "FROM reg/a:1 AS b\nCOPY --from=docker.io/library/golang:1.22 /x /y\n"
            "COPY --from=b /a /b\nCOPY --from=0 /a /b\n"
            "RUN --mount=type=bind,from=quay.io/x/y:1,target=/m true\n",
            ["reg/a:1", "docker.io/library/golang:1.22", "quay.io/x/y:1"],
        ),
        ("FROM reg/a:1\nCOPY --from=$TOOLS /x /y\n", None),
    ],
)  # fmt: skip
def test_base_images(text: str, expected: list[str] | None) -> None:
    assert base_images(text) == expected


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        # the top-level Containerfile's shape: a --build-arg wins over the default
        ('ARG BASE=docker.io/library/debian:bookworm-slim\nFROM ${BASE}\n',
         {"BASE": "127.0.0.1:5000/base/debian:v1"}, ["127.0.0.1:5000/base/debian:v1"]),
        ("ARG REG=r.example ARG2=x\nFROM ${REG}/a:${TAG:-1}\n", {}, ["r.example/a:1"]),
        ("FROM reg/a${SUFFIX:+-slim}:1\n", {"SUFFIX": "1"}, ["reg/a-slim:1"]),
        ("FROM reg/a${SUFFIX:+-$SUFFIX}:1\n", {"SUFFIX": "slim"}, None),  # nested: unknown
        ("FROM reg/a:1\nARG TOOLS=reg/t:2\nCOPY --from=$TOOLS /x /y\n", {}, None),  # stage ARG
        ("FROM reg/a:1\nCOPY --from=$TOOLS /x /y\n", {"TOOLS": "reg/t:2"}, ["reg/a:1", "reg/t:2"]),
        ("FROM $BASE\n", {"BASE": ""}, None),
    ],
)  # fmt: skip
def test_base_images_expand_build_args_and_arg_defaults(
    text: str, args: dict[str, str], expected: list[str] | None
) -> None:
    assert base_images(text, args) == expected


def test_logical_lines_join_continuations_and_drop_comments() -> None:
    assert logical_lines("# c\n\nRUN a \\\n  && b\nCOPY x y\n") == ["RUN a  && b", "COPY x y"]


REPO = parse_repository("127.0.0.1:5000/team/app")


@pytest.mark.parametrize(
    ("bases", "cache", "expected"),
    [
        (["127.0.0.1:5000/base/deb:1"], None, {"127.0.0.1:5000": "team/app"}),
        # a base elsewhere: the builder keeps its own settings for every registry
        (["127.0.0.1:5000/base/deb:1", "docker.io/library/golang:1"], None, {}),
        (["golang:1"], None, {}),
        ([], None, {}),
        (None, None, {}),
        (["127.0.0.1:5000/base:1"], "cache.example/c",
         {"cache.example": "c", "127.0.0.1:5000": "team/app"}),
        (["golang:1"], "cache.example/c", {"cache.example": "c"}),
        (["not a reference!"], None, {}),
    ],
)  # fmt: skip
def test_builder_registries(
    bases: list[str] | None, cache: str | None, expected: dict[str, str]
) -> None:
    cache_ref = parse_repository(cache) if cache else None
    assert builder_registries(REPO, cache_ref, bases) == expected


def test_from_arguments_names_the_arg_that_chooses_each_base() -> None:
    text = (
        "ARG BASE=reg/a:1\nARG TOOLS=reg/t:2\nARG V=3\n"
        "FROM --platform=$BUILDPLATFORM ${TOOLS} AS tools\n"
        "FROM $BASE\nFROM reg/c:${V}\nFROM ${NONE:-reg/d:4}\n"
    )
    assert from_arguments(text) == {"reg/t:2": "TOOLS", "reg/a:1": "BASE"}
