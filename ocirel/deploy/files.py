"""Finding the deployment YAML files to scan, and reading their exact text.

:func:`collect_paths` turns the command line's paths into files: files as given,
directories walked recursively for ``*.yaml``/``*.yml``. :func:`read_text` reads a file
as exact bytes decoded as UTF-8 (no newline translation), so CRLF line endings and a
BOM survive pinning byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ocirel.errors import ManifestError

YAML_SUFFIXES = (".yaml", ".yml")


def read_text(path: Path) -> str:
    """The file's exact text: bytes decoded as UTF-8, without newline translation."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(f"{path}:{line}: not UTF-8 text") from None


def collect_paths(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named by ``paths``: files as given, directories recursively.

    Walking a directory skips hidden entries (``.git``, ``.venv``, ``.gitlab-ci.yml``)
    and, everywhere, the ``templates/`` of a Helm chart (Go templates, not YAML). The
    result is deduplicated and in a stable order.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(_walk_directory(path))
        elif path.exists():
            found.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    unique: dict[str, Path] = {}
    for path in found:
        if not _is_chart_template(path):
            unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def _walk_directory(root: Path) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(YAML_SUFFIXES) and not name.startswith("."):
                yield Path(directory, name)


def _is_chart_template(path: Path) -> bool:
    return any(
        parent.name == "templates" and (parent.parent / "Chart.yaml").is_file()
        for parent in (Path.cwd() / path).parents
    )


__all__ = ["YAML_SUFFIXES", "collect_paths", "read_text"]
