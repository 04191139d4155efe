"""The publisher of a multi-platform image (``--platform linux/amd64,linux/arm64``), for
builders that export an OCI layout (buildah, podman).

1. one build per platform (``build --platform P``), each unnamed: the image ID is the
   handle, and the images stay as the next build's layer cache;
2. whether the build is the latest version again, platform by platform
   (:func:`~ocirel.publish.index.compare_index`): the same platforms, each with the
   same layers and configuration; then that index is recorded and nothing pushed;
3. each platform's image is exported into its own private layout (finished layers
   uploaded early, known layers mounted: :class:`~ocirel.publish.export.LayoutExport`);
4. the version labels are stamped into every platform's config, every image is put
   **by digest**, then the OCI index over them, by digest;
5. the tag is claimed on the **index** with the same claim as a single image (HEAD
   404, PUT, settle, verify: :class:`~ocirel.publish.claim.TagClaim`); a lost race
   stamps the next version into every config and builds a new index, no rebuild;
6. the lockfile records the index digest and each platform's manifest digest.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ocirel.backends.base import BuildSpec
from ocirel.errors import OcirelError, TagConflictError
from ocirel.gitinfo import SourceInfo
from ocirel.oci import ImageConfig, OciImage
from ocirel.publish.background import Background
from ocirel.publish.exporting import ExportingPublisher
from ocirel.publish.index import build_index, check_platform, compare_index, same_platform
from ocirel.publish.job import Prepared
from ocirel.publish.outcome import Published, PublishResult
from ocirel.runner import display

if TYPE_CHECKING:
    from ocirel.publish.export import LayoutExport
    from ocirel.publish.unchanged import Decision

Exported = list[tuple["LayoutExport", OciImage]]


@dataclass
class MultiPlatformPublisher(ExportingPublisher):
    """Build each platform, export, upload by digest, index them, claim the tag."""

    def publish(self) -> PublishResult:
        job, req = self.job, self.job.request
        job.say(
            f"building {req.context} for {', '.join(req.platforms)} with {self.exporter.name}; "
            f"listing tags of {req.repository.name} meanwhile"
        )
        job.stage("build")
        background: Background[Prepared] = Background(job.prepare)
        if req.explicit_tag is not None:  # a taken or floating --tag fails before building
            job.first_candidate(job.with_floor(background.result().tags))
        workdir = Path(tempfile.mkdtemp(prefix="ocirel-"))
        images: dict[str, str] = {}
        try:
            images = self._build_all()
            prepared = background.result()
            configs = self._configs(images)
            exported: Exported | None = None
            if any(config is None for config in configs.values()):  # no config shown: export first
                exported = self._export_all(prepared, workdir, images)
                configs = {p: image.config for p, (_, image) in zip(images, exported, strict=True)}
            known = {p: c for p, c in configs.items() if c is not None}
            job.stage("compare")
            decision, before = compare_index(prepared.registry, req, prepared.previous, known,
                                             job.say)  # fmt: skip
            if decision.new_version and not req.explain and job.on_new_version:
                job.on_new_version()
            if req.explain or not decision.new_version:
                return job.settle_without_push(decision, prepared.source, before)
            if exported is None:
                exported = self._export_all(prepared, workdir, images)
            return self._push(exported, prepared, decision)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            self._remove(images)

    def _build_all(self) -> dict[str, str]:
        """One build per platform: platform → the image ID. (:meth:`Job.build` builds a
        platform again without the layer cache when the cache gave it another
        platform's step and the builder shows the config; else the export shows it.)"""
        job = self.job
        images: dict[str, str] = {}
        for platform in job.request.platforms:
            job.say(f"building for {platform}")
            job.build(self._spec(platform))
            images[platform] = job.local_image
        return images

    def _spec(self, platform: str) -> BuildSpec:
        return replace(self.job.spec(named=False), platform=platform)

    def _rebuild(self, platform: str, built: str) -> None:
        """Build ``platform`` again without the layer cache (it gave ``built``'s step)."""
        job = self.job
        spec = self._spec(platform)
        if not spec.layers:  # built without the cache already: the base is the wrong one
            return
        job.say(f"the layer cache gave a {built} step to the {platform} build; "
                f"building {platform} again without the layer cache")  # fmt: skip
        job.build(replace(spec, layers=False))

    def _configs(self, images: dict[str, str]) -> dict[str, ImageConfig | None]:
        """Each platform's local config (None: the builder cannot show it)."""
        job = self.job
        configs: dict[str, ImageConfig | None] = {}
        for platform, image in images.items():
            config = self.exporter.image_config(image, job.build_env)
            if config is not None:
                check_platform(platform, config, self.exporter.name)
            configs[platform] = config
        return configs

    def _export_all(self, prepared: Prepared, workdir: Path, images: dict[str, str]) -> Exported:
        """Each platform's image exported into its own layout under ``workdir`` (a build
        the export shows to be of another platform is made again without the cache)."""
        self.job.stage("export")
        exported: Exported = []
        for number, platform in enumerate(images):
            where = workdir / f"platform-{number}"
            export, image = self._export_one(prepared, where, images[platform])
            if not same_platform(platform, image.platform) and self._spec(platform).layers:
                self._rebuild(platform, image.platform)
                images[platform] = self.job.local_image
                export, image = self._export_one(prepared, where, images[platform])
            check_platform(platform, image.config, self.exporter.name)
            exported.append((export, image))
        return exported

    def _export_one(
        self, prepared: Prepared, where: Path, image: str
    ) -> tuple[LayoutExport, OciImage]:
        from ocirel.publish.export import LayoutExport  # noqa: PLC0415

        job, req = self.job, self.job.request
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir()
        export = LayoutExport(
            self.exporter, job.build_env, prepared.registry, req.registry_repository,
            req.push_timeout, job.say, read_only=req.explain,
        )  # fmt: skip
        return export, export.export(image, where, None, None)

    def _push(self, exported: Exported, prepared: Prepared, decision: Decision) -> PublishResult:
        """Stamp every platform, upload each image and the index by digest, claim the tag
        on the index; record it."""
        from ocirel.image import stamp_labels  # noqa: PLC0415

        job, req = self.job, self.job.request
        repo, registry, source = req.registry_repository, prepared.registry, prepared.source
        tags = job.with_floor(prepared.tags)
        claims = job.claims(registry)
        tag = job.first_candidate(tags)
        for attempt in range(1, req.max_attempts + 1):
            stamped = [
                stamp_labels(image, dict(job.labels(tag, source, image.config)))
                for _, image in exported
            ]
            index = build_index(stamped)
            again = f" (attempt {attempt} of {req.max_attempts})" if attempt > 1 else ""
            job.say(f"pushing index {index.digest} ({len(stamped)} platforms) "
                    f"as {repo.name}:{tag}{again}")  # fmt: skip
            job.stage("push")
            for (export, _), image in zip(exported, stamped, strict=True):
                registry.push_image(repo, image, sent=export.sent)
            registry.put_manifest(repo.with_digest(index.digest), index)
            job.stage("verify")
            platforms = {image.platform: image.manifest.digest for image in stamped}
            written = functools.partial(
                job.start_ride, registry, tag, index.digest, "", source, platforms=platforms
            )
            try:
                claims.claim(tag, index, on_written=written)
            except TagConflictError as exc:
                tag, tags = claims.next_after_conflict(exc, tag, tags, attempt, job.say)
                continue
            result = job.record(tag, index.digest, "", source, decision=decision,
                                outcome=Published(attempt), platforms=platforms)  # fmt: skip
            for (export, _), image in zip(exported, stamped, strict=True):
                export.learn(image)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _remove(self, images: dict[str, str]) -> None:
        """With ``--no-cache`` the platform images go; else they stay, unnamed, as the
        next build's layer cache (the job removes the last one by its own rule)."""
        job = self.job
        if job.request.no_cache:
            for image in list(images.values())[:-1]:
                with contextlib.suppress(OcirelError):
                    job.builder.remove(image, job.build_env)

    def plan(self, tag: str, source: SourceInfo) -> tuple[str, ...]:
        job, req = self.job, self.job.request
        layout = Path(tempfile.gettempdir()) / "ocirel-XXXX" / "platform-N" / "layout"
        labels = self.labels_text(tag, source)
        builds = tuple(
            display(self.exporter.build_argv(replace(job.spec(named=False), platform=p),
                                             job.build_env))
            for p in req.platforms
        )  # fmt: skip
        return (
            *builds,
            "for each platform: "
            + display(self.exporter.export_argv("<image>", layout,
                                                layout.with_name("layout.digest"), job.build_env)),
            "compare each platform with the latest version's; if all equal, reuse it and stop here",
            f"stamp labels into each platform's config: {labels}",
            f"upload blobs and each platform's manifest to {req.repository.name}@<digest>, "
            "then the OCI index over them (ocirel, by digest)",
            f"claim tag {tag} on the index: HEAD must be 404, then PUT, settle, verify",
            f"record {req.name} in {req.lockfile}: the index digest and each platform's",
        )  # fmt: skip
