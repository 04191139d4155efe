"""Work that rides along the tag claim: the build record, pushed while the tag settles.

A publish that is given an :class:`Attacher` calls :meth:`Attacher.start` once the
image is at the candidate tag (the layout publisher: right after the claim's ``PUT``;
the self-pushing one: once the builder's push resolves), before the settle wait.
``start`` begins the work in a background thread and hands back a :class:`Ride`;
the publish keeps it on the main thread and calls :meth:`Ride.finish` exactly once
before it returns, whatever happens:

* ``kept=True`` after the lockfile names the ride's digest (the claim was won): the
  ride reports as the record did when it was pushed after the publish (success on
  stderr, a failure as a warning, never a failed publish);
* ``kept=False`` when the claim was lost (a rival's tag, the next version tried) or
  the publish failed after the ride started: the record may be attached to a digest
  that no tag names. Such an orphan is harmless (see docs/architecture.md).

The thread hands its outcome over through ``finish`` only; it sets nothing the
publish reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ocirel.gitinfo import SourceInfo
    from ocirel.lockfile import LockEntry
    from ocirel.registry import Registry


class Ride(Protocol):
    """Work started by :meth:`Attacher.start`, running in the background."""

    def finish(self, *, kept: bool) -> None:
        """Wait for the work and report it (``kept``: its image is the one recorded)."""
        ...


class Attacher(Protocol):
    """Starts the work that rides along a tag claim (the build record)."""

    def start(self, registry: Registry, entry: LockEntry, source: SourceInfo) -> Ride:
        """Begin, in the background, the work for ``entry`` (the lockfile entry a won
        claim writes); must not block."""
        ...
