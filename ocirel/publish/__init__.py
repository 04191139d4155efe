"""The publish use case: build, push under the next unique version tag, record.

Collaborators (builder, registry, clock, output) are passed in, so the flow can be
tested with real parts or with stand-ins without patching. Modules:

* ``request`` — :class:`PublishRequest`, what to publish;
* ``outcome`` — :class:`PublishResult` and its outcome
  (``Published | Reused | Explained | Planned``);
* ``versions`` — the next tag, the first candidate, the lockfile's floor;
* ``unchanged`` — the latest version read back, and the decision to reuse it;
* ``claim`` — the race-safe tag claim and the checks of a tag this run wrote;
* ``rider`` — work that rides along the claim (the build record, pushed while the
  tag settles);
* ``job`` — what both publishers share (build, decision, record) and the run frame;
* ``layout`` — :class:`LayoutPublisher`, for builders that export an OCI layout;
* ``selfpush`` — :class:`SelfPushPublisher`, for builders that push by themselves;
* ``multiarch`` — :class:`MultiPlatformPublisher`, several ``--platform`` builds
  pushed as one OCI index (``index``: the index, the emulation check, the comparison).
* ``intolayout`` — :class:`OciLayoutPublisher`, into an OCI layout directory
  (``--image oci:PATH``) instead of a registry.

:func:`make_publisher` picks the publisher from the builder's declared ``delivery``
(and ``multi_platform``, when two or more platforms are asked for).

How ``publish`` keeps two publishers from taking the same tag
--------------------------------------------------------------
The distribution API has no conditional tag write. If the builder pushed straight to
the candidate tag, the window between "the tag is absent" and "the tag is written"
would be the whole blob upload — seconds — and two jobs would routinely both win.
So ocirel splits the push:

1. the builder writes the image into a private OCI layout (``push --digestfile`` to
   ``oci:DIR``); success is exit code 0 *and* a valid digest file that matches the
   layout;
2. ocirel stamps the OCI labels (version, revision, source) into the image config,
   uploads the blobs and puts the manifest **by digest** (no tag yet);
3. ocirel claims the tag: ``HEAD`` tag → 404, then immediately ``PUT`` the manifest
   bytes at the tag (milliseconds apart), then waits a settle period longer than
   that HEAD→PUT gap (four times it, at least ``settle_seconds``) and checks that the
   tag resolves to our digest. A publisher that overwrote us must have sent its PUT
   within its own HEAD→PUT gap of our PUT, so the check sees it and we move to the
   next version (docs/reliability.md, item 25, describes the residual window);
4. only then is the lockfile written.

A registry that refuses to overwrite tags (immutable tags) turns step 3 into a
real compare-and-swap: its rejection is handled like a lost race. A builder that
pushes by itself (docker) cannot split its push: see ``selfpush``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ocirel.backends.base import Backend, BuildEnv
from ocirel.gitinfo import SourceInfo
from ocirel.publish.intolayout import OciLayoutPublisher
from ocirel.publish.job import Job, Say, quiet
from ocirel.publish.layout import LayoutPublisher
from ocirel.publish.multiarch import MultiPlatformPublisher
from ocirel.publish.outcome import (
    Explained,
    Outcome,
    Planned,
    Published,
    PublishResult,
    Reused,
)
from ocirel.publish.request import PublishRequest
from ocirel.publish.selfpush import SelfPushPublisher

if TYPE_CHECKING:
    from ocirel.publish.rider import Attacher
    from ocirel.registry import Registry

from ocirel.errors import ConfigError
from ocirel.reference import LayoutTarget

Publisher = LayoutPublisher | SelfPushPublisher | OciLayoutPublisher | MultiPlatformPublisher


def make_publisher(
    request: PublishRequest,
    builder: Backend,
    build_env: BuildEnv,
    *,
    registry_factory: Callable[[], Registry],
    source_factory: Callable[[], SourceInfo] = SourceInfo,
    say: Say = quiet,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    warn: Say | None = None,
    on_new_version: Callable[[], None] | None = None,
    stage: Say = quiet,
    attacher: Attacher | None = None,
) -> Publisher:
    """The publisher for ``builder``'s delivery, ready to :meth:`run`.

    ``say`` gets progress, ``warn`` warnings (default: ``say("warning: …")``);
    ``sleep`` and ``clock`` are injected so tests need not wait; ``on_new_version``
    hears, once, that the build is a new version about to be pushed; ``stage`` the name
    of each stage as it starts (build, compare, export, push, verify, lockfile, record);
    ``attacher`` pushes the build record while the tag settles
    (:mod:`ocirel.publish.rider`).
    """
    job = Job(request, builder, build_env, registry_factory, source_factory, say, sleep,
              clock, warn, on_new_version, stage, attacher)  # fmt: skip
    if len(request.platforms) > 1:
        if isinstance(request.repository, LayoutTarget):
            raise ConfigError(
                f"a multi-platform image cannot be published into an OCI layout yet "
                f"({request.repository.name})",
                hint="publish it to a registry, or give one --platform",
            )
        if builder.delivery == "push" or not builder.multi_platform:
            raise ConfigError(
                f"{builder.name} cannot publish a multi-platform image "
                f"({', '.join(request.platforms)}): ocirel needs each platform's image as an "
                "OCI layout to index them and claim the tag on the index",
                hint="use buildah or podman (--backend buildah), or give one --platform",
            )
        return MultiPlatformPublisher(job, builder)
    if builder.delivery == "push":
        if isinstance(request.repository, LayoutTarget):
            raise ConfigError(
                f"{builder.name} pushes by itself and cannot write an OCI layout "
                f"({request.repository.name})",
                hint="publish into an OCI layout with buildah or podman (--backend)",
            )
        return SelfPushPublisher(job, builder)
    if isinstance(request.repository, LayoutTarget):
        return OciLayoutPublisher(job, builder)
    return LayoutPublisher(job, builder)


__all__ = [
    "Explained",
    "LayoutPublisher",
    "MultiPlatformPublisher",
    "OciLayoutPublisher",
    "Outcome",
    "Planned",
    "PublishRequest",
    "PublishResult",
    "Published",
    "Publisher",
    "Reused",
    "SelfPushPublisher",
    "make_publisher",
]
