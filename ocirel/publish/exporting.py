"""What the publishers that build with an OCI-layout exporter (buildah, podman) share:
the job and the exporter, how they run, and the first lines of their ``--dry-run``
plan (the build, the export, the labels)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from ocirel.backends.base import LayoutExporter
from ocirel.gitinfo import SourceInfo
from ocirel.publish.job import Job, run
from ocirel.publish.labels import build_labels
from ocirel.publish.outcome import PublishResult
from ocirel.runner import display


@dataclass
class ExportingPublisher(ABC):
    """Base of the layout, multi-platform and OCI-layout-destination publishers."""

    job: Job
    exporter: LayoutExporter

    def run(self) -> PublishResult:
        return run(self.job, self)

    @abstractmethod
    def publish(self) -> PublishResult:
        """Build, export, push or write, claim the tag, record."""

    @abstractmethod
    def plan(self, tag: str, source: SourceInfo) -> tuple[str, ...]:
        """What a publish of ``tag`` would do, step by step (``--dry-run``)."""

    def build_and_export_plan(self, layout: Path) -> tuple[str, str]:
        """The build command, then the export of its image into ``layout``."""
        job = self.job
        return (
            display(self.exporter.build_argv(job.spec(named=job.request.keep_image),
                                             job.build_env)),
            display(self.exporter.export_argv(
                job.local_image, layout, layout.with_name("layout.digest"), job.build_env
            )),
        )  # fmt: skip

    def labels_text(self, tag: str, source: SourceInfo) -> str:
        """The labels a publish of ``tag`` stamps, as ``k=v, …``."""
        return ", ".join(f"{k}={v}" for k, v in build_labels(tag, source, self.job.created()))


__all__ = ["ExportingPublisher"]
