"""The OCI labels ocirel stamps into a release: version, created, revision, source."""

from __future__ import annotations

from ocirel.gitinfo import SourceInfo
from ocirel.oci import LABEL_CREATED, LABEL_REVISION, LABEL_SOURCE, LABEL_VERSION


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
