"""Reading composed YAML nodes: mapping keys (merges included), walks, offsets.

Nodes, not Python objects: PyYAML's node classes (:mod:`ocirel.deploy.compose` makes
them, with libyaml or ruamel.yaml), re-exported here. Every node keeps the character
offsets of its source text (``start_mark.index``/``end_mark.index``), a scalar its
quoting style (``None`` for plain), and anchors/aliases resolve to the very same node.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

Node = Any  # PyYAML's node classes are untyped

MERGE_TAG = "tag:yaml.org,2002:merge"


def pairs(node: Node) -> Iterator[tuple[str, Node, Node]]:
    """``(key, key node, value node)`` of a mapping, own keys first, then merged ones
    (``<<: *base``), each merged mapping once even if the merges form a cycle."""
    pending, seen = [node], {id(node)}
    while pending:
        current = pending.pop(0)
        for key, value in current.value:
            if key.tag == MERGE_TAG:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    if isinstance(source, MappingNode) and id(source) not in seen:
                        seen.add(id(source))
                        pending.append(source)
            elif isinstance(key, ScalarNode):
                yield key.value, key, value


def get(node: Node, key: str) -> Node | None:
    """The value of ``key`` in a mapping (own keys first, then merged ones), or None."""
    if not isinstance(node, MappingNode):
        return None
    merges = False
    for name, value in node.value:  # the common case without merges, no generator
        if name.tag == MERGE_TAG:
            merges = True
        elif name.value == key and isinstance(name, ScalarNode):
            return value
    if merges:
        for name, _, value in pairs(node):
            if name == key:
                return value
    return None


def scalar_value(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def has_merge(node: Node) -> bool:
    return any(key.tag == MERGE_TAG for key, _ in node.value)


def walk(root: Node) -> Iterator[tuple[Node, tuple[str | int, ...]]]:
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


def format_path(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def skip_properties(text: str, index: int, end: int) -> int:
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


__all__ = [
    "MERGE_TAG",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "format_path",
    "get",
    "has_merge",
    "pairs",
    "scalar_value",
    "skip_properties",
    "walk",
]
