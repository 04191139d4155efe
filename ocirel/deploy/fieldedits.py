"""Edits of one field in a mapping's exact text: set a value in its own style, insert
``key: value`` after a chosen key (block or flow mapping), replace a whole field,
delete a field with the line it has to itself. :mod:`ocirel.deploy.splice` applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ocirel.deploy.sites import Field, FieldsSite, line_end, line_start

# Plain scalars YAML 1.1/1.2 would read as something other than a string.
_NON_STRING_RE = re.compile(
    r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
    r"|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|\.inf|\.nan)"
    r"|y|n|yes|no|on|off|true|false|null|~",
    re.IGNORECASE,
)
_PLAIN_SAFE_RE = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*")


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the characters ``[start, end)`` of a text with ``text``."""

    start: int
    end: int
    text: str


def set_field(text: str, site: FieldsSite, key: str, value: str) -> list[Edit]:
    """Replace ``key``'s value, or insert ``key: value`` after ``site.insert_after``."""
    existing = site.get(key)
    if existing is not None and existing.value is not None:
        scalar = existing.value
        rendered = render(value, scalar.style if not scalar.is_empty else None)
        if scalar.start == scalar.end:
            rendered = " " + rendered
        return [Edit(scalar.start, scalar.end, rendered)]
    return [insert_field(text, site, key, value)]


def insert_field(text: str, site: FieldsSite, key: str, value: str) -> Edit:
    anchor = site.get(site.insert_after) or site.fields[-1]
    style = anchor.value.style if anchor.value is not None and not anchor.value.is_empty else None
    entry = f"{key}: {render(value, style)}"
    if site.flow:
        end = site.fields[-1].value_end
        return Edit(end, end, f", {entry}")
    position, newline = line_end(text, anchor.value_end)
    indent = " " * (anchor.key.start - line_start(text, anchor.key.start))
    return Edit(position, position, f"{newline}{indent}{entry}")


def replace_field(old: Field, key: str, value: str) -> Edit:
    style = old.value.style if old.value is not None and not old.value.is_empty else None
    return Edit(old.key.start, old.value_end, f"{key}: {render(value, style)}")


def delete_field(text: str, site: FieldsSite, item: Field) -> Edit:
    """Remove ``item`` from its mapping: its whole line(s) when it has them to itself."""
    index = site.fields.index(item)
    following = site.fields[index + 1] if index + 1 < len(site.fields) else None
    previous = site.fields[index - 1] if index > 0 else None
    starts_line = not text[line_start(text, item.key.start) : item.key.start].strip()
    if not site.flow and starts_line:
        end, newline = line_end(text, item.value_end)
        if end < len(text):
            return Edit(line_start(text, item.key.start), end + len(newline), "")
        return Edit(line_start(text, item.key.start) - len(newline), end, "")
    if following is not None:
        return Edit(item.key.start, following.key.start, "")
    assert previous is not None  # a one-field mapping has no tag to drop
    return Edit(previous.value_end, item.value_end, "")


def render(value: str, style: str | None) -> str:
    """``value`` as a scalar in ``style``; plain values YAML would misread get quotes."""
    if style == "'":
        return f"'{value}'"
    if style == '"' or not _PLAIN_SAFE_RE.fullmatch(value) or _NON_STRING_RE.fullmatch(value):
        return f'"{value}"'
    return value


__all__ = ["Edit", "delete_field", "insert_field", "render", "replace_field", "set_field"]
