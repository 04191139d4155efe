"""From settings to working parts: the registry client, the build environment, the
credentials, and the publisher put together (ko's ``makePublisher``).

The commands call these and render what comes back; nothing here prints except
progress and warnings on stderr. Heavy modules (requests, the registry client, the
publisher) are imported inside the functions, so the command modules stay cheap to
import.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ocirel.cli.output import err, note

if TYPE_CHECKING:
    from ocirel.backends.base import Backend, BuildEnv
    from ocirel.lockfile import Lockfile
    from ocirel.publish import PublishRequest, PublishResult
    from ocirel.records.attach import RecordAttacher
    from ocirel.records.prefetch import Prefetch
    from ocirel.reference import LayoutTarget, Reference
    from ocirel.registry import Registry
    from ocirel.settings import BuildOptions, RegistryOptions, Settings


# ------------------------------------------------------------------ registry


def make_registry(
    options: RegistryOptions, target: Reference | None, *, own_registries: tuple[str, ...] = ()
) -> Registry:
    """A registry client; ``--insecure`` covers ``target``'s registry and ``own_registries``.

    Credentials are looked up once per registry and repository, behind a lock (the
    client is used from several threads).
    """
    import threading  # noqa: PLC0415

    from ocirel import auth  # noqa: PLC0415
    from ocirel.registry import Registry  # noqa: PLC0415
    from ocirel.transport import RegistryPolicy, Transport  # noqa: PLC0415

    cache: dict[tuple[str, str], auth.Credentials | None] = {}
    lock = threading.Lock()

    def lookup(registry: str, repository: str) -> auth.Credentials | None:
        with lock:
            key = (registry, repository)
            if key not in cache:
                cache[key] = auth.find_credentials(
                    registry, repository, env_registry=target.registry if target else None
                )
            return cache[key]

    transport = Transport(
        credentials=lookup,
        policy=RegistryPolicy.from_settings(
            options, [*own_registries, *([target.registry] if target else [])]
        ),
        on_warning=lambda text: err(f"warning: the registry says: {text}"),
    )
    return Registry(transport)


def registry_for_lock(options: RegistryOptions, lock: Lockfile, *, insecure_flag: bool) -> Registry:
    """One registry client for a command that talks to the lockfile's registries.

    ``--insecure`` applies to the registries named in the lockfile (the project's
    own); any other registry must be listed in ``insecure_registries``. Credentials
    from ``OCIREL_USERNAME``/``OCIREL_PASSWORD`` apply when the lockfile names one
    registry (or to ``OCIREL_REGISTRY``).
    """
    from ocirel import reference  # noqa: PLC0415
    from ocirel.errors import ConfigError  # noqa: PLC0415

    refs = [
        reference.parse(entry.repository)
        for entry in lock.entries.values()
        if not reference.is_layout(entry.repository)  # an OCI layout: read from disk
    ]
    hosts = sorted({ref.registry for ref in refs})
    if insecure_flag and not hosts:
        raise ConfigError(
            "--insecure applies to the registries in the lockfile, and it names none",
            hint="list the registry in OCIREL_INSECURE_REGISTRIES or insecure_registries "
            "in ocirel.toml",
        )
    if len(hosts) == 1:
        return make_registry(options, refs[0])
    return make_registry(options, None, own_registries=tuple(hosts))


def pinger(options: RegistryOptions, target: Reference) -> Callable[[], str]:
    """``GET /v2/`` on ``target``'s registry, once: how it answered (``"https, HTTP 200"``)."""

    def ping() -> str:
        from ocirel.transport import raise_for_status  # noqa: PLC0415

        # one quick answer, not the publish retry budget
        registry = make_registry(replace(options, retries=1, max_retry_wait=2.0), target)
        try:
            reply = registry.transport.ping(target.registry)
            raise_for_status(reply, what=f"GET /v2/ on {target.registry}")
            return f"{registry.transport.scheme(target.registry)}, HTTP {reply.status}"
        finally:
            registry.transport.close()

    return ping


# ------------------------------------------------------------------- builder


