"""Version schemes and the next unique tag. Pure: no I/O, no clock unless passed in.

A scheme recognises its own tags and ignores every other tag in the repository
(``latest``, ``sha256-<hex>.sig``, branch names, another scheme's tags), so a
foreign tag never breaks the computation. The referrers tags that hold build records
(``sha256-<64 hex>``, :func:`is_referrers_tag`) are never versions, whatever the
prefix. Order of the input never matters.

Schemes:

* ``counter`` (default): ``v1``, ``v2``, … — prefix configurable (``--prefix``).
* ``semver``: ``1.4.2`` or, with a prefix, ``v1.4.2``; ``--bump patch|minor|major``
  applied to the highest release version (pre-releases and build metadata are
  ignored). The first version is the bump applied to ``0.0.0``.
* ``calver``: ``YYYY.MM.DD`` of today (UTC); ``YYYY.MM.DD.N`` when that date is taken.
  A tag dated up to one day after today (another runner's clock is ahead) is
  respected: the next tag continues that date, so versions never sort backwards.
  Dates further ahead are not taken for clock skew and are ignored.

Numbers (counters, semver parts, calver serials) of more than 18 digits are not
versions (they are ignored like any foreign tag); a next version that would need one
is a :class:`VersionError`. Every scheme parses and writes the same width, so the
next version is never a tag that already exists.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from ocirel.errors import VersionError
from ocirel.reference import validate_tag

SchemeName = Literal["counter", "semver", "calver"]
Bump = Literal["patch", "minor", "major"]
SCHEMES: tuple[SchemeName, ...] = ("counter", "semver", "calver")
BUMPS: tuple[Bump, ...] = ("patch", "minor", "major")

#: Tags that name a moving target. ocirel never publishes to them.
FLOATING_TAGS = frozenset(
    {
        "latest",
        "head",
        "canary",
        "stable",
        "edge",
        "main",
        "master",
        "trunk",
        "dev",
        "develop",
        "development",
        "nightly",
        "next",
        "current",
        "release",
        "prod",
        "production",
        "staging",
        "test",
        "unstable",
        "beta",
        "alpha",
    }
)

_PREFIX_RE = re.compile(r"[A-Za-z0-9_.-]{0,32}")
_NUMBER = r"(0|[1-9][0-9]{0,17})"
_MAX_NUMBER = 10**18 - 1  # larger numbers are not versions of the scheme (foreign tags)
CLOCK_SKEW_DAYS = 1
_REFERRERS_TAG_RE = re.compile(r"sha256-[0-9a-f]{64}(\.[A-Za-z0-9_.-]+)?")


def referrers_tag(digest: str) -> str:
    """The tag of the referrers tag schema for ``digest``: ``sha256-<hex>``."""
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}-{hex_part}"


def is_referrers_tag(tag: str) -> bool:
    """Whether ``tag`` is an artifact tag (referrers index, ``.sig``, ``.att``), never a
    version."""
    return _REFERRERS_TAG_RE.fullmatch(tag) is not None


class Scheme(Protocol):
    """What every version scheme offers."""

    @property
    def name(self) -> SchemeName: ...

    def parse(self, tag: str) -> tuple[int, ...] | None:
        """The sortable version of ``tag``, or None when ``tag`` is not of this scheme."""
        ...

    def next_tag(self, existing: Iterable[str]) -> str:
        """The next tag, strictly after every tag of this scheme in ``existing``."""
        ...


def check_prefix(prefix: str) -> str:
    if not _PREFIX_RE.fullmatch(prefix) or prefix[:1] in (".", "-"):
        raise VersionError(
            f"invalid version prefix {prefix!r}: up to 32 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
    return prefix


@dataclass(frozen=True)
class CounterScheme:
    prefix: str = "v"
    name: SchemeName = "counter"

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def parse(self, tag: str) -> tuple[int, ...] | None:
        if is_referrers_tag(tag):
            return None
        match = re.fullmatch(re.escape(self.prefix) + _NUMBER, tag)
        return (int(match.group(1)),) if match else None

    def next_tag(self, existing: Iterable[str]) -> str:
        highest = max((v[0] for v in map(self.parse, existing) if v is not None), default=0)
        return f"{self.prefix}{_bounded(highest + 1)}"


@dataclass(frozen=True)
class SemverScheme:
    prefix: str = ""
    bump: Bump = "patch"
    name: SchemeName = "semver"

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        if self.bump not in BUMPS:
            raise VersionError(f"unknown bump {self.bump!r}; choose one of {', '.join(BUMPS)}")

    def parse(self, tag: str) -> tuple[int, ...] | None:
        if is_referrers_tag(tag):
            return None
        pattern = re.escape(self.prefix) + rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
        match = re.fullmatch(pattern, tag)
        return tuple(int(g) for g in match.groups()) if match else None

    def next_tag(self, existing: Iterable[str]) -> str:
        major, minor, patch = max(
            (v for v in map(self.parse, existing) if v is not None), default=(0, 0, 0)
        )
        if self.bump == "major":
            major, minor, patch = major + 1, 0, 0
        elif self.bump == "minor":
            minor, patch = minor + 1, 0
        else:
            patch += 1
        return f"{self.prefix}{_bounded(major)}.{_bounded(minor)}.{_bounded(patch)}"


@dataclass(frozen=True)
class CalverScheme:
    """``YYYY.MM.DD`` for ``today``; ``.N`` suffixes once the date is taken."""

    today: _dt.date
    prefix: str = ""
    name: SchemeName = "calver"

    def __post_init__(self) -> None:
        check_prefix(self.prefix)

    def parse(self, tag: str) -> tuple[int, ...] | None:
        if is_referrers_tag(tag):
            return None
        pattern = (
            re.escape(self.prefix) + r"([0-9]{4})\.([0-9]{2})\.([0-9]{2})(?:\.([1-9][0-9]{0,17}))?"
        )
        match = re.fullmatch(pattern, tag)
        if not match:
            return None
        year, month, day, serial = match.groups()
        try:
            _dt.date(int(year), int(month), int(day))
        except ValueError:
            return None
        return (int(year), int(month), int(day), int(serial or 0))

    def next_tag(self, existing: Iterable[str]) -> str:
        horizon = self.today + _dt.timedelta(days=CLOCK_SKEW_DAYS)
        limit = (horizon.year, horizon.month, horizon.day)
        versions = [v for v in map(self.parse, existing) if v is not None and v[:3] <= limit]
        today = (self.today.year, self.today.month, self.today.day)
        day = max([today, *(v[:3] for v in versions)])  # never sort below a newer tag
        base = f"{self.prefix}{day[0]:04d}.{day[1]:02d}.{day[2]:02d}"
        serials = [v[3] for v in versions if v[:3] == day]
        if not serials:
            return base
        return f"{base}.{_bounded(max(serials) + 1)}"


def _bounded(number: int) -> int:
    if number > _MAX_NUMBER:
        raise VersionError(
            "the next version number would have more than 18 digits; start a new scheme "
            "or prefix (--prefix)"
        )
    return number


def make_scheme(
    name: str,
    *,
    prefix: str | None = None,
    bump: str = "patch",
    today: _dt.date | None = None,
) -> Scheme:
    """Build a scheme by name; ``prefix=None`` means the scheme's default prefix."""
    if name == "counter":
        return CounterScheme(prefix="v" if prefix is None else prefix)
    if name == "semver":
        if bump not in BUMPS:
            raise VersionError(f"unknown bump {bump!r}; choose one of {', '.join(BUMPS)}")
        return SemverScheme(prefix=prefix or "", bump=bump)
    if name == "calver":
        return CalverScheme(today=today or _dt.datetime.now(_dt.UTC).date(), prefix=prefix or "")
    raise VersionError(f"unknown version scheme {name!r}; choose one of {', '.join(SCHEMES)}")


def is_floating(tag: str, floating: Iterable[str] = FLOATING_TAGS) -> bool:
    return tag.lower() in {t.lower() for t in floating}


def check_explicit_tag(
    tag: str, existing: Iterable[str], floating: Iterable[str] = FLOATING_TAGS
) -> str:
    """Validate a tag given with ``--tag``: well-formed, not floating, not taken."""
    validate_tag(tag)
    if is_referrers_tag(tag):
        raise VersionError(
            f"{tag!r} has the shape of a referrers tag (sha256-<hex>) and cannot be a version",
            hint="registries without the referrers API keep attached artifacts under it",
        )
    if is_floating(tag, floating):
        raise VersionError(
            f"{tag!r} is a floating tag and cannot be a version",
            hint="floating tags move; publish a unique tag and pin deployments by digest",
        )
    if tag in set(existing):
        raise VersionError(
            f"tag {tag!r} already exists in the repository; ocirel never overwrites a tag",
            hint="choose another --tag, or drop --tag to get the next version",
        )
    return tag
