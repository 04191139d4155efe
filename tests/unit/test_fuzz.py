"""Property tests: arbitrary input gives a value or a clean OcirelError, never a crash.

Covers the parsers that read foreign text — image references, ``WWW-Authenticate``,
``Link``, ``Retry-After``, registry bodies, the lockfile — and the version schemes
(any tag list → a valid, new tag above every tag of the scheme).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ocirel import lockfile, reference
from ocirel.errors import (
    InvalidReferenceError,
    LockfileError,
    OcirelError,
    RegistryError,
    VersionError,
)
from ocirel.reference import MAX_NAME_LENGTH, MAX_TAG_LENGTH
from ocirel.registry.tags import _tags_from  # the tag-list body parser
from ocirel.transport import (
    Reply,
    parse_link_next,
    parse_retry_after,
    parse_warnings,
    parse_www_authenticate,
    raise_for_status,
)
from ocirel.versioning import make_scheme

# OCIREL_FUZZ_EXAMPLES=5000 for a long hunt; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("OCIREL_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text that looks like the thing being parsed reaches deeper than random unicode.
REFERENCE_ALPHABET = string.ascii_letters + string.digits + "._-/:@%[]" + "ÄΩ "
reference_like = st.one_of(
    st.text(),
    st.text(alphabet=REFERENCE_ALPHABET, max_size=80),
    st.builds(
        lambda host, path, tag, digest: f"{host}{path}{tag}{digest}",
        st.sampled_from(
            ["", "localhost:5000/", "reg.example.com/", "[::1]:5000/", "docker.io/", "A.b/"]
        ),
        st.text(alphabet=string.ascii_lowercase + "._-/", min_size=1, max_size=300),
        st.sampled_from(["", ":v1", ":" + "t" * 128, ":" + "t" * 129, ":.x", ":"]),
        st.sampled_from(
            ["", "@sha256:" + "a" * 64, "@sha256:" + "A" * 64, "@sha256:abc", "@md5:" + "a" * 32]
        ),
    ),
)


@FUZZ
@given(reference_like)
@example("localhost:5000/team/../app")
@example("reg.example.com/team%2Fapp:v1")
@example("reg.example.com/" + "a/" * 200 + "b")
def test_reference_parse_returns_valid_reference_or_clean_error(text: str) -> None:
    try:
        ref = reference.parse(text)
    except InvalidReferenceError:
        return
    components = ref.repository.split("/")
    assert all(c and c == c.lower() and c not in (".", "..") for c in components)
    assert "%" not in ref.repository
    assert len(ref.name) <= MAX_NAME_LENGTH
    assert ref.tag is None or len(ref.tag) <= MAX_TAG_LENGTH
    assert ref.digest is None or reference.is_valid_digest(ref.digest)
    assert reference.parse(str(ref)) == ref  # normalized form parses to itself


auth_like = st.one_of(
    st.text(),
    st.builds(
        lambda scheme, params: scheme + " " + ",".join(params),
        st.sampled_from(["Bearer", "Basic", "bearer", "Negotiate", ""]),
        st.lists(
            st.builds(
                lambda k, v, quote: f"{k}={quote}{v}{quote}",
                st.sampled_from(["realm", "service", "scope", "error", "Realm", "x-y", "", "="]),
                st.text(alphabet=string.printable, max_size=40),
                st.sampled_from(['"', ""]),
            ),
            max_size=5,
        ),
    ),
)


@FUZZ
@given(auth_like)
def test_parse_www_authenticate_never_crashes(value: str) -> None:
    challenge = parse_www_authenticate(value)
    if challenge is not None:
        assert challenge.scheme in ("basic", "bearer")
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in challenge.params.items())
        if challenge.scheme == "bearer":
            assert challenge.params["realm"]


link_like = st.one_of(
    st.none(),
    st.text(),
    st.lists(
        st.builds(
            lambda target, rel: f"<{target}>; rel={rel}",
            st.text(alphabet=string.printable.replace(">", ""), max_size=40),
            st.sampled_from(
                ['"next"', "next", '"prev"', '"next last"', '"nextpage"', '""', "NEXT"]
            ),
        ),
        max_size=4,
    ).map(", ".join),
)


@FUZZ
@given(link_like)
def test_parse_link_next_never_crashes(value: str | None) -> None:
    target = parse_link_next(value)
    if target is not None:
        assert value is not None
        assert f"<{target}" in value or target in value
        assert ">" not in target


@FUZZ
@given(
    st.one_of(
        st.none(),
        st.text(),
        st.integers(min_value=-(10**30), max_value=10**400).map(str),
        st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
            lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")
        ),
    ),
    st.floats(min_value=0, max_value=4e9),
)
@example("²", 0.0)
@example("Mon, 01 Jan 0001 00:00:00 -0000", 0.0)
def test_parse_retry_after_never_crashes(value: str | None, now: float) -> None:
    wait = parse_retry_after(value, now=now)
    assert wait is None or wait >= 0


@FUZZ
@given(st.text())
def test_parse_warnings_never_crashes(value: str) -> None:
    assert all(isinstance(text, str) for text in parse_warnings(value))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"errors": json_values}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"tags": json_values}).map(lambda v: json.dumps(v).encode()),
)


@FUZZ
@given(st.integers(min_value=100, max_value=599), st.sampled_from(["GET", "HEAD", "PUT"]), bodies)
def test_raise_for_status_always_raises_a_registry_error(
    status: int, method: str, body: bytes
) -> None:
    reply = Reply(status, {}, body, "https://reg.example.com/v2/a/tags/list?token=q", method)
    with pytest.raises(RegistryError) as caught:  # any other exception fails the test
        raise_for_status(reply, ok=())
    assert caught.value.status == status
    assert "token=q" not in str(caught.value)


@FUZZ
@given(bodies)
def test_tag_list_bodies_give_tags_or_a_registry_error(body: bytes) -> None:
    reply = Reply(200, {}, body, "https://reg.example.com/v2/a/tags/list", "GET")
    try:
        tags = _tags_from(reply, reference.parse("reg.example.com/a"))
    except RegistryError:
        return
    assert isinstance(tags, list)
    assert all(isinstance(t, str) for t in tags)


# ------------------------------------------------------------ version schemes

TODAY = dt.date(2024, 5, 17)


@st.composite
def scheme_tags(draw: st.DrawFn) -> str:
    n = st.integers(min_value=0, max_value=10**17)  # 10**18 - 1: see test_version_at_the_cap
    return draw(
        st.one_of(
            st.builds(lambda p, v: f"{p}{v}", st.sampled_from(["v", "", "release-", "V"]), n),
            st.builds(lambda p, a, b, c: f"{p}{a}.{b}.{c}", st.sampled_from(["", "v"]), n, n, n),
            st.builds(
                lambda d, s: f"{d:%Y.%m.%d}" + (f".{s}" if s else ""),
                st.dates(min_value=TODAY - dt.timedelta(days=3), max_value=TODAY),
                st.integers(min_value=0, max_value=999_999_998),
            ),
            st.sampled_from(["latest", "main", "sha256-" + "a" * 64 + ".sig", "v", "1.2", "v01"]),
            st.text(max_size=20),
        )
    )


tag_lists = st.lists(scheme_tags(), max_size=25)
SCHEMES = [
    ("counter", {}),
    ("counter", {"prefix": ""}),
    ("counter", {"prefix": "release-"}),
    ("semver", {}),
    ("semver", {"prefix": "v", "bump": "minor"}),
    ("semver", {"bump": "major"}),
    ("calver", {"today": TODAY}),
    ("calver", {"today": TODAY, "prefix": "r"}),
]


@FUZZ
@given(st.sampled_from(SCHEMES), tag_lists)
def test_next_tag_is_valid_new_and_above_every_tag_of_the_scheme(
    spec: tuple[str, dict[str, Any]], tags: list[str]
) -> None:
    name, options = spec
    scheme = make_scheme(name, **options)
    if name == "calver":  # dates beyond the clock-skew window are foreign, see below
        horizon = (TODAY + dt.timedelta(days=1)).timetuple()[:3]
        assume(all((scheme.parse(t) or (0,))[:3] <= horizon for t in tags))
    try:
        tag = scheme.next_tag(tags)
    except VersionError:  # only when the next number would pass the 18-digit cap
        assert any("999999999999999999" in t for t in tags)
        return
    assert reference.validate_tag(tag) == tag
    assert tag not in tags
    mine = scheme.parse(tag)
    assert mine is not None, f"{tag!r} is not a tag of its own scheme"
    for other in tags:
        version = scheme.parse(other)
        if version is not None:
            assert mine > version
    assert scheme.next_tag(list(reversed(tags))) == tag  # order never matters


def test_calver_tag_from_the_future() -> None:
    """A runner whose clock is behind sees a tag from "tomorrow": the next tag continues
    that date instead of sorting below the newest release."""
    scheme = make_scheme("calver", today=TODAY)
    newest = (TODAY + dt.timedelta(days=1)).strftime("%Y.%m.%d")
    tag = scheme.next_tag([newest])
    assert tag not in (newest,)
    assert scheme.parse(tag) > scheme.parse(newest)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("name", "top"),
    [("counter", "v999999999999999999"), ("semver", "1.999999999999999999.0")],
)
def test_version_at_the_cap(name: str, top: str) -> None:
    """The next version after the largest number a scheme reads would not be of the
    scheme (it would be computed again and again): it is refused instead."""
    scheme = make_scheme(name, bump="minor")
    with pytest.raises(VersionError, match="18 digits"):
        scheme.next_tag([top])


# ------------------------------------------------------------------- lockfile

DIGEST = "sha256:" + "d" * 64
entry_like = st.fixed_dictionaries(
    {},
    optional={
        "repository": st.sampled_from(["reg.example.com/team/app", "Reg/App", "", "a/../b"])
        | st.text(max_size=10),
        "tag": st.sampled_from(["v1", "t" * 129, ".x"]) | json_values,
        "digest": st.sampled_from([DIGEST, "sha256:abc"]) | json_values,
        "reference": st.sampled_from([f"reg.example.com/team/app:v1@{DIGEST}"]) | json_values,
        "platforms": st.sampled_from([{"linux/amd64": DIGEST}, {"x": "y"}, []]) | json_values,
        "source": json_values,
        "future": json_values,
    },
)
lock_like = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {
            "schema": st.sampled_from([1, 1.0, True, "1", 2, None]),
            "images": st.dictionaries(
                st.sampled_from(["app", "App", "a b", ""]) | st.text(max_size=6),
                entry_like,
                max_size=3,
            )
            | json_values,
        }
    ).map(json.dumps),
)


@FUZZ
@given(lock_like)
@example(
    '{"schema": 1, "images": {"app": {"repository": "reg.example.com/team/app", "tag": "v1", '
    f'"digest": "{DIGEST}"}}}}'
)
def test_lockfile_loads_gives_a_lockfile_or_a_lockfile_error(text: str) -> None:
    try:
        lock = lockfile.loads(text)
    except LockfileError:
        return
    except OcirelError as exc:  # pragma: no cover - shows which other class leaked
        raise AssertionError(f"{type(exc).__name__} instead of LockfileError: {exc}") from exc
    again = lockfile.loads(lockfile.dumps(lock))
    assert again == lock
    assert lockfile.dumps(again) == lockfile.dumps(lock)
