"""Image references: parse, validate and normalize per the distribution grammar.

A reference is ``[host[:port]/]path[:tag][@digest]``. Validation happens here, before
anything builds a URL or a file path from a name, so ``..``, ``%2F``, upper case,
over-long names and malformed tags or digests never reach the network.

Docker Hub is normalized the way every container tool does it: no host means
``docker.io``; a one-component path on Docker Hub gets ``library/``;
``index.docker.io`` is ``docker.io``; the API host is ``registry-1.docker.io``.

Host names are case-insensitive (DNS), so the registry is kept in lower case:
``Registry.Example.com/team/app`` and ``registry.example.com/team/app`` are one
repository, for the lockfile, ``pin``, ``lint`` and ``verify`` alike. Repository paths
are case-sensitive (and must be lower case anyway). This module is the one place that
normalizes hosts (:func:`normalize_host`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TypeGuard

from ocirel.errors import InvalidReferenceError
from ocirel.oci import Digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

MAX_NAME_LENGTH = 255
MAX_TAG_LENGTH = 128

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_DOMAIN_RE = re.compile(rf"{_HOST}(?::[0-9]{{1,5}})?")
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")
_ANY_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


@dataclass(frozen=True, slots=True)
class Reference:
    """A validated, normalized image reference.

    ``registry`` is the host in lower case (``docker.io``, ``localhost:5000``);
    ``repository`` the path (``library/nginx``); ``tag`` and ``digest`` are optional.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, the part a lockfile entry calls ``repository``."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host that serves the distribution API for this registry."""
        return api_host(self.registry)

    @property
    def hostname(self) -> str:
        """The host without port and without IPv6 brackets."""
        return split_host_port(self.registry)[0]

    @property
    def last_component(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=validate_tag(tag))

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=validate_digest(digest))

    def repo_only(self) -> Reference:
        return replace(self, tag=None, digest=None)

    @property
    def identifier(self) -> str:
        """What to put after ``/manifests/``: the digest when known, else the tag."""
        if self.digest:
            return self.digest
        if self.tag:
            return self.tag
        raise InvalidReferenceError(f"{self} has neither a tag nor a digest")

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def normalize_host(registry: str) -> str:
    """``registry`` (``host[:port]``) as ocirel compares it: lower case, Docker Hub's
    aliases folded into ``docker.io``."""
    lowered = registry.lower()
    return DOCKER_HUB if lowered in _HUB_ALIASES else lowered


def api_host(registry: str) -> str:
    """The host serving the distribution API of ``registry`` (Docker Hub's differs)."""
    return DOCKER_HUB_API_HOST if registry == DOCKER_HUB else registry


