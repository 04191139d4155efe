"""Splice pinned references into a file's exact text, write the files, show the diff.

From the offsets a scan recorded (:mod:`ocirel.deploy.sites`) we build small edits —
"replace characters [start, end) with this text", "insert this line after that
one" — and splice them into the original string, so nothing but the reference
changes:

* a :class:`~ocirel.deploy.sites.StringSite` is rewritten in its own style (plain,
  ``'single'``, ``"double"``); only the ``@digest`` is appended or replaced (and the
  tag dropped with ``digest_only``), so the repository keeps the spelling the user
  chose (``nginx`` stays ``nginx``);
* in a :class:`~ocirel.deploy.sites.FieldsSite` values are replaced in place; a
  missing key is inserted on a new line right after the entry's last key (Helm: after
  ``tag``, else ``repository``), at that key's indentation and with that line's line
  ending — or as ``, key: value`` in a flow mapping. A Helm map's digest goes to the
  key :mod:`ocirel.deploy.helm` chose (``digest``, ``sha`` or ``tag@sha256:…``), and a
  key the chart's schema forbids is never added.

:func:`write_results` writes every changed file, all or none (:func:`ocirel.fsutil.replace_all`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ocirel import reference as refs
from ocirel.deploy import helm, linediff
from ocirel.deploy.aliases import written_out
from ocirel.deploy.fieldedits import Edit, delete_field, render, replace_field, set_field
from ocirel.deploy.files import read_text
from ocirel.deploy.resolvers import Pin, Resolver
from ocirel.deploy.scan import ScannedFile, scan_text
from ocirel.deploy.sites import (
    FieldsSite,
    ImageOccurrence,
    ManifestKind,
    Scalar,
    StringSite,
    join_reference,
)
from ocirel.errors import ManifestError
from ocirel.fsutil import BatchWriteError, replace_all


@dataclass(frozen=True, slots=True)
class Change:
    """One reference that pinning rewrites (``old``/``new`` are effective references)."""

    path: str
    line: int
    column: int
    old: str
    new: str
    reason: str


@dataclass(frozen=True)
class PinResult:
    """The pinned text of one file and the list of changes that produced it."""

    path: str
    original: str
    text: str
    changes: tuple[Change, ...] = ()
    file: Path | None = None

    @property
    def changed(self) -> bool:
        return self.text != self.original


@dataclass(frozen=True, slots=True)
class _Target:
    """The state a reference should end in."""

    tag: str | None
    digest: str
    drop_tag: bool


def pin_file(scanned: ScannedFile, resolve: Resolver, *, digest_only: bool = False) -> PinResult:
    """Pin every occurrence in ``scanned`` that ``resolve`` answers for.

    Default form ``repo:tag@digest``; with ``digest_only``, ``repo@digest`` (a kustomize
    ``newTag`` is removed; Helm maps keep ``tag``, since charts fall back to their
    appVersion without one). A reference already carrying the resolved digest is left
    as it is, so pinning twice changes nothing.
    """
    edits: list[Edit] = []
    changes: list[Change] = []
    for occ in scanned.occurrences:
        answer = resolve(occ.reference)
        if answer is None:
            continue
        pin = Pin(answer) if isinstance(answer, str) else answer
        refs.validate_digest(pin.digest)
        if pin.tag is not None:
            refs.validate_tag(pin.tag)
        new_edits, change = _pin_occurrence(scanned.text, occ, pin, digest_only)
        edits.extend(new_edits)
        if change is not None:
            changes.append(change)
    text = _apply(scanned.text, edits, scanned.path)
    return PinResult(scanned.path, scanned.text, text, tuple(changes), scanned.file)


def pin_text(
    text: str,
    *,
    filename: str = "<string>",
    resolve: Resolver,
    digest_only: bool = False,
    kind: ManifestKind | None = None,
) -> PinResult:
    """Scan and pin one text; the result's ``text`` is what the file should become."""
    scanned = scan_text(text, filename=filename, kind=kind)
    return pin_file(scanned, resolve, digest_only=digest_only)


