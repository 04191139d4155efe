"""The publisher for builders that export an OCI layout (buildah, podman).

1. the builder writes the image into a private OCI layout (``push --digestfile`` to
   ``oci:DIR``); success is exit code 0 *and* a valid digest file that matches the
   layout; layers the registry holds are not exported, and finished layers are
   uploaded while the export goes on (:class:`~ocirel.publish.export.LayoutExport`);
2. ocirel stamps the OCI labels (version, revision, source) into the image config,
   uploads the blobs and puts the manifest **by digest** (no tag yet);
3. ocirel claims the tag (:meth:`~ocirel.publish.claim.TagClaim.claim`: HEAD 404,
   PUT, settle, verify); a lost race stamps the next version into a new config and
   tries again — no rebuild. The build record starts right after the PUT and is
   pushed while the tag settles (:mod:`ocirel.publish.rider`);
4. only then is the lockfile written.

The registry work that does not depend on the image (auth, tag listing, a push
token, the latest version) runs in the background while the builder works, and is
handed over as a :class:`~ocirel.publish.job.Prepared` value.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ocirel.errors import TagConflictError
from ocirel.gitinfo import SourceInfo
from ocirel.oci import ImageConfig, OciImage
from ocirel.publish.background import Background
from ocirel.publish.exporting import ExportingPublisher
from ocirel.publish.index import check_platform
from ocirel.publish.job import Prepared
from ocirel.publish.outcome import Published, PublishResult

if TYPE_CHECKING:
    from ocirel.publish.export import LayoutExport
    from ocirel.publish.unchanged import Decision


@dataclass
class LayoutPublisher(ExportingPublisher):
    """Build, export a layout, upload it by digest, then claim the tag."""

    def publish(self) -> PublishResult:
        job, req = self.job, self.job.request
        repo = req.repository
        job.stage("build")
        job.say(
            f"building {req.context} with {self.exporter.name}; "
            f"listing tags of {repo.name} meanwhile"
        )
        # registry client (and its imports), tag list, push token and git facts: all
        # in the background while the builder works
        background: Background[Prepared] = Background(job.prepare)
        if req.explicit_tag is not None:  # a taken or floating --tag fails before building
            job.first_candidate(job.with_floor(background.result().tags))
        workdir = Path(tempfile.mkdtemp(prefix="ocirel-"))
        try:
            job.build(job.spec(named=req.keep_image))
            job.stage("compare")
            prepared = background.result()
            exported: tuple[LayoutExport, OciImage] | None = None
            local_config = job.local_config()
            if local_config is None:  # the builder cannot show its config: export first
                exported = self._export(prepared, workdir, None)
                local_config = exported[1].config
            decision = job.decide(prepared.previous, local_config)
            if req.explain or not decision.new_version:
                return job.settle_without_push(decision, prepared.source)
            if exported is None:
                exported = self._export(prepared, workdir, local_config)
            return self._push(*exported, prepared, decision)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _export(
        self, prepared: Prepared, workdir: Path, config: ImageConfig | None
    ) -> tuple[LayoutExport, OciImage]:
        """The image exported into a layout under ``workdir``, and the export (which
        knows what it uploaded early)."""
        # loaded here: an unchanged re-publish never exports (and starts sooner)
        from ocirel.publish.export import LayoutExport  # noqa: PLC0415

        job, req = self.job, self.job.request
        job.stage("export")
        export = LayoutExport(
            self.exporter, job.build_env, prepared.registry, req.registry_repository,
            req.push_timeout, job.say, read_only=req.explain,
        )  # fmt: skip
        image = export.export(job.local_image, workdir, config, prepared.previous)
        if req.platforms:  # one --platform: the image must be of it
            check_platform(req.platforms[0], image.config, self.exporter.name)
        return export, image

    def _push(
        self, export: LayoutExport, image: OciImage, prepared: Prepared, decision: Decision
    ) -> PublishResult:
        """Stamp, upload by digest and claim the next free tag; record it."""
        from ocirel.image import stamp_labels  # noqa: PLC0415

        job, req = self.job, self.job.request
        repo, registry, source = req.registry_repository, prepared.registry, prepared.source
        tags = job.with_floor(prepared.tags)
        claims = job.claims(registry)
        tag = job.first_candidate(tags)
        for attempt in range(1, req.max_attempts + 1):
            stamped = stamp_labels(image, dict(job.labels(tag, source, image.config)))
            job.stage("push")
            job.say(
                f"pushing {stamped.manifest.digest} as {repo.name}:{tag}"
                + (f" (attempt {attempt} of {req.max_attempts})" if attempt > 1 else "")
            )
            registry.push_image(repo, stamped, sent=export.sent)
            job.remove_local_image_in_background()
            job.stage("verify")
            written = functools.partial(
                job.start_ride, registry, tag, stamped.manifest.digest, stamped.platform, source
            )
            try:
                claims.claim(tag, stamped.manifest, on_written=written)
            except TagConflictError as exc:
                tag, tags = claims.next_after_conflict(exc, tag, tags, attempt, job.say)
                continue
            result = job.record(
                tag, stamped.manifest.digest, stamped.platform, source,
                decision=decision, outcome=Published(attempt),
            )  # fmt: skip
            export.learn(stamped)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def plan(self, tag: str, source: SourceInfo) -> tuple[str, ...]:
        req = self.job.request
        layout = Path(tempfile.gettempdir()) / "ocirel-XXXX" / "layout"
        return (
            *self.build_and_export_plan(layout),
            "compare with the latest version (layer diff-ids and configuration); "
            "if equal, reuse it and stop here",
            f"stamp labels into the image config: {self.labels_text(tag, source)}",
            f"upload blobs and manifest to {req.repository.name}@<digest> (ocirel, by digest)",
            f"claim tag {tag}: HEAD must be 404, then PUT, settle, verify",
            f"record {req.name} in {req.lockfile}",
        )  # fmt: skip
