"""How each settings key is read: text from the environment, or any TOML value.

:data:`COERCERS` maps every key of :mod:`ocirel.settings` to its reader; a reader
gets the value as given and the directory of the file it came from (None for flags
and the environment), returns the typed value, and raises ``ValueError`` with what
it expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

HelmDigestField = Literal["auto", "digest", "sha", "tag"]
HELM_DIGEST_FIELDS: tuple[HelmDigestField, ...] = get_args(HelmDigestField)

#: value as given (text from the environment, any TOML value), the directory of the
#: file it came from (None for flags and the environment) -> typed value
Coercer = Callable[[Any, Path | None], Any]

_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _to_bool(value: Any, _base: Path | None) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _number(value: Any, *, whole: bool) -> float:
    if isinstance(value, bool) or (whole and isinstance(value, float)):
        raise ValueError(f"expected a {'whole ' if whole else ''}number, got {value!r}")
    number = int(value) if whole else float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"must be a finite number, not negative; got {value!r}")
    return number


def _to_int(value: Any, _base: Path | None) -> int:
    return int(_number(value, whole=True))


def _to_float(value: Any, _base: Path | None) -> float:
    return _number(value, whole=False)


def _to_seconds(value: Any, _base: Path | None) -> float:
    """A wait that must be longer than zero (a zero timeout fails every request at once)."""
    seconds = _number(value, whole=False)
    if seconds <= 0:
        raise ValueError(f"must be more than 0 seconds; got {value!r}")
    return seconds


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _to_size(value: Any, _base: Path | None) -> int:
    """A size in bytes: a whole number, or one with K, M or G (also KiB, MB...; all 1024s)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
        if isinstance(value, bool) or match is None:
            raise ValueError(f"expected a size such as 67108864, 64M or 64MiB; got {value!r}")
        size = int(match[1]) * _SIZE_UNITS[match[2].lower()]
    if size < 1:
        raise ValueError(f"must be at least 1 byte; got {value!r}")
    return size


def _to_strings(value: Any, _base: Path | None) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of strings")
    return tuple(i.strip() for i in items if i.strip())


def _to_optional_path(value: Any, base: Path | None) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(str(value)).expanduser()
    return base / path if base is not None and not path.is_absolute() else path


def _to_path(value: Any, base: Path | None) -> Path:
    return _to_optional_path(value, base) or Path()


def _to_str(value: Any, _base: Path | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _to_helm_field(value: Any, _base: Path | None) -> str:
    if value not in HELM_DIGEST_FIELDS:
        raise ValueError(f"expected one of {', '.join(HELM_DIGEST_FIELDS)}, got {value!r}")
    return str(value)


def _to_helm_fields(value: Any, base: Path | None) -> tuple[tuple[str, str], ...]:
    """``{glob = key}`` from a file (globs relative to it) or ``glob=key,…`` from the
    environment (relative to the working directory); globs are made absolute."""
    items: list[tuple[Any, Any]] | None = None
    if isinstance(value, str):
        items = [item.partition("=")[::2] for item in value.split(",") if item.strip()]
    elif isinstance(value, dict):
        items = list(value.items())
    if items is None:
        raise ValueError("expected a table of glob = key")
    pairs: list[tuple[str, str]] = []
    for pattern, key in items:
        if not str(pattern).strip():
            raise ValueError(f"empty file pattern for {key!r}")
        where = Path(str(pattern).strip()).expanduser()
        where = base / where if base is not None and not where.is_absolute() else where
        pairs.append((str(where.resolve()), _to_helm_field(str(key).strip(), None)))
    return tuple(pairs)


def _to_registry_map(value: Any, _base: Path | None) -> tuple[tuple[str, str], ...]:
    """``{OLD = NEW}`` from a file, ``OLD=NEW,…`` from the environment (checked by
    :func:`ocirel.deploy.regmap.parse_pairs` when used)."""
    items = value.split(",") if isinstance(value, str) else value
    if isinstance(items, dict):
        return tuple((str(old), str(new)) for old, new in items.items())
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a table of OLD = NEW")
    pairs = [item.partition("=") for item in items if item.strip()]
    if any(not sep for _, sep, _ in pairs):
        raise ValueError("expected OLD=NEW")
    return tuple((old.strip(), new.strip()) for old, _, new in pairs)


def _to_platforms(value: Any, _base: Path | None) -> tuple[str, ...]:
    """``linux/amd64,linux/arm64`` (a flag or the environment) or a list (a file):
    each ``os/arch[/variant]``, lower case, each once, in the order given."""
    from ocirel.emulation import parse_platform  # noqa: PLC0415

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected platforms such as linux/amd64,linux/arm64")
    return tuple(dict.fromkeys(parse_platform(item) for item in items if item.strip()))


#: how each key is read, in the order the sources are checked
COERCERS: dict[str, Coercer] = {
    "insecure": _to_bool,
    "insecure_registries": _to_strings,
    "ca_file": _to_optional_path,
    "connect_timeout": _to_seconds,
    "read_timeout": _to_seconds,
    "retries": _to_int,
    "max_retry_wait": _to_float,
    "scheme": _to_str,
    "prefix": _to_str,
    "bump": _to_str,
    "floating_tags": _to_strings,
    "lockfile": _to_path,
    "backend": _to_str,
    "max_attempts": _to_int,
    "settle_seconds": _to_float,
    "verify_timeout": _to_seconds,
    "build_timeout": _to_seconds,
    "push_timeout": _to_seconds,
    "isolation": _to_str,
    "storage_driver": _to_str,
    "keep_image": _to_bool,
    "reproducible": _to_bool,
    "cache_repo": _to_str,
    "platform": _to_platforms,
    "max_file_size": _to_size,
    "helm_digest_field": _to_helm_field,
    "helm_digest_fields": _to_helm_fields,
    "registry_map": _to_registry_map,
}


__all__ = ["COERCERS", "HELM_DIGEST_FIELDS", "Coercer", "HelmDigestField"]
