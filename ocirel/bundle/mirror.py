"""What a user needs to build against the mirror after ``bundle import``. Pure text.

Two ways, both printed:

- a ``registries.conf`` drop-in (containers-registries.conf(5)): one ``[[registry]]``
  per source registry of the bases, whose ``[[registry.mirror]]`` is the import
  prefix. A mirror keeps the repository path under its location, exactly the path
  rule of the import (``docker.io/library/alpine`` → ``PREFIX/library/alpine``), so
  the Containerfile's ``FROM`` lines work unchanged (buildah, podman; Docker reads
  only Docker Hub mirrors from ``daemon.json``);
- the ``--build-arg`` form for a Containerfile that takes its base as an ``ARG``
  (``ARG BASE`` … ``FROM ${BASE}``): the mirrored reference, pinned by digest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocirel.bundle.bases import Base

#: the ARG name used in the generic hint when the Containerfile did not name one
DEFAULT_ARG = "BASE"


@dataclass(frozen=True)
class MirrorHints:
    registries_conf: str
    build_args: tuple[str, ...]

    def lines(self) -> list[str]:
        """The text for stderr (empty when there are no bases)."""
        if not self.build_args:
            return []
        return [
            "to build against the mirror, add to /etc/containers/registries.conf "
            "(or a file in registries.conf.d/):",
            "",
            *self.registries_conf.rstrip("\n").splitlines(),
            "",
            f"or, for a Containerfile with ARG {DEFAULT_ARG} and FROM ${{{DEFAULT_ARG}}}, "
            "build with:",
            *(f"  {arg}" for arg in self.build_args),
        ]

    def to_json(self) -> dict[str, Any]:
        return {"registriesConf": self.registries_conf, "buildArgs": list(self.build_args)}


def mirrored_reference(base: Base) -> str:
    """The base in the mirror, by tag and digest."""
    return f"{base.repo.name}:{base.target_tag}@{base.digest}"


def mirror_hints(
    moved: Sequence[tuple[Base, Base]], prefix: str, *, insecure: bool = False
) -> MirrorHints:
    """The hints for the bases ``moved`` (source, mirrored) under ``prefix``."""
    sources = sorted({source.repo.registry for source, _ in moved})
    blocks = []
    for registry in sources:
        block = f"[[registry]]\nlocation = {_quote(registry)}\n\n[[registry.mirror]]\n"
        block += f"location = {_quote(prefix)}\n"
        if insecure:
            block += "insecure = true\n"
        blocks.append(block)
    args = tuple(
        f"--build-arg {source.arg or DEFAULT_ARG}={mirrored_reference(mirrored)}"
        for source, mirrored in moved
    )
    return MirrorHints("\n".join(blocks), args)


def _quote(text: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for these characters)."""
    return json.dumps(text)


__all__ = ["DEFAULT_ARG", "MirrorHints", "mirror_hints", "mirrored_reference"]
