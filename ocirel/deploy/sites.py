"""What a scan finds: image references (*occurrences*) and where they are written (*sites*).

Every position is a character offset into the file's exact text, so pinning can
splice new text in without re-dumping the YAML (see :mod:`ocirel.deploy.splice`).

Two shapes of "where an image is written" (a *site*):

* :class:`StringSite` — one scalar holding a whole reference (``image: nginx:1.25``).
  The scalar is rewritten in its own style (plain, ``'single'``, ``"double"``); only
  the ``@digest`` is appended or replaced (and the tag dropped with ``digest_only``),
  so the repository keeps the spelling the user chose (``nginx`` stays ``nginx``).
* :class:`FieldsSite` — a mapping with separate keys: kustomize ``images:`` entries
  (``name``/``newName``/``newTag``/``digest``) and Helm values
  (``registry``/``repository``/``tag``/``digest``). Values are replaced in place; a
  missing key is inserted on a new line right after the entry's last key (Helm: after
  ``tag``, else ``repository``), at that key's indentation and with that line's line
  ending — or as ``, key: value`` in a flow mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ocirel.reference import Reference


class ManifestKind(StrEnum):
    """What kind of file (or document) an image reference was found in."""

    KUBERNETES = "kubernetes"
    KUSTOMIZATION = "kustomization"
    HELM = "helm"
    COMPOSE = "compose"


@dataclass(frozen=True, slots=True)
class AliasUse:
    """An alias (``*name``) of an anchored scalar: characters ``[start, end)``, or
    ``start == -1`` when it cannot be located exactly. ``key`` is the mapping key it
    is the value of (None in a sequence). See :mod:`ocirel.deploy.aliases`."""

    start: int
    end: int
    line: int
    key: str | None


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar's source text: characters ``[start, end)`` of the file, without any
    anchor or tag in front. ``line``/``column`` are 1-based. An empty value
    (``digest:``) has ``start == end`` right after the colon. ``aliases`` are the
    other places an anchored image/tag scalar is used (``anchor`` is its name)."""

    start: int
    end: int
    line: int
    column: int
    style: str | None  # None (plain), "'", '"', "|" or ">"
    value: str
    anchor: str | None = None
    aliases: tuple[AliasUse, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.style is None and self.value in ("", "~", "null", "Null", "NULL")


@dataclass(frozen=True, slots=True)
class StringSite:
    """A whole reference in one scalar, e.g. a container's ``image``."""

    scalar: Scalar


@dataclass(frozen=True, slots=True)
class Field:
    """One ``key: value`` of a mapping. ``value`` is None when the value is a collection."""

    name: str
    key: Scalar
    value: Scalar | None
    value_end: int


@dataclass(frozen=True, slots=True)
class HelmTarget:
    """Where a Helm image map gets its digest (see :mod:`ocirel.deploy.helm`).

    ``field`` is ``digest``, ``sha`` or ``tag`` (written as ``tag@sha256:…``);
    ``rendered`` holds the digest-carrying keys the chart renders; ``allowed`` the keys
    the chart's ``values.schema.json`` allows in this map (None: any); ``chart`` the
    chart directory, when it is at hand. ``sha_hex``: a ``sha`` value is written as
    bare hex (the chart adds ``@sha256:``), else as the whole ``sha256:…`` digest.
    """

    field: str
    rendered: frozenset[str]
    allowed: frozenset[str] | None = None
    chart: str | None = None
    sha_hex: bool = True


@dataclass(frozen=True, slots=True)
class FieldsSite:
    """A reference spread over keys of one mapping (kustomize entry, Helm image map).

    ``fields`` are all the mapping's fields in source order; ``tag_key`` is ``newTag``
    or ``tag``; a missing key is inserted after the field named ``insert_after``.
    ``helm`` says where a Helm map's digest goes (None for kustomize entries).
    """

    fields: tuple[Field, ...]
    flow: bool
    tag_key: str
    insert_after: str
    helm: HelmTarget | None = None

    def get(self, name: str) -> Field | None:
        for item in self.fields:
            if item.name == name:
                return item
        return None

    def value(self, name: str) -> str | None:
        """The non-empty scalar value of ``name``, or None."""
        item = self.get(name)
        if item is None or item.value is None or item.value.is_empty or not item.value.value:
            return None
        return item.value.value


Site = StringSite | FieldsSite


@dataclass(frozen=True, slots=True)
class ImageOccurrence:
    """One image reference found in a file.

    ``ref_text`` is the reference as written (for a :class:`FieldsSite`, composed from
    its keys); ``reference`` is it parsed and normalized, with ``tag="latest"`` made
    explicit when a string has neither tag nor digest (``implicit_tag`` is then True).
    A :class:`FieldsSite` without a tag has ``reference.tag is None``: the tag comes
    from elsewhere (the kustomize resource, the chart's appVersion).
    """

    path: str
    line: int
    column: int
    kind: ManifestKind
    ref_text: str
    reference: Reference
    yaml_path: str
    site: Site
    implicit_tag: bool = False
    pull_policy: Scalar | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A value where an image was expected but that ocirel leaves alone.

    ``malformed`` marks an entry whose only purpose is to name an image (a kustomize
    ``images:`` entry) but that does not: ``lint`` reports it as an error and ``pin``
    refuses to run until it is fixed, rather than report "nothing to pin".
    """

    path: str
    line: int
    column: int
    text: str
    reason: str
    templated: bool = False
    malformed: bool = False


def join_reference(name: str, tag: str | None, digest: str | None) -> str:
    """``name[:tag][@digest]``."""
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def line_end(text: str, index: int) -> tuple[int, str]:
    """Where the line holding ``index`` ends (before its line break) and that break."""
    newline = text.find("\n", index)
    if newline < 0:
        return len(text), "\r\n" if "\r\n" in text else "\n"
    if newline > 0 and text[newline - 1] == "\r":
        return newline - 1, "\r\n"
    return newline, "\n"


__all__ = [
    "AliasUse",
    "Field",
    "FieldsSite",
    "HelmTarget",
    "ImageOccurrence",
    "ManifestKind",
    "Scalar",
    "Site",
    "Skipped",
    "StringSite",
    "join_reference",
    "line_end",
    "line_start",
]
