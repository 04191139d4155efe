"""Unchanged content: is the build the latest version again? The comparison and the
decision, made before anything is pushed.

The latest version's manifest and config are fetched while the builder works
(:func:`fetch_previous`); :func:`decide` compares them with the build's config
(layer diff-ids and runtime configuration, ignoring the release labels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocirel.compare import differences
from ocirel.errors import DigestMismatchError, UnsupportedManifestError
from ocirel.oci import Digest, ImageConfig, ImageManifest, not_comparable, platform_of
from ocirel.publish.request import PublishRequest
from ocirel.publish.versions import latest_version
from ocirel.reference import Reference

if TYPE_CHECKING:
    from ocirel.registry import Registry


@dataclass(frozen=True)
class Decision:
    """Whether this build becomes a new version, and why."""

    new_version: bool
    reasons: tuple[str, ...]
    previous_tag: str | None = None
    previous_digest: Digest | None = None
    previous_platform: str | None = None


@dataclass(frozen=True)
class Previous:
    """The latest version, and why it cannot be compared with the build (if so)."""

    tag: str
    manifest: ImageManifest | None
    config: ImageConfig
    skipped: str | None


#: the decision when the builder cannot show the local image's config
NOT_COMPARED = Decision(True, ("the builder cannot show the image's layers; comparison skipped",))


def decide(
    request: PublishRequest,
    previous: Previous | None,
    local_config: ImageConfig,
    say: Callable[[str], None],
) -> Decision:
    """A new version, or the latest one again (same layers and configuration)?"""
    req = request
    if req.explicit_tag is not None:
        return Decision(True, (f"--tag {req.explicit_tag} was given",))
    if req.always_new_version:
        return Decision(True, ("--always-new-version was given",))
    if previous is None:
        return Decision(True, (f"no earlier {req.scheme.name} version in {req.repository.name}",))
    tag, manifest, config = previous.tag, previous.manifest, previous.config
    if previous.skipped is not None or manifest is None:
        note = f"{tag} {previous.skipped}; comparison skipped"
        if not req.explain:
            say(note)
        return Decision(True, (note,))
    reasons = differences(local_config, config)
    if reasons:
        return Decision(True, (f"the build differs from {tag}:", *reasons), tag)
    return Decision(
        False,
        (f"the build has the same layers and configuration as {tag} "
         f"({manifest.digest}); reusing it",),
        tag, manifest.digest, platform_of(config),
    )  # fmt: skip


def fetch_previous(
    registry: Registry, request: PublishRequest, tags: Iterable[str]
) -> Previous | None:
    """The latest version's manifest and config, fetched while the builder works; None
    when there is none, or when no comparison is wanted (``--tag``,
    ``--always-new-version``)."""
    if request.explicit_tag is not None or request.always_new_version:
        return None
    latest = latest_version(tags, request.scheme)
    return None if latest is None else read_previous(registry, request.registry_repository, latest)


def read_previous(registry: Registry, repo: Reference, tag: str) -> Previous:
    """``tag``'s manifest and config, or why they cannot be compared with the build
    (an index, an artifact, a schema 1 manifest, a config that is not JSON)."""
    try:
        manifest = registry.get_manifest(repo.with_tag(tag))
    except UnsupportedManifestError as exc:
        return Previous(tag, None, {}, exc.reason)
    except DigestMismatchError as exc:  # bytes that do not hash to the claimed digest
        return Previous(tag, None, {}, f"is a manifest ocirel cannot read ({exc})")
    skipped = not_comparable(manifest)
    if skipped is not None:
        return Previous(tag, manifest, {}, skipped)
    try:
        return Previous(tag, manifest, registry.get_config(repo, manifest), None)
    except UnsupportedManifestError as exc:  # a config that is not JSON
        return Previous(tag, manifest, {}, exc.reason)