@contextmanager
def build_env_for(
    config: Settings,
    repo: Reference | None,
    cache: Reference | None,
    bases: list[str] | None = None,
) -> Iterator[BuildEnv]:
    """How the builder runs: isolation, storage, and — only for the registries the
    builder talks to itself — TLS settings and credentials in a private 0600 authfile.

    Those registries are the layer cache's, and the publish registry when every base
    image (``bases``, from the Containerfile) is on it: then ``--insecure`` or a
    loopback registry reaches the builder's pulls too, and its credentials. A base on
    any other registry leaves the builder's own settings alone, so that ocirel never
    weakens TLS or hides credentials for a registry it was not told about. ``repo`` is
    None for an OCI layout destination: then only the cache's registry counts."""
    from ocirel import hostinfo, runner  # noqa: PLC0415
    from ocirel.backends.base import BuildEnv  # noqa: PLC0415

    build = config.build
    storage = hostinfo.choose_storage(
        build.storage_driver, os.environ, rootless=hostinfo.is_rootless(),
        kernel=hostinfo.kernel_version(), overlay_available=hostinfo.overlay_in_kernel(),
        fuse_overlayfs=runner.which("fuse-overlayfs"),
    )  # fmt: skip
    env = BuildEnv(isolation=build.isolation or "chroot", storage=storage)
    talks_to = builder_registries(repo, cache, bases)
    if not talks_to:
        yield env
        return
    # the registry policy and credentials (and with them requests) only when needed: the
    # main thread is about to start the build
    from ocirel import auth  # noqa: PLC0415
    from ocirel.transport import RegistryPolicy  # noqa: PLC0415

    own = [repo.registry] if repo is not None else []
    policy = RegistryPolicy.from_settings(config.registry, own)
    # --tls-verify=false reaches every pull of the build: only when each registry the
    # build pulls from (known from the Containerfile) allows plain http
    images = _registries_of(bases)
    pulls = None if images is None else {*talks_to, *images}
    tls_verify = pulls is None or not all(policy.plain_http_allowed(r) for r in pulls)
    found = {
        registry: creds for registry, repository in talks_to.items()
        if (creds := auth.find_credentials(
            registry, repository, env_registry=repo.registry if repo is not None else None
        ))
    }  # fmt: skip
    if not found:
        yield replace(env, tls_verify=tls_verify)
        return
    with auth.private_authfile(found) as authfile:
        yield replace(env, tls_verify=tls_verify, authfile=authfile)


def builder_registries(
    repo: Reference | None, cache: Reference | None, bases: list[str] | None
) -> dict[str, str]:
    """registry → a repository on it, for the registries the builder talks to and
    ocirel may configure it for (see :func:`build_env_for`)."""
    from ocirel import reference  # noqa: PLC0415
    from ocirel.errors import InvalidReferenceError  # noqa: PLC0415

    talks_to = {cache.registry: cache.repository} if cache is not None else {}
    if repo is None:
        return talks_to
    try:
        on_target = bool(bases) and all(
            reference.parse(base).registry == repo.registry for base in bases or ()
        )
    except InvalidReferenceError:
        on_target = False
    if on_target:
        talks_to.setdefault(repo.registry, repo.repository)
    return talks_to


def _registries_of(images: list[str] | None) -> set[str] | None:
    """The registries of ``images``; None when one cannot be known."""
    from ocirel import reference  # noqa: PLC0415
    from ocirel.errors import InvalidReferenceError  # noqa: PLC0415

    if images is None:
        return None
    try:
        return {reference.parse(image).registry for image in images}
    except InvalidReferenceError:
        return None


def containerfile_bases(
    context: Path, containerfile: Path | None, build_args: Sequence[tuple[str, str]] = ()
) -> list[str] | None:
    """The Containerfile's base images (``FROM ${BASE}`` expanded with the build
    arguments and ARG defaults), or None when they cannot be known."""
    from ocirel.backends.base import find_containerfile  # noqa: PLC0415
    from ocirel.containerfile import base_images  # noqa: PLC0415
    from ocirel.errors import ConfigError  # noqa: PLC0415

    try:
        text = find_containerfile(context, containerfile).read_text("utf-8")
        return base_images(text, dict(build_args))
    except (ConfigError, OSError, UnicodeDecodeError):
        return None


def choose_builder(options: BuildOptions) -> Backend:
    from ocirel.backends import select_backend  # noqa: PLC0415

    chosen, why = select_backend(options.backend)
    if options.backend == "auto":
        note(f"backend: {why}")
    return chosen


def build_timestamp(context: Path, builder: Backend) -> int | None:
    """SOURCE_DATE_EPOCH for a reproducible build, saying so when there is none."""
    from ocirel.gitinfo import source_date_epoch  # noqa: PLC0415

    timestamp, origin = source_date_epoch(context, os.environ)
    if timestamp is not None and not builder.reproducible:
        note(f"note: {builder.name} cannot build reproducibly; timestamps are the wall clock")
    elif timestamp is None:
        note(f"note: not reproducible ({origin}); set SOURCE_DATE_EPOCH to fix the timestamps")
    return timestamp


# ------------------------------------------------------------------- publish


