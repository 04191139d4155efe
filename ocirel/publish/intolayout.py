"""The publisher into an OCI image layout directory (``--image oci:PATH``).

The same build, unchanged-content check and versioning as a registry publish, with
the layout in the registry's place (:mod:`ocirel.ocilayout`):

1. the layout's tags are its ``index.json`` ``ref.name`` annotations; the latest
   version's manifest and config are read from its blobs for the comparison;
2. the builder exports the image into a private layout, as for a registry (a hidden
   ``.ocirel-export-*`` directory inside the destination, removed afterwards); its
   layers are hard-linked (copied when a link is impossible) into ``blobs/sha256``;
3. under the destination's lock: the tags are read again, the next free one is
   chosen, the version label is stamped into a new config, the config and manifest
   blobs are written, and ``index.json`` is replaced atomically with the new
   descriptor appended. Holding the lock from reading the tags to writing the index
   makes the claim a real compare-and-swap: no settle period, no second attempt;
4. then the lockfile (repository ``oci:/abs/path``) is written.

No build record is attached: records are registry artifacts (``ocirel show``).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ocirel import ocilayout
from ocirel.errors import DigestMismatchError, LayoutError, OcirelError
from ocirel.gitinfo import SourceInfo
from ocirel.oci import OciImage, not_comparable, parse_image_config
from ocirel.publish.exporting import ExportingPublisher
from ocirel.publish.index import check_platform
from ocirel.publish.job import run
from ocirel.publish.outcome import Published, PublishResult
from ocirel.publish.unchanged import Previous
from ocirel.publish.versions import latest_version
from ocirel.reference import LayoutTarget


@dataclass
class OciLayoutPublisher(ExportingPublisher):
    """Build, export, link the layers into the layout, then tag under its lock."""

    @property
    def target(self) -> LayoutTarget:
        repository = self.job.request.repository
        assert isinstance(repository, LayoutTarget)
        return repository

    @property
    def root(self) -> Path:
        return Path(self.target.path)

    def run(self) -> PublishResult:
        ocilayout.check_destination(self.root)
        return run(self.job, self, lambda: ocilayout.list_tags(self.root))

    def publish(self) -> PublishResult:
        job, req = self.job, self.job.request
        job.say(f"building {req.context} with {self.exporter.name} for {self.target.name}")
        tags = set(ocilayout.list_tags(self.root))
        if req.explicit_tag is not None:  # a taken or floating --tag fails before building
            job.first_candidate(job.with_floor(tags))
        previous = self.previous(tags)
        source = job.source_factory()
        workdir: list[Path] = []  # made by the first export, removed whatever happens
        try:
            job.stage("build")
            job.build(job.spec(named=req.keep_image))
            job.stage("compare")
            image: OciImage | None = None
            local_config = job.local_config()
            if local_config is None:  # the builder cannot show its config: export first
                image = self._export(workdir)
                local_config = image.config
            decision = job.decide(previous, local_config)
            if req.explain or not decision.new_version:
                return job.settle_without_push(decision, source)
            image = image or self._export(workdir)
            tag, stamped = self._write(image, source)
            return job.record(
                tag, stamped.manifest.digest, stamped.platform, source,
                decision=decision, outcome=Published(1),
            )  # fmt: skip
        finally:
            for path in workdir:
                shutil.rmtree(path, ignore_errors=True)

    def previous(self, tags: set[str]) -> Previous | None:
        """The layout's latest version, read for the unchanged-content check."""
        req = self.job.request
        if req.explicit_tag is not None or req.always_new_version:
            return None
        latest = latest_version(tags, req.scheme)
        if latest is None:
            return None
        try:
            manifest = ocilayout.read_manifest(self.root, latest)
            skipped = not_comparable(manifest)
            if skipped is not None:
                return Previous(latest, manifest, {}, skipped)
            config = ocilayout.read_blob(self.root, manifest.document["config"]["digest"])
            return Previous(latest, manifest, parse_image_config(config), None)
        except (OcirelError, ValueError, KeyError, TypeError) as exc:
            return Previous(latest, None, {}, f"cannot be read from the layout ({exc})")

    def _export(self, workdir: list[Path]) -> OciImage:
        """The build exported into a private layout, checked. Its directory (appended
        to ``workdir``) is a hidden one inside the destination, so that the layers can
        be hard-linked into it (a link cannot cross file systems); else a temporary one.
        """
        from ocirel.image import read_layout  # noqa: PLC0415 - only when there is a new version

        job = self.job
        job.stage("export")
        try:
            ocilayout.ensure_layout(self.root)
            workdir.append(Path(tempfile.mkdtemp(prefix=".ocirel-export-", dir=self.root)))
        except (LayoutError, OSError):
            workdir.append(Path(tempfile.mkdtemp(prefix="ocirel-")))
        layout = workdir[-1] / "layout"
        digest = self.exporter.export(
            job.local_image, layout, job.build_env, timeout=job.request.push_timeout
        )
        exported = read_layout(layout)
        if exported.manifest.digest != digest:
            raise DigestMismatchError(
                f"{self.exporter.name} reported {digest} but the exported manifest is "
                f"{exported.manifest.digest}"
            )
        if job.request.platforms:  # one --platform: the image must be of it
            check_platform(job.request.platforms[0], exported.config, self.exporter.name)
        return exported

    def _write(self, image: OciImage, source: SourceInfo) -> tuple[str, OciImage]:
        """Layers linked in first; then, under the lock, the next free tag chosen,
        stamped, its config and manifest written and ``index.json`` replaced."""
        from ocirel.image import stamp_labels  # noqa: PLC0415

        job, root = self.job, self.root
        job.stage("write")
        ocilayout.ensure_layout(root)
        for layer in image.layers:
            if layer.path is None:
                raise LayoutError(f"the exported layer {layer.digest} has no file")
            ocilayout.put_blob_file(root, layer.digest, layer.path, layer.size)
        with ocilayout.locked(root):
            tag = job.first_candidate(job.with_floor(set(ocilayout.list_tags(root))))
            stamped = stamp_labels(image, dict(job.labels(tag, source, image.config)))
            ocilayout.put_blob_bytes(root, stamped.config_digest, stamped.config_bytes)
            ocilayout.put_blob_bytes(root, stamped.manifest.digest, stamped.manifest.body)
            job.say(f"writing {stamped.manifest.digest} as {self.target.name}:{tag}")
            ocilayout.add_tag(root, stamped.manifest, tag, job.request.name)
        job.remove_local_image_in_background()
        return tag, stamped

    def plan(self, tag: str, source: SourceInfo) -> tuple[str, ...]:
        req = self.job.request
        labels = self.labels_text(tag, source)
        return (
            *self.build_and_export_plan(self.root / ".ocirel-export-XXXX" / "layout"),
            "compare with the layout's latest version (layer diff-ids and configuration); "
            "if equal, reuse it and stop here",
            f"link the layers into {self.root}/blobs/sha256",
            f"under {self.root}/{ocilayout.LOCK_FILE}: take the next free tag ({tag} now), "
            f"stamp labels ({labels}), write config and manifest, replace index.json",
            f"record {req.name} in {req.lockfile}",
        )  # fmt: skip
