"""What both publishers share for one run: the request, the builder and the
collaborators, the local image, the floor, the unchanged-content decision, and the
lockfile record. :func:`run` is the frame around either publisher.

Threads: :meth:`Job.prepare` runs in the background while the builder works; it sets
nothing on the job and hands its findings over as a :class:`Prepared` value. The build
record rides along the tag claim (:mod:`ocirel.publish.rider`): started once the image
is at the candidate tag, finished (joined) by :meth:`Job.record` or, when the publish
fails, by :func:`run`.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from ocirel import lockfile
from ocirel.backends.base import BuildEnv, Builder, BuildSpec, StaleCache
from ocirel.errors import LockfileError, OcirelError
from ocirel.gitinfo import SourceInfo
from ocirel.oci import OCI_INDEX, Digest, ImageConfig, platform_of
from ocirel.publish.background import Background
from ocirel.publish.index import check_emulation, same_platform
from ocirel.publish.labels import build_labels, rfc3339
from ocirel.publish.outcome import Explained, Planned, Published, PublishResult, Reused
from ocirel.publish.request import PublishRequest
from ocirel.publish.unchanged import Decision, Previous, decide, fetch_previous
from ocirel.publish.versions import Floor, first_candidate, raised_floor

if TYPE_CHECKING:  # the registry client imports requests: loaded in the background
    from ocirel.publish.claim import TagClaim
    from ocirel.publish.rider import Attacher, Ride
    from ocirel.registry import Registry

Say = Callable[[str], None]


def quiet(_message: str) -> None:
    pass


@dataclass(frozen=True)
class Prepared:
    """The registry work that does not depend on the image, done while the builder works:
    the client, the git facts, the repository's tags and the latest version to compare."""

    registry: Registry
    source: SourceInfo
    tags: frozenset[str]
    previous: Previous | None


class Flow(Protocol):
    """A publisher: how the image reaches the registry (see ``layout`` and ``selfpush``)."""

    def plan(self, tag: str, source: SourceInfo) -> tuple[str, ...]:
        """``--dry-run``: the steps a publish under ``tag`` would take."""
        ...

    def publish(self) -> PublishResult: ...


