"""Is a freshly built image the same content as an earlier version? Pure functions.

Two images have the same content when they have

* the same platform (os, architecture, variant),
* the same layer **diff-ids** — digests of the *uncompressed* layer tars, so a
  different compressor, compression level or registry re-compression never makes
  equal content look different, and no push is needed to know them, and
* the same runtime configuration (``config``: Env, Cmd, Entrypoint, WorkingDir,
  User, ports, volumes, labels …), ignoring the labels that describe the *release*
  rather than the content: ``org.opencontainers.image.version``, ``.created`` and
  ``.revision`` (a commit that changes nothing in the build context is not a new
  image).

Timestamps (``created``, ``history``) are ignored: with reproducible builds they
are the commit time, and without they are the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ocirel.oci import RELEASE_LABELS, ImageConfig, platform_of


def diff_ids(config: ImageConfig) -> list[str]:
    rootfs = config.get("rootfs") or {}
    ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def runtime_config(config: ImageConfig) -> dict[str, Any]:
    """The ``config`` member without release labels and without empty values."""
    inner = config.get("config") or {}
    if not isinstance(inner, Mapping):
        return {}
    result = {k: v for k, v in inner.items() if v not in (None, [], {}, "")}
    labels = result.get("Labels")
    if isinstance(labels, Mapping):
        kept = {k: v for k, v in labels.items() if k not in RELEASE_LABELS}
        if kept:
            result["Labels"] = kept
        else:
            result.pop("Labels")
    return result


def differences(new: ImageConfig, old: ImageConfig) -> list[str]:
    """Why ``new`` is not the same content as ``old``; an empty list means it is."""
    reasons: list[str] = []
    if platform_of(new) != platform_of(old):
        reasons.append(f"platform differs ({platform_of(old)} → {platform_of(new)})")
    new_layers, old_layers = diff_ids(new), diff_ids(old)
    if not new_layers:
        reasons.append("the new image lists no layer diff-ids")
    elif len(new_layers) != len(old_layers):
        reasons.append(f"layer count differs ({len(old_layers)} → {len(new_layers)})")
    else:
        for index, (a, b) in enumerate(zip(old_layers, new_layers, strict=True), start=1):
            if a != b:
                reasons.append(
                    f"layer {index} of {len(new_layers)} differs ({a[:19]}… → {b[:19]}…)"
                )
    new_config, old_config = runtime_config(new), runtime_config(old)
    for key in sorted(set(new_config) | set(old_config)):
        if new_config.get(key) != old_config.get(key):
            reasons.append(f"configuration differs in {key}")
    return reasons
