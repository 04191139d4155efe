"""Base images in a bundle (``bundle export --with-bases``): which, and how to use them.

Where the bases of the lockfile's images come from, in this order:

1. the build record attached to each locked image (``baseImages``: ``ref`` and the
   ``digest`` it resolved to at build time);
2. for the images without a build record, the Containerfile(s) named with ``--file``:
   ``FROM``, ``COPY --from=`` and ``RUN --mount=…,from=`` images
   (:func:`ocirel.containerfile.base_images`; ``scratch`` and build stages are not
   images), with ``$ARG`` replaced by the default of a global ``ARG``.

A base written with a digest is fetched by that digest; one with a tag only is
resolved to a digest on its registry at export time. In the bundle's ``index.json``
a base has its own ``org.opencontainers.image.ref.name`` (``repository:tag``, or
``repository@digest`` without a tag) and ``org.ocirel.bundle.role=base``; it is not
in the bundle's lockfile. On import it goes under the target prefix like the
lockfile images, tagged with its tag, or with :func:`derived_tag` without one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ocirel import reference as refs
from ocirel.bundle.layout import REF_NAME, BundleError, Descriptor
from ocirel.containerfile import base_images, from_arguments
from ocirel.errors import OcirelError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from ocirel.reference import Reference
from ocirel.registry import Registry

ROLE = "org.ocirel.bundle.role"
BASE_ROLE = "base"
#: the ARG name the Containerfile's FROM used for this base (``FROM ${BASE}``)
ARG_NAME = "org.ocirel.bundle.base.arg"
#: the tag of a base known by digest only: this prefix + the digest's hex
DIGEST_TAG_PREFIX = "base-sha256-"


@dataclass(frozen=True)
class Base:
    """A base image to carry: its repository, its tag (None: digest only), its digest."""

    repo: Reference
    tag: str | None
    digest: Digest
    arg: str | None = None

    @property
    def name(self) -> str:
        """The ``ref.name`` of the base in the bundle."""
        return f"{self.repo.name}:{self.tag}" if self.tag else f"{self.repo.name}@{self.digest}"

    @property
    def target_tag(self) -> str:
        return self.tag or derived_tag(self.digest)

    def entry(self) -> LockEntry:
        """The base as a (never written) lockfile entry, to plan and push it like one."""
        return LockEntry(self.name, self.repo.name, self.target_tag, self.digest)

    def annotations(self) -> dict[str, str]:
        found = {REF_NAME: self.name, "io.containerd.image.name": self.name, ROLE: BASE_ROLE}
        if self.arg:
            found[ARG_NAME] = self.arg
        return found


def derived_tag(digest: str) -> str:
    """The tag of a digest-only base in the mirror: ``base-sha256-<hex>``."""
    return DIGEST_TAG_PREFIX + digest.partition(":")[2]


def is_base(item: Descriptor) -> bool:
    return item.annotations.get(ROLE) == BASE_ROLE


def base_from_index(item: Descriptor, where: str) -> Base:
    """The base an ``index.json`` descriptor names (checked against its digest)."""
    try:
        ref = refs.parse(item.annotations.get(REF_NAME, ""))
    except OcirelError as exc:
        raise BundleError(f"{where}: a base image has no valid ref.name ({exc})") from None
    if ref.digest and ref.digest != item.digest:
        raise BundleError(f"{where}: base {ref} is listed with digest {item.digest}")
    return Base(ref.repo_only(), ref.tag, item.digest, item.annotations.get(ARG_NAME))


# ------------------------------------------------------------------- discovery


def containerfile_bases(text: str, where: str) -> list[tuple[str, str | None]]:
    """The images a Containerfile pulls, each with the ARG its ``FROM`` named (or None).

    ``FROM ${BASE}`` takes the default of a global ``ARG BASE=…`` (one before the first
    ``FROM``); without a default the base is unknown and this is an error."""
    images = base_images(text)
    if images is None:
        raise BundleError(
            f"{where}: a FROM names its image with an ARG that has no default",
            hint="give the ARG a default (ARG BASE=registry/image:tag) before the first FROM",
        )
    named = from_arguments(text)
    return [(image, named.get(image)) for image in images]


def recorded_bases(
    registry: Registry, repo: Reference, digest: Digest
) -> list[tuple[str, str | None]] | None:
    """``(ref, digest)`` of the bases the build records of ``repo@digest`` name; None
    when no record says (no record, or none with ``baseImages``)."""
    from ocirel.records.referrers import build_records  # noqa: PLC0415 (oras-py is slow to import)

    found: list[tuple[str, str | None]] | None = None
    for attached in build_records(registry, repo, digest):
        listed = attached.record.get("baseImages")
        if not isinstance(listed, list):
            continue
        found = found or []
        for item in listed:
            if isinstance(item, dict) and isinstance(item.get("ref"), str):
                pinned = item.get("digest")
                found.append((item["ref"], pinned if isinstance(pinned, str) else None))
    return found


def resolve_base(
    registry: Registry, text: str, digest: str | None = None, arg: str | None = None
) -> Base:
    """``text`` (as written in a FROM or a record) as a :class:`Base` with a digest:
    the one written or recorded, else what its tag resolves to now."""
    try:
        ref = refs.parse(text)
        written = ref.digest or digest
        pinned = refs.validate_digest(written) if written else None
    except OcirelError as exc:
        raise BundleError(
            f"base image {text!r} is not a valid reference: {exc}",
            hint="fix the FROM line, or leave --with-bases out",
        ) from None
    tag = ref.tag or (None if pinned else "latest")
    if pinned is None:
        pinned = registry.resolve(ref.repo_only().with_tag(tag or "latest")).digest
    return Base(ref.repo_only(), tag, Digest(pinned), arg)


def discover_bases(
    registry: Registry, lock: Lockfile, containerfiles: Sequence[Path]
) -> list[Base]:
    """The bases of ``lock``'s images: from their build records, else ``containerfiles``."""
    found: list[tuple[str, str | None, str | None]] = []
    unknown: list[str] = []
    for name, entry in sorted(lock.entries.items()):
        recorded = recorded_bases(registry, refs.parse_repository(entry.repository), entry.digest)
        if recorded is None:
            unknown.append(name)
        else:
            found.extend((ref, digest, None) for ref, digest in recorded)
    if unknown:
        if not containerfiles:
            raise BundleError(
                f"no build record names the base images of {', '.join(unknown)}",
                hint="name the Containerfile(s) they were built from with --file",
            )
        for path in containerfiles:
            text = _read(path)
            found.extend((image, None, arg) for image, arg in containerfile_bases(text, str(path)))
    return _unique(resolve_base(registry, ref, digest, arg) for ref, digest, arg in found)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read the Containerfile {path}: {exc}") from None


def _unique(bases: Iterable[Base]) -> list[Base]:
    by_name: dict[str, Base] = {}
    for base in bases:
        known = by_name.get(base.name)
        if known is None or (known.arg is None and base.arg):
            by_name[base.name] = base
    return list(by_name.values())


__all__ = [
    "ARG_NAME",
    "BASE_ROLE",
    "ROLE",
    "Base",
    "base_from_index",
    "containerfile_bases",
    "derived_tag",
    "discover_bases",
    "is_base",
    "recorded_bases",
    "resolve_base",
]
