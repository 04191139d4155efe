"""Lint deployment YAML for image references that do not name exactly one image.

Works over the occurrences :mod:`ocirel.deploy.scan` finds (same kinds, same parsing),
so ``ocirel lint`` and ``ocirel pin`` always agree on what an image reference is.

Rules (``rule`` ids are stable; they appear in ``--json`` output):

``unpinned`` (error)
    A reference without ``@sha256:…``. A tag can be re-pushed; a node that already
    has the tag never pulls the new image. A Helm image map counts as pinned only
    when its digest is in a key the chart renders (:mod:`ocirel.deploy.helm`): with
    the chart at hand, a ``digest:`` its templates never read is reported here.
``floating-tag`` (error; warning when a digest pins the reference anyway)
    A tag that names a moving target: ``latest``, a missing tag (which means
    ``latest``) and the tags in :data:`ocirel.versioning.FLOATING_TAGS` by default,
    compared case-insensitively; pass ``floating=`` to choose the set. Kustomize
    entries and Helm maps without a tag inherit it from elsewhere and are not flagged.
``pull-policy-always`` (warning)
    ``imagePullPolicy: Always`` (compose ``pull_policy: always``, Helm ``pullPolicy``)
    next to an image: a crutch for re-pushed tags that makes every pod start depend
    on the registry. Pin the digest instead.
``invalid-reference`` (warning; error for a malformed kustomize ``images:`` entry)
    An image value that is not a valid reference. Templated values (``{{ … }}``,
    ``${…}``, ``$VAR``) are skipped silently. A kustomize entry exists only to name an
    image, so one that does not (``digest: sha256:25a0d4``) is an error, and ``pin``
    refuses to run until it is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ocirel.deploy.files import FileOptions, collect_paths
from ocirel.deploy.helm import HelmOptions, unrendered_digest
from ocirel.deploy.scan import ScannedFile, scan_files, scan_text
from ocirel.deploy.sites import FieldsSite, ImageOccurrence, ManifestKind
from ocirel.versioning import FLOATING_TAGS

RULE_UNPINNED = "unpinned"
RULE_FLOATING_TAG = "floating-tag"
RULE_PULL_POLICY_ALWAYS = "pull-policy-always"
RULE_INVALID_REFERENCE = "invalid-reference"
RULES = (RULE_UNPINNED, RULE_FLOATING_TAG, RULE_PULL_POLICY_ALWAYS, RULE_INVALID_REFERENCE)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem at ``path:line:column`` (1-based)."""

    path: str
    line: int
    column: int
    severity: Severity
    rule: str
    message: str
    reference: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": str(self.severity),
            "rule": self.rule,
            "message": self.message,
            "reference": self.reference,
        }

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}:{self.column}: {self.severity}: {self.message} [{self.rule}]"
        )


def lint_file(scanned: ScannedFile, *, floating: Iterable[str] = FLOATING_TAGS) -> list[Finding]:
    """Every finding in one scanned file, in file order."""
    floating_set = frozenset(tag.lower() for tag in floating)
    findings: list[Finding] = []
    for occ in scanned.occurrences:
        findings.extend(_check_occurrence(occ, floating_set))
    for skipped in scanned.skipped:
        if not skipped.templated and skipped.text:
            findings.append(
                Finding(
                    skipped.path,
                    skipped.line,
                    skipped.column,
                    Severity.ERROR if skipped.malformed else Severity.WARNING,
                    RULE_INVALID_REFERENCE,
                    f"{skipped.text!r} is not used as an image reference: {skipped.reason}",
                    skipped.text,
                )
            )
    return sorted(findings, key=_order)


def lint_files(
    scanned: Iterable[ScannedFile], *, floating: Iterable[str] = FLOATING_TAGS
) -> list[Finding]:
    floating = tuple(floating)
    return [f for one in scanned for f in lint_file(one, floating=floating)]


def lint_text(
    text: str,
    *,
    filename: str = "<string>",
    floating: Iterable[str] = FLOATING_TAGS,
    kind: ManifestKind | None = None,
) -> list[Finding]:
    return lint_file(scan_text(text, filename=filename, kind=kind), floating=floating)


def lint_paths(
    paths: Iterable[Path],
    *,
    floating: Iterable[str] = FLOATING_TAGS,
    kind: ManifestKind | None = None,
    files: FileOptions | None = None,
    helm: HelmOptions | None = None,
) -> list[Finding]:
    """Lint every YAML file under ``paths``; an invalid file raises ``ManifestError``."""
    scanned = scan_files(collect_paths(paths, files), kind=kind, helm=helm)
    return lint_files(scanned, floating=floating)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def _order(finding: Finding) -> tuple[int, int, int]:
    return finding.line, finding.column, RULES.index(finding.rule)


def _check_occurrence(occ: ImageOccurrence, floating: frozenset[str]) -> list[Finding]:
    findings: list[Finding] = []
    pinned = occ.reference.digest is not None
    if not pinned:
        findings.append(_finding(occ, Severity.ERROR, RULE_UNPINNED, _unpinned_message(occ)))
    floating_finding = _floating(occ, floating, pinned=pinned)
    if floating_finding is not None:
        findings.append(floating_finding)
    policy = occ.pull_policy
    if policy is not None and policy.value.lower() == "always":
        why = "is redundant with a digest pin" if pinned else "does not make a moving tag safe"
        findings.append(
            Finding(
                occ.path,
                policy.line,
                policy.column,
                Severity.WARNING,
                RULE_PULL_POLICY_ALWAYS,
                f"pull policy Always for {occ.ref_text} {why}, and makes every start depend "
                "on the registry; pin the digest and use IfNotPresent",
                occ.ref_text,
            )
        )
    return findings


def _unpinned_message(occ: ImageOccurrence) -> str:
    site = occ.site
    unread = unrendered_digest(site) if isinstance(site, FieldsSite) else None
    if unread is None or not isinstance(site, FieldsSite) or site.helm is None:
        return f"{occ.ref_text} is not pinned by digest; run 'ocirel pin'"
    chart = site.helm.chart
    return (
        f"{occ.ref_text} is not pinned by digest: its digest is in {unread!r}, which the "
        f"chart ({chart}) never renders; run 'ocirel pin' to write it where the chart reads it"
    )


def _floating(occ: ImageOccurrence, floating: frozenset[str], *, pinned: bool) -> Finding | None:
    tag = occ.reference.tag
    if occ.implicit_tag and "latest" in floating:
        what = f"{occ.ref_text} has no tag, which means 'latest'"
    elif tag is not None and tag.lower() in floating and not occ.implicit_tag:
        what = f"{occ.ref_text} uses the floating tag {tag!r}"
    else:
        return None
    if pinned:
        return _finding(
            occ,
            Severity.WARNING,
            RULE_FLOATING_TAG,
            f"{what}; the digest decides, but the tag misleads readers",
        )
    return _finding(occ, Severity.ERROR, RULE_FLOATING_TAG, f"{what}; publish a unique version tag")


def _finding(occ: ImageOccurrence, severity: Severity, rule: str, message: str) -> Finding:
    return Finding(occ.path, occ.line, occ.column, severity, rule, message, occ.ref_text)


__all__ = [
    "RULES",
    "Finding",
    "Severity",
    "has_errors",
    "lint_file",
    "lint_files",
    "lint_paths",
    "lint_text",
]
