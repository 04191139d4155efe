"""docs/troubleshooting.md shows every rootless hint ocirel gives, word for word."""

from __future__ import annotations

from pathlib import Path

from ocirel.backends.hints import HINTS, hint_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def test_every_hint_is_in_the_table() -> None:
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    for _pattern, hint in HINTS:
        assert any(row.endswith(f"| {hint} |") for row in rows), hint


def test_each_symptom_in_the_table_gets_its_hint() -> None:
    text = DOC.read_text(encoding="utf-8").split("## Rootless builders", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(HINTS)
    for row, (_pattern, hint) in zip(rows, HINTS, strict=True):
        symptom = row.split("|")[1].split("`")[1].replace("…", "x")
        assert hint_for(symptom) == hint, symptom
