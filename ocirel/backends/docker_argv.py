"""docker's command lines and outputs, as pure functions (no process is started here).

``build_argv`` (classic ``docker build`` or ``docker buildx build --load``) and its
environment, the tag / push / remove / inspect argv, and the parsers for what docker
writes: the digest ``docker push`` reports, the buildx ``--metadata-file``, and
``docker image inspect`` turned into the shape of an OCI image config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocirel.backends.base import BuildSpec, find_containerfile, spec_argv
from ocirel.reference import is_valid_digest

_PUSH_DIGEST = re.compile(r"(?m)^(?:\S+: )?digest: (sha256:[0-9a-f]{64}) size: \d+\s*$")


def build_argv(
    spec: BuildSpec, *, buildx: bool, iidfile: Path | None = None, metadata_file: Path | None = None
) -> list[str]:
    """``docker build`` (classic) or ``docker buildx build --load`` for ``spec``."""
    containerfile = find_containerfile(spec.context, spec.containerfile)
    argv = ["docker", "buildx", "build", "--load"] if buildx else ["docker", "build"]
    if metadata_file is not None and buildx:
        argv += ["--metadata-file", str(metadata_file)]
    if iidfile is not None:
        argv += ["--iidfile", str(iidfile)]
    if not spec.layers:
        argv.append("--no-cache")
    argv += spec_argv(containerfile, spec)
    if buildx and spec.timestamp is not None:
        argv += ["--build-arg", f"SOURCE_DATE_EPOCH={spec.timestamp}"]
    if spec.target:
        argv += ["--target", spec.target]
    if spec.platform:
        argv += ["--platform", spec.platform]
    if buildx and spec.cache_repo:
        argv += [
            "--cache-to", f"type=registry,ref={spec.cache_repo},mode=max",
            "--cache-from", f"type=registry,ref={spec.cache_repo}",
        ]  # fmt: skip
    argv.append(str(spec.context))
    return argv


def build_environment(base: Mapping[str, str], *, buildx: bool) -> dict[str, str]:
    """The environment for ``docker build``: ``DOCKER_BUILDKIT`` says which builder."""
    env = dict(base)
    env["DOCKER_BUILDKIT"] = "1" if buildx else "0"
    return env


def tag_argv(image: str, target: str) -> list[str]:
    return ["docker", "tag", image, target]


def push_argv(target: str) -> list[str]:
    return ["docker", "push", target]


def remove_argv(images: list[str]) -> list[str]:
    """Remove ``images`` but keep their untagged parents: the classic builder's layer
    cache, so that a rebuild of unchanged content gives the same image (and the same
    ``config.Image`` parent) and ocirel can recognise it before pushing."""
    return ["docker", "image", "rm", "--no-prune", *images]


def inspect_argv(image: str) -> list[str]:
    return ["docker", "image", "inspect", image]


def parse_push_digest(output: str) -> str | None:
    """The digest ``docker push`` reported (its last ``digest: sha256:… size: N`` line)."""
    found = _PUSH_DIGEST.findall(output)
    return found[-1] if found and is_valid_digest(found[-1]) else None


def parse_metadata_config_digest(text: str) -> str | None:
    """``containerimage.config.digest`` from a buildx ``--metadata-file``."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    digest = data.get("containerimage.config.digest") if isinstance(data, dict) else None
    return digest if isinstance(digest, str) and is_valid_digest(digest) else None


def oci_config_from_inspect(data: Mapping[str, Any]) -> dict[str, Any]:
    """``docker image inspect`` output → the shape of an OCI image config."""
    rootfs = data.get("RootFS") or {}
    config: dict[str, Any] = {
        "architecture": data.get("Architecture") or "",
        "os": data.get("Os") or "",
        "config": dict(data.get("Config") or {}),
        "rootfs": {"type": "layers", "diff_ids": list(rootfs.get("Layers") or [])},
    }
    if data.get("Variant"):
        config["variant"] = data["Variant"]
    if data.get("Created"):
        config["created"] = data["Created"]
    return config
