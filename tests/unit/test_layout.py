"""The layers, checked from the source: which module may import which (stdlib ``ast``).

Every ``import`` counts, at module level, inside functions and under
``TYPE_CHECKING`` alike: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ocirel"

#: The publish side and the network core, which the deploy side must not import:
#: registry look-ups reach it as callables.
NOT_FOR_DEPLOY = (
    "ocirel.release",
    "ocirel.publish",
    "ocirel.backends",
    "ocirel.transport",
    "ocirel.registry",
    "ocirel.cli",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> Iterator[str]:
    """Every module ``path`` imports; ``from a import b`` yields ``a`` and ``a.b``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: ocirel uses absolute imports only"
            base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def modules() -> dict[str, set[str]]:
    return {module_name(path): set(imported_names(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def importers_of(target: str) -> set[str]:
    return {
        module for module, names in modules().items() if any(within(name, target) for name in names)
    }


def test_deploy_imports_neither_the_publish_side_nor_the_network() -> None:
    deploy = {
        module: names for module, names in modules().items() if within(module, "ocirel.deploy")
    }
    assert "ocirel.deploy.pin" in deploy
    offending = {
        module: sorted(n for n in names if any(within(n, banned) for banned in NOT_FOR_DEPLOY))
        for module, names in deploy.items()
    }
    assert {module: names for module, names in offending.items() if names} == {}


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("requests", ("ocirel.transport.session",)),
        ("urllib3", ("ocirel.transport.session",)),
        ("subprocess", ("ocirel.runner",)),
    ],
)
def test_one_choke_point_per_library(library: str, allowed: tuple[str, ...]) -> None:
    users = importers_of(library)
    assert users, f"nothing imports {library}: is the scan broken?"
    assert {u for u in users if not any(within(u, a) for a in allowed)} == set()


def test_the_cli_is_imported_by_nothing_but_the_entry_point() -> None:
    # TODO(issue 12, CLI step): the CLI modules still import one another both ways
    # (cli_deploy and cli_doctor import cli, which imports them back); once they
    # are the ocirel/cli/ package, assert the package has no import cycle either.
    def is_cli(module: str) -> bool:
        return within(module, "ocirel.cli") or module.startswith("ocirel.cli_")

    importers = {m for m in importers_of("ocirel.cli") if not is_cli(m)}
    importers |= {
        module
        for module, names in modules().items()
        if not is_cli(module) and any(n.startswith("ocirel.cli_") for n in names)
    }
    assert importers == {"ocirel.entry"}
