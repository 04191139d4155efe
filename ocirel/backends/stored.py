"""A built image's config and annotations, read from containers/storage's files.

After a build, ocirel needs the image's config (the unchanged check, the layers to
reuse) and the annotations naming its base. ``buildah inspect`` answers in about
100 ms, almost all of it the process starting and opening the storage; the same
facts are two small files the build just wrote: containers/storage keeps each image's
"big data" in ``<graph root>/<driver>-images/<id>/``, under the key's name or, for a
key with other characters than ``[.0-9a-z]``, ``=`` + its base64.

Nothing read here is trusted unverified:

* the config (key ``sha256:<id>``) must hash to the image ID, which buildah gives an
  OCI image from its config's digest (the ID comes from ``--iidfile``, not a name);
* the manifest (key ``manifest``) must be an OCI image manifest naming that config
  with the OCI config type, so the config is exactly the one an export writes.

Anything else (another storage layout, a Docker-format build, a file missing or cut
short, an image removed meanwhile) returns None and the caller inspects as before. A
wrong graph root cannot give a wrong config: the config is found by its digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocirel.oci import OCI_CONFIG, OCI_MANIFEST

#: a config or manifest larger than this is not read here (the inspect path reads it)
MAX_BYTES = 4 * 1024 * 1024
_IMAGE_ID = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_PLAIN_KEY = re.compile(r"[.0-9a-z]*")


@dataclass(frozen=True)
class StoredImage:
    """What the storage holds for one image, verified."""

    config: dict[str, Any]
    annotations: dict[str, str]


def stored_image(image: str, driver: str | None = None) -> StoredImage | None:
    """:func:`read_stored_image` from the graph roots of this user's storage.conf,
    the store of ``driver`` (the one the builder uses, when known) first."""
    from ocirel.hostinfo import graph_roots, is_rootless  # noqa: PLC0415

    if _IMAGE_ID.fullmatch(image) is None:
        return None
    return read_stored_image(image, graph_roots(os.environ, is_rootless()), driver)


def big_data_name(key: str) -> str:
    """The file name containers/storage gives the big-data item ``key``."""
    if _PLAIN_KEY.fullmatch(key):
        return key
    return "=" + base64.b64encode(key.encode("utf-8")).decode("ascii")


def read_stored_image(
    image: str, roots: Iterable[Path], driver: str | None = None
) -> StoredImage | None:
    """The config and annotations of the image with ID ``image``, from the first of
    ``roots`` that holds it in a verified form (in ``driver``'s store before any
    other: a store left by another driver may hold an older manifest); None when none
    does."""
    match = _IMAGE_ID.fullmatch(image)
    if match is None:
        return None
    hexid = match.group(1)
    for root in roots:
        try:
            stores = sorted(root.glob(f"*-images/{hexid}"))
        except (OSError, ValueError):
            continue
        preferred = root / f"{driver}-images" / hexid if driver else None
        for directory in sorted(stores, key=lambda d: d != preferred):
            stored = _verified(directory, hexid)
            if stored is not None:
                return stored
    return None


def _verified(directory: Path, hexid: str) -> StoredImage | None:
    config_bytes = _read(directory / big_data_name(f"sha256:{hexid}"))
    manifest_bytes = _read(directory / big_data_name("manifest"))
    if config_bytes is None or manifest_bytes is None:
        return None
    if hashlib.sha256(config_bytes).hexdigest() != hexid:
        return None
    try:
        config, manifest = json.loads(config_bytes), json.loads(manifest_bytes)
    except ValueError:
        return None
    if not isinstance(config, dict) or not isinstance(manifest, dict):
        return None
    described = manifest.get("config")
    if (
        manifest.get("mediaType") != OCI_MANIFEST
        or not isinstance(described, dict)
        or described.get("mediaType") != OCI_CONFIG
        or described.get("digest") != f"sha256:{hexid}"
    ):
        return None
    annotations = manifest.get("annotations")
    strings = (
        {k: v for k, v in annotations.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(annotations, dict) else {}
    )  # fmt: skip
    return StoredImage(config, strings)


def _read(path: Path) -> bytes | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_BYTES else None
