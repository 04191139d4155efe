"""``Warning`` (12) and ``Link`` (2) headers.

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

import time

import pytest

from ocirel.transport import (
    parse_link_next,
    parse_warnings,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    Response,
    tags_page,
)
from tests.unit.transport.helpers import (
    TAGS,
    alice,
    get,
)

# ------------------------------------------------------------------ item 12


def test_r12_warning_headers_shown_never_acted_on(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    shown: list[str] = []
    transport = make_transport(on_warning=shown.append)
    warning = '299 - "this registry is deprecated, move to r2", 299 - "second note"'
    fake.route("GET", TAGS, Response(200, {"Warning": warning}, tags_page(["v1"]).body))
    for _ in range(2):
        reply = get(transport, fake.address)
        assert reply.status == 200
        assert reply.json()["tags"] == ["v1"]
    assert shown == ["this registry is deprecated, move to r2", "second note"]
    assert len(fake.requests(TAGS)) == 2


def test_r12_warning_text_is_redacted(fake: FakeRegistry, make_transport: MakeTransport) -> None:
    shown: list[str] = []
    transport = make_transport(
        on_warning=shown.append, credentials=lambda r, p: alice("warn-s3cret")
    )
    fake.require_basic("alice", "warn-s3cret")
    fake.route("GET", TAGS, Response(200, {"Warning": '299 - "hello warn-s3cret"'}, b"{}"))
    get(transport, fake.address)
    assert shown == ["hello ***"]


@pytest.mark.parametrize(
    ("value", "texts"),
    [
        ('299 - "Deprecated"', ["Deprecated"]),
        ('299 registry.example "a \\"quoted\\" word"', ['a \\"quoted\\" word']),
        ('299 - "one", 299 - "two"', ["one", "two"]),
        ("free text without a code", ["free text without a code"]),
    ],
)
def test_r12_parse_warnings(value: str, texts: list[str]) -> None:
    assert parse_warnings(value) == texts


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ('</v2/a/tags/list?n=2&last=b>; rel="next"', "/v2/a/tags/list?n=2&last=b"),
        ("</v2/a/tags/list?last=b>; rel=next", "/v2/a/tags/list?last=b"),
        (
            '<https://r.example/v2/a/tags/list?last=b>;rel="next"',
            "https://r.example/v2/a/tags/list?last=b",
        ),
        ('</p>; rel="prev", </n>; rel="next"', "/n"),
        ('</n>; rel="next last"', "/n"),
        ('</n>; title="x"; REL="Next"', "/n"),
        ('</p>; rel="prev"', None),
        ('</p>; rel="nextpage"', None),
        (None, None),
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_link_next(value: str | None, target: str | None) -> None:
    assert parse_link_next(value) == target


@pytest.mark.parametrize(
    "value", ["<" * 65_000, "<a>; " + " " * 65_000, '<a>; rel="prev", ' * 4_000, "<" * 30_000 + ">"]
)
def test_r02_pathological_link_headers_parse_in_linear_time(value: str) -> None:
    started = time.monotonic()
    parse_link_next(value)
    assert time.monotonic() - started < 0.5
