"""What a publish ended with: :class:`PublishResult` and its :data:`Outcome`.

The outcome is one of four, each carrying only what it has:

* :class:`Published` — a new version was pushed, claimed and recorded;
* :class:`Reused` — the build equals the latest version: that one was recorded;
* :class:`Explained` — ``--explain``: nothing pushed, nothing recorded;
* :class:`Planned` — ``--dry-run``: nothing built.

:meth:`PublishResult.to_json` keeps the ``--json`` fields of the old mode booleans
(``dry_run``, ``unchanged``, ``explain``, ``attempts``, ``plan``) byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocirel.gitinfo import SourceInfo


@dataclass(frozen=True)
class Published:
    """A new version: pushed, its tag claimed (after ``attempts`` tags), recorded."""

    attempts: int


@dataclass(frozen=True)
class Reused:
    """The build equals the latest version: that version is recorded, nothing pushed."""


@dataclass(frozen=True)
class Explained:
    """``--explain``: whether a new version would be pushed; nothing pushed or recorded."""

    new_version: bool


@dataclass(frozen=True)
class Planned:
    """``--dry-run``: the steps a publish would take; nothing built."""

    steps: tuple[str, ...]


Outcome = Published | Reused | Explained | Planned


@dataclass(frozen=True)
class PublishResult:
    name: str
    repository: str
    tag: str
    digest: str | None
    backend: str
    outcome: Outcome
    lockfile: str = ""
    platforms: dict[str, str] = field(default_factory=dict)
    source: SourceInfo = field(default_factory=SourceInfo)
    explanation: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

    @property
    def unchanged(self) -> bool:
        """No new version: the latest one is reused (or, with ``--explain``, would be)."""
        outcome = self.outcome
        return isinstance(outcome, Reused) or (
            isinstance(outcome, Explained) and not outcome.new_version
        )

    @property
    def attempts(self) -> int:
        """Tags tried: 0 when a version was reused; 1 when nothing was pushed."""
        match self.outcome:
            case Published(attempts=attempts):
                return attempts
            case Reused():
                return 0
            case _:
                return 1

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "reference": self.reference,
            "platforms": self.platforms,
            "backend": self.backend,
            "attempts": self.attempts,
            "lockfile": self.lockfile,
            "dry_run": isinstance(self.outcome, Planned),
            "unchanged": self.unchanged,
            "explanation": list(self.explanation),
        }
        if isinstance(self.outcome, Planned):
            data["plan"] = list(self.outcome.steps)
        if isinstance(self.outcome, Explained):
            data["explain"] = True
        return data
