"""Which documents hold image references, and where: one recogniser per kind of file.

What is recognised, per document (multi-document files are fine):

* Kubernetes (a mapping with ``kind``): every mapping anywhere in the document with a
  ``containers``, ``initContainers`` or ``ephemeralContainers`` list of mappings with
  ``image`` — so Pod, the workload kinds, CronJob, ``List`` and custom resources with
  pod templates alike.
* kustomize: ``kind: Kustomization`` (or a kustomize ``Component``), or a file named
  ``kustomization.yaml``/``.yml``/``Kustomization`` — the ``images:`` entries (Flux's
  ``Kustomization`` keeps them under ``spec.images``).
* Helm values: a file named ``values*.yaml``/``.yml`` (or ``kind=ManifestKind.HELM``)
  — mappings with ``repository`` plus ``tag``/``registry``/``digest``/``sha``, and
  every ``image: "repo:tag"`` string. Which key of a map carries the digest, and
  which digest the chart renders, is :mod:`ocirel.deploy.helm`'s business. An
  ``image`` string next to a ``tag``/``imageTag`` key is skipped: the chart glues
  them together and a digest there would break it.
* compose: a top-level ``services`` mapping (``services.*.image``).

Anything that does not parse as a reference (``{{ .Values.image }}``, ``${TAG}``, …) is
skipped and reported in :attr:`~ocirel.deploy.scan.ScannedFile.skipped`, never an
exception. A value is *templated* when it holds ``{{``, ``<%`` or an interpolation:
``$NAME``, ``${NAME…}`` (compose, envsubst) or ``$(NAME)`` (Kubernetes), where ``$$``
is a literal ``$`` (``repo:$$x`` is a malformed reference, not a template). A
kustomize ``images:`` entry that is not templated and does not parse (kustomize's own
example has ``digest: sha256:25a0d4``) is *malformed*: skipped, but marked so that
``lint`` and ``pin`` report it as an error, at the line of the offending key.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ocirel import reference as refs
from ocirel.deploy import helm as helm_values
from ocirel.deploy.aliases import alias_uses, anchor_name
from ocirel.deploy.helm import HelmFile
from ocirel.deploy.nodes import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    format_path,
    get,
    has_merge,
    pairs,
    scalar_value,
    skip_properties,
    walk,
)
from ocirel.deploy.sites import (
    Field,
    FieldsSite,
    ImageOccurrence,
    ManifestKind,
    Scalar,
    Skipped,
    StringSite,
    join_reference,
    line_start,
)
from ocirel.errors import InvalidReferenceError
from ocirel.reference import Reference

KUSTOMIZATION_FILENAMES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
CONTAINER_KEYS = ("containers", "initContainers", "ephemeralContainers")
PULL_POLICY_KEYS = ("imagePullPolicy", "pullPolicy", "pull_policy")
TEMPLATE_MARKERS = ("{{", "<%")
# $NAME, ${NAME}, $(NAME) not escaped as $$ (an even run of "$" before it is escapes)
_INTERPOLATION_RE = re.compile(r"(?<!\$)(?:\$\$)*\$[{(A-Za-z_]")
_HELM_VALUES_RE = re.compile(r"values.*\.ya?ml")
# Keys of a FieldsSite that pinning reads or writes.
_SITE_KEYS = frozenset(
    {"name", "newName", "newTag", "digest", "sha", "registry", "repository", "tag"}
)
# Keys of a FieldsSite whose value pinning may rewrite (and so change what an alias means).
_REWRITTEN_KEYS = frozenset({"newTag", "tag", "digest", "sha"})


def is_templated(text: str) -> bool:
    """Whether ``text`` is filled in by a template engine or an interpolation."""
    return any(marker in text for marker in TEMPLATE_MARKERS) or bool(
        _INTERPOLATION_RE.search(text)
    )


def kind_from_filename(name: str) -> ManifestKind | None:
    if name in KUSTOMIZATION_FILENAMES:
        return ManifestKind.KUSTOMIZATION
    if _HELM_VALUES_RE.fullmatch(name):
        return ManifestKind.HELM
    return None


def classify(doc: Node, hint: ManifestKind | None) -> ManifestKind | None:
    if hint is not None:
        return hint
    if not isinstance(doc, MappingNode):
        return None
    kind = scalar_value(get(doc, "kind"))
    api_version = scalar_value(get(doc, "apiVersion")) or ""
    if kind == "Kustomization" or (
        kind == "Component" and api_version.startswith("kustomize.config.k8s.io/")
    ):
        return ManifestKind.KUSTOMIZATION
    if kind is not None:
        return ManifestKind.KUBERNETES
    if isinstance(get(doc, "services"), MappingNode):
        return ManifestKind.COMPOSE
    return None


class DocumentScanner:
    """Collects occurrences from composed documents of one file."""

    def __init__(self, text: str, path: str, helm: HelmFile | None = None) -> None:
        self.text = text
        self.path = path
        self.helm = helm
        self.occurrences: list[ImageOccurrence] = []
        self.skipped: list[Skipped] = []
        self._seen_scalars: set[int] = set()  # start offsets of image strings
        self._seen_maps: set[int] = set()  # ids of FieldsSite mappings
        self._doc: Node = None

    def scan_document(self, doc: Node, kind: ManifestKind) -> None:
        self._doc = doc  # for the aliases of an anchored scalar; let go after (memory)
        try:
            if kind is ManifestKind.KUBERNETES:
                self._scan_kubernetes(doc)
            elif kind is ManifestKind.KUSTOMIZATION:
                self._scan_kustomization(doc)
            elif kind is ManifestKind.HELM:
                self._scan_helm(doc)
            else:
                self._scan_compose(doc)
        finally:
            self._doc = None

    # -- kinds

    def _scan_kubernetes(self, doc: Node) -> None:
        for node, path in walk(doc):
            if not isinstance(node, MappingNode):
                continue
            for key in CONTAINER_KEYS:
                containers = get(node, key)
                if not isinstance(containers, SequenceNode):
                    continue
                for index, container in enumerate(containers.value):
                    where = (*path, key, index)
                    self._image_in(container, where, ManifestKind.KUBERNETES)

    def _scan_compose(self, doc: Node) -> None:
        services = get(doc, "services")
        if not isinstance(services, MappingNode):
            return
        for name, _, service in pairs(services):
            self._image_in(service, ("services", name), ManifestKind.COMPOSE)

    def _scan_kustomization(self, doc: Node) -> None:
        images = get(doc, "images")
        path: tuple[str, ...] = ("images",)
        if images is None:
            images, path = get(get(doc, "spec"), "images"), ("spec", "images")
        if not isinstance(images, SequenceNode):
            return
        for index, entry in enumerate(images.value):
            if isinstance(entry, MappingNode) and get(entry, "name") is not None:
                self._fields(entry, (*path, index), ManifestKind.KUSTOMIZATION)

    def _scan_helm(self, doc: Node) -> None:
        for node, path in walk(doc):
            if not isinstance(node, MappingNode):
                continue
            keys = {name for name, _, _ in pairs(node)}
            if "repository" in keys and keys & {"tag", "registry", "digest", "sha"}:
                self._fields(node, path, ManifestKind.HELM)
            if keys & {"tag", "imageTag"} and isinstance(get(node, "image"), ScalarNode):
                self._skip(get(node, "image"), "image and tag are separate keys here")
            elif isinstance(get(node, "image"), ScalarNode):
                self._image_in(node, path, ManifestKind.HELM)

    # -- sites

    def _image_in(self, holder: Node, path: tuple[str | int, ...], kind: ManifestKind) -> None:
        """The ``image`` string of a container/service mapping ``holder``."""
        node = get(holder, "image")
        if not isinstance(node, ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            return
        scalar = self._scalar(node)
        if scalar.start in self._seen_scalars:
            return
        # another container's "image: *img" names the same image: it stays an alias
        scalar = self._with_aliases(node, scalar, same_image_key="image")
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
                yaml_path=format_path((*path, "image")),
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
        site = self._fields_site(node, kind, path)
        if site is None:
            return
        text = _compose_reference(site, kind)
        if text is None:
            return
        anchor = site.get("name" if kind is ManifestKind.KUSTOMIZATION else "repository")
        assert anchor is not None  # the callers check it
        parsed = self._parse(node, text, malformed=_blame(site, kind))
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
                yaml_path=format_path(path),
                site=site,
                pull_policy=self._pull_policy(node),
            )
        )

    def _fields_site(
        self, node: Node, kind: ManifestKind, path: tuple[str | int, ...]
    ) -> FieldsSite | None:
        if has_merge(node):
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
        if kind is not ManifestKind.HELM:
            insert_after = scalars[-1] if scalars else fields[-1].name
            return FieldsSite(tuple(fields), flow, tag_key, insert_after)
        scalars = [name for name in scalars if name in ("repository", "tag")]
        site = FieldsSite(tuple(fields), flow, tag_key, scalars[-1] if scalars else fields[-1].name)
        keys = frozenset(f.name for f in fields)
        target = helm_values.target_for(keys, site.value("sha"), path, self.helm)
        return replace(site, helm=target)

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
        if key.value in _REWRITTEN_KEYS:
            scalar = self._with_aliases(value, scalar)
        return Field(key.value, key_scalar, scalar, scalar.end)

    # -- helpers

    def _scalar(self, node: Node) -> Scalar:
        mark = node.start_mark
        start = skip_properties(self.text, mark.index, node.end_mark.index)
        line, column = mark.line + 1, mark.column + 1 + (start - mark.index)
        skipped = self.text.count("\n", mark.index, start)
        if skipped:
            line += skipped
            column = start - line_start(self.text, start) + 1
        return Scalar(start, node.end_mark.index, line, column, node.style, node.value)

    def _with_aliases(
        self, node: Node, scalar: Scalar, *, same_image_key: str | None = None
    ) -> Scalar:
        """``scalar`` with the aliases of its anchor, if it has one (rarely: so the
        document is only walked when an ``&`` is written in front of the scalar)."""
        if "&" not in self.text[node.start_mark.index : scalar.start]:
            return scalar
        name = anchor_name(self.text, node, scalar.start)
        if name is None:
            return scalar
        uses = alias_uses(self.text, self._doc, node, name)
        kept = tuple(use for use in uses if same_image_key is None or use.key != same_image_key)
        return replace(scalar, anchor=name, aliases=kept)

    def _pull_policy(self, holder: Node) -> Scalar | None:
        for key in PULL_POLICY_KEYS:
            node = get(holder, key)
            if isinstance(node, ScalarNode):
                return self._scalar(node)
        return None

    def _parse(self, node: Node, text: str, *, malformed: Field | None = None) -> Reference | None:
        """``text`` parsed; else a skip. ``malformed`` is where to blame a kustomize entry."""
        try:
            return refs.parse(text)
        except InvalidReferenceError as exc:
            if is_templated(text):
                self._skip(node, "templated value", text=text, templated=True)
            elif malformed is not None:
                where = malformed.value or malformed.key
                self.skipped.append(
                    Skipped(
                        self.path, where.line, where.column, text,
                        f"malformed {malformed.name!r} in a kustomize images entry: {exc}",
                        malformed=True,
                    )
                )  # fmt: skip
            else:
                self._skip(node, str(exc), text=text)
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


def _blame(site: FieldsSite, kind: ManifestKind) -> Field | None:
    """The field of a kustomize entry to blame should its reference not parse."""
    if kind is not ManifestKind.KUSTOMIZATION:
        return None
    checks = (("digest", refs.validate_digest), (site.tag_key, refs.validate_tag))
    for key, validate in checks:
        value = site.value(key)
        if value is not None and not is_templated(value):
            try:
                validate(value)
            except InvalidReferenceError:
                return site.get(key)
    return site.get("newName") if site.value("newName") else site.get("name")


def _compose_reference(site: FieldsSite, kind: ManifestKind) -> str | None:
    """The reference a kustomize entry or Helm map stands for, as text."""
    if kind is ManifestKind.KUSTOMIZATION:
        name = site.value("newName") or site.value("name")
        if name is None:
            return None
        return join_reference(name, site.value(site.tag_key), site.value("digest"))
    repository, registry = site.value("repository"), site.value("registry")
    name = f"{registry}/{repository}" if registry and repository else repository
    if name is None:
        return None
    tag = helm_values.split_tag(site.value("tag"))[0]
    return join_reference(name, tag, helm_values.rendered_digest(site))


__all__ = ["DocumentScanner", "classify", "is_templated", "kind_from_filename"]