@dataclass
class Job:
    """One publish's shared state and steps. The fields below ``warn`` belong to the
    main thread."""

    request: PublishRequest
    builder: Builder
    build_env: BuildEnv
    registry_factory: Callable[[], Registry]
    source_factory: Callable[[], SourceInfo] = SourceInfo
    say: Say = quiet
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    warn: Say | None = None  # default: ``say("warning: …")``
    #: called once the build is known to be a new version to push (not for --explain)
    on_new_version: Callable[[], None] | None = None
    #: hears the name of each stage as it starts (build, compare, export, push, verify,
    #: lockfile, record): the CLI's live display
    stage: Say = quiet
    #: the build record's pusher, started while the tag settles (None: no record)
    attacher: Attacher | None = None
    floor: Floor = field(init=False)
    # The build is referred to by the image ID it returns. Named only when the user
    # keeps it (or when the builder must have a name, e.g. to push by itself).
    local_name: str = field(init=False)
    local_image: str = field(init=False)
    _built: bool = field(default=False, init=False)
    _cleanup: Background[None] | None = field(default=None, init=False)
    #: the built image and its config, read in the background (handed over by result())
    _config: tuple[str, Background[ImageConfig | None]] | None = field(default=None, init=False)
    #: records started for a claimed digest, each finished (joined) once, main thread only
    _rides: list[tuple[Digest, Ride]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        repo = self.request.repository
        warn = self.warn or (lambda text: self.say(f"warning: {text}"))
        self.floor = Floor(repo.name, frozenset(), warn)
        self.local_name = f"localhost/ocirel-build/{repo.last_component}:{secrets.token_hex(6)}"
        self.local_image = self.local_name

    # ------------------------------------------------------------ registry side

    def prepare(self) -> Prepared:
        """Registry client, git facts, tag list, push token, latest version: safe to run
        in a background thread (it reads the job, never writes it)."""
        repo = self.request.registry_repository
        registry = self.registry_factory()
        source = self.source_factory()
        tags = set(registry.list_tags(repo))
        with contextlib.suppress(OcirelError):
            registry.warm_up(repo, push=True)  # the push token, cached for later
        previous = fetch_previous(registry, self.request, tags)
        return Prepared(registry, source, frozenset(tags), previous)

    def claims(self, registry: Registry) -> TagClaim:
        from ocirel.publish.claim import TagClaim  # noqa: PLC0415 - only when pushing

        return TagClaim(registry, self.request, self.sleep, self.clock)

    def with_floor(self, registry_tags: frozenset[str] | set[str]) -> set[str]:
        """The registry's tags plus the lockfile's floor (warning once about lost ones)."""
        return self.floor.above(registry_tags)

    def first_candidate(self, tags: set[str]) -> str:
        req = self.request
        return first_candidate(req.scheme, tags, req.explicit_tag, req.floating, self.floor.known)

    # ------------------------------------------------------------- builder side

    def spec(self, *, named: bool) -> BuildSpec:
        req = self.request
        return BuildSpec(
            context=req.context,
            image=self.local_name if named else None,
            containerfile=req.containerfile,
            build_args=req.build_args,
            target=req.target,
            layers=not req.no_cache,
            timestamp=req.timestamp,
            cache_repo=req.cache_repo,
            # several platforms: the multi-platform publisher sets each build's own
            platform=req.platforms[0] if len(req.platforms) == 1 else None,
        )

    def created(self) -> str | None:
        """The ``created`` label of a reproducible build, else None."""
        req = self.request
        return rfc3339(req.timestamp) if req.timestamp is not None else None

    def labels(
        self, tag: str, source: SourceInfo, config: ImageConfig
    ) -> tuple[tuple[str, str], ...]:
        created = self.created() or config.get("created")
        return build_labels(tag, source, created if isinstance(created, str) else None)

    def build(self, spec: BuildSpec) -> None:
        self._built = True
        timeout = self.request.build_timeout
        image = self.builder.build(spec, self.build_env, timeout=timeout) or self.local_name
        if spec.timestamp is not None and spec.layers:
            # The layer cache ignores --timestamp: a step cached by a build with another
            # timestamp would carry that time, and the digest would depend on what the
            # storage held. Check, and rebuild without the cache when it happened. The
            # image's config, needed next, is read meanwhile.
            config = Background(lambda: self.builder.image_config(image, self.build_env))
            stale = self.builder.stale_cache(image, spec.timestamp, self.build_env)
            if stale:
                with contextlib.suppress(Exception):
                    config.result()  # not this image's: the rebuild makes another
                image = self._rebuild(spec, stale) or self.local_name
            else:
                self._config = (image, config)
        self.local_image = image
        if spec.platform is not None and spec.layers:
            self._check_cached_platform(spec)

    def _check_cached_platform(self, spec: BuildSpec) -> None:
        """A layer cache keyed without the platform (buildah 1.28, two platforms from the
        same base, e.g. ``FROM scratch``) can hand ``spec.platform``'s build a step made
        for another: then build again without the cache."""
        config = self.builder.image_config(self.local_image, self.build_env)
        built = platform_of(config) if config is not None else spec.platform
        if built is None or spec.platform is None or same_platform(spec.platform, built):
            return
        self.say(f"the layer cache gave a {built} step to the {spec.platform} build; "
                 f"building {spec.platform} again without the layer cache")  # fmt: skip
        timeout = self.request.build_timeout
        rebuilt = self.builder.build(replace(spec, layers=False), self.build_env, timeout=timeout)
        self.local_image = rebuilt or self.local_name

    def _rebuild(self, spec: BuildSpec, stale: StaleCache) -> str | None:
        """Build again without the layer cache, then drop the stale cached steps."""
        self.say(f"{stale.reason}; building again without the layer cache")
        image_id = self.builder.build(
            replace(spec, layers=False), self.build_env, timeout=self.request.build_timeout
        )
        # the rebuild cached its own steps; the builder would keep finding the stale
        # ones first, so they go (a failed removal costs only time)
        with contextlib.suppress(OcirelError):
            problem = self.builder.drop_stale(stale, self.build_env)
            if problem:
                self.say(problem)
        return image_id

    def local_config(self) -> ImageConfig | None:
        """The built image's config (read while the stale-cache check ran, if it did)."""
        if self._config is not None and self._config[0] == self.local_image:
            return self._config[1].result()
        return self.builder.image_config(self.local_image, self.build_env)

    def _needs_removal(self) -> bool:
        """An unnamed image is the next build's layer cache and stays; a name given for
        this run only (or an image built with --no-cache) goes."""
        req = self.request
        return not req.keep_image and (self.local_image == self.local_name or req.no_cache)

    def _remove_local_image(self) -> None:
        if self._needs_removal():
            with contextlib.suppress(OcirelError):
                self.builder.remove(self.local_image, self.build_env)

    def remove_local_image_in_background(self) -> None:
        """The registry holds the image now: drop the local copy while the tag settles."""
        if self._cleanup is None:
            self._cleanup = Background(self._remove_local_image)

    def clean_up(self) -> None:
        """At the end of a run: the local image removed (or its removal waited for)."""
        if self._cleanup is not None:
            with contextlib.suppress(OcirelError):
                self._cleanup.result()
        elif self._built:
            self._remove_local_image()

    # ----------------------------------------------------------------- results

    def decide(self, previous: Previous | None, local_config: ImageConfig) -> Decision:
        decision = decide(self.request, previous, local_config, self.say)
        if decision.new_version and not self.request.explain and self.on_new_version:
            self.on_new_version()
        return decision

    def settle_without_push(
        self, decision: Decision, source: SourceInfo, platforms: Mapping[str, str] | None = None
    ) -> PublishResult:
        """``--explain``, or unchanged content: nothing is pushed. ``platforms``: those of
        the reused index (None: a single image)."""
        req = self.request
        if req.explain:
            tag = decision.previous_tag if not decision.new_version else None
            return PublishResult(
                name=req.name, repository=req.repository.name, tag=tag or "",
                digest=decision.previous_digest, backend=self.builder.name,
                outcome=Explained(new_version=decision.new_version),
                explanation=decision.reasons, lockfile=str(req.lockfile),
            )  # fmt: skip
        assert decision.previous_tag is not None
        assert decision.previous_digest is not None
        self.say(decision.reasons[0])
        return self.record(
            decision.previous_tag, decision.previous_digest, decision.previous_platform or "",
            source, decision=decision, outcome=Reused(), platforms=platforms,
        )  # fmt: skip

    def record(
        self,
        tag: str,
        digest: Digest,
        platform: str,
        source: SourceInfo,
        *,
        decision: Decision,
        outcome: Published | Reused,
        platforms: Mapping[str, str] | None = None,
    ) -> PublishResult:
        """Write the lockfile entry (and raise the floor): the last step of a publish.
        ``platforms`` given: ``digest`` is the index over them (``platform`` unused)."""
        self.stage("lockfile")
        req = self.request
        entry = self.entry(tag, digest, platform, source, platforms=platforms)
        repository, scheme = req.repository.name, req.scheme

        def change(lock: lockfile.Lockfile) -> lockfile.Lockfile:
            floor = raised_floor(lock.issued.get(repository), tag, scheme)
            return lock.with_entry(entry).with_issued(repository, floor)

        try:
            lockfile.update(req.lockfile, change)
        except LockfileError as exc:  # say what the registry now holds, and what to do
            raise LockfileError(
                f"{exc}; {entry.reference} is in the "
                f"{'layout' if repository.startswith('oci:') else 'registry'} but not recorded",
                hint=f"fix that and publish again: an unchanged build reuses {tag} without pushing",
            ) from None
        self.finish_rides(kept=digest)
        return PublishResult(
            name=req.name, repository=req.repository.name, tag=tag, digest=digest,
            backend=self.builder.name, platforms=dict(entry.platforms), outcome=outcome,
            source=source, lockfile=str(req.lockfile), explanation=decision.reasons,
        )  # fmt: skip

    def entry(
        self,
        tag: str,
        digest: Digest,
        platform: str,
        source: SourceInfo,
        *,
        platforms: Mapping[str, str] | None = None,
    ) -> lockfile.LockEntry:
        """The lockfile entry of ``tag`` at ``digest`` (what :meth:`record` writes, and
        what the build record started during the claim names). ``platforms`` given:
        ``digest`` is the index over them (``platform`` unused)."""
        req = self.request
        return lockfile.LockEntry(
            name=req.name, repository=req.repository.name, tag=tag, digest=digest,
            platforms=dict(platforms) if platforms else {platform: digest},
            source=source.lock_fields(), media_type=OCI_INDEX if platforms else None,
        )  # fmt: skip

    # ------------------------------------------------------ the build record

    def start_ride(
        self,
        registry: Registry,
        tag: str,
        digest: Digest,
        platform: str,
        source: SourceInfo,
        *,
        platforms: Mapping[str, str] | None = None,
    ) -> None:
        """The image is at ``tag`` and the claim settles: start its build record."""
        if self.attacher is not None:
            entry = self.entry(tag, digest, platform, source, platforms=platforms)
            self._rides.append((digest, self.attacher.start(registry, entry, source)))

    def finish_rides(self, kept: Digest | None) -> None:
        """Join every record started, each told whether its digest is the one recorded
        (``kept``; None: the publish failed). Runs on the main thread."""
        rides, self._rides = self._rides, []
        if rides and kept is not None:
            self.stage("record")  # the live display: waiting for the record, if at all
        for digest, ride in rides:
            ride.finish(kept=digest == kept)

    def drop_rides(self) -> None:
        """Forget the records under way without waiting (Ctrl-C): each is pushed by a
        daemon thread, and a record that makes it is harmless (:meth:`finish_rides`)."""
        self._rides = []

    def planned(self, tag: str, steps: tuple[str, ...]) -> PublishResult:
        req = self.request
        return PublishResult(
            name=req.name, repository=req.repository.name, tag=tag, digest=None,
            backend=self.builder.name, outcome=Planned(steps), lockfile=str(req.lockfile),
        )  # fmt: skip


def run(
    job: Job, flow: Flow, list_tags: Callable[[], Iterable[str]] | None = None
) -> PublishResult:
    """The frame of every publish: the lockfile checked first, ``--dry-run`` planned,
    else ``flow`` publishes and the local image is cleaned up whatever happens.
    ``list_tags`` lists the destination's tags (default: the registry's)."""
    req = job.request
    repo = req.repository
    # A lockfile that cannot be updated must stop us before anything is pushed.
    job.floor.known = frozenset(lockfile.load(req.lockfile).known_tags(repo.name))
    if not (req.dry_run or req.explain):  # and one that cannot be written, too
        lockfile.check_writable(req.lockfile)
    if req.platforms and not req.dry_run:  # foreign RUN steps without an emulator
        check_emulation(req)
    if req.dry_run:
        source = job.source_factory()
        if list_tags is None:
            list_tags = lambda: job.registry_factory().list_tags(req.registry_repository)  # noqa: E731
        existing = job.with_floor(set(list_tags()))
        tag = job.first_candidate(existing)
        return job.planned(tag, flow.plan(tag, source))
    try:
        return flow.publish()
    except KeyboardInterrupt:
        job.drop_rides()  # interrupted: the records' (daemon) threads are not waited for
        raise
    finally:
        try:
            job.finish_rides(kept=None)  # a failed publish: join what it started
        finally:
            job.clean_up()
