"""What every builder adapter shares: the build inputs and the adapter protocols.

Argv builders are small pure functions so that most backend tests compare argv
tuples; the real binaries run in the integration tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from ocirel.errors import ConfigError
from ocirel.hostinfo import StorageChoice
from ocirel.oci import ImageConfig

CONTAINERFILE_NAMES = ("Containerfile", "Dockerfile")


@dataclass(frozen=True)
class BuildSpec:
    """The inputs of one build.

    ``image`` is a unique local name for this run, or None: then the image stays
    unnamed and is known only by the ID the build returns, so it doubles as the
    layer cache of the next build and no other job can ever retag it.
    """

    context: Path
    image: str | None
    containerfile: Path | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    layers: bool = True
    timestamp: int | None = None
    cache_repo: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class StaleCache:
    """A build reused cached steps made for another timestamp: ``reason`` says which,
    and ``entries`` are those cached step images that carry no name. Removing them
    after the rebuild lets the next build find the steps the rebuild cached; a named
    image is someone's image and stays."""

    reason: str
    entries: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildEnv:
    """How to run the builder on this host (decided once per run)."""

    isolation: str = "chroot"
    storage: StorageChoice = field(default_factory=lambda: StorageChoice(None, "builder default"))
    authfile: Path | None = None
    tls_verify: bool = True


class Builder(Protocol):
    """What every builder adapter does: build, show, clean up, and say whether it can run.

    How the image then reaches the registry is the builder's declared ``delivery``: a
    :class:`LayoutExporter` hands ocirel an OCI layout to upload, a :class:`SelfPusher`
    pushes by itself. :data:`Backend` is the one or the other.
    """

    name: str
    program: str
    install_hint: str
    #: whether a build with a timestamp gives the same digest for the same inputs
    reproducible: bool
    #: whether ocirel can build several platforms with it and push them as one index
    multi_platform: bool

    def build_argv(self, spec: BuildSpec, env: BuildEnv) -> list[str]: ...

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        """Build; return the image ID when the builder reports one (else use ``spec.image``)."""
        ...

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        """The local image's OCI config (with ``rootfs.diff_ids``), or None when the
        builder cannot show it cheaply; used to compare content before any push."""
        ...

    def stale_cache(self, image: str, timestamp: int, env: BuildEnv) -> StaleCache | None:
        """After a build with ``timestamp`` that used the layer cache: why ``image`` holds
        layers made for another timestamp (then rebuild without the cache, and remove
        the stale entries), or None."""
        ...

    def remove(self, image: str, env: BuildEnv) -> None: ...

    def drop_stale(self, stale: StaleCache, env: BuildEnv) -> str | None:
        """After the rebuild: remove ``stale.entries`` so that the next build finds the
        steps the rebuild cached; say why one could not go (else None)."""
        ...

    def version(self) -> str | None: ...

    def problem(self) -> str | None:
        """Why this builder cannot be used here (not installed, no reachable daemon),
        or None when it can. Used by ``--backend auto`` and ``ocirel doctor``."""
        ...


class LayoutExporter(Builder, Protocol):
    """A builder that writes the image into a private OCI layout (buildah, podman);
    ocirel uploads it and claims the tag itself."""

    @property
    def delivery(self) -> Literal["layout"]: ...

    def export_argv(
        self, image: str, layout: Path, digestfile: Path, env: BuildEnv
    ) -> list[str]: ...

    def image_annotations(self, image: str, env: BuildEnv) -> dict[str, str]:
        """The local image's manifest annotations (the base image it was built on:
        ``org.opencontainers.image.base.name``/``.digest``); empty when unknown."""
        ...

    def export(self, image: str, layout: Path, env: BuildEnv, *, timeout: float) -> str:
        """Write ``image`` into the OCI layout ``layout``; return the manifest digest."""
        ...


class SelfPusher(Builder, Protocol):
    """A builder that pushes by itself (docker): the tag is chosen before the build."""

    @property
    def delivery(self) -> Literal["push"]: ...

    def push(self, image: str, target: str, env: BuildEnv, *, timeout: float) -> str | None:
        """Push ``image`` as ``target``; return the digest the push reported, if any."""
        ...

    def config_digest(self, image: str) -> str | None:
        """The digest of the config this run built as ``image``, when known: the config
        of the manifest the registry serves after the push must be this one."""
        ...


#: a builder adapter: ``backend.delivery`` says which of the two it is
Backend = LayoutExporter | SelfPusher


def find_containerfile(context: Path, given: Path | None) -> Path:
    """``--file`` if given (relative to the working directory), else Containerfile or Dockerfile."""
    if not context.is_dir():
        raise ConfigError(f"build context {context} is not a directory")
    if given is not None:
        if not given.is_file():
            raise ConfigError(f"--file {given} does not exist")
        return given
    for name in CONTAINERFILE_NAMES:
        candidate = context / name
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no Containerfile or Dockerfile in {context}",
        hint="pass --file PATH, or run ocirel in the directory that holds the Containerfile",
    )


def spec_argv(containerfile: Path, spec: BuildSpec) -> list[str]:
    """The build flags every builder spells the same: file, tag, labels, build args."""
    argv = ["--file", str(containerfile)]
    if spec.image:
        argv += ["--tag", spec.image]
    for key, value in spec.labels:
        argv += ["--label", f"{key}={value}"]
    for key, value in spec.build_args:
        argv += ["--build-arg", f"{key}={value}"]
    return argv


def parse_build_args(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["K=V", …]`` → pairs; a bare ``K`` takes its value from the environment like docker."""
    import os  # noqa: PLC0415

    pairs: list[tuple[str, str]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not key.replace("_", "a").isalnum():
            raise ConfigError(f"invalid --build-arg {item!r}: expected KEY=VALUE")
        if not sep:
            if key not in os.environ:
                continue
            value = os.environ[key]
        pairs.append((key, value))
    return tuple(pairs)