def write_results(results: Iterable[PinResult]) -> list[Path]:
    """Write every changed result: all of them or none, each atomically.

    Every new text is first staged in a fsynced temporary file next to its target;
    only when all are staged are they renamed over the targets (see
    :mod:`ocirel.fsutil`), so a full disk changes no file. The file mode is kept
    and a symlink's target is written, so the link stays. A file that changed since
    it was read is an error (another tool raced us), raised before anything is written.
    """
    pending = [
        (result, Path(os.path.realpath(result.file)))
        for result in results
        if result.changed and result.file is not None
    ]
    for result, target in pending:
        if read_text(target) != result.original:
            raise ManifestError(f"{result.path} changed while ocirel was pinning it; run again")
    try:
        replace_all([(target, result.text) for result, target in pending])
    except BatchWriteError as exc:
        done = f"{len(exc.replaced)} file(s) were already written" if exc.replaced else None
        raise ManifestError(f"{exc}; {done or 'no file was changed'}") from None
    return [result.file for result, _ in pending if result.file is not None]


def unified_diff(result: PinResult, *, context: int = 3) -> str:
    """A ``git diff``-style unified diff of ``result`` (empty when nothing changed)."""
    if not result.changed:
        return ""
    lines = linediff.unified_diff(
        _split_lines(result.original),
        _split_lines(result.text),
        f"a/{result.path}",
        f"b/{result.path}",
        n=context,
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _split_lines(text: str) -> list[str]:
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _apply(text: str, edits: Sequence[Edit], path: str) -> str:
    ordered = sorted(enumerate(edits), key=lambda item: (item[1].start, item[0]))
    parts: list[str] = []
    position = 0
    for _, edit in ordered:
        if edit.start < position:
            raise ManifestError(f"{path}: overlapping edits at offset {edit.start}")
        parts.append(text[position : edit.start])
        parts.append(edit.text)
        position = edit.end
    parts.append(text[position:])
    return "".join(parts)


def _pin_occurrence(
    text: str, occ: ImageOccurrence, pin: Pin, digest_only: bool
) -> tuple[list[Edit], Change | None]:
    if isinstance(occ.site, StringSite):
        edits, change = _pin_string(occ, occ.site, pin, digest_only)
        scalars: tuple[Scalar, ...] = (occ.site.scalar,)
    else:
        edits, change = _pin_fields(text, occ, occ.site, pin, digest_only)
        scalars = tuple(item.value for item in occ.site.fields if item.value is not None)
    return [*edits, *_alias_edits(text, occ.path, scalars, edits)], change


def _alias_edits(
    text: str, path: str, scalars: Sequence[Scalar], edits: Sequence[Edit]
) -> list[Edit]:
    """Write the old value out at the aliases of each anchored scalar that ``edits``
    rewrite, so they keep meaning what they meant (:mod:`ocirel.deploy.aliases`)."""
    written: list[Edit] = []
    for scalar in scalars:
        if not scalar.aliases or not any(
            edit.start <= scalar.start and scalar.end <= edit.end and edit.start < edit.end
            for edit in edits
        ):
            continue
        value = written_out(text, scalar)
        for use in scalar.aliases:
            if use.start < 0 or value is None:
                where = f"at line {use.line}" if use.start >= 0 else (
                    f"in the mapping or list at line {use.line}"
                )  # fmt: skip
                raise ManifestError(
                    f"{path}:{scalar.line}: cannot pin {scalar.value!r}: its anchor "
                    f"&{scalar.anchor} is also used {where} (*{scalar.anchor}), where ocirel "
                    "cannot write the value out, and pinning would change it too",
                    hint=f"replace *{scalar.anchor} {where} with the value itself, then pin again",
                )
            written.append(Edit(use.start, use.end, value))
    return written


def _split_written(value: str) -> tuple[str, str | None, str | None]:
    """``name``, ``tag``, ``digest`` of a reference, with ``name`` spelled as written."""
    before, _, digest = value.partition("@")
    colon = before.rfind(":")
    if colon > before.rfind("/"):
        return before[:colon], before[colon + 1 :], digest or None
    return before, None, digest or None


def _pin_string(
    occ: ImageOccurrence, site: StringSite, pin: Pin, digest_only: bool
) -> tuple[list[Edit], Change | None]:
    name, tag, digest = _split_written(site.scalar.value)
    new_tag = None if digest_only else (pin.tag if pin.tag and tag else tag)
    new_value = join_reference(pin.name or name, new_tag, pin.digest)
    if new_value == site.scalar.value:
        return [], None
    edit = Edit(site.scalar.start, site.scalar.end, render(new_value, site.scalar.style))
    reason = _reason(tag, digest, new_tag, pin)
    change = Change(occ.path, occ.line, occ.column, site.scalar.value, new_value, reason)
    return [edit], change


def _pin_fields(
    text: str, occ: ImageOccurrence, site: FieldsSite, pin: Pin, digest_only: bool
) -> tuple[list[Edit], Change | None]:
    if site.helm is not None:
        return _pin_helm(text, occ, site, pin)
    tag, digest = site.value(site.tag_key), site.value("digest")
    drop_tag = digest_only and occ.kind is ManifestKind.KUSTOMIZATION
    target = _Target(None if drop_tag else (pin.tag or tag), pin.digest, drop_tag)
    if (tag, digest) == (target.tag, target.digest) and pin.name is None:
        return [], None
    edits = _field_edits(text, site, target, has_tag=tag is not None)
    if pin.name is not None:  # kustomize: the mirror goes into newName
        edits.extend(set_field(text, site, "newName", pin.name))
    name = pin.name or _split_written(occ.ref_text)[0]
    old, new = occ.ref_text, join_reference(name, target.tag, target.digest)
    change = Change(occ.path, occ.line, occ.column, old, new, _reason(tag, digest, target.tag, pin))
    return edits, change


def _pin_helm(
    text: str, occ: ImageOccurrence, site: FieldsSite, pin: Pin
) -> tuple[list[Edit], Change | None]:
    """A Helm map: the digest goes where the chart reads it (``digest_only`` is ignored:
    charts fall back to their appVersion without a tag)."""
    tag = helm.split_tag(site.value("tag"))[0]
    new_tag = pin.tag or tag
    helm.check_target(occ, site)
    wanted = helm.wanted_values(site, new_tag, pin.digest, f"{occ.path}:{occ.line}")
    edits: list[Edit] = []
    for key, value in wanted.items():
        if site.value(key) == value:
            continue
        if site.get(key) is None:
            helm.check_allowed(occ, site, key)
        edits.extend(set_field(text, site, key, value))
    if pin.name is not None:
        edits.extend(_helm_name_edits(text, site, pin.name))
    if not edits:
        return [], None
    new = join_reference(pin.name or _split_written(occ.ref_text)[0], new_tag, pin.digest)
    if occ.reference.digest == pin.digest and tag == new_tag:
        reason = f"digest kept in step in every key of the map ({', '.join(wanted)})"
        reason = f"{reason} ({pin.note})" if pin.note else reason
    else:
        reason = _reason(tag, occ.reference.digest, new_tag, pin)
    return edits, Change(occ.path, occ.line, occ.column, occ.ref_text, new, reason)


def _helm_name_edits(text: str, site: FieldsSite, name: str) -> list[Edit]:
    """A Helm map moved to a mirror: ``registry`` gets the host and ``repository`` the
    path when the map has a ``registry`` key, else ``repository`` gets the whole name."""
    if site.value("registry") is None:
        return set_field(text, site, "repository", name)
    host, _, path = name.partition("/")
    return [*set_field(text, site, "registry", host), *set_field(text, site, "repository", path)]


def _field_edits(text: str, site: FieldsSite, target: _Target, *, has_tag: bool) -> list[Edit]:
    if target.drop_tag and has_tag:
        return _drop_tag_edits(text, site, target.digest)
    edits: list[Edit] = []
    if target.tag is not None and site.value(site.tag_key) != target.tag:
        edits.extend(set_field(text, site, site.tag_key, target.tag))
    if site.value("digest") != target.digest:
        edits.extend(set_field(text, site, "digest", target.digest))
    return edits


def _drop_tag_edits(text: str, site: FieldsSite, digest: str) -> list[Edit]:
    """``digest_only`` on a kustomize entry: remove ``newTag``, set ``digest``."""
    tag_field = site.get(site.tag_key)
    assert tag_field is not None  # the caller checked has_tag
    if site.get("digest") is None:
        # the digest takes newTag's place: same line, same comment, nothing to delete
        return [replace_field(tag_field, "digest", digest)]
    edits = [] if site.value("digest") == digest else set_field(text, site, "digest", digest)
    return [*edits, delete_field(text, site, tag_field)]


def _reason(old_tag: str | None, old_digest: str | None, new_tag: str | None, pin: Pin) -> str:
    if new_tag is not None and old_tag is not None and new_tag != old_tag:
        reason = f"updated to the locked version {new_tag}"
    elif old_tag is None and new_tag is not None:
        reason = f"tag {new_tag} added to match the digest"
    elif old_digest is None:
        reason = "pinned"
    elif old_digest != pin.digest:
        reason = "re-pinned (the digest changed)"
    else:
        reason = "tag dropped (digest-only)"
    return f"{reason} ({pin.note})" if pin.note else reason


__all__ = ["Change", "PinResult", "pin_file", "pin_text", "unified_diff", "write_results"]
