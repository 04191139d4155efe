"""The publisher for builders that push by themselves (docker).

Labels go in at build time, so the tag is chosen first and a lost race costs a
rebuild. The tag is checked absent right before the builder's push, and the push's
race window is the whole push, so the settle period is at least as long as the push
took (:meth:`~ocirel.publish.claim.TagClaim.push_and_verify`). The manifest the
registry then serves must carry the config the builder built.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ocirel.backends.base import SelfPusher
from ocirel.errors import DigestMismatchError, TagConflictError
from ocirel.gitinfo import SourceInfo
from ocirel.oci import Digest, ImageConfig, ImageManifest, platform_of
from ocirel.publish.job import Job, run
from ocirel.publish.labels import build_labels
from ocirel.publish.outcome import Published, PublishResult
from ocirel.publish.unchanged import NOT_COMPARED
from ocirel.reference import Reference
from ocirel.runner import display

if TYPE_CHECKING:
    from ocirel.registry import Registry


@dataclass
class SelfPushPublisher:
    """Choose the tag, build with the labels, let the builder push, verify."""

    job: Job
    pusher: SelfPusher

    def run(self) -> PublishResult:
        return run(self.job, self)

    def publish(self) -> PublishResult:
        job, req = self.job, self.job.request
        repo = req.registry_repository
        job.stage("tags")
        job.say(f"listing tags of {repo.name}")
        prepared = job.prepare()
        registry, source = prepared.registry, prepared.source
        tags = job.with_floor(prepared.tags)
        tag = job.first_candidate(tags)
        claims = job.claims(registry)
        for attempt in range(1, req.max_attempts + 1):
            spec = replace(job.spec(named=True), labels=build_labels(tag, source, job.created()))
            job.stage("build")
            job.say(f"building {req.context} with {self.pusher.name} for {repo.name}:{tag}")
            job.build(spec)
            if attempt == 1:
                job.stage("compare")
                local_config = job.local_config()
                decision = (
                    job.decide(prepared.previous, local_config) if local_config is not None
                    else NOT_COMPARED
                )  # fmt: skip
                if req.explain or not decision.new_version:
                    return job.settle_without_push(decision, source)
            job.stage("push, verify")
            pushed = _Pushed(job, registry, tag, source)
            try:
                digest = claims.push_and_verify(
                    self.pusher, job.local_image, job.build_env, repo.with_tag(tag), pushed.written
                )
            except TagConflictError as exc:
                tag, tags = claims.next_after_conflict(exc, tag, tags, attempt, job.say)
                continue
            manifest, config = pushed.read(digest)
            self._check_built_config(repo, digest, manifest)
            return job.record(
                tag, digest, platform_of(config), source,
                decision=decision, outcome=Published(attempt),
            )  # fmt: skip
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_built_config(self, repo: Reference, digest: str, manifest: ImageManifest) -> None:
        """The config the builder built (buildx metadata, or the classic store's image
        ID) must be the config of the manifest the registry serves."""
        expected = self.pusher.config_digest(self.job.local_image)
        served = manifest.document.get("config", {}).get("digest")
        if expected is not None and expected not in (served, digest):
            raise DigestMismatchError(
                f"{repo.name}@{digest} carries config {served}, but {self.pusher.name} "
                f"built {expected}"
            )

    def plan(self, tag: str, source: SourceInfo) -> tuple[str, ...]:
        job, req = self.job, self.job.request
        spec = replace(job.spec(named=True), labels=build_labels(tag, source, job.created()))
        return (
            display(self.pusher.build_argv(spec, job.build_env)),
            "compare with the latest version; if equal, reuse it and stop here",
            f"check {req.repository.name}:{tag} is absent (HEAD 404)",
            f"{self.pusher.name} push {req.repository.name}:{tag} (the builder pushes)",
            "settle as long as the push took, then verify the tag resolves to its digest",
            f"record {req.name} in {req.lockfile}",
        )


@dataclass
class _Pushed:
    """What the builder pushed as ``tag``, read once its digest is known, before the
    settle wait: the manifest and config (the platform the build record and the
    lockfile name), then the build record is started. Main thread only."""

    job: Job
    registry: Registry
    tag: str
    source: SourceInfo
    _read: tuple[Digest, ImageManifest, ImageConfig] | None = field(default=None, init=False)

    def written(self, digest: Digest) -> None:
        _manifest, config = self.read(digest)
        self.job.start_ride(self.registry, self.tag, digest, platform_of(config), self.source)

    def read(self, digest: Digest) -> tuple[ImageManifest, ImageConfig]:
        if self._read is None or self._read[0] != digest:
            repo = self.job.request.registry_repository
            manifest = self.registry.get_manifest(repo.with_digest(digest))
            self._read = (digest, manifest, self.registry.get_config(repo, manifest))
        return self._read[1], self._read[2]
