"""Where else an anchored image or tag scalar is used, so pinning keeps what aliases mean.

``tag: &ver v5`` … ``podLabels: {version: *ver}``: the label *is* the tag's node, so
rewriting the tag in place would silently rewrite the label too. ocirel's choice:
**write the value out at the alias** — when pinning edits an anchored scalar, each
``*ver`` becomes the scalar's original source text (``version: v5``), and the
anchored value gets the pinned one. What every alias means is unchanged, the anchor
is kept (an anchor nobody uses is valid YAML), and nothing is written for an anchor
whose scalar pinning does not touch (a Helm ``tag`` that only gains a ``digest``).

An alias that is itself an ``image:`` value (a second container written
``image: *img``) names the same image: it is left as an alias and is pinned along
with its anchor, as before. When an alias cannot be located exactly in the text (a
mapping key, a sequence item after another alias, or a value whose source text
cannot be copied there), pinning refuses, naming both places
(:func:`ocirel.deploy.splice.pin_file`).

Nodes are matched by identity (an alias resolves to the very node of its anchor),
and positions come from node offsets and the text around them only.
"""

from __future__ import annotations

import re

from ocirel.deploy.nodes import MappingNode, Node, SequenceNode, skip_properties, walk
from ocirel.deploy.sites import AliasUse, Scalar

_ANCHOR_RE = re.compile(r"&([^\s,\[\]{}]+)")
_FLOW_INDICATORS = frozenset(",[]{}#")


def anchor_name(text: str, node: Node, scalar_start: int) -> str | None:
    """The anchor written in front of ``node``'s scalar (``&ver``), if any."""
    found = _ANCHOR_RE.search(text, node.start_mark.index, scalar_start)
    return found.group(1) if found else None


def alias_uses(text: str, doc: Node, node: Node, name: str) -> tuple[AliasUse, ...]:
    """Every ``*name`` that stands for ``node`` in ``doc``, in document order."""
    uses: list[AliasUse | None] = []
    for parent, _ in walk(doc):
        if isinstance(parent, MappingNode):
            for key, value in parent.value:
                if key is node:
                    uses.append(_unlocated(text, parent, None))
                elif value is node:
                    where = _locate(text, key.end_mark.index, ":", name)
                    uses.append(_use(text, where, parent, key.value))
        elif isinstance(parent, SequenceNode):
            uses.extend(_in_sequence(text, parent, node, name))
    return tuple(sorted((use for use in uses if use is not None), key=lambda u: u.line))


def _in_sequence(text: str, parent: Node, node: Node, name: str) -> list[AliasUse | None]:
    """Uses of ``node`` as items of ``parent``. An item's text starts after the previous
    item's end, known only when that item is not an alias of some *other* anchor."""
    uses: list[AliasUse | None] = []
    cursor: int | None = skip_properties(text, parent.start_mark.index, parent.end_mark.index)
    for index, item in enumerate(parent.value):
        if item is node and cursor is not None:
            where = _locate(text, cursor, "-," if index else "-[", name)
            use = _use(text, where, parent, None)
            uses.append(use)
            cursor = use.end if use is not None and use.start >= 0 else item.end_mark.index
        elif item is node:
            uses.append(_unlocated(text, parent, None))
        else:
            before = item.start_mark.index
            cursor = item.end_mark.index if cursor is not None and before >= cursor else None
    return uses


def written_out(text: str, scalar: Scalar) -> str | None:
    """The source text to put where an alias of ``scalar`` was, or None if unsafe."""
    source = text[scalar.start : scalar.end]
    if "\n" in source or "\r" in source or not source:
        return None
    if scalar.style is None and _FLOW_INDICATORS & set(source):
        return None
    return source


def _use(text: str, where: int | None, parent: Node, key: object) -> AliasUse | None:
    """An alias at ``where``; None when ``where`` is the anchor itself."""
    if where is None:
        return _unlocated(text, parent, key)
    if text[where] == "&":
        return None
    end = where + 1
    while end < len(text) and not text[end].isspace() and text[end] not in ",]}":
        end += 1
    return AliasUse(where, end, _line(text, where), key if isinstance(key, str) else None)


def _unlocated(text: str, parent: Node, key: object) -> AliasUse:
    """An alias not located exactly: ``line`` is where its mapping or list starts."""
    line = _line(text, parent.start_mark.index)
    return AliasUse(-1, -1, line, key if isinstance(key, str) else None)


def _locate(text: str, start: int, indicators: str, name: str) -> int | None:
    """The offset of ``*name`` or ``&name`` after ``start``, past one of ``indicators``."""
    index = _skip_blank(text, start)
    if index >= len(text) or text[index] not in indicators:
        return None
    index = _skip_blank(text, index + 1)
    while index < len(text) and text[index] == "!":  # a tag before the anchor
        while index < len(text) and not text[index].isspace():
            index += 1
        index = _skip_blank(text, index)
    token = text[index + 1 : index + 1 + len(name)]
    after = index + 1 + len(name)
    delimited = after >= len(text) or text[after].isspace() or text[after] in ",]}"
    if index < len(text) and text[index] in "*&" and token == name and delimited:
        return index
    return None


def _skip_blank(text: str, index: int) -> int:
    while index < len(text):
        if text[index] in " \t\r\n":
            index += 1
        elif text[index] == "#":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
        else:
            break
    return index


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


__all__ = ["alias_uses", "anchor_name", "written_out"]
