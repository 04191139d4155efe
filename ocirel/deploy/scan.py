"""Find image references in deployment YAML and pin them by digest, byte for byte.

Approach: *locate with a parser, edit the text*. ruamel.yaml composes each file into
nodes (not Python objects): every scalar node carries the character offsets of its
source text, its quoting style, and anchors/aliases resolve to the very same node.
From those offsets we build small edits — "replace characters [start, end) with this
text", "insert this line after that one" — and splice them into the original string.
Nothing is ever re-dumped, so comments, key order, quoting, indentation, flow style,
anchors, CRLF line endings, a BOM and every unrelated byte stay as they were. Files
are read and written as exact bytes decoded as UTF-8 (no newline translation).

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

What is recognised, per document (multi-document files are fine):

* Kubernetes (a mapping with ``kind``): every mapping anywhere in the document with a
  ``containers``, ``initContainers`` or ``ephemeralContainers`` list of mappings with
  ``image`` — so Pod, the workload kinds, CronJob, ``List`` and custom resources with
  pod templates alike.
* kustomize: ``kind: Kustomization`` (or a kustomize ``Component``), or a file named
  ``kustomization.yaml``/``.yml``/``Kustomization`` — the ``images:`` entries (Flux's
  ``Kustomization`` keeps them under ``spec.images``).
* Helm values: a file named ``values*.yaml``/``.yml`` (or ``kind=ManifestKind.HELM``)
  — mappings with ``repository`` plus ``tag``/``registry``/``digest``, and every
  ``image: "repo:tag"`` string. An ``image`` string next to a ``tag``/``imageTag`` key is
  skipped: the chart glues them together and a digest there would break it.
* compose: a top-level ``services`` mapping (``services.*.image``).

Anything that does not parse as a reference (``{{ .Values.image }}``, ``${TAG}``, …) is
skipped and reported in :attr:`Manifest.skipped`, never an error. A file that is not
valid YAML is a :class:`~ocirel.errors.ManifestError` naming file, line and column.

Which tag and digest to write is decided by a *resolver* (see :data:`Resolver`):
:func:`lock_resolver` pins references whose repository is in the lockfile to the
locked tag and digest; :func:`tag_resolver` wraps digests looked up in a registry;
:func:`chain` combines them.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from ocirel import reference as refs
from ocirel.errors import InvalidReferenceError, ManifestError
from ocirel.fsutil import BatchWriteError, replace_all
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.reference import Reference

Node = Any  # ruamel.yaml's node classes are untyped

YAML_SUFFIXES = (".yaml", ".yml")
KUSTOMIZATION_FILENAMES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")
PULL_POLICY_KEYS = ("imagePullPolicy", "pullPolicy", "pull_policy")
TEMPLATE_MARKERS = ("{{", "${", "$(", "<%")
_HELM_VALUES_RE = re.compile(r"values.*\.ya?ml")
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Keys of a FieldsSite that pinning reads or writes.
_SITE_KEYS = frozenset({"name", "newName", "newTag", "digest", "registry", "repository", "tag"})
# Plain scalars YAML 1.1/1.2 would read as something other than a string.
_NON_STRING_RE = re.compile(
    r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|\.inf|\.nan)"
    r"|y|n|yes|no|on|off|true|false|null|~",
    re.IGNORECASE,
)
_PLAIN_SAFE_RE = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*")


class ManifestKind(StrEnum):
    """What kind of file (or document) an image reference was found in."""

    KUBERNETES = "kubernetes"
    KUSTOMIZATION = "kustomization"
    HELM = "helm"
    COMPOSE = "compose"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar's source text: characters ``[start, end)`` of the file, without any
    anchor or tag in front. ``line``/``column`` are 1-based. An empty value
    (``digest:``) has ``start == end`` right after the colon."""

    start: int
    end: int
    line: int
    column: int
    style: str | None  # None (plain), "'", '"', "|" or ">"
    value: str

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
class FieldsSite:
    """A reference spread over keys of one mapping (kustomize entry, Helm image map).

    ``fields`` are all the mapping's fields in source order; ``tag_key`` is ``newTag``
    or ``tag``; a missing key is inserted after the field named ``insert_after``.
    """

    fields: tuple[Field, ...]
    flow: bool
    tag_key: str
    insert_after: str

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
    """A value where an image was expected but that ocirel leaves alone."""

    path: str
    line: int
    column: int
    text: str
    reason: str
    templated: bool = False


