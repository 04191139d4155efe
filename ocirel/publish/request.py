"""What one publish is asked to do: :class:`PublishRequest`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocirel.errors import ConfigError
from ocirel.reference import LayoutTarget, Reference
from ocirel.settings import BuildOptions, PublishOptions
from ocirel.versioning import FLOATING_TAGS, Scheme

_PUBLISH_DEFAULTS, _BUILD_DEFAULTS = PublishOptions(), BuildOptions()


@dataclass(frozen=True)
class PublishRequest:
    """One publish: what to build and where (this run's options) and how (the settings).

    :meth:`from_options` builds one from the settings groups; the defaults here are
    theirs, for callers (tests) that build a request by hand.
    """

    context: Path
    #: a registry repository, or an OCI image layout directory (``--image oci:PATH``)
    repository: Reference | LayoutTarget
    name: str
    lockfile: Path
    scheme: Scheme
    containerfile: Path | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    explicit_tag: str | None = None
    floating: frozenset[str] = FLOATING_TAGS
    max_attempts: int = _PUBLISH_DEFAULTS.max_attempts
    settle_seconds: float = _PUBLISH_DEFAULTS.settle_seconds
    # how long a new tag may answer 404 (read-after-write lag)
    verify_timeout: float = _PUBLISH_DEFAULTS.verify_timeout
    build_timeout: float = _BUILD_DEFAULTS.build_timeout
    push_timeout: float = _PUBLISH_DEFAULTS.push_timeout
    keep_image: bool = _BUILD_DEFAULTS.keep_image
    dry_run: bool = False
    explain: bool = False
    timestamp: int | None = None
    always_new_version: bool = False
    cache_repo: str | None = None
    no_cache: bool = False
    #: the platforms to build for: none (the builder's default), one, or an index of several
    platforms: tuple[str, ...] = ()

    @property
    def read_only(self) -> bool:
        """A dry run or an explanation: nothing is pushed, tagged or recorded."""
        return self.dry_run or self.explain

    @property
    def registry_repository(self) -> Reference:
        """The registry repository; only the registry publishers ask for it."""
        if isinstance(self.repository, LayoutTarget):
            raise ConfigError(f"{self.repository.name} is an OCI layout, not a registry")
        return self.repository

    @classmethod
    def from_options(
        cls, publish: PublishOptions, build: BuildOptions, **run: Any
    ) -> PublishRequest:
        """A request from the settings groups; ``run`` holds this run's own options
        (``context``, ``repository``, ``name``, ``explicit_tag``, ``dry_run``, …)."""
        return cls(
            lockfile=publish.lockfile, scheme=publish.version_scheme(),
            floating=publish.floating(), max_attempts=publish.max_attempts,
            settle_seconds=publish.settle_seconds, verify_timeout=publish.verify_timeout,
            push_timeout=publish.push_timeout, build_timeout=build.build_timeout,
            keep_image=build.keep_image, **run,
        )  # fmt: skip
