"""Which version to issue: the next tag, the first candidate, and the lockfile's floor.

The floor is the set of tags the lockfile records or recorded for the repository:
ocirel never issues one of them again, whatever the registry still lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ocirel.errors import TagConflictError, VersionError
from ocirel.reference import Reference
from ocirel.versioning import Scheme, check_explicit_tag, is_floating

if TYPE_CHECKING:
    from ocirel.registry import Registry


def next_tag(
    registry: Registry, repo: Reference, scheme: Scheme, known: Iterable[str] = ()
) -> tuple[str, list[str]]:
    """The next version of ``repo`` under ``scheme``, and the tags it was computed from.

    ``known`` are the tags the lockfile records or recorded for ``repo`` (the floor):
    the next version is above them too, whatever the registry still lists.
    """
    tags = registry.list_tags(repo)
    return scheme.next_tag({*tags, *known}), tags


def lost_versions(known: Iterable[str], tags: Iterable[str]) -> list[str]:
    """The tags the lockfile knows that the registry no longer lists."""
    listed = set(tags)
    return sorted(t for t in set(known) if t not in listed)


def lost_warning(repository: str, lost: Iterable[str]) -> str:
    lost = list(lost)
    it = "it" if len(lost) == 1 else "them"
    return (
        f"the lockfile records {repository}:{', '.join(lost)} but the registry no longer "
        f"has {it} (deleted?); ocirel never issues {it} again, and the next version is "
        f"above {it}"
    )


def raised_floor(current: str | None, tag: str, scheme: Scheme) -> str:
    """The floor after recording ``tag``: the higher of the two under ``scheme``; a tag
    of another scheme never lowers a floor of this one."""
    highest = latest_version([t for t in (current, tag) if t is not None], scheme)
    return highest or current or tag


def latest_version(tags: Iterable[str], scheme: Scheme) -> str | None:
    """The highest tag of ``scheme`` among ``tags``, or None."""
    versions = [(v, t) for t in tags if (v := scheme.parse(t)) is not None]
    return max(versions)[1] if versions else None


def first_candidate(
    scheme: Scheme,
    existing: Iterable[str],
    explicit: str | None,
    floating: Iterable[str],
    known: Iterable[str] = (),
) -> str:
    """The first tag to try. ``existing`` are the registry's tags, ``known`` the tags
    the lockfile records or recorded (the floor)."""
    existing, known = list(existing), set(known)
    if explicit is not None:
        _check_against_floor(scheme, explicit, known)
        return check_explicit_tag(explicit, existing, floating)
    candidate = scheme.next_tag({*existing, *known})
    if is_floating(candidate, floating):  # only possible with an odd prefix
        raise TagConflictError(f"the next version {candidate!r} would be a floating tag")
    return candidate


def _check_against_floor(scheme: Scheme, explicit: str, known: set[str]) -> None:
    version = scheme.parse(explicit)
    floor = latest_version(known, scheme)
    floor_version = scheme.parse(floor) if floor is not None else None
    if explicit in known or (
        version is not None and floor_version is not None and version <= floor_version
    ):
        raise VersionError(
            f"tag {explicit!r} was already issued, or is below the highest version the "
            f"lockfile recorded ({floor or explicit}); ocirel never issues a version twice",
            hint="choose a higher --tag, or drop --tag to get the next version",
        )


@dataclass
class Floor:
    """One run's floor: the lockfile's tags for the repository, and the one warning
    about versions the lockfile knows and the registry has lost."""

    repository: str
    known: frozenset[str]
    warn: Callable[[str], None]
    _warned: bool = field(default=False, init=False)

    def above(self, registry_tags: Iterable[str]) -> set[str]:
        """The registry's tags plus the floor; warn (once) about lost versions."""
        registry_tags = set(registry_tags)
        lost = lost_versions(self.known, registry_tags)
        if lost and not self._warned:
            self._warned = True
            self.warn(lost_warning(self.repository, lost))
        return registry_tags | self.known
