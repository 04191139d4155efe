"""The lockfile document: which digest each released image name points to.

Format (schema 2)::

    {
      "images": {
        "<name>": {
          "digest": "sha256:…",
          "mediaType": "application/vnd.oci.image.index.v1+json",  (an index only)
          "platforms": {"linux/amd64": "sha256:…", "linux/arm64": "sha256:…"},
          "reference": "<repository>:<tag>@<digest>",
          "repository": "registry.example.com/team/app",
          "source": {"dirty": false, "revision": "…"},
          "tag": "v7"
        }
      },
      "issued": {"registry.example.com/team/app": "v7"},
      "schema": 2
    }

``issued`` is the floor: per repository, the highest version ocirel ever recorded
for it. It stays when an entry moves on (to an older tag, another repository, or is
removed), so a version the registry has lost (a deleted tag) is never issued again.
Schema 1 files (without ``issued``) are read as they are (their entries' tags are
the floor); every write is schema 2, so an older ocirel refuses the file instead of
silently dropping the floor.

``digest`` is what to pin: the image manifest, or the OCI index of a multi-platform
image; then ``mediaType`` says so and ``platforms`` lists each platform's manifest.
Entries without ``mediaType`` (every file older than multi-platform publishing) are
single images, or an index when their digest is none of their platforms'.

Output is canonical — sorted keys, 2-space indent, LF, trailing newline, no
timestamps — so the same inputs give byte-identical files. A corrupt, truncated or
unknown-schema text is an error (:class:`LockfileError`), never silently dropped.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ocirel import reference
from ocirel.errors import InvalidReferenceError, LockfileError
from ocirel.oci import INDEX_TYPES, MANIFEST_TYPES, Digest

SCHEMA = 2
READABLE_SCHEMAS = (1, 2)
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_KNOWN_KEYS = frozenset(
    {"repository", "tag", "digest", "reference", "platforms", "source", "mediaType"}
)


def validate_name(name: str) -> str:
    """A lockfile key: lower-case letters, digits, '.', '_' and '-' (it becomes env names)."""
    if not _NAME_RE.fullmatch(name):
        raise LockfileError(
            f"invalid image name {name!r} for the lockfile: use lower-case letters, digits, "
            "'.', '_' and '-', starting with a letter or digit (at most 128)"
        )
    return name


@dataclass(frozen=True)
class LockEntry:
    """One released image. ``extra`` keeps fields written by newer ocirel versions."""

    name: str
    repository: str
    tag: str
    digest: Digest
    platforms: Mapping[str, str] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: the digest's manifest type when it is an index (None: written only then)
    media_type: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"

    @property
    def is_index(self) -> bool:
        """Whether ``digest`` names an index over ``platforms`` (an older lockfile says
        so only by a digest that is none of its platforms')."""
        if self.media_type is not None:
            return self.media_type in INDEX_TYPES
        return bool(self.platforms) and self.digest not in self.platforms.values()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        data.update(
            repository=self.repository,
            tag=self.tag,
            digest=self.digest,
            reference=self.reference,
            platforms=dict(self.platforms),
            source=dict(self.source),
        )
        if self.media_type is not None:
            data["mediaType"] = self.media_type
        return data

    @classmethod
    def from_json(cls, name: str, data: object, *, where: str) -> LockEntry:
        if not isinstance(data, dict):
            raise LockfileError(f"{where}: entry {name!r} is not an object")
        try:
            validate_name(name)
        except LockfileError as exc:
            raise LockfileError(f"{where}: {exc}") from None
        try:
            repository = repository_name(_str(data, "repository", where, name))
            tag = reference.validate_tag(_str(data, "tag", where, name))
            digest = reference.validate_digest(_str(data, "digest", where, name))
        except InvalidReferenceError as exc:
            raise LockfileError(f"{where}: entry {name!r}: {exc}") from None
        platforms = data.get("platforms", {})
        source = data.get("source", {})
        if not isinstance(platforms, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and reference.is_valid_digest(v)
            for k, v in platforms.items()
        ):
            raise LockfileError(f"{where}: entry {name!r}: 'platforms' must map platform to digest")
        if not isinstance(source, dict):
            raise LockfileError(f"{where}: entry {name!r}: 'source' must be an object")
        expected = f"{repository}:{tag}@{digest}"
        if _normal_reference(data.get("reference", expected)) != expected:
            raise LockfileError(
                f"{where}: entry {name!r}: 'reference' disagrees with repository, tag and digest"
            )
        media_type = data.get("mediaType")
        if media_type is not None and media_type not in MANIFEST_TYPES:
            raise LockfileError(f"{where}: entry {name!r}: unknown 'mediaType' {media_type!r}")
        extra = {k: v for k, v in data.items() if k not in _KNOWN_KEYS}
        return cls(name, repository, tag, digest, platforms, source, extra, media_type)


def repository_name(text: str) -> str:
    """A lockfile ``repository``, normalized: ``registry/path``, or ``oci:/abs/path`` for
    an OCI image layout (absolute: the lockfile names one directory from anywhere)."""
    if reference.is_layout(text):
        target = reference.parse_layout(text, cwd="/")
        if target.name != text:
            raise InvalidReferenceError(
                f"OCI layout repository {text!r} must be an absolute, normalized path "
                f"({target.name})"
            )
        return target.name
    repo = reference.parse(text)
    if repo.tag or repo.digest:
        raise InvalidReferenceError(f"{text!r} must be a repository, without tag or digest")
    return repo.name


def _normal_reference(value: object) -> object:
    """A stored ``reference`` spelled as ocirel spells it now (older versions kept the
    host's case as written; host names are case-insensitive)."""
    if not isinstance(value, str):
        return value
    try:
        return str(reference.parse(value))
    except InvalidReferenceError:
        return value


def _str(data: Mapping[str, Any], key: str, where: str, name: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise LockfileError(f"{where}: entry {name!r}: {key!r} must be a string")
    return value


@dataclass(frozen=True)
class Lockfile:
    entries: Mapping[str, LockEntry] = field(default_factory=dict)
    #: repository → the highest version ever recorded for it (the floor)
    issued: Mapping[str, str] = field(default_factory=dict)

    def with_entry(self, entry: LockEntry) -> Lockfile:
        return Lockfile({**self.entries, entry.name: entry}, self.issued)

    def without(self, name: str) -> Lockfile:
        return Lockfile({k: v for k, v in self.entries.items() if k != name}, self.issued)

    def with_issued(self, repository: str, tag: str) -> Lockfile:
        """Set the floor of ``repository`` (the caller decides which tag is higher)."""
        return Lockfile(self.entries, {**self.issued, repository: tag})

    def known_tags(self, repository: str) -> set[str]:
        """Every tag this lockfile records, or recorded as the floor, for ``repository``."""
        known = {e.tag for e in self.entries.values() if e.repository == repository}
        if repository in self.issued:
            known.add(self.issued[repository])
        return known

    def find_repository(self, repository: str) -> LockEntry | None:
        """The entry whose repository is ``repository`` (normalized), if any."""
        for entry in self.entries.values():
            if entry.repository == repository:
                return entry
        return None


def dumps(lock: Lockfile) -> str:
    """The canonical text of ``lock``."""
    doc = {
        "schema": SCHEMA,
        "images": {n: e.to_json() for n, e in lock.entries.items()},
        "issued": dict(lock.issued),
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def loads(text: str, *, where: str = "lockfile") -> Lockfile:
    """Parse lockfile text; any problem raises :class:`LockfileError`."""
    try:
        doc = json.loads(text, object_pairs_hook=functools.partial(_unique_keys, where))
    except (ValueError, RecursionError) as exc:
        raise LockfileError(
            f"{where} is not valid JSON ({exc}); it was left untouched",
            hint="restore it from version control, or delete it to start a new one",
        ) from None
    if not isinstance(doc, dict):
        raise LockfileError(f"{where} is not a JSON object; it was left untouched")
    schema = doc.get("schema")
    if schema not in READABLE_SCHEMAS or isinstance(schema, bool):
        raise LockfileError(
            f"{where} has schema {schema!r}; this ocirel reads schemas "
            f"{', '.join(map(str, READABLE_SCHEMAS))}",
            hint="upgrade ocirel if the file was written by a newer version",
        )
    images = doc.get("images", {})
    if not isinstance(images, dict):
        raise LockfileError(f"{where}: 'images' must be an object")
    entries = {n: LockEntry.from_json(n, d, where=where) for n, d in images.items()}
    return Lockfile(entries, _issued_from(doc.get("issued", {}), where))


def _unique_keys(where: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: a duplicate would silently win
    over the earlier one (and a rewrite would drop it)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise LockfileError(
                f"{where} has the key {key!r} more than once in one object; it was left untouched",
                hint="keep one of them (a JSON object's keys must differ), then run again",
            )
        result[key] = value
    return result


def _issued_from(data: object, where: str) -> dict[str, str]:
    """``issued``: normalized repository → a valid tag."""
    if not isinstance(data, dict):
        raise LockfileError(f"{where}: 'issued' must map repository to tag")
    issued: dict[str, str] = {}
    for key, tag in data.items():
        try:
            name = repository_name(key)
            if not isinstance(tag, str):
                raise LockfileError(f"{where}: 'issued' of {key!r} must be a tag (a string)")
            reference.validate_tag(tag)
        except InvalidReferenceError as exc:  # a tag or digest in the key, too
            raise LockfileError(f"{where}: 'issued' of {key!r}: {exc}") from None
        if name in issued:
            raise LockfileError(f"{where}: 'issued' key {key!r} must be a repository, named once")
        issued[name] = tag
    return issued
