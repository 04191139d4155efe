"""Registry maps: ``OLD=NEW`` prefixes that move repositories to a mirror.

An image copied into another registry (``ocirel bundle import``, skopeo, a pull-through
mirror) keeps its digest, so a manifest can be pinned to the mirrored location with the
lockfile's digest: ``registry.example.com/team=mirror.local:5000/team`` pins
``registry.example.com/team/app`` as ``mirror.local:5000/team/app:v7@sha256:…``.

``OLD`` and ``NEW`` are ``host[:port][/path]``; the first component is always a host
(``docker.io`` for Docker Hub). ``OLD`` matches a repository equal to it or starting
with it and a ``/`` (whole path components only); when several match, the longest wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ocirel import reference as refs
from ocirel.errors import ConfigError, InvalidReferenceError

_HINT = "write OLD=NEW, each host[:port][/path], e.g. registry.example.com/team=mirror.local:5000"


@dataclass(frozen=True, slots=True)
class RegistryMap:
    """Prefix rewrites, longest ``OLD`` first."""

    pairs: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def apply(self, name: str) -> str:
        """``name`` (``registry/repository``) moved by the longest matching prefix, or
        ``name`` itself when none matches. Raises ConfigError if the result is invalid."""
        for old, new in self.pairs:
            if name == old or name.startswith(old + "/"):
                moved = new + name[len(old) :]
                try:
                    return refs.parse_repository(moved).name
                except InvalidReferenceError as exc:
                    raise ConfigError(
                        f"--registry-map {old}={new} turns {name} into an invalid "
                        f"repository: {exc}",
                        hint=_HINT,
                    ) from None
        return name


def normalize_prefix(text: str, what: str = "--registry-map") -> str:
    """``host[:port][/path]`` validated, host in lower case (Docker Hub's aliases folded)."""
    hint = (
        _HINT
        if what == "--registry-map"
        else "write REGISTRY[/PREFIX], e.g. mirror.local:5000/team"
    )
    value = text.strip().rstrip("/")
    host, _, path = value.partition("/")
    if not host:
        raise ConfigError(f"{what}: empty registry in {text!r}", hint=hint)
    try:
        # a placeholder component makes a bare host parse as host/repository
        probe = refs.parse_repository(f"{host}/{path or 'x'}")
    except InvalidReferenceError as exc:
        raise ConfigError(f"{what}: invalid prefix {text!r}: {exc}", hint=hint) from None
    if probe.registry == refs.DOCKER_HUB and not ("." in host or ":" in host):
        raise ConfigError(
            f"{what}: {text!r} must start with a registry host (with a '.' or ':', or localhost)",
            hint=hint,
        )
    return probe.name if path else probe.registry


def parse_pairs(
    items: Iterable[str | tuple[str, str]], what: str = "--registry-map"
) -> RegistryMap:
    """``OLD=NEW`` strings (or pairs) into a :class:`RegistryMap`; the first entry for
    an ``OLD`` wins (give flags before configuration)."""
    seen: dict[str, str] = {}
    for item in items:
        if isinstance(item, str):
            old, sep, new = item.partition("=")
            if not sep:
                raise ConfigError(f"{what}: expected OLD=NEW, got {item!r}", hint=_HINT)
        else:
            old, new = item
        old_prefix, new_prefix = normalize_prefix(old, what), normalize_prefix(new, what)
        seen.setdefault(old_prefix, new_prefix)
    ordered = sorted(seen.items(), key=lambda pair: (-len(pair[0]), pair[0]))
    return RegistryMap(tuple(ordered))


__all__ = ["RegistryMap", "normalize_prefix", "parse_pairs"]
