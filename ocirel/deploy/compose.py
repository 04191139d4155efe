"""YAML text to nodes, one document at a time: libyaml first, ruamel.yaml where it must.

:func:`compose` hands a consumer the documents of a text as PyYAML nodes
(:mod:`yaml.nodes`), each composed only when the consumer asks for it, so a 50 MB
``install.yaml`` never has more than one document's nodes in memory. Every node keeps
``start_mark``/``end_mark`` with the *character* offset (``index``), 0-based ``line``
and ``column`` of its source text; anchors and aliases are the very same node.

**libyaml** (PyYAML's ``CSafeLoader`` composer, in C) does the work: it is about 25
times faster than the pure-Python parser and its ``index`` counts code points, as a
Python string does (checked for non-ASCII and astral characters and CRLF). Two
differences are evened out here: libyaml skips a leading BOM without counting it
(every offset is moved one on), and it reports a plain scalar's style as ``""``
(the nodes say ``None``, as before).

**ruamel.yaml** (pure Python, YAML 1.2) composes the text instead when libyaml (YAML
1.1) refuses it: a redefined anchor (``&x`` twice: 1.2 allows it, libyaml stops), an
anchor with a dot (``&app.env``), nesting deeper than libyaml's limit of 1,000, and
every real syntax error, so a broken file gets exactly the message it always had
(file, line, column). Text with a NEL, LINE SEPARATOR or PARAGRAPH SEPARATOR goes
there too: libyaml counts them as line breaks, which would move every line number
after them. The consumer is restarted from the first document, so what it collected
from libyaml's partial pass is dropped. ruamel's nodes are copied into PyYAML's
classes, identity (aliases) kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import yaml
from yaml.error import Mark
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ocirel.deploy.nodes import Node
from ocirel.errors import ManifestError

T = TypeVar("T")

BOM = "\ufeff"
#: Line breaks for libyaml (YAML 1.1), plain characters for the rest of ocirel.
_OTHER_LINE_BREAKS = ("\x85", "\u2028", "\u2029")


def compose(text: str, filename: str, use: Callable[[Iterable[Node]], T]) -> T:
    """``use(documents)``: libyaml's documents, or ruamel.yaml's if libyaml refuses."""
    if not any(char in text for char in _OTHER_LINE_BREAKS):
        try:
            return use(_libyaml_documents(text))
        except yaml.YAMLError:
            pass  # YAML 1.2 libyaml does not take, or a real error: ruamel.yaml decides
    return use(_ruamel_documents(text, filename))


def _libyaml_documents(text: str) -> Iterator[Node]:
    loader = yaml.CSafeLoader(text)
    shift = 1 if text.startswith(BOM) else 0
    try:
        while loader.check_node():
            doc = loader.get_node()
            _settle(doc, shift)
            yield doc
    finally:
        loader.dispose()


def _settle(root: Node, shift: int) -> None:
    """Plain style as ``None``; with a BOM, every offset one on (libyaml skips it).

    Each collection is visited once (an alias is the same node: a "billion laughs"
    document stays cheap); a scalar may be seen twice, and setting its style is
    idempotent, but its marks are moved only on its first visit.
    """
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        cls = node.__class__
        if cls is ScalarNode:
            if node.style == "":
                node.style = None
            if not shift or id(node) in seen:
                continue
        elif id(node) in seen:
            continue
        elif cls is MappingNode:
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
        else:
            stack.extend(node.value)
        seen.add(id(node))
        if shift:
            node.start_mark = _moved(node.start_mark, shift)
            node.end_mark = _moved(node.end_mark, shift)


def _moved(mark: Any, shift: int) -> Mark:
    """libyaml's marks are read-only: a pure-Python copy ``shift`` characters on."""
    return Mark(mark.name, mark.index + shift, mark.line, mark.column, None, None)


def _ruamel_documents(text: str, filename: str) -> Iterator[Node]:
    # Imported here: most runs never need it, and it costs start-up time.
    from ruamel.yaml import YAML  # noqa: PLC0415
    from ruamel.yaml.error import MarkedYAMLError, YAMLError  # noqa: PLC0415
    from ruamel.yaml.reader import ReaderError  # noqa: PLC0415

    try:
        for doc in YAML(typ="safe", pure=True).compose_all(text):
            yield _copy(doc)
    except MarkedYAMLError as exc:
        raise ManifestError(_yaml_error_message(exc, filename)) from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ManifestError(f"{filename}:{line}: invalid YAML: {exc.reason}") from None
    except (YAMLError, RecursionError) as exc:
        raise ManifestError(f"{filename}: invalid YAML: {exc}") from None


def _copy(root: Node) -> Node:
    """ruamel.yaml's node tree as PyYAML nodes: same values, tags, styles, marks, aliases."""
    from ruamel.yaml.nodes import MappingNode as RuamelMapping  # noqa: PLC0415
    from ruamel.yaml.nodes import SequenceNode as RuamelSequence  # noqa: PLC0415

    copies: dict[int, Node] = {}

    def copy(node: Node) -> Node:
        done = copies.get(id(node))
        if done is not None:
            return done
        marks = (node.start_mark, node.end_mark)
        if not isinstance(node, RuamelMapping | RuamelSequence):
            new = copies[id(node)] = ScalarNode(str(node.tag), node.value, *marks, node.style)
            return new
        kind = MappingNode if isinstance(node, RuamelMapping) else SequenceNode
        new = copies[id(node)] = kind(str(node.tag), [], *marks, node.flow_style)
        if kind is MappingNode:
            new.value.extend((copy(key), copy(value)) for key, value in node.value)
        else:
            new.value.extend(copy(item) for item in node.value)
        return new

    return copy(root)


def _yaml_error_message(exc: Any, filename: str) -> str:
    """ruamel.yaml's ``MarkedYAMLError`` as ``file:line:column: invalid YAML: problem``."""
    mark = exc.problem_mark or exc.context_mark
    where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
    problem = exc.problem or exc.context or "parse error"
    if exc.context and exc.problem and exc.context_mark:
        problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return f"{where}: invalid YAML: {problem}"


__all__ = ["compose"]
