"""Version schemes: the next unique tag from whatever tags a repository already has."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ocirel.errors import InvalidReferenceError, OcirelError, VersionError
from ocirel.versioning import (
    FLOATING_TAGS,
    CalverScheme,
    CounterScheme,
    SemverScheme,
    check_explicit_tag,
    is_floating,
    make_scheme,
)

SIG = "sha256-" + "ab" * 32 + ".sig"
ATT = "sha256-" + "cd" * 32 + ".att"
SBOM = "sha256-" + "ef" * 32 + ".sbom"
REFERRER = "sha256-" + "01" * 32
FOREIGN = ["latest", SIG, ATT, SBOM, REFERRER, "main", "master", "feature-x", "pr-42", "x"]

# -- counter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], "v1"),
        (["v1"], "v2"),
        (["v1", "v2", "v3"], "v4"),
        (["v3", "v1", "v10", "v2"], "v11"),  # numeric, not lexical, and order-free
        (["v9", "v10"], "v11"),
        (["v7"], "v8"),  # gaps are not filled
        (["v0"], "v1"),
        (["v01", "v007"], "v1"),  # leading zeros are not versions of this scheme
        (["v02", "v1"], "v2"),
        (["V5", "v1"], "v2"),  # the prefix is case-sensitive
        (["v1.2.3", "v2.0.0", "v1"], "v2"),  # semver tags are another scheme
        (["2026.01.05", "v1"], "v2"),  # calver tags too
        (["v1-rc1", "v2a", "vv3", "v-4", "v+5", " v6", "v7 "], "v1"),
        ([*FOREIGN, "v4"], "v5"),
        (FOREIGN, "v1"),
        (["v" + "9" * 19], "v1"),  # absurdly long numbers are not versions
    ],
)
def test_counter_default_prefix(existing: list[str], expected: str) -> None:
    assert make_scheme("counter").next_tag(existing) == expected


@pytest.mark.parametrize(
    ("prefix", "existing", "expected"),
    [
        ("release-", [], "release-1"),
        ("release-", ["release-1", "release-2", "v9"], "release-3"),
        ("r", ["r5", "v9", "rr6"], "r6"),
        ("build.", ["build.41", "build.042"], "build.42"),
        ("", [], "1"),
        ("", ["1", "2", "10"], "11"),
        ("", ["v5", "3", "1.2.3", "2026.01.05", "07"], "4"),
        ("", FOREIGN, "1"),
        ("v", ["v1", "v2"], "v3"),
    ],
)
def test_counter_custom_prefix(prefix: str, existing: list[str], expected: str) -> None:
    assert make_scheme("counter", prefix=prefix).next_tag(existing) == expected


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [("v1", (1,)), ("v0", (0,)), ("v123", (123,)), ("v01", None), ("latest", None), ("v", None)],
)
def test_counter_parse(tag: str, parsed: tuple[int, ...] | None) -> None:
    assert CounterScheme().parse(tag) == parsed


def test_counter_ignores_input_order() -> None:
    tags = ["v3", "latest", "v1", SIG, "v12", "v2"]
    results = {make_scheme("counter").next_tag(p) for p in itertools.permutations(tags)}
    assert results == {"v13"}


def test_counter_accepts_any_iterable_once() -> None:
    assert make_scheme("counter").next_tag(iter(["v1", "v2"])) == "v3"


# -- semver ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bump", "existing", "expected"),
    [
        # first version per bump: the bump applied to 0.0.0
        ("patch", [], "0.0.1"),
        ("minor", [], "0.1.0"),
        ("major", [], "1.0.0"),
        ("patch", FOREIGN, "0.0.1"),
        # bumps from the highest release
        ("patch", ["1.4.2"], "1.4.3"),
        ("minor", ["1.4.2"], "1.5.0"),
        ("major", ["1.4.2"], "2.0.0"),
        ("patch", ["1.4.2", "1.10.0", "1.9.9"], "1.10.1"),  # numeric order
        ("minor", ["0.9.0", "0.10.3"], "0.11.0"),
        ("major", ["9.0.0", "10.1.1"], "11.0.0"),
        ("patch", ["2.0.0", "1.99.99"], "2.0.1"),
        # pre-releases and build metadata are ignored
        ("patch", ["1.0.0", "2.0.0-rc.1"], "1.0.1"),
        ("patch", ["1.0.0", "1.0.1-alpha"], "1.0.1"),
        ("minor", ["1.0.0", "1.1.0+build.5"], "1.1.0"),
        ("patch", ["3.0.0-beta+exp.sha.5114f85"], "0.0.1"),
        # not semver: leading zeros, missing parts, extra parts, prefixes
        ("patch", ["01.2.3", "1.02.3", "1.2.03", "1.2", "1.2.3.4", "v9.9.9", "1.2.3 "], "0.0.1"),
        ("patch", [*FOREIGN, "v3", "2026.01.05", "1.2.3"], "1.2.4"),
    ],
)
def test_semver_no_prefix(bump: str, existing: list[str], expected: str) -> None:
    assert make_scheme("semver", bump=bump).next_tag(existing) == expected


@pytest.mark.parametrize(
    ("bump", "existing", "expected"),
    [
        ("patch", [], "v0.0.1"),
        ("minor", [], "v0.1.0"),
        ("major", [], "v1.0.0"),
        ("patch", ["v1.4.2"], "v1.4.3"),
        ("minor", ["v1.4.2", "v1.3.9"], "v1.5.0"),
        ("major", ["v1.4.2"], "v2.0.0"),
        ("patch", ["v1.4.2", "9.9.9"], "v1.4.3"),  # unprefixed tags are another scheme
        ("patch", ["v1.4.2", "v2.0.0-rc.1", "v1.5.0+meta"], "v1.4.3"),
        ("patch", ["v1", "v2", "latest", SIG], "v0.0.1"),  # counter tags are not semver
    ],
)
def test_semver_with_prefix(bump: str, existing: list[str], expected: str) -> None:
    assert make_scheme("semver", prefix="v", bump=bump).next_tag(existing) == expected


def test_semver_default_bump_is_patch() -> None:
    assert make_scheme("semver").next_tag(["1.2.3"]) == "1.2.4"
    assert SemverScheme().next_tag(["1.2.3"]) == "1.2.4"


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("1.2.3", (1, 2, 3)),
        ("0.0.0", (0, 0, 0)),
        ("10.20.30", (10, 20, 30)),
        ("1.2.3-rc.1", None),
        ("1.2.3+b", None),
        ("v1.2.3", None),
        ("1.2", None),
    ],
)
def test_semver_parse(tag: str, parsed: tuple[int, ...] | None) -> None:
    assert SemverScheme().parse(tag) == parsed


# -- calver ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "existing", "expected"),
    [
        (dt.date(2026, 5, 17), [], "2026.05.17"),
        (dt.date(2026, 1, 5), [], "2026.01.05"),  # zero padding
        (dt.date(2026, 12, 31), [], "2026.12.31"),
        (dt.date(2026, 1, 5), ["2026.01.05"], "2026.01.05.1"),
        (dt.date(2026, 1, 5), ["2026.01.05", "2026.01.05.1"], "2026.01.05.2"),
        (dt.date(2026, 1, 5), ["2026.01.05.3", "2026.01.05", "2026.01.05.1"], "2026.01.05.4"),
        (dt.date(2026, 1, 5), ["2026.01.05.9", "2026.01.05.10"], "2026.01.05.11"),
        (dt.date(2026, 1, 5), ["2026.01.05.2"], "2026.01.05.3"),
        # other dates are ignored, whatever their suffix
        (dt.date(2026, 1, 5), ["2026.01.04", "2026.01.04.7", "2025.01.05"], "2026.01.05"),
        (dt.date(2026, 1, 5), ["2027.01.05.3", "2026.01.08"], "2026.01.05"),  # far ahead: foreign
        # a tag from tomorrow is clock skew between runners: continue it, never sort below
        (dt.date(2026, 1, 5), ["2026.01.06", "2027.01.05.3"], "2026.01.06.1"),
        # not this scheme: unpadded, .0 suffix, leading zero suffix, foreign
        (dt.date(2026, 1, 5), ["2026.1.5", "2026.01.5", "26.01.05"], "2026.01.05"),
        (dt.date(2026, 1, 5), ["2026.01.05.0", "2026.01.05.01"], "2026.01.05"),
        (dt.date(2026, 1, 5), ["2026.01.05-rc1", "2026.01.05.x", "v2026.01.05"], "2026.01.05"),
        (dt.date(2026, 1, 5), [*FOREIGN, "v3", "1.2.3"], "2026.01.05"),
        # invalid dates are ignored, never crash
        (dt.date(2026, 1, 5), ["2026.13.40", "2026.02.30", "2026.00.01"], "2026.01.05"),
        (dt.date(2026, 1, 5), ["0000.01.01", "9999.99.99.9"], "2026.01.05"),
        (dt.date(2024, 2, 29), ["2024.02.29"], "2024.02.29.1"),  # leap day is a date
        (dt.date(2025, 3, 1), ["2025.02.29.4"], "2025.03.01"),
    ],
)
def test_calver(today: dt.date, existing: list[str], expected: str) -> None:
    assert make_scheme("calver", today=today).next_tag(existing) == expected


@pytest.mark.parametrize(
    ("prefix", "existing", "expected"),
    [
        ("v", [], "v2026.01.05"),
        ("v", ["v2026.01.05", "2026.01.05.4"], "v2026.01.05.1"),
        ("release-", ["release-2026.01.05.1"], "release-2026.01.05.2"),
    ],
)
def test_calver_with_prefix(prefix: str, existing: list[str], expected: str) -> None:
    scheme = make_scheme("calver", prefix=prefix, today=dt.date(2026, 1, 5))
    assert scheme.next_tag(existing) == expected


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("2026.01.05", (2026, 1, 5, 0)),
        ("2026.01.05.3", (2026, 1, 5, 3)),
        ("2026.13.40", None),
        ("2026.02.30", None),
        ("2026.01.05.0", None),
    ],
)
def test_calver_parse(tag: str, parsed: tuple[int, ...] | None) -> None:
    assert CalverScheme(today=dt.date(2026, 1, 5)).parse(tag) == parsed


def test_calver_defaults_to_today_utc() -> None:
    before = dt.datetime.now(dt.UTC).date()
    tag = make_scheme("calver").next_tag([])
    after = dt.datetime.now(dt.UTC).date()
    assert tag in {f"{before:%Y.%m.%d}", f"{after:%Y.%m.%d}"}


# -- every scheme: the next tag is new and recognised ------------------------------------


@pytest.mark.parametrize(
    ("name", "prefix", "bump"),
    [
        ("counter", None, "patch"),
        ("counter", "", "patch"),
        ("counter", "build-", "patch"),
        ("semver", None, "patch"),
        ("semver", "v", "minor"),
        ("semver", "", "major"),
        ("calver", None, "patch"),
        ("calver", "v", "patch"),
    ],
)
def test_next_tag_is_new_and_of_the_scheme(name: str, prefix: str | None, bump: str) -> None:
    scheme = make_scheme(name, prefix=prefix, bump=bump, today=dt.date(2026, 1, 5))
    existing: list[str] = list(FOREIGN)
    seen: list[tuple[int, ...]] = []
    for _ in range(5):
        tag = scheme.next_tag(existing)
        assert tag not in existing
        parsed = scheme.parse(tag)
        assert parsed is not None, f"{tag} is not recognised by its own scheme"
        assert all(parsed > earlier for earlier in seen)
        seen.append(parsed)
        existing.append(tag)
    assert scheme.name == name


# -- explicit tags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    ["latest", "LATEST", "Latest", "main", "Master", "HEAD", "canary", "stable", "edge", "dev",
     "nightly", "NIGHTLY"],
)  # fmt: skip
def test_check_explicit_tag_refuses_floating_tags(tag: str) -> None:
    with pytest.raises(VersionError, match="floating"):
        check_explicit_tag(tag, [])


@pytest.mark.parametrize(("tag", "floating"), [("qa", ["QA"]), ("Prod-EU", ["prod-eu"])])
def test_check_explicit_tag_custom_floating_list(tag: str, floating: list[str]) -> None:
    with pytest.raises(VersionError, match="floating"):
        check_explicit_tag(tag, [], floating)
    # the list passed in is the whole list (callers merge in the defaults)
    assert check_explicit_tag("latest", [], floating) == "latest"


@pytest.mark.parametrize(
    ("tag", "existing"),
    [("v1", ["v1", "v2"]), ("1.2.3", ["latest", "1.2.3"]), ("hotfix", ["hotfix"])],
)
def test_check_explicit_tag_refuses_existing_tags(tag: str, existing: list[str]) -> None:
    with pytest.raises(VersionError, match="already exists") as info:
        check_explicit_tag(tag, existing)
    assert info.value.hint


@pytest.mark.parametrize("tag", ["", ".v1", "-v1", "v/1", "v 1", "v:1", "t" * 129, "v1\u00e9"])
def test_check_explicit_tag_refuses_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidReferenceError):
        check_explicit_tag(tag, [])


@pytest.mark.parametrize(
    ("tag", "existing"),
    [
        ("v3", ["v1", "v2"]),
        ("V1", ["v1"]),  # registries compare tags case-sensitively
        ("release-2026", ["latest"]),
        ("latest-2026", []),
        ("t" * 128, []),
    ],
)
def test_check_explicit_tag_accepts_new_tags(tag: str, existing: list[str]) -> None:
    assert check_explicit_tag(tag, existing) == tag


@pytest.mark.parametrize(
    ("tag", "floating"),
    [("latest", True), ("LaTeSt", True), ("stable", True), ("v1", False), ("latest1", False)],
)
def test_is_floating(tag: str, floating: bool) -> None:
    assert is_floating(tag) is floating


def test_documented_floating_tags_are_in_the_list() -> None:
    assert {"latest", "head", "canary", "stable", "edge", "main", "master", "dev", "nightly"} <= (
        FLOATING_TAGS
    )


# -- make_scheme errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "datever"}, "unknown version scheme"),
        ({"name": ""}, "unknown version scheme"),
        ({"name": "Counter"}, "unknown version scheme"),
        ({"name": "semver", "bump": "huge"}, "unknown bump"),
        ({"name": "semver", "bump": "Patch"}, "unknown bump"),
        ({"name": "counter", "prefix": "-v"}, "invalid version prefix"),
        ({"name": "counter", "prefix": ".v"}, "invalid version prefix"),
        ({"name": "counter", "prefix": "v/"}, "invalid version prefix"),
        ({"name": "counter", "prefix": "v:"}, "invalid version prefix"),
        ({"name": "counter", "prefix": "v "}, "invalid version prefix"),
        ({"name": "counter", "prefix": "a" * 33}, "invalid version prefix"),
        ({"name": "semver", "prefix": "-"}, "invalid version prefix"),
        ({"name": "calver", "prefix": "@"}, "invalid version prefix"),
    ],
)
def test_make_scheme_errors(kwargs: dict[str, str], fragment: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(VersionError, match=fragment):
        make_scheme(name, **kwargs)  # type: ignore[arg-type]


def test_version_errors_are_ocirel_errors() -> None:
    with pytest.raises(OcirelError):
        make_scheme("nope")


@pytest.mark.parametrize(
    ("name", "cls"),
    [("counter", CounterScheme), ("semver", SemverScheme), ("calver", CalverScheme)],
)
def test_make_scheme_builds_the_named_scheme(name: str, cls: type) -> None:
    scheme = make_scheme(name, today=dt.date(2026, 1, 5))
    assert isinstance(scheme, cls)
    assert scheme.name == name


@pytest.mark.parametrize("prefix", ["", "v", "a" * 32, "release_", "x.y-z"])
def test_make_scheme_accepts_valid_prefixes(prefix: str) -> None:
    assert make_scheme("counter", prefix=prefix).next_tag([]) == f"{prefix}1"


@pytest.mark.parametrize("bump", ["huge", "", "PATCH"])
def test_semver_scheme_rejects_unknown_bump(bump: str) -> None:
    with pytest.raises(VersionError, match="unknown bump"):
        SemverScheme(bump=bump)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["-v", "a" * 33])
def test_scheme_classes_validate_prefix(prefix: str) -> None:
    today = dt.date(2026, 1, 5)
    with pytest.raises(VersionError, match="invalid version prefix"):
        CounterScheme(prefix=prefix)
    with pytest.raises(VersionError, match="invalid version prefix"):
        SemverScheme(prefix=prefix)
    with pytest.raises(VersionError, match="invalid version prefix"):
        CalverScheme(today=today, prefix=prefix)


# -- round two: item 43 (issue 9.5): no overflow hands back an existing tag ---------------

_EDGES = sorted({n for k in range(1, 21) for n in (10**k - 1, 10**k, 10**k + 1)} | {1, 2, 3})


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (["2026.01.05", "2026.01.05.999999999"], "2026.01.05.1000000000"),
        (
            ["2026.01.05", "2026.01.05.999999999", "2026.01.05.1000000000"],
            "2026.01.05.1000000001",
        ),
        (["2026.01.05", "2026.01.05.1000000000"], "2026.01.05.1000000001"),
        (["2026.01.05", "2026.01.05.99999999999999999"], "2026.01.05.100000000000000000"),
    ],
)
def test_r43_calver_serial_past_nine_digits_is_never_an_existing_tag(
    existing: list[str], expected: str
) -> None:
    tag = make_scheme("calver", today=dt.date(2026, 1, 5)).next_tag(existing)
    assert tag not in existing
    assert tag == expected


def test_r43_calver_serial_past_the_width_is_a_version_error() -> None:
    scheme = make_scheme("calver", today=dt.date(2026, 1, 5))
    existing = ["2026.01.05", "2026.01.05." + "9" * 18]
    with pytest.raises(VersionError, match="18 digits"):
        scheme.next_tag(existing)


def _edge_tags(name: str, prefix: str, numbers: list[int]) -> list[str]:
    if name == "counter":
        return [f"{prefix}{n}" for n in numbers]
    if name == "semver":
        return [f"{prefix}{a}.{b}.{c}" for a, b, c in itertools.product(numbers[:3], repeat=3)]
    return [f"{prefix}2026.01.05"] + [f"{prefix}2026.01.05.{n}" for n in numbers]


@given(
    name=st.sampled_from(["counter", "semver", "calver"]),
    prefix=st.sampled_from(["", "v", "r-"]),
    bump=st.sampled_from(["patch", "minor", "major"]),
    numbers=st.lists(st.sampled_from(_EDGES) | st.integers(0, 10**25), min_size=1, max_size=6),
)
@hsettings(max_examples=300, deadline=None)
def test_r43_next_tag_never_equals_an_existing_tag_whatever_the_width(
    name: str, prefix: str, bump: str, numbers: list[int]
) -> None:
    scheme = make_scheme(name, prefix=prefix, bump=bump, today=dt.date(2026, 1, 5))
    existing = _edge_tags(name, prefix, numbers)
    try:
        tag = scheme.next_tag(existing)
    except VersionError:
        return  # past the width: refused, never a reused tag
    assert tag not in existing
    assert scheme.parse(tag) is not None