def split_host_port(registry: str) -> tuple[str, int | None]:
    """``"[::1]:5000"`` → ``("::1", 5000)``; ``"example.com"`` → ``("example.com", None)``."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = registry.partition(":")
    return host, (int(port) if port else None)


def validate_tag(tag: str) -> str:
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidReferenceError(
            f"tag is {len(tag)} characters long; the limit is {MAX_TAG_LENGTH}"
        )
    if not _TAG_RE.fullmatch(tag):
        raise InvalidReferenceError(
            f"invalid tag {tag!r}: a tag is letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'"
        )
    return tag


def validate_digest(digest: str) -> Digest:
    if is_valid_digest(digest):
        return digest
    algorithm, _, hexpart = digest.partition(":")
    want = {"sha256": 64, "sha512": 128}.get(algorithm)
    if want is not None and len(hexpart) != want:
        raise InvalidReferenceError(
            f"malformed digest {_shorten(digest)!r}: {algorithm} takes exactly {want} hex "
            f"digits, this has {len(hexpart)}"
        )
    if _ANY_DIGEST_RE.fullmatch(digest):
        raise InvalidReferenceError(
            f"unsupported digest {_shorten(digest)!r}: only lower-case sha256 and sha512 "
            "digests are accepted"
        )
    raise InvalidReferenceError(f"malformed digest {_shorten(digest)!r}: expected sha256:<64 hex>")


def is_valid_digest(digest: str) -> TypeGuard[Digest]:
    return bool(_DIGEST_RE.fullmatch(digest))


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    # Unlike Docker's parser, an upper-case first component without "." or ":" is not
    # taken for a host: "MyOrg/app" is far more likely a mistyped repository.
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DOCKER_HUB, name


def parse(text: str) -> Reference:
    """Parse ``text`` into a :class:`Reference`, or raise :class:`InvalidReferenceError`."""
    if not text or text != text.strip():
        raise InvalidReferenceError(f"invalid image reference {_shorten(text)!r}: empty or padded")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, _, digest_text = remainder.partition("@")
        digest = validate_digest(digest_text)
    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        validate_tag(tag)
    registry, path = _split_domain(remainder)
    return _build(text, registry, path, tag, digest)


def _build(
    original: str, registry: str, path: str, tag: str | None, digest: Digest | None
) -> Reference:
    if not _DOMAIN_RE.fullmatch(registry):
        raise InvalidReferenceError(
            f"invalid registry host {_shorten(registry)!r} in {_shorten(original)!r}"
        )
    _, port = split_host_port(registry)
    if port is not None and not 0 < port < 65536:
        raise InvalidReferenceError(f"invalid port in {_shorten(original)!r}")
    registry = normalize_host(registry)
    if registry == DOCKER_HUB and path and "/" not in path:
        path = f"library/{path}"
    if not path:
        raise InvalidReferenceError(
            f"invalid image reference {_shorten(original)!r}: no repository path"
        )
    for component in path.split("/"):
        if not _PATH_COMPONENT_RE.fullmatch(component):
            raise InvalidReferenceError(_component_message(component, original))
    if len(registry) + 1 + len(path) > MAX_NAME_LENGTH:
        raise InvalidReferenceError(
            f"repository name {_shorten(original)!r} is longer than {MAX_NAME_LENGTH} characters"
        )
    return Reference(registry=registry, repository=path, tag=tag, digest=digest)


def _component_message(component: str, original: str) -> str:
    if component != component.lower() and _PATH_COMPONENT_RE.fullmatch(component.lower()):
        why = "repository names must be lower case"
    elif not component:
        why = "empty path component"
    else:
        why = "path components are lower-case letters and digits separated by '.', '_', '__' or '-'"
    return (
        f"invalid repository path component {_shorten(component)!r} in "
        f"{_shorten(original)!r}: {why}"
    )


def parse_repository(text: str) -> Reference:
    """Parse a repository for publishing: a tag or digest here is a usage error."""
    ref = parse(text)
    if ref.tag or ref.digest:
        raise InvalidReferenceError(
            f"--image takes a repository without tag or digest, got {_shorten(text)!r}",
            hint="ocirel picks the next version tag itself; use --tag to choose one explicitly",
        )
    return ref


# ------------------------------------------------------------- OCI image layouts

#: the transport prefix of an OCI image layout destination (``oci:PATH``), as skopeo
#: and buildah spell it
LAYOUT_PREFIX = "oci:"


@dataclass(frozen=True, slots=True)
class LayoutTarget:
    """An OCI image layout directory as a publish destination (``oci:/abs/path``).

    The layout holds one repository: its tags are the ``org.opencontainers.image.ref.name``
    annotations of ``index.json``. ``name`` is what the lockfile calls its repository;
    ``path`` is absolute, so the lockfile names the same directory from anywhere.
    """

    path: str

    @property
    def name(self) -> str:
        return f"{LAYOUT_PREFIX}{self.path}"

    @property
    def last_component(self) -> str:
        """The directory's name made a valid lockfile key (lower case, ``-`` for others)."""
        base = self.path.rstrip("/").rsplit("/", 1)[-1].lower()
        cleaned = re.sub(r"[^a-z0-9._-]+", "-", base).strip("-._")
        return cleaned or "image"

    def __str__(self) -> str:
        return self.name


def is_layout(text: str) -> bool:
    """Whether ``text`` names an OCI image layout (``oci:PATH``) rather than a registry."""
    return text.startswith(LAYOUT_PREFIX)


def parse_layout(text: str, *, cwd: str | None = None) -> LayoutTarget:
    """``oci:PATH`` as a :class:`LayoutTarget` (``PATH`` made absolute against ``cwd``,
    default the current directory, and normalized). ``oci:PATH:TAG`` is refused: ocirel
    picks the tag (``--tag`` to choose one)."""
    import os  # noqa: PLC0415 - only for layouts
    from pathlib import Path  # noqa: PLC0415

    if not is_layout(text):
        raise InvalidReferenceError(f"{_shorten(text)!r} is not an OCI layout (oci:PATH)")
    path = text[len(LAYOUT_PREFIX) :]
    if not path or path != path.strip() or "\0" in path or "\n" in path:
        raise InvalidReferenceError(
            f"invalid OCI layout reference {_shorten(text)!r}: empty or padded path",
            hint="write oci:PATH, e.g. --image oci:./build/layout",
        )
    if ":" in path:
        raise InvalidReferenceError(
            f"invalid OCI layout reference {_shorten(text)!r}: the path may not contain ':' "
            "(oci:PATH:TAG names a tag, and ocirel picks the tag)",
            hint="write oci:PATH and let ocirel pick the next version, or add --tag TAG",
        )
    absolute = os.path.normpath(Path(cwd) / path if cwd else Path.cwd() / path)
    return LayoutTarget(absolute)


def parse_destination(text: str) -> Reference | LayoutTarget:
    """A publish destination: a registry repository, or an OCI layout (``oci:PATH``)."""
    return parse_layout(text) if is_layout(text) else parse_repository(text)
