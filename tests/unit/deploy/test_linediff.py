"""ocirel.deploy.linediff: ``pin --diff`` in linear time on large files.

difflib's ``SequenceMatcher`` grows much faster than the file on a large manifest of
repeated blocks (a 20 MB ``install.yaml``: two minutes, against three seconds for the
pin). Small texts still go to difflib; large ones get a linear walk (forced here for
small texts with the ``always_linear`` fixture), whose output is difflib's for the
golden pins and a pinned install.yaml, touches only the edited lines, and applies.
"""

from __future__ import annotations

import difflib
import random
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from ocirel.deploy import linediff
from ocirel.deploy.splice import pin_text, unified_diff
from tests.unit.deploy.test_compose import RESOLVE, install_yaml
from tests.unit.deploy.test_splice import golden_resolver

GOLDEN = Path(__file__).parent / "golden" / "manifests"
HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@\n")


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def both(a: list[str], b: list[str], n: int = 3) -> tuple[str, str]:
    ours = "".join(linediff.unified_diff(a, b, "a/f", "b/f", n=n))
    theirs = "".join(difflib.unified_diff(a, b, "a/f", "b/f", n=n))
    return ours, theirs


def apply(a: list[str], diff: str) -> list[str]:
    """Apply a unified diff to ``a`` strictly (context and removed lines must match)."""
    out: list[str] = []
    position = 0
    body = diff.splitlines(keepends=True)[2:]
    index = 0
    while index < len(body):
        match = HUNK.fullmatch(body[index])
        assert match, body[index]
        start = int(match[1]) - (0 if match[2] == "0" else 1)
        out.extend(a[position:start])
        position = start
        index += 1
        while index < len(body) and not body[index].startswith("@@"):
            sign, line = body[index][0], body[index][1:]
            if sign in " -":
                assert a[position] == line
                position += 1
            if sign in " +":
                out.append(line)
            index += 1
    return out + a[position:]


@pytest.fixture
def always_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """The linear walk for texts of any size (small texts normally go to difflib)."""
    monkeypatch.setattr(linediff, "SMALL", 0)


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.in.yaml")), ids=lambda p: p.name)
@pytest.mark.parametrize("digest_only", [False, True])
@pytest.mark.usefixtures("always_linear")
def test_golden_pins_give_difflibs_text(path: Path, digest_only: bool) -> None:
    text = path.read_bytes().decode("utf-8")
    result = pin_text(
        text, filename=path.name.replace(".in", ""), resolve=golden_resolver(),
        digest_only=digest_only,
    )  # fmt: skip
    ours, theirs = both(lines(result.original), lines(result.text))
    assert ours == theirs


def test_a_pinned_large_manifest_gives_difflibs_text() -> None:
    result = pin_text(install_yaml(2), filename="install.yaml", resolve=RESOLVE)
    assert len(lines(result.text)) > linediff.SMALL
    ours, theirs = both(lines(result.original), lines(result.text))
    assert ours == theirs
    assert ours.count("\n+        image: ") == 4


def pin_like_edits(rng: random.Random, original: list[str], count: int) -> tuple[list[str], int]:
    """Lines changed in place, digest lines inserted, unique lines dropped; lines touched."""
    unique = {line for line, seen in Counter(original).items() if seen == 1}
    pinned, touched = list(original), 0
    for index in sorted(rng.sample(range(len(original)), count), reverse=True):
        edit = rng.choice(("change", "insert", "drop"))
        if edit == "drop" and original[index] not in unique:
            edit = "change"  # pinning drops a tag line, not a repeated schema line
        if edit == "change":
            pinned[index] = pinned[index].rstrip("\n") + "@sha256:" + "a" * 64 + "\n"
            touched += 2
        elif edit == "insert":
            pinned.insert(index + 1, f"  digest: sha256:{index:064d}\n")
            touched += 1
        else:
            del pinned[index]
            touched += 1
    return pinned, touched


@pytest.mark.usefixtures("always_linear")
def test_pin_edits_give_a_diff_of_just_those_lines_that_applies() -> None:
    rng = random.Random(17)
    original = lines(install_yaml(1))
    for _ in range(30):
        pinned, touched = pin_like_edits(rng, original, rng.randrange(1, 13))
        ours, _ = both(original, pinned, n=rng.choice((0, 1, 3)))
        assert apply(original, ours) == pinned
        changed = [line for line in ours.splitlines()[2:] if line[:1] in "+-"]
        assert len(changed) == touched


@pytest.mark.usefixtures("always_linear")
def test_any_edits_give_a_diff_that_applies() -> None:
    rng = random.Random(7)
    vocabulary = ["a\n", "b\n", "- ALL\n", "\n", "  type: string\n", "x\n"]
    for _ in range(300):
        a = [rng.choice(vocabulary) for _ in range(rng.randrange(0, 40))]
        b = list(a)
        for _ in range(rng.randrange(0, 6)):
            index = rng.randrange(0, len(b) + 1)
            if rng.random() < 0.5 and index < len(b):
                del b[index]
            else:
                b.insert(index, rng.choice(vocabulary))
        ours, _ = both(a, b)
        assert apply(a, ours) == b
        assert (ours == "") == (a == b)


@pytest.mark.usefixtures("always_linear")
def test_a_far_difference_falls_back_to_difflib() -> None:
    a = [f"{i}\n" for i in range(600)]
    b = ["new\n"] * 600
    ours, theirs = both(a, b)
    assert ours == theirs


def test_the_diff_of_a_large_manifest_is_walked_not_left_to_difflib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """difflib compares lines pairwise, which grew faster than the file (122 s for a
    20 MB install.yaml); a pinned large manifest never reaches it (the figures are in
    bench/pin_large.py's pin --diff side)."""
    text = install_yaml(6)  # 65,000 lines
    result = pin_text(text, filename="install.yaml", resolve=RESOLVE)

    def no_difflib(*_args: object, **_kwargs: object) -> Iterable[str]:
        raise AssertionError("difflib.unified_diff diffed a large pinned manifest")

    monkeypatch.setattr(difflib, "unified_diff", no_difflib)  # the module linediff uses
    diff = unified_diff(result)
    assert diff.count("\n+        image: ") == 12
    assert diff.count("\n-        image: ") == 12
