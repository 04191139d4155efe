"""The use cases: publish, next version, tags, digest.

Collaborators (backend, registry, clock, output) are passed in, so the flow can be
tested with real parts or with stand-ins without patching.

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
real compare-and-swap: its rejection is handled like a lost race.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocirel import lockfile
from ocirel.backends.base import Backend, BuildEnv, BuildSpec, LayoutExporter, SelfPusher
from ocirel.compare import differences
from ocirel.errors import (
    DigestMismatchError,
    LockfileError,
    OcirelError,
    RegistryError,
    RegistryNotFoundError,
    TagConflictError,
    UnsupportedManifestError,
    VersionError,
)
from ocirel.gitinfo import SourceInfo
from ocirel.image import read_layout, stamp_labels
from ocirel.oci import (
    LABEL_CREATED,
    LABEL_REVISION,
    LABEL_SOURCE,
    LABEL_VERSION,
    Digest,
    ImageConfig,
    ImageManifest,
    OciImage,
    not_comparable,
    platform_of,
)
from ocirel.reference import Reference
from ocirel.runner import display
from ocirel.settings import BuildOptions, PublishOptions
from ocirel.versioning import FLOATING_TAGS, Scheme, check_explicit_tag, is_floating

if TYPE_CHECKING:  # the registry client imports requests: loaded in the background
    from ocirel.registry import Registry

IMMUTABLE_CODES = frozenset({"TAG_INVALID", "MANIFEST_TAG_IMMUTABLE", "TAG_IMMUTABLE"})
#: read-after-write lag: the first and the longest wait before asking for a new tag again
LAG_FIRST_WAIT = 0.25
LAG_MAX_WAIT = 4.0

Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


_PUBLISH_DEFAULTS, _BUILD_DEFAULTS = PublishOptions(), BuildOptions()


@dataclass(frozen=True)
class PublishRequest:
    """One publish: what to build and where (this run's options) and how (the settings).

    :meth:`from_options` builds one from the settings groups; the defaults here are
    theirs, for callers (tests) that build a request by hand.
    """

    context: Path
    repository: Reference
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


@dataclass(frozen=True)
class Decision:
    """Whether this build becomes a new version, and why."""

    new_version: bool
    reasons: tuple[str, ...]
    previous_tag: str | None = None
    previous_digest: Digest | None = None
    previous_platform: str | None = None


@dataclass(frozen=True)
class PublishResult:
    name: str
    repository: str
    tag: str
    digest: str | None
    backend: str
    platforms: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    source: SourceInfo = field(default_factory=SourceInfo)
    dry_run: bool = False
    plan: tuple[str, ...] = ()
    lockfile: str = ""
    unchanged: bool = False
    explanation: tuple[str, ...] = ()
    explain_only: bool = False

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}" + (f"@{self.digest}" if self.digest else "")

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
            "dry_run": self.dry_run,
            "unchanged": self.unchanged,
            "explanation": list(self.explanation),
        }
        if self.dry_run:
            data["plan"] = list(self.plan)
        if self.explain_only:
            data["explain"] = True
        return data


# ----------------------------------------------------------------- small cases


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


def rfc3339(epoch: int) -> str:
    import datetime as _dt  # noqa: PLC0415

    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_labels(
    tag: str, source: SourceInfo, created: str | None = None
) -> tuple[tuple[str, str], ...]:
    labels = [(LABEL_VERSION, tag)]
    if created:
        labels.append((LABEL_CREATED, created))
    if source.revision:
        labels.append((LABEL_REVISION, source.revision))
    if source.url:
        labels.append((LABEL_SOURCE, source.url))
    return tuple(labels)


# --------------------------------------------------------------------- publish


class _Background:
    """Run ``work`` in a thread now; ``result()`` re-raises its exception here."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = work()
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                self._error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


@dataclass
class Publisher:
    """Runs one ``publish``; see the module docstring for the protocol.

    The registry work that does not depend on the image (auth, tag listing, a push
    token) runs in the background while the builder works. The version label is
    stamped into the exported image once the tag is known, so the build itself does
    not wait for the registry, and a lost race costs a new config, not a rebuild.
    """

    request: PublishRequest
    backend: Backend
    build_env: BuildEnv
    registry_factory: Callable[[], Registry]
    source_factory: Callable[[], SourceInfo] = SourceInfo
    say: Say = _quiet
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    warn: Say | None = None  # default: ``say("warning: …")``

    def __post_init__(self) -> None:
        repo = self.request.repository
        self._known: set[str] = set()  # tags the lockfile records or recorded: the floor
        self._warned = False
        # The build is referred to by the image ID it returns. Named only when the user
        # keeps it (or when the builder must have a name, e.g. to push by itself).
        self.local_name = f"localhost/ocirel-build/{repo.last_component}:{secrets.token_hex(6)}"
        self.local_image = self.local_name
        self._cleanup: _Background | None = None
        self._built = False
        self._previous: _Previous | None = None

    def run(self) -> PublishResult:
        req = self.request
        repo = req.repository
        # A lockfile that cannot be updated must stop us before anything is pushed.
        self._known = lockfile.load(req.lockfile).known_tags(repo.name)
        if not (req.dry_run or req.explain):  # and one that cannot be written, too
            lockfile.check_writable(req.lockfile)
        if req.dry_run:
            self.registry = self.registry_factory()
            self.source = self.source_factory()
            existing = self._with_floor(set(self.registry.list_tags(repo)))
            return self._plan(self._first_candidate(existing))
        try:
            backend = self.backend
            if backend.delivery == "push":
                return self._run_builder_push(backend)
            return self._run_layout(backend)
        finally:
            if self._cleanup is not None:
                with contextlib.suppress(OcirelError):
                    self._cleanup.result()
            elif self._built:
                self._remove_local_image()

    def _run_layout(self, exporter: LayoutExporter) -> PublishResult:
        req, repo = self.request, self.request.repository
        self.say(
            f"building {req.context} with {self.backend.name}; "
            f"listing tags of {repo.name} meanwhile"
        )
        # registry client (and its imports), tag list, push token and git facts: all
        # in the background while the builder works
        background = _Background(lambda: self._prepare(repo))
        if req.explicit_tag is not None:  # a taken or floating --tag fails before building
            self._first_candidate(self._with_floor(background.result()))
        workdir = Path(tempfile.mkdtemp(prefix="ocirel-"))
        try:
            self._build(self._spec())
            tags: set[str] = self._with_floor(background.result())
            image: OciImage | None = None
            local_config = self.backend.image_config(self.local_image, self.build_env)
            if local_config is None:  # the builder cannot show its config: export first
                image = self._export(exporter, workdir / "layout")
                local_config = image.config
            decision = self._decide(local_config)
            if req.explain or not decision.new_version:
                return self._settle_without_push(decision)
            if image is None:
                image = self._export(exporter, workdir / "layout")
            tag = self._first_candidate(tags)
            for attempt in range(1, req.max_attempts + 1):
                stamped = stamp_labels(image, dict(self._labels(tag, image.config)))
                self.say(
                    f"pushing {stamped.manifest.digest} as {repo.name}:{tag}"
                    + (f" (attempt {attempt} of {req.max_attempts})" if attempt > 1 else "")
                )
                self.registry.push_image(repo, stamped)
                self._remove_local_image_in_background()
                try:
                    self._claim(repo, tag, stamped.manifest)
                except TagConflictError as exc:
                    tag = self._next_after_conflict(exc, tag, tags, attempt)
                    continue
                return self._record(
                    tag, stamped.manifest.digest, stamped.platform, attempt, decision
                )
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run_builder_push(self, pusher: SelfPusher) -> PublishResult:
        """Builders that push by themselves (docker): labels go in at build time, so the
        tag is chosen first; the race window is the builder's whole push, so the settle
        period is at least as long as our own push took."""
        req, repo = self.request, self.request.repository
        self.say(f"listing tags of {repo.name}")
        tags = self._with_floor(self._prepare(repo))
        tag = self._first_candidate(tags)
        for attempt in range(1, req.max_attempts + 1):
            created = rfc3339(req.timestamp) if req.timestamp is not None else None
            spec = replace(self._spec(), labels=build_labels(tag, self.source, created))
            self.say(f"building {req.context} with {self.backend.name} for {repo.name}:{tag}")
            self._build(spec)
            if attempt == 1:
                local_config = self.backend.image_config(self.local_image, self.build_env)
                decision = (
                    self._decide(local_config) if local_config is not None
                    else Decision(True, ("the builder cannot show the image's layers; "
                                         "comparison skipped",))
                )  # fmt: skip
                if req.explain or not decision.new_version:
                    return self._settle_without_push(decision)
            ref = repo.with_tag(tag)
            try:
                digest = self._push_and_verify(pusher, ref)
            except TagConflictError as exc:
                tag = self._next_after_conflict(exc, tag, tags, attempt)
                continue
            manifest = self.registry.get_manifest(repo.with_digest(digest))
            self._check_built_config(pusher, repo, digest, manifest)
            config = self.registry.get_config(repo, manifest)
            return self._record(tag, digest, platform_of(config), attempt, decision)
        raise AssertionError("unreachable")  # pragma: no cover

    def _with_floor(self, registry_tags: set[str]) -> set[str]:
        """The registry's tags plus the lockfile's floor; warn (once) about versions the
        lockfile knows and the registry has lost."""
        lost = lost_versions(self._known, registry_tags)
        if lost and not self._warned:
            self._warned = True
            warn = self.warn or (lambda text: self.say(f"warning: {text}"))
            warn(lost_warning(self.request.repository.name, lost))
        return registry_tags | self._known

    def _first_candidate(self, tags: set[str]) -> str:
        req = self.request
        return first_candidate(req.scheme, tags, req.explicit_tag, req.floating, self._known)

    def _check_built_config(
        self, pusher: SelfPusher, repo: Reference, digest: str, manifest: ImageManifest
    ) -> None:
        """The config the builder built (buildx metadata, or the classic store's image
        ID) must be the config of the manifest the registry serves."""
        expected = pusher.config_digest(self.local_image)
        served = manifest.document.get("config", {}).get("digest")
        if expected is not None and expected not in (served, digest):
            raise DigestMismatchError(
                f"{repo.name}@{digest} carries config {served}, but {self.backend.name} "
                f"built {expected}"
            )

    def _push_and_verify(self, pusher: SelfPusher, ref: Reference) -> Digest:
        req = self.request
        if self.registry.exists(ref):
            raise TagConflictError(f"tag {ref.tag} already exists in {ref.name}")
        start = self.clock()
        reported = pusher.push(self.local_image, str(ref), self.build_env, timeout=req.push_timeout)
        took = self.clock() - start
        digest = self._resolve_written(ref, reported)
        if reported is not None and reported != digest:
            raise TagConflictError(
                f"{self.backend.name} pushed {reported[:19]}… but {ref.tag} resolves to "
                f"{digest[:19]}…: another publisher raced us"
            )
        self.sleep(max(req.settle_seconds, took))
        self._verify(ref, digest)
        return digest

    def _next_after_conflict(
        self, exc: TagConflictError, tag: str, tags: set[str], attempt: int
    ) -> str:
        req = self.request
        if req.explicit_tag is not None or attempt == req.max_attempts:
            raise exc
        self.say(f"{exc}; trying the next version")
        tags |= set(self.registry.list_tags(req.repository)) | {tag}
        return req.scheme.next_tag(tags)

    # ---------------------------------------------------------- unchanged content

    def _decide(self, local_config: ImageConfig) -> Decision:
        req = self.request
        if req.explicit_tag is not None:
            return Decision(True, (f"--tag {req.explicit_tag} was given",))
        if req.always_new_version:
            return Decision(True, ("--always-new-version was given",))
        if self._previous is None:
            return Decision(
                True, (f"no earlier {req.scheme.name} version in {req.repository.name}",)
            )
        previous, manifest, config = (
            self._previous.tag,
            self._previous.manifest,
            self._previous.config,
        )
        if self._previous.skipped is not None or manifest is None:
            note = f"{previous} {self._previous.skipped}; comparison skipped"
            if not req.explain:
                self.say(note)
            return Decision(True, (note,))
        reasons = differences(local_config, config)
        if reasons:
            return Decision(True, (f"the build differs from {previous}:", *reasons), previous)
        return Decision(
            False,
            (f"the build has the same layers and configuration as {previous} "
             f"({manifest.digest}); reusing it",),
            previous, manifest.digest, platform_of(config),
        )  # fmt: skip

    def _settle_without_push(self, decision: Decision) -> PublishResult:
        """``--explain``, or unchanged content: nothing is pushed."""
        req = self.request
        if req.explain:
            tag = decision.previous_tag if not decision.new_version else None
            return PublishResult(
                name=req.name, repository=req.repository.name, tag=tag or "",
                digest=decision.previous_digest,
                backend=self.backend.name, unchanged=not decision.new_version,
                explanation=decision.reasons, explain_only=True, lockfile=str(req.lockfile),
            )  # fmt: skip
        assert decision.previous_tag is not None
        assert decision.previous_digest is not None
        self.say(decision.reasons[0])
        return self._record(
            decision.previous_tag, decision.previous_digest, decision.previous_platform or "",
            0, decision,
        )  # fmt: skip

    def _prepare(self, repo: Reference) -> set[str]:
        self.registry = self.registry_factory()
        self.source = self.source_factory()
        tags = set(self.registry.list_tags(repo))
        with contextlib.suppress(OcirelError):
            self.registry.warm_up(repo, push=True)  # the push token, cached for later
        self._previous = self._fetch_previous(tags)
        return tags

    def _fetch_previous(self, tags: set[str]) -> _Previous | None:
        """The latest version's manifest and config, fetched while the builder works."""
        req = self.request
        if req.explicit_tag is not None or req.always_new_version:
            return None
        previous = latest_version(tags, req.scheme)
        return None if previous is None else self._read_previous(previous)

    def _read_previous(self, tag: str) -> _Previous:
        """``tag``'s manifest and config, or why they cannot be compared with the build
        (an index, an artifact, a schema 1 manifest, a config that is not JSON)."""
        repo = self.request.repository
        try:
            manifest = self.registry.get_manifest(repo.with_tag(tag))
        except UnsupportedManifestError as exc:
            return _Previous(tag, None, {}, exc.reason)
        except DigestMismatchError as exc:  # bytes that do not hash to the claimed digest
            return _Previous(tag, None, {}, f"is a manifest ocirel cannot read ({exc})")
        skipped = not_comparable(manifest)
        if skipped is not None:
            return _Previous(tag, manifest, {}, skipped)
        try:
            return _Previous(tag, manifest, self.registry.get_config(repo, manifest), None)
        except UnsupportedManifestError as exc:  # a config that is not JSON
            return _Previous(tag, manifest, {}, exc.reason)

    def _spec(self) -> BuildSpec:
        req = self.request
        return BuildSpec(
            context=req.context,
            image=self.local_name if req.keep_image or self.backend.delivery == "push" else None,
            containerfile=req.containerfile,
            build_args=req.build_args,
            target=req.target,
            layers=not req.no_cache,
            timestamp=req.timestamp,
            cache_repo=req.cache_repo,
        )

    def _labels(self, tag: str, config: ImageConfig) -> tuple[tuple[str, str], ...]:
        req = self.request
        created = rfc3339(req.timestamp) if req.timestamp is not None else config.get("created")
        return build_labels(tag, self.source, created if isinstance(created, str) else None)

    def _build(self, spec: BuildSpec) -> None:
        self._built = True
        timeout = self.request.build_timeout
        image_id = self.backend.build(spec, self.build_env, timeout=timeout)
        if spec.timestamp is not None and spec.layers:
            # The layer cache ignores --timestamp: a step cached by a build with another
            # timestamp would carry that time, and the digest would depend on what the
            # storage held. Check, and rebuild without the cache when it happened.
            stale = self.backend.stale_cache(
                image_id or self.local_name, spec.timestamp, self.build_env
            )
            if stale:
                self.say(f"{stale}; building again without the layer cache")
                image_id = self.backend.build(
                    replace(spec, layers=False), self.build_env, timeout=timeout
                )
        self.local_image = image_id or self.local_name

    def _export(self, exporter: LayoutExporter, layout: Path) -> OciImage:
        req = self.request
        digest = exporter.export(self.local_image, layout, self.build_env, timeout=req.push_timeout)
        image = read_layout(layout)
        if image.manifest.digest != digest:
            raise DigestMismatchError(
                f"{self.backend.name} reported {digest} but the exported manifest is "
                f"{image.manifest.digest}"
            )
        return image

    def _needs_removal(self) -> bool:
        """An unnamed image is the next build's layer cache and stays; a name given for
        this run only (or an image built with --no-cache) goes."""
        req = self.request
        return not req.keep_image and (self.local_image == self.local_name or req.no_cache)

    def _remove_local_image(self) -> None:
        if self._needs_removal():
            with contextlib.suppress(OcirelError):
                self.backend.remove(self.local_image, self.build_env)

    def _remove_local_image_in_background(self) -> None:
        """The registry holds the image now: drop the local copy while the tag settles."""
        if self._cleanup is None:
            self._cleanup = _Background(self._remove_local_image)

    def _claim(self, repo: Reference, tag: str, manifest: ImageManifest) -> None:
        ref = repo.with_tag(tag)
        start = self.clock()
        if self.registry.exists(ref):
            raise TagConflictError(f"tag {tag} already exists in {repo.name}")
        try:
            self.registry.put_tag(repo, tag, manifest)
        except RegistryError as exc:
            if _is_immutable_rejection(exc):
                raise TagConflictError(
                    f"{repo.name} refused to write {tag} (immutable tag)"
                ) from None
            raise
        # A rival that also saw 404 sends its PUT within its own HEAD→PUT gap of ours:
        # wait well past that gap, then the tag must still be ours.
        gap = self.clock() - start
        self.sleep(max(self.request.settle_seconds, 4 * gap))
        self._verify(ref, manifest.digest)

    def _verify(self, ref: Reference, digest: str) -> None:
        found = self._resolve_written(ref, digest)
        if found != digest:
            raise TagConflictError(
                f"tag {ref.tag} now points at {found[:19]}…, not at the digest this run "
                f"pushed ({digest[:19]}…): another publisher raced us"
            )

    def _resolve_written(self, ref: Reference, digest: str | None) -> Digest:
        """The digest of the tag this run has just written. Some registries (S3-backed,
        CDN-fronted) answer 404 for a new tag for a few seconds: ask again, with growing
        waits, for at most ``verify_timeout`` seconds of waiting in all."""
        limit = self.request.verify_timeout
        waited, wait = 0.0, LAG_FIRST_WAIT
        while True:
            try:
                return self.registry.resolve(ref).digest
            except RegistryNotFoundError:
                if waited >= limit:
                    raise self._not_visible(ref, digest, waited) from None
            pause = min(wait, limit - waited)
            self.sleep(pause)
            waited += pause
            wait = min(2 * wait, LAG_MAX_WAIT)

    def _not_visible(self, ref: Reference, digest: str | None, waited: float) -> RegistryError:
        req = self.request
        image = f"{req.repository.name}@{digest}" if digest else f"the image {req.name}"
        return RegistryError(
            f"{req.repository.name}:{ref.tag} still answers 404 {waited:g} s after this run "
            f"wrote it: {image} is in the registry, tagged {ref.tag}, but not recorded "
            f"in {req.lockfile}",
            status=404,
            hint=(
                f"the registry may only be slow to show new tags: once 'ocirel digest "
                f"{req.repository.name}:{ref.tag}' answers, publish again (an unchanged build "
                f"reuses {ref.tag} and records it); raise OCIREL_VERIFY_TIMEOUT "
                f"(now {req.verify_timeout:g} s) for a registry this slow"
            ),
        )

    def _record(
        self, tag: str, digest: Digest, platform: str, attempts: int, decision: Decision
    ) -> PublishResult:
        req = self.request
        platforms: dict[str, str] = {platform: digest}
        entry = lockfile.LockEntry(
            name=req.name,
            repository=req.repository.name,
            tag=tag,
            digest=digest,
            platforms=platforms,
            source=self.source.lock_fields(),
        )
        repository, scheme = req.repository.name, req.scheme

        def change(lock: lockfile.Lockfile) -> lockfile.Lockfile:
            floor = raised_floor(lock.issued.get(repository), tag, scheme)
            return lock.with_entry(entry).with_issued(repository, floor)

        try:
            lockfile.update(req.lockfile, change)
        except LockfileError as exc:  # say what the registry now holds, and what to do
            raise LockfileError(
                f"{exc}; {entry.reference} is in the registry but not recorded",
                hint=f"fix that and publish again: an unchanged build reuses {tag} without pushing",
            ) from None
        return PublishResult(
            name=req.name, repository=req.repository.name, tag=tag, digest=digest,
            backend=self.backend.name, platforms=platforms, attempts=attempts,
            source=self.source, lockfile=str(req.lockfile),
            unchanged=not decision.new_version, explanation=decision.reasons,
        )  # fmt: skip

    def _plan(self, tag: str) -> PublishResult:
        req = self.request
        layout = Path(tempfile.gettempdir()) / "ocirel-XXXX" / "layout"
        created = rfc3339(req.timestamp) if req.timestamp is not None else None
        backend = self.backend
        if backend.delivery == "push":
            spec = replace(self._spec(), labels=build_labels(tag, self.source, created))
            steps: tuple[str, ...] = (
                display(self.backend.build_argv(spec, self.build_env)),
                "compare with the latest version; if equal, reuse it and stop here",
                f"check {req.repository.name}:{tag} is absent (HEAD 404)",
                f"{self.backend.name} push {req.repository.name}:{tag} (the builder pushes)",
                "settle as long as the push took, then verify the tag resolves to its digest",
                f"record {req.name} in {req.lockfile}",
            )
            return PublishResult(
                name=req.name, repository=req.repository.name, tag=tag, digest=None,
                backend=self.backend.name, dry_run=True, plan=steps, lockfile=str(req.lockfile),
            )  # fmt: skip
        labels = ", ".join(f"{k}={v}" for k, v in build_labels(tag, self.source, created))
        steps = (
            display(self.backend.build_argv(self._spec(), self.build_env)),
            display(backend.export_argv(
                self.local_image, layout, layout.with_name("layout.digest"), self.build_env
            )),
            "compare with the latest version (layer diff-ids and configuration); "
            "if equal, reuse it and stop here",
            f"stamp labels into the image config: {labels}",
            f"upload blobs and manifest to {req.repository.name}@<digest> (ocirel, by digest)",
            f"claim tag {tag}: HEAD must be 404, then PUT, settle, verify",
            f"record {req.name} in {req.lockfile}",
        )  # fmt: skip
        return PublishResult(
            name=req.name, repository=req.repository.name, tag=tag, digest=None,
            backend=self.backend.name, dry_run=True, plan=steps, lockfile=str(req.lockfile),
        )  # fmt: skip


@dataclass(frozen=True)
class _Previous:
    """The latest version, and why it cannot be compared with the build (if so)."""

    tag: str
    manifest: ImageManifest | None
    config: ImageConfig
    skipped: str | None


def _is_immutable_rejection(exc: RegistryError) -> bool:
    return (
        exc.status in (409, 412)
        or bool(IMMUTABLE_CODES.intersection(exc.codes))
        or "immutable" in exc.message.lower()
    )