@dataclass(frozen=True)
class Manifest:
    """One scanned file: its exact text and what was found in it."""

    path: str
    text: str
    occurrences: tuple[ImageOccurrence, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    file: Path | None = None


@dataclass(frozen=True, slots=True)
class Pin:
    """What a resolver wants written: ``digest``, and optionally a new ``tag`` (the
    locked version). ``note`` is appended to the change's reason."""

    digest: str
    tag: str | None = None
    note: str = ""


#: Called once per occurrence with its :attr:`ImageOccurrence.reference`; returns the
#: digest for it (a ``str``), a :class:`Pin`, or None to leave the reference alone.
Resolver = Callable[[Reference], "Pin | str | None"]


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


# --------------------------------------------------------------------------- parsing


def scan_text(
    text: str,
    *,
    filename: str = "<string>",
    kind: ManifestKind | None = None,
    file: Path | None = None,
) -> Manifest:
    """Parse ``text`` once and find every image reference in it.

    ``filename`` is used for messages and to recognise ``kustomization.yaml`` and
    ``values*.yaml``; ``kind`` forces the kind of every document.
    """
    hint = kind or _kind_from_filename(Path(filename).name)
    scanner = _Scanner(text, filename)
    for doc in _compose(text, filename):
        doc_kind = _classify(doc, hint)
        if doc_kind is not None:
            scanner.scan_document(doc, doc_kind)
    return Manifest(
        path=filename,
        text=text,
        occurrences=tuple(sorted(scanner.occurrences, key=lambda o: (o.line, o.column))),
        skipped=tuple(sorted(scanner.skipped, key=lambda s: (s.line, s.column))),
        file=file,
    )


def load_file(path: Path, *, kind: ManifestKind | None = None) -> Manifest:
    """Read ``path`` as exact UTF-8 text (CRLF kept) and scan it."""
    return scan_text(read_text(path), filename=str(path), kind=kind, file=path)


def read_text(path: Path) -> str:
    """The file's exact text: bytes decoded as UTF-8, without newline translation."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(f"{path}:{line}: not UTF-8 text") from None


def collect_paths(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named by ``paths``: files as given, directories recursively.

    Walking a directory skips hidden entries (``.git``, ``.venv``, ``.gitlab-ci.yml``)
    and, everywhere, the ``templates/`` of a Helm chart (Go templates, not YAML). The
    result is deduplicated and in a stable order.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(_walk_directory(path))
        elif path.exists():
            found.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    unique: dict[str, Path] = {}
    for path in found:
        if not _is_chart_template(path):
            unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def load_manifests(paths: Iterable[Path], *, kind: ManifestKind | None = None) -> list[Manifest]:
    """Scan every YAML file under ``paths``; any unreadable or invalid file raises.

    The error names the first bad file and line; its hint lists the others.
    """
    manifests: list[Manifest] = []
    errors: list[ManifestError] = []
    for path in collect_paths(paths):
        try:
            manifests.append(load_file(path, kind=kind))
        except ManifestError as exc:
            errors.append(exc)
    if errors:
        first = errors[0]
        others = [e.message for e in errors[1:]]
        hint = first.hint or (f"{len(others)} more: " + "; ".join(others) if others else None)
        raise ManifestError(first.message, hint=hint)
    return manifests


def _walk_directory(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(YAML_SUFFIXES) and not name.startswith("."):
                yield Path(directory, name)


def _is_chart_template(path: Path) -> bool:
    return any(
        parent.name == "templates" and (parent.parent / "Chart.yaml").is_file()
        for parent in (Path.cwd() / path).parents
    )


def _kind_from_filename(name: str) -> ManifestKind | None:
    if name in KUSTOMIZATION_FILENAMES:
        return ManifestKind.KUSTOMIZATION
    if _HELM_VALUES_RE.fullmatch(name):
        return ManifestKind.HELM
    return None


def _compose(text: str, filename: str) -> list[Node]:
    try:
        return list(YAML(typ="safe", pure=True).compose_all(text))
    except MarkedYAMLError as exc:
        raise ManifestError(_yaml_error_message(exc, filename)) from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ManifestError(f"{filename}:{line}: invalid YAML: {exc.reason}") from None
    except (YAMLError, RecursionError) as exc:
        raise ManifestError(f"{filename}: invalid YAML: {exc}") from None


def _yaml_error_message(exc: MarkedYAMLError, filename: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
    problem = exc.problem or exc.context or "parse error"
    if exc.context and exc.problem and exc.context_mark:
        problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return f"{where}: invalid YAML: {problem}"


def _classify(doc: Node, hint: ManifestKind | None) -> ManifestKind | None:
    if hint is not None:
        return hint
    if not isinstance(doc, MappingNode):
        return None
    kind = _scalar_value(_get(doc, "kind"))
    api_version = _scalar_value(_get(doc, "apiVersion")) or ""
    if kind == "Kustomization" or (
        kind == "Component" and api_version.startswith("kustomize.config.k8s.io/")
    ):
        return ManifestKind.KUSTOMIZATION
    if kind is not None:
        return ManifestKind.KUBERNETES
    if isinstance(_get(doc, "services"), MappingNode):
        return ManifestKind.COMPOSE
    return None


# --------------------------------------------------------------------------- node access


def _pairs(node: Node) -> Iterator[tuple[str, Node, Node]]:
    """``(key, key node, value node)`` of a mapping, own keys first, then merged ones
    (``<<: *base``), each merged mapping once even if the merges form a cycle."""
    pending, seen = [node], {id(node)}
    while pending:
        current = pending.pop(0)
        for key, value in current.value:
            if key.tag == _MERGE_TAG:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    if isinstance(source, MappingNode) and id(source) not in seen:
                        seen.add(id(source))
                        pending.append(source)
            elif isinstance(key, ScalarNode):
                yield key.value, key, value


def _get(node: Node, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for name, _, value in _pairs(node):
        if name == key:
            return value
    return None


def _scalar_value(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def _has_merge(node: Node) -> bool:
    return any(key.tag == _MERGE_TAG for key, _ in node.value)


def _walk(root: Node) -> Iterator[tuple[Node, tuple[str | int, ...]]]:
    """Every node under ``root`` once (aliases are visited at their anchor), in order."""
    stack: list[tuple[Node, tuple[str | int, ...]]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, path
        if isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                stack.append((value, (*path, _key_label(key))))
        elif isinstance(node, SequenceNode):
            for index in range(len(node.value) - 1, -1, -1):
                stack.append((node.value[index], (*path, index)))


def _key_label(key: Node) -> str:
    return key.value if isinstance(key, ScalarNode) else "?"


def _format_path(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _skip_properties(text: str, index: int, end: int) -> int:
    """Skip an anchor (``&a``), a tag (``!!str``), whitespace and comments before a scalar."""
    while index < end:
        char = text[index]
        if char in " \t\r\n":
            index += 1
        elif char == "#":
            newline = text.find("\n", index, end)
            index = end if newline < 0 else newline
        elif char in "&!":
            while index < end and text[index] not in " \t\r\n":
                index += 1
        else:
            break
    return index


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> tuple[int, str]:
    """Where the line holding ``index`` ends (before its line break) and that break."""
    newline = text.find("\n", index)
    if newline < 0:
        return len(text), "\r\n" if "\r\n" in text else "\n"
    if newline > 0 and text[newline - 1] == "\r":
        return newline - 1, "\r\n"
    return newline, "\n"


# --------------------------------------------------------------------------- scanning


class _Scanner:
    """Collects occurrences from composed documents of one file."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.occurrences: list[ImageOccurrence] = []
        self.skipped: list[Skipped] = []
        self._seen_scalars: set[int] = set()  # start offsets of image strings
        self._seen_maps: set[int] = set()  # ids of FieldsSite mappings

    def scan_document(self, doc: Node, kind: ManifestKind) -> None:
        if kind is ManifestKind.KUBERNETES:
            self._scan_kubernetes(doc)
        elif kind is ManifestKind.KUSTOMIZATION:
            self._scan_kustomization(doc)
        elif kind is ManifestKind.HELM:
            self._scan_helm(doc)
        else:
            self._scan_compose(doc)

    # -- kinds

    def _scan_kubernetes(self, doc: Node) -> None:
        for node, path in _walk(doc):
            if not isinstance(node, MappingNode):
                continue
            for key in CONTAINER_KEYS:
                containers = _get(node, key)
                if not isinstance(containers, SequenceNode):
                    continue
                for index, container in enumerate(containers.value):
                    where = (*path, key, index)
                    self._image_in(container, where, ManifestKind.KUBERNETES)

    def _scan_compose(self, doc: Node) -> None:
        services = _get(doc, "services")
        if not isinstance(services, MappingNode):
            return
        for name, _, service in _pairs(services):
            self._image_in(service, ("services", name), ManifestKind.COMPOSE)

    def _scan_kustomization(self, doc: Node) -> None:
        images = _get(doc, "images")
        path: tuple[str, ...] = ("images",)
        if images is None:
            images, path = _get(_get(doc, "spec"), "images"), ("spec", "images")
        if not isinstance(images, SequenceNode):
            return
        for index, entry in enumerate(images.value):
            if isinstance(entry, MappingNode) and _get(entry, "name") is not None:
                self._fields(entry, (*path, index), ManifestKind.KUSTOMIZATION)

    def _scan_helm(self, doc: Node) -> None:
        for node, path in _walk(doc):
            if not isinstance(node, MappingNode):
                continue
            keys = {name for name, _, _ in _pairs(node)}
            if "repository" in keys and keys & {"tag", "registry", "digest"}:
                self._fields(node, path, ManifestKind.HELM)
            if keys & {"tag", "imageTag"} and isinstance(_get(node, "image"), ScalarNode):
                self._skip(_get(node, "image"), "image and tag are separate keys here")
            elif isinstance(_get(node, "image"), ScalarNode):
                self._image_in(node, path, ManifestKind.HELM)

    # -- sites

    def _image_in(self, holder: Node, path: tuple[str | int, ...], kind: ManifestKind) -> None:
        """The ``image`` string of a container/service mapping ``holder``."""
        node = _get(holder, "image")
        if not isinstance(node, ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            return
        scalar = self._scalar(node)
        if scalar.start in self._seen_scalars:
            return
        self._seen_scalars.add(scalar.start)
        if scalar.style in ("|", ">"):
            self._skip(node, "block scalars are not rewritten")
            return
        parsed = self._parse(node, scalar.value)
        if parsed is None:
            return
        implicit = parsed.tag is None and parsed.digest is None
        self.occurrences.append(
            ImageOccurrence(
                path=self.path,
                line=scalar.line,
                column=scalar.column,
                kind=kind,
                ref_text=scalar.value,
                reference=parsed.with_tag("latest") if implicit else parsed,
                yaml_path=_format_path((*path, "image")),
                site=StringSite(scalar),
                implicit_tag=implicit,
                pull_policy=self._pull_policy(holder),
            )
        )

    def _fields(self, node: Node, path: tuple[str | int, ...], kind: ManifestKind) -> None:
        """A kustomize ``images:`` entry or a Helm image map."""
        if id(node) in self._seen_maps:
            return
        self._seen_maps.add(id(node))
        site = self._fields_site(node, kind)
        if site is None:
            return
        text = _compose_reference(site, kind)
        if text is None:
            return
        anchor = site.get("name" if kind is ManifestKind.KUSTOMIZATION else "repository")
        assert anchor is not None  # the callers check it
        parsed = self._parse(node, text)
        if parsed is None:
            return
        self.occurrences.append(
            ImageOccurrence(
                path=self.path,
                line=anchor.key.line,
                column=anchor.key.column,
                kind=kind,
                ref_text=text,
                reference=parsed,
                yaml_path=_format_path(path),
                site=site,
                pull_policy=self._pull_policy(node),
            )
        )

    def _fields_site(self, node: Node, kind: ManifestKind) -> FieldsSite | None:
        if _has_merge(node):
            self._skip(node, "image keys taken from a '<<' merge are not rewritten")
            return None
        fields = [self._field(k, v) for k, v in node.value if isinstance(k, ScalarNode)]
        flow = bool(node.flow_style)
        for item in fields:
            if (item.name in _SITE_KEYS and item.value is None) or (flow and item.value_end < 0):
                self._skip(node, f"the value of {item.name!r} cannot be edited in place")
                return None
        tag_key = "newTag" if kind is ManifestKind.KUSTOMIZATION else "tag"
        scalars = [f.name for f in fields if f.value is not None]
        if kind is ManifestKind.HELM:
            scalars = [name for name in scalars if name in ("repository", "tag")]
        insert_after = scalars[-1] if scalars else fields[-1].name
        return FieldsSite(tuple(fields), flow, tag_key, insert_after)

    def _field(self, key: Node, value: Node) -> Field:
        """A field; ``value_end`` is -1 when its text cannot be edited (alias, block)."""
        key_scalar = self._scalar(key)
        key_end = key.end_mark.index
        if value.start_mark.index < key_end or getattr(value, "style", None) in ("|", ">"):
            return Field(key.value, key_scalar, None, -1)
        if not isinstance(value, ScalarNode):
            return Field(key.value, key_scalar, None, value.end_mark.index)
        if value.value == "" and value.style is None:
            colon = _colon_after(self.text, key_end)
            if colon is None:
                return Field(key.value, key_scalar, None, -1)
            empty = Scalar(colon, colon, key_scalar.line, key_scalar.column, None, "")
            return Field(key.value, key_scalar, empty, colon)
        scalar = self._scalar(value)
        return Field(key.value, key_scalar, scalar, scalar.end)

    # -- helpers

    def _scalar(self, node: Node) -> Scalar:
        mark = node.start_mark
        start = _skip_properties(self.text, mark.index, node.end_mark.index)
        line, column = mark.line + 1, mark.column + 1 + (start - mark.index)
        skipped = self.text.count("\n", mark.index, start)
        if skipped:
            line += skipped
            column = start - _line_start(self.text, start) + 1
        return Scalar(start, node.end_mark.index, line, column, node.style, node.value)

    def _pull_policy(self, holder: Node) -> Scalar | None:
        for key in PULL_POLICY_KEYS:
            node = _get(holder, key)
            if isinstance(node, ScalarNode):
                return self._scalar(node)
        return None

    def _parse(self, node: Node, text: str) -> Reference | None:
        try:
            return refs.parse(text)
        except InvalidReferenceError as exc:
            templated = any(marker in text for marker in TEMPLATE_MARKERS)
            reason = "templated value" if templated else str(exc)
            self._skip(node, reason, text=text, templated=templated)
            return None

    def _skip(
        self, node: Node, reason: str, *, text: str | None = None, templated: bool = False
    ) -> None:
        mark = node.start_mark
        shown = text if text is not None else (node.value if isinstance(node, ScalarNode) else "")
        self.skipped.append(
            Skipped(self.path, mark.line + 1, mark.column + 1, shown, reason, templated)
        )


def _colon_after(text: str, index: int) -> int | None:
    """The offset just after the ``:`` that follows a key ending at ``index``."""
    while index < len(text) and text[index] in " \t":
        index += 1
    return index + 1 if index < len(text) and text[index] == ":" else None


def _compose_reference(site: FieldsSite, kind: ManifestKind) -> str | None:
    """The reference a kustomize entry or Helm map stands for, as text."""
    if kind is ManifestKind.KUSTOMIZATION:
        name = site.value("newName") or site.value("name")
    else:
        repository, registry = site.value("repository"), site.value("registry")
        name = f"{registry}/{repository}" if registry and repository else repository
    if name is None:
        return None
    tag, digest = site.value(site.tag_key), site.value("digest")
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


# --------------------------------------------------------------------------- resolvers


def lock_resolver(lock: Lockfile) -> Resolver:
    """Pin references whose repository is in ``lock`` to the locked tag *and* digest.

    Matching is by normalized repository (``nginx`` matches ``docker.io/library/nginx``),
    whatever tag the manifest names: ``app:v6`` becomes ``app:v7@<v7 digest>`` when v7
    is locked, so tag and digest never disagree. When several entries share a
    repository, the one with the reference's digest, else its tag, is used; if none
    matches, the reference is left alone.
    """
    by_repository: dict[str, list[LockEntry]] = {}
    for name in sorted(lock.entries):
        entry = lock.entries[name]
        by_repository.setdefault(entry.repository, []).append(entry)

    def resolve(ref: Reference) -> Pin | None:
        entry = _choose_entry(by_repository.get(ref.name, []), ref)
        if entry is None:
            return None
        return Pin(digest=entry.digest, tag=entry.tag, note=f"lockfile entry {entry.name!r}")

    return resolve


def _choose_entry(entries: Sequence[LockEntry], ref: Reference) -> LockEntry | None:
    if len(entries) <= 1:
        return entries[0] if entries else None
    for entry in entries:
        if ref.digest is not None and entry.digest == ref.digest:
            return entry
    for entry in entries:
        if entry.tag == ref.tag:
            return entry
    return None


def tag_resolver(digests: Mapping[Reference, str]) -> Resolver:
    """Look digests up in ``digests``, keyed by tag references without digest.

    Build the map from :func:`tag_references` (each distinct tag resolved once, e.g. in
    parallel against the registry). References without a tag resolve to None.
    """

    def resolve(ref: Reference) -> str | None:
        if ref.tag is None:
            return None
        return digests.get(replace(ref, digest=None))

    return resolve


def chain(*resolvers: Resolver) -> Resolver:
    """The first resolver's answer that is not None (e.g. lockfile, then registry)."""

    def resolve(ref: Reference) -> Pin | str | None:
        for resolver in resolvers:
            answer = resolver(ref)
            if answer is not None:
                return answer
        return None

    return resolve


def tag_references(manifests: Iterable[Manifest]) -> set[Reference]:
    """Every distinct ``repo:tag`` (digest stripped) a registry would have to resolve."""
    return {
        replace(occ.reference, digest=None)
        for manifest in manifests
        for occ in manifest.occurrences
        if occ.reference.tag is not None
    }


# --------------------------------------------------------------------------- pinning


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class _Target:
    """The state a reference should end in."""

    tag: str | None
    digest: str
    drop_tag: bool


def pin_manifest(manifest: Manifest, resolve: Resolver, *, digest_only: bool = False) -> PinResult:
    """Pin every occurrence in ``manifest`` that ``resolve`` answers for.

    Default form ``repo:tag@digest``; with ``digest_only``, ``repo@digest`` (a kustomize
    ``newTag`` is removed; Helm maps keep ``tag``, since charts fall back to their
    appVersion without one). A reference already carrying the resolved digest is left
    as it is, so pinning twice changes nothing.
    """
    edits: list[_Edit] = []
    changes: list[Change] = []
    for occ in manifest.occurrences:
        answer = resolve(occ.reference)
        if answer is None:
            continue
        pin = Pin(answer) if isinstance(answer, str) else answer
        refs.validate_digest(pin.digest)
        if pin.tag is not None:
            refs.validate_tag(pin.tag)
        new_edits, change = _pin_occurrence(manifest.text, occ, pin, digest_only)
        edits.extend(new_edits)
        if change is not None:
            changes.append(change)
    text = _apply(manifest.text, edits, manifest.path)
    return PinResult(manifest.path, manifest.text, text, tuple(changes), manifest.file)


def pin_text(
    text: str,
    *,
    filename: str = "<string>",
    resolve: Resolver,
    digest_only: bool = False,
    kind: ManifestKind | None = None,
) -> PinResult:
    """Scan and pin one text; the result's ``text`` is what the file should become."""
    manifest = scan_text(text, filename=filename, kind=kind)
    return pin_manifest(manifest, resolve, digest_only=digest_only)


def pin_files(
    paths: Iterable[Path],
    resolve: Resolver,
    *,
    digest_only: bool = False,
    kind: ManifestKind | None = None,
) -> list[PinResult]:
    """Compute the pinned text of every YAML file under ``paths``; write nothing.

    Any invalid file raises before a result is returned, so a caller that writes with
    :func:`write_results` afterwards changes either every file or none.
    """
    manifests = load_manifests(paths, kind=kind)
    return [pin_manifest(m, resolve, digest_only=digest_only) for m in manifests]


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
    lines = difflib.unified_diff(
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


def _apply(text: str, edits: Sequence[_Edit], path: str) -> str:
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
) -> tuple[list[_Edit], Change | None]:
    if isinstance(occ.site, StringSite):
        return _pin_string(occ, occ.site, pin, digest_only)
    return _pin_fields(text, occ, occ.site, pin, digest_only)


def _split_written(value: str) -> tuple[str, str | None, str | None]:
    """``name``, ``tag``, ``digest`` of a reference, with ``name`` spelled as written."""
    before, _, digest = value.partition("@")
    colon = before.rfind(":")
    if colon > before.rfind("/"):
        return before[:colon], before[colon + 1 :], digest or None
    return before, None, digest or None


def _join(name: str, tag: str | None, digest: str | None) -> str:
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _pin_string(
    occ: ImageOccurrence, site: StringSite, pin: Pin, digest_only: bool
) -> tuple[list[_Edit], Change | None]:
    name, tag, digest = _split_written(site.scalar.value)
    new_tag = None if digest_only else (pin.tag if pin.tag and tag else tag)
    new_value = _join(name, new_tag, pin.digest)
    if new_value == site.scalar.value:
        return [], None
    edit = _Edit(site.scalar.start, site.scalar.end, _render(new_value, site.scalar.style))
    reason = _reason(tag, digest, new_tag, pin)
    change = Change(occ.path, occ.line, occ.column, site.scalar.value, new_value, reason)
    return [edit], change


def _pin_fields(
    text: str, occ: ImageOccurrence, site: FieldsSite, pin: Pin, digest_only: bool
) -> tuple[list[_Edit], Change | None]:
    tag, digest = site.value(site.tag_key), site.value("digest")
    drop_tag = digest_only and occ.kind is ManifestKind.KUSTOMIZATION
    target = _Target(None if drop_tag else (pin.tag or tag), pin.digest, drop_tag)
    if (tag, digest) == (target.tag, target.digest):
        return [], None
    edits = _field_edits(text, site, target, has_tag=tag is not None)
    name, _, _ = _split_written(occ.ref_text)
    old, new = occ.ref_text, _join(name, target.tag, target.digest)
    change = Change(occ.path, occ.line, occ.column, old, new, _reason(tag, digest, target.tag, pin))
    return edits, change


def _field_edits(text: str, site: FieldsSite, target: _Target, *, has_tag: bool) -> list[_Edit]:
    if target.drop_tag and has_tag:
        return _drop_tag_edits(text, site, target.digest)
    edits: list[_Edit] = []
    if target.tag is not None and site.value(site.tag_key) != target.tag:
        edits.extend(_set(text, site, site.tag_key, target.tag))
    if site.value("digest") != target.digest:
        edits.extend(_set(text, site, "digest", target.digest))
    return edits


def _drop_tag_edits(text: str, site: FieldsSite, digest: str) -> list[_Edit]:
    """``digest_only`` on a kustomize entry: remove ``newTag``, set ``digest``."""
    tag_field = site.get(site.tag_key)
    assert tag_field is not None  # the caller checked has_tag
    if site.get("digest") is None:
        # the digest takes newTag's place: same line, same comment, nothing to delete
        return [_replace_field(tag_field, "digest", digest)]
    edits = [] if site.value("digest") == digest else _set(text, site, "digest", digest)
    return [*edits, _delete(text, site, tag_field)]


def _set(text: str, site: FieldsSite, key: str, value: str) -> list[_Edit]:
    """Replace ``key``'s value, or insert ``key: value`` after ``site.insert_after``."""
    existing = site.get(key)
    if existing is not None and existing.value is not None:
        scalar = existing.value
        rendered = _render(value, scalar.style if not scalar.is_empty else None)
        if scalar.start == scalar.end:
            rendered = " " + rendered
        return [_Edit(scalar.start, scalar.end, rendered)]
    return [_insert(text, site, key, value)]


def _insert(text: str, site: FieldsSite, key: str, value: str) -> _Edit:
    anchor = site.get(site.insert_after) or site.fields[-1]
    style = anchor.value.style if anchor.value is not None and not anchor.value.is_empty else None
    entry = f"{key}: {_render(value, style)}"
    if site.flow:
        end = site.fields[-1].value_end
        return _Edit(end, end, f", {entry}")
    position, newline = _line_end(text, anchor.value_end)
    indent = " " * (anchor.key.start - _line_start(text, anchor.key.start))
    return _Edit(position, position, f"{newline}{indent}{entry}")


def _replace_field(old: Field, key: str, value: str) -> _Edit:
    style = old.value.style if old.value is not None and not old.value.is_empty else None
    return _Edit(old.key.start, old.value_end, f"{key}: {_render(value, style)}")


def _delete(text: str, site: FieldsSite, item: Field) -> _Edit:
    """Remove ``item`` from its mapping: its whole line(s) when it has them to itself."""
    index = site.fields.index(item)
    following = site.fields[index + 1] if index + 1 < len(site.fields) else None
    previous = site.fields[index - 1] if index > 0 else None
    starts_line = not text[_line_start(text, item.key.start) : item.key.start].strip()
    if not site.flow and starts_line:
        end, newline = _line_end(text, item.value_end)
        if end < len(text):
            return _Edit(_line_start(text, item.key.start), end + len(newline), "")
        return _Edit(_line_start(text, item.key.start) - len(newline), end, "")
    if following is not None:
        return _Edit(item.key.start, following.key.start, "")
    assert previous is not None  # a one-field mapping has no tag to drop
    return _Edit(previous.value_end, item.value_end, "")


def _render(value: str, style: str | None) -> str:
    """``value`` as a scalar in ``style``; plain values YAML would misread get quotes."""
    if style == "'":
        return f"'{value}'"
    if style == '"' or not _PLAIN_SAFE_RE.fullmatch(value) or _NON_STRING_RE.fullmatch(value):
        return f'"{value}"'
    return value


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


__all__ = [
    "Change",
    "Field",
    "FieldsSite",
    "ImageOccurrence",
    "Manifest",
    "ManifestKind",
    "Pin",
    "PinResult",
    "Resolver",
    "Scalar",
    "Site",
    "Skipped",
    "StringSite",
    "chain",
    "collect_paths",
    "load_file",
    "load_manifests",
    "lock_resolver",
    "pin_files",
    "pin_manifest",
    "pin_text",
    "read_text",
    "scan_text",
    "tag_references",
    "tag_resolver",
    "unified_diff",
    "write_results",
]
