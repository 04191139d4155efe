"""Claiming a version tag race-safely, and checking a tag this run wrote.

The distribution API has no conditional tag write, so a claim is: ``HEAD`` the tag
→ 404, ``PUT`` the manifest (already in the registry by digest) at the tag
milliseconds later, wait a settle period longer than that HEAD→PUT gap, and check
the tag still resolves to our digest (:meth:`TagClaim.claim`). A registry that
refuses to overwrite tags (immutable tags) turns this into a real compare-and-swap:
its refusal is a lost race. A builder that pushes by itself gets the same checks
around its push (:meth:`TagClaim.push_and_verify`); its race window is the whole
push, so it settles at least as long as the push took.

A lost race raises :class:`TagConflictError`; :meth:`TagClaim.next_after_conflict`
says which tag to try next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocirel.backends.base import BuildEnv, SelfPusher
from ocirel.errors import RegistryError, RegistryNotFoundError, TagConflictError
from ocirel.oci import Digest, ImageManifest
from ocirel.publish.request import PublishRequest
from ocirel.reference import Reference

if TYPE_CHECKING:
    from ocirel.registry import Registry

IMMUTABLE_CODES = frozenset({"TAG_INVALID", "MANIFEST_TAG_IMMUTABLE", "TAG_IMMUTABLE"})
#: read-after-write lag: the first and the longest wait before asking for a new tag again
LAG_FIRST_WAIT = 0.25
LAG_MAX_WAIT = 4.0


@dataclass(frozen=True)
class TagClaim:
    """Tag claims in ``request.repository`` on ``registry``; ``sleep`` and ``clock`` are
    injected so tests need not wait."""

    registry: Registry
    request: PublishRequest
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def claim(
        self, tag: str, manifest: ImageManifest, on_written: Callable[[], None] | None = None
    ) -> None:
        """Point ``tag`` at ``manifest`` (already uploaded by digest) if it is absent,
        and make sure no rival overwrote it; else :class:`TagConflictError`.
        ``on_written`` runs once the tag is written, before the settle wait (it starts
        the build record; it must not block)."""
        repo = self.request.registry_repository
        ref = repo.with_tag(tag)
        start = self.clock()
        if self.registry.exists(ref):
            raise TagConflictError(f"tag {tag} already exists in {repo.name}")
        try:
            self.registry.put_tag(repo, tag, manifest)
        except RegistryError as exc:
            if is_immutable_rejection(exc):
                raise TagConflictError(
                    f"{repo.name} refused to write {tag} (immutable tag)"
                ) from None
            raise
        # A rival that also saw 404 sends its PUT within its own HEAD→PUT gap of ours:
        # wait well past that gap, then the tag must still be ours.
        gap = self.clock() - start
        if on_written is not None:
            on_written()
        self.sleep(max(self.request.settle_seconds, 4 * gap))
        self.verify(ref, manifest.digest)

    def push_and_verify(
        self,
        pusher: SelfPusher,
        image: str,
        env: BuildEnv,
        ref: Reference,
        on_written: Callable[[Digest], None] | None = None,
    ) -> Digest:
        """Let ``pusher`` push ``image`` as ``ref`` if the tag is absent; settle as long
        as the push took, then the tag must resolve to what it pushed. The digest.
        ``on_written`` gets the digest before the settle wait (as in :meth:`claim`)."""
        req = self.request
        if self.registry.exists(ref):
            raise TagConflictError(f"tag {ref.tag} already exists in {ref.name}")
        start = self.clock()
        reported = pusher.push(image, str(ref), env, timeout=req.push_timeout)
        took = self.clock() - start
        digest = self.resolve_written(ref, reported)
        if reported is not None and reported != digest:
            raise TagConflictError(
                f"{pusher.name} pushed {reported[:19]}… but {ref.tag} resolves to "
                f"{digest[:19]}…: another publisher raced us"
            )
        if on_written is not None:
            on_written(digest)
        self.sleep(max(req.settle_seconds, took))
        self.verify(ref, digest)
        return digest

    def next_after_conflict(
        self,
        exc: TagConflictError,
        tag: str,
        tags: set[str],
        attempt: int,
        say: Callable[[str], None],
    ) -> tuple[str, set[str]]:
        """After losing ``tag``: the next tag to try and the tags now known to be taken
        (the registry's, listed again, and ``tag``); re-raise ``exc`` when ``--tag``
        was given or this was the last attempt."""
        req = self.request
        if req.explicit_tag is not None or attempt == req.max_attempts:
            raise exc
        say(f"{exc}; trying the next version")
        taken = tags | set(self.registry.list_tags(req.registry_repository)) | {tag}
        return req.scheme.next_tag(taken), taken

    def verify(self, ref: Reference, digest: str) -> None:
        found = self.resolve_written(ref, digest)
        if found != digest:
            raise TagConflictError(
                f"tag {ref.tag} now points at {found[:19]}…, not at the digest this run "
                f"pushed ({digest[:19]}…): another publisher raced us"
            )

    def resolve_written(self, ref: Reference, digest: str | None) -> Digest:
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


def is_immutable_rejection(exc: RegistryError) -> bool:
    return (
        exc.status in (409, 412)
        or bool(IMMUTABLE_CODES.intersection(exc.codes))
        or "immutable" in exc.message.lower()
    )
