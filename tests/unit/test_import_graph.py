"""The layers, checked from the source (stdlib ``ast``): which module may import which,
and how large a module or a function may grow.

Every ``import`` counts, at module level, inside functions and under
``TYPE_CHECKING`` alike: a deferred import is still a dependency. docs/architecture.md
draws the layers these tests hold in place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ocirel"

#: The publish side, the builders and the network core, which the deploy side must not
#: import: registry look-ups reach it as callables (``deploy.resolvers`` takes a lookup
#: function; ``cli.deploy`` builds it from the registry client), and it starts no process.
NOT_FOR_DEPLOY = (
    "ocirel.publish",
    "ocirel.backends",
    "ocirel.runner",
    "ocirel.transport",
    "ocirel.registry",
    "ocirel.cli",
)

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50

#: Modules allowed over MAX_MODULE_LINES, each with its reason. Shrink this list, never
#: grow it: an entry that is no longer too long fails the test until it is removed.
MODULE_SIZE_EXCEPTIONS: dict[str, str] = {}

#: Functions allowed over MAX_FUNCTION_LINES (``path:Qualified.name``), each with its
#: reason; same rules as above.
FUNCTION_SIZE_EXCEPTIONS: dict[str, str] = {}


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


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules ``path`` imports: ``from a import b`` is ``a.b`` when that is a module,
    else ``a`` (so ``from ocirel.cli import output`` does not count as importing the
    package's ``__init__``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


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
    importers = {m for m in importers_of("ocirel.cli") if not within(m, "ocirel.cli")}
    assert importers == {"ocirel.entry"}
    assert not any(m.startswith("ocirel.cli_") for m in modules()), "CLI modules live in cli/"


def test_the_cli_modules_form_no_cycle() -> None:
    """The package imports its command modules; they import options, output and wiring,
    never the package or one another the other way round."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    cli = {module for module in paths if within(module, "ocirel.cli")}
    assert {"ocirel.cli", "ocirel.cli.output", "ocirel.cli.wiring"} <= cli
    edges = {module: imported_modules(paths[module], set(paths)) & cli for module in cli}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, "import cycle: " + " -> ".join([*visiting, module])
        if module in done:
            return
        visiting.append(module)
        for target in sorted(edges[module]):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(cli):
        visit(module)
    assert "ocirel.cli" not in set().union(*edges.values()), "a command imports the package"


def test_the_two_publishers_share_parts_but_not_each_other() -> None:
    """``layout`` and ``selfpush`` build on the shared publish modules; neither imports
    the other, no shared module imports either, and only the package picks one."""
    publishers = {"ocirel.publish.layout", "ocirel.publish.selfpush"}
    found = {m: names for m, names in modules().items() if within(m, "ocirel.publish")}
    assert publishers <= set(found)
    offending = {
        module: sorted(n for n in names if any(within(n, p) for p in publishers - {module}))
        for module, names in found.items()
        if module != "ocirel.publish"
    }
    assert {module: names for module, names in offending.items() if names} == {}


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _doc(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """How many lines the docstring of ``function`` takes (0 without one)."""
    first = function.body[0]
    value = first.value if isinstance(first, ast.Expr) else None
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def function_lengths(path: Path) -> Iterator[tuple[str, int]]:
    """``(qualified name, lines)`` of every function and method, nested ones too; the
    lines run from ``def`` to the last line of the body, less the docstring (a typer
    command's docstring is its --help text, not code)."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                yield name, (child.end_lineno or child.lineno) - child.lineno + 1 - _doc(child)
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")

    yield from walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")


def test_no_module_is_too_long() -> None:
    lengths = {
        relative(path): len(path.read_text(encoding="utf-8").splitlines())
        for path in source_files()
    }
    too_long = {
        name: n
        for name, n in lengths.items()
        if n > MAX_MODULE_LINES and name not in MODULE_SIZE_EXCEPTIONS
    }
    assert too_long == {}, (
        f"split these along their seams (or list them, with a reason): {too_long}"
    )
    stale = {name for name in MODULE_SIZE_EXCEPTIONS if lengths.get(name, 0) <= MAX_MODULE_LINES}
    assert stale == set(), f"no longer too long (or gone): drop from the exceptions: {stale}"


def test_no_function_is_too_long() -> None:
    lengths = {
        f"{relative(path)}:{name}": n
        for path in source_files()
        for name, n in function_lengths(path)
    }
    too_long = {
        name: n
        for name, n in lengths.items()
        if n > MAX_FUNCTION_LINES and name not in FUNCTION_SIZE_EXCEPTIONS
    }
    assert too_long == {}, f"split these (or list them, with a reason): {too_long}"
    stale = {
        name for name in FUNCTION_SIZE_EXCEPTIONS if lengths.get(name, 0) <= MAX_FUNCTION_LINES
    }
    assert stale == set(), f"no longer too long (or gone): drop from the exceptions: {stale}"