def check_targets(
    image: str, cache_repo: str | None, name: str | None, tag: str | None
) -> tuple[Reference | LayoutTarget, Reference | None, str]:
    """The repository, cache repository and lockfile entry name of a publish, checked
    before any build, as is ``OCIREL_CACHE_MAX_SIZE`` (a bad value fails now, not after
    the build)."""
    from ocirel import lockfile, reference  # noqa: PLC0415
    from ocirel.errors import ConfigError  # noqa: PLC0415
    from ocirel.publish.layercache import max_bytes_from  # noqa: PLC0415

    if not image:
        raise ConfigError(
            "--image is required, e.g. --image registry.example.com/team/app "
            "(or --image oci:PATH for an OCI layout directory)"
        )
    repo = reference.parse_destination(image)
    cache = reference.parse_repository(cache_repo) if cache_repo else None
    entry_name = lockfile.validate_name(name or repo.last_component)
    if tag is not None:
        reference.validate_tag(tag)
    max_bytes_from()
    return repo, cache, entry_name


def publish(
    config: Settings,
    context: Path,
    *,
    image: str,
    name: str | None,
    containerfile: Path | None,
    build_args: Sequence[str],
    target: str | None,
    tag: str | None,
    reproducible: bool,
    always_new_version: bool,
    no_cache: bool,
    explain: bool,
    dry_run: bool,
    attach: bool = True,
    stage: Callable[[str], None] = lambda _name: None,
) -> PublishResult:
    """Check the targets, choose the builder, and run one publish; a newly pushed image
    gets its build record, pushed while the tag settles (unless ``attach`` is False).
    ``stage`` hears each stage as it starts (the live display)."""
    from ocirel.backends.base import parse_build_args  # noqa: PLC0415
    from ocirel.gitinfo import source_info  # noqa: PLC0415
    from ocirel.publish import PublishRequest, make_publisher  # noqa: PLC0415

    build = config.build
    repo, cache, entry_name = check_targets(image, build.cache_repo, name, tag)
    chosen = choose_builder(build)
    timestamp = build_timestamp(context, chosen) if build.reproducible and reproducible else None
    request = PublishRequest.from_options(
        config.publish, build, context=context, repository=repo, name=entry_name,
        containerfile=containerfile, build_args=parse_build_args(build_args), target=target,
        explicit_tag=tag, dry_run=dry_run, explain=explain, timestamp=timestamp,
        always_new_version=always_new_version, cache_repo=str(cache) if cache else None,
        no_cache=no_cache, platforms=build.platform,
    )  # fmt: skip
    registry_repo = _in_registry(repo)
    prefetch = _prefetch(chosen) if attach and registry_repo and not request.read_only else None
    bases = containerfile_bases(context, containerfile, request.build_args)
    attacher = _attacher(chosen, request, prefetch, bases) if prefetch is not None else None
    with build_env_for(config, registry_repo, cache, bases) as env:
        return make_publisher(
            request, chosen, env,
            registry_factory=lambda: make_registry(config.registry, request.registry_repository),
            source_factory=lambda: source_info(context),
            say=lambda message: note(f"ocirel: {message}"),
            warn=lambda message: err(f"warning: {message}"),
            on_new_version=prefetch.start if prefetch is not None else None, stage=stage,
            attacher=attacher,
        ).run()  # fmt: skip


def _in_registry(repo: object) -> Reference | None:
    """The destination when it is a registry repository (not an OCI layout)."""
    from ocirel.reference import Reference  # noqa: PLC0415

    return repo if isinstance(repo, Reference) else None


def _prefetch(chosen: Backend) -> Prefetch:
    """What the build record needs besides the image (oras-py, the builder's version),
    fetched once the publish knows it pushes a new version. (A build record is a
    registry artifact: there is none for an OCI layout destination, nor for a dry run
    or an explanation.)"""
    from ocirel.records.prefetch import Prefetch  # noqa: PLC0415

    return Prefetch(chosen.version)


def _attacher(
    chosen: Backend, request: PublishRequest, prefetch: Prefetch, bases: Sequence[str] | None
) -> RecordAttacher:
    """The build record's pusher: started by the publish once the image is at the
    candidate tag, it runs while the tag settles and is joined before the publish
    returns (its failure a warning, never a failed publish)."""
    from ocirel.records.attach import RecordAttacher  # noqa: PLC0415

    return RecordAttacher(
        backend=chosen.name, prefetch=prefetch, build_args=request.build_args,
        bases=tuple(bases or ()), source_date_epoch=request.timestamp,
        say=lambda message: err(f"ocirel: {message}"),
        warn=lambda message: err(f"warning: {message}"),
    )  # fmt: skip
