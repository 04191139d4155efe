"""A unified diff of a pinned file against its original, in time linear in its size.

``difflib.unified_diff`` compares every line with every other through
``SequenceMatcher``: on a 20 MB ``install.yaml`` (300,000 lines, the same blocks
repeated) ``pin --diff`` spent two minutes there, where the pin itself took three
seconds. Pinning changes a few lines in place and inserts a few (a ``digest:`` line),
so the two texts are long equal runs around small differences. For texts of
:data:`SMALL` lines or more, :func:`unified_diff` walks both line lists once: through
an equal run, and at each difference to the nearest point where both sides agree
again (at most :data:`MAX_DISTANCE` lines ahead, the most even split first), which
makes that difference one ``replace``, ``insert`` or ``delete`` of the fewest lines.
difflib groups these into hunks and they are formatted as difflib formats them
(headers, ranges, context). The result is a correct diff; for a pinned
manifest it is the text difflib gives, but where lines repeat difflib sometimes
groups them otherwise (its "popular line" heuristic). Smaller texts, and a
difference with no agreement within reach, get difflib's diff, as before.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from typing import Literal

#: How many lines (both sides together) past a difference the agreement is looked for.
MAX_DISTANCE = 200
#: Below this many lines (both texts together) difflib does the diff, as it always did.
SMALL = 10_000

Tag = Literal["replace", "delete", "insert", "equal"]
Opcode = tuple[Tag, int, int, int, int]


def unified_diff(
    a: Sequence[str], b: Sequence[str], fromfile: str, tofile: str, n: int = 3
) -> Iterator[str]:
    """``difflib.unified_diff(a, b, fromfile, tofile, n=n)``, linear for local edits."""
    opcodes = _opcodes(a, b) if len(a) + len(b) >= SMALL else None
    if opcodes is None:
        yield from difflib.unified_diff(a, b, fromfile, tofile, n=n)
        return
    matcher = _Known(opcodes)
    for index, group in enumerate(matcher.get_grouped_opcodes(n)):
        if index == 0:
            yield f"--- {fromfile}\n"
            yield f"+++ {tofile}\n"
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (" " + line for line in a[i1:i2])
                continue
            yield from ("-" + line for line in a[i1:i2])
            yield from ("+" + line for line in b[j1:j2])


class _Known(difflib.SequenceMatcher[str]):
    """A matcher whose opcodes are already known: difflib groups them into hunks."""

    def __init__(self, opcodes: list[Opcode]) -> None:
        super().__init__(None, [], [])
        self._known = opcodes

    def get_opcodes(self) -> list[Opcode]:
        return list(self._known)


def _range(start: int, stop: int) -> str:
    """difflib's ``_format_range_unified``: ``start,length`` (1-based, 0 when empty)."""
    beginning, length = start + 1, stop - start
    if length == 1:
        return str(beginning)
    return f"{beginning - 1 if length == 0 else beginning},{length}"


def _opcodes(a: Sequence[str], b: Sequence[str]) -> list[Opcode] | None:
    """Equal runs and the differences between them, or None if a difference is too wide."""
    opcodes: list[Opcode] = []
    i = j = 0
    while i < len(a) or j < len(b):
        i0, j0 = i, j
        while i < len(a) and j < len(b) and a[i] == b[j]:
            i, j = i + 1, j + 1
        if i > i0:
            opcodes.append(("equal", i0, i, j0, j))
        if i == len(a) and j == len(b):
            break
        step = _resync(a, b, i, j)
        if step is None:
            return None
        x, y = step
        tag: Tag = "replace" if x and y else ("delete" if x else "insert")
        opcodes.append((tag, i, i + x, j, j + y))
        i, j = i + x, j + y
    return opcodes


def _resync(a: Sequence[str], b: Sequence[str], i: int, j: int) -> tuple[int, int] | None:
    """The nearest ``(x, y)`` past ``a[i] != b[j]`` where both sides agree again, the
    most even split first (a changed line is a ``replace``, not a delete and an insert)."""
    for distance in range(1, MAX_DISTANCE + 1):
        for x in sorted(range(distance + 1), key=lambda x: (abs(2 * x - distance), x)):
            if _agree(a, b, i + x, j + distance - x):
                return x, distance - x
    return None


def _agree(a: Sequence[str], b: Sequence[str], i: int, j: int) -> bool:
    if i > len(a) or j > len(b):
        return False
    if i == len(a) or j == len(b):
        return i == len(a) and j == len(b)
    return a[i] == b[j]


__all__ = ["unified_diff"]
