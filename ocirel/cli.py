"""The ``ocirel`` command line: thin commands over the use-case modules.

Commands live here (publish, tags, next, digest) and in ``cli_*`` modules that
register on the same :data:`app` (deploy side, doctor); this module holds the shared
plumbing they use.

Each command turns options into settings, makes one use-case call and renders the
result. This is the only module that prints or chooses exit codes; errors reach the
user through :func:`handle_errors`. Heavy imports (requests, the registry client,
YAML) happen inside the commands so ``ocirel --version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ocirel import __version__
from ocirel.errors import CommandError, OcirelError

if TYPE_CHECKING:
    from ocirel.reference import Reference
    from ocirel.registry import Registry
    from ocirel.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="ocirel",
    help="Release container images safely: rootless build, next unique version tag, "
    "push, verify, digest lockfile.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state: dict[str, bool] = {"debug": False}


# ------------------------------------------------------------------ plumbing


def err(message: str) -> None:
    from ocirel.redact import redact  # noqa: PLC0415

    sys.stderr.write(redact(message) + "\n")
    sys.stderr.flush()


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def out_json(data: object) -> None:
    out(json.dumps(data, indent=2, sort_keys=True))


def render_error(exc: OcirelError) -> None:
    err(f"error: {exc}")
    if isinstance(exc, CommandError):
        if exc.stderr_tail:
            err("--- last output ---\n" + exc.stderr_tail.rstrip() + "\n---")
        if _state["debug"] and exc.argv:
            err("command: " + " ".join(exc.argv))
    if exc.hint:
        err(f"hint: {exc.hint}")


def handle_errors(func: F) -> F:
    """The one error handler: exceptions → message and exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ocirel.runner import Interrupted, terminating_signals_raise  # noqa: PLC0415

        try:
            with terminating_signals_raise():
                return func(*args, **kwargs)
        except typer.Exit:
            raise
        except OcirelError as exc:
            render_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None
        except Interrupted as exc:
            err(f"terminated by signal {exc.signum}")
            raise typer.Exit(128 + exc.signum) from None
        except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into exit 3
            if _state["debug"]:
                import traceback  # noqa: PLC0415

                traceback.print_exc()
            err(f"internal error: {type(exc).__name__}: {exc}")
            err("hint: this is a bug in ocirel; run with --debug for the traceback and report it")
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        out(f"ocirel {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="log registry requests and show tracebacks")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="show the version"
        ),
    ] = False,
) -> None:
    _state["debug"] = debug
    _debug_logging(debug)


def _debug_logging(debug: bool) -> None:
    """``--debug``: ocirel's loggers (registry requests among them) write to stderr.

    The handler is ocirel's own, bound to the current stderr, rather than the root
    logger's: other libraries stay quiet, and an embedding program's logging setup
    (or a test runner's) neither swallows nor doubles these lines.
    """
    import logging  # noqa: PLC0415

    logger = logging.getLogger("ocirel")
    for old in [h for h in logger.handlers if getattr(h, "ocirel_debug", False)]:
        logger.removeHandler(old)
    if not debug:
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    handler.ocirel_debug = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


# ------------------------------------------------------------- shared options

RepositoryArg = Annotated[
    str, typer.Argument(help="repository, e.g. registry.example.com/team/app")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="allow plain http or unverified TLS for the target registry "
        "(loopback registries may use plain http without it)",
    ),
]
CaFileOpt = Annotated[
    Path | None,
    typer.Option("--ca-file", help="CA certificate(s) for the registry's TLS", dir_okay=False),
]
SchemeOpt = Annotated[
    str | None, typer.Option("--scheme", help="version scheme: counter (default), semver, calver")
]
PrefixOpt = Annotated[
    str | None, typer.Option("--prefix", help="version prefix (counter default 'v', others none)")
]
BumpOpt = Annotated[
    str | None, typer.Option("--bump", help="semver part to bump: patch (default), minor, major")
]
LockfileOpt = Annotated[
    Path | None, typer.Option("--lockfile", help="lockfile path (default ./ocirel.lock.json)")
]


def load_settings(**flags: Any) -> Settings:
    from ocirel import settings  # noqa: PLC0415

    return settings.load({k: v for k, v in flags.items() if v not in (None, False)})


def make_registry(
    config: Settings, target: Reference | None, *, own_registries: tuple[str, ...] = ()
) -> Registry:
    """A registry client; ``--insecure`` covers ``target``'s registry and ``own_registries``."""
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
            config, [*own_registries, *([target.registry] if target else [])]
        ),
        on_warning=lambda text: err(f"warning: the registry says: {text}"),
    )
    return Registry(transport)


def scheme_from(config: Settings) -> Any:
    from ocirel.versioning import make_scheme  # noqa: PLC0415

    return make_scheme(config.scheme, prefix=config.prefix, bump=config.bump)


def floating_from(config: Settings) -> frozenset[str]:
    from ocirel.versioning import FLOATING_TAGS  # noqa: PLC0415

    return FLOATING_TAGS | frozenset(config.floating_tags)


# ------------------------------------------------------------------ commands


@app.command()
@handle_errors
def publish(
    context: Annotated[Path, typer.Argument(help="build context directory")] = Path(),
    image: Annotated[
        str,
        typer.Option(
            "--image", "-i", help="repository to publish to, e.g. registry.example.com/team/app"
        ),
    ] = "",
    name: Annotated[
        str | None, typer.Option("--name", help="lockfile key (default: last path component)")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="Containerfile (default: CONTEXT/Containerfile or Dockerfile)"
        ),
    ] = None,
    build_arg: Annotated[
        list[str] | None, typer.Option("--build-arg", help="KEY=VALUE build argument (repeatable)")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="build stage to publish")] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="publish exactly this tag (must not exist yet)")
    ] = None,
    scheme: SchemeOpt = None,
    prefix: PrefixOpt = None,
    bump: BumpOpt = None,
    lockfile_path: LockfileOpt = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="auto (default), buildah, podman or docker")
    ] = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    keep_image: Annotated[
        bool, typer.Option("--keep-image", help="keep the local image after pushing")
    ] = False,
    max_attempts: Annotated[
        int | None, typer.Option("--max-attempts", help="tags to try when other publishers race us")
    ] = None,
    no_reproducible: Annotated[
        bool, typer.Option("--no-reproducible", help="build with wall-clock timestamps")
    ] = False,
    always_new_version: Annotated[
        bool,
        typer.Option("--always-new-version", help="push a new version even if nothing changed"),
    ] = False,
    cache_repo: Annotated[
        str | None,
        typer.Option("--cache-repo", help="registry repository for the builder's layer cache"),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="do not reuse cached layers")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="build, then say whether a new version would be pushed and why"
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the next tag and the commands; build nothing")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build CONTEXT, push it under the next unique version tag, record the digest.

    Nothing is pushed when the build has the same content as the latest version:
    the lockfile then points at that version (--always-new-version to push anyway).
    """
    from ocirel import lockfile, reference  # noqa: PLC0415
    from ocirel.backends import select_backend  # noqa: PLC0415
    from ocirel.backends.base import parse_build_args  # noqa: PLC0415
    from ocirel.errors import ConfigError  # noqa: PLC0415
    from ocirel.gitinfo import source_date_epoch, source_info  # noqa: PLC0415
    from ocirel.release import Publisher, PublishRequest  # noqa: PLC0415

    config = load_settings(
        scheme=scheme, prefix=prefix, bump=bump, lockfile=lockfile_path, backend=backend,
        insecure=insecure, ca_file=ca_file, keep_image=keep_image, max_attempts=max_attempts,
        cache_repo=cache_repo,
    )  # fmt: skip
    if not image:
        raise ConfigError("--image is required, e.g. --image registry.example.com/team/app")
    repo = reference.parse_repository(image)
    cache = reference.parse_repository(config.cache_repo) if config.cache_repo else None
    entry_name = lockfile.validate_name(name or repo.last_component)
    if tag is not None:
        reference.validate_tag(tag)
    chosen, why = select_backend(config.backend)
    if config.backend == "auto":
        err(f"backend: {why}")
    timestamp = None
    if config.reproducible and not no_reproducible:
        timestamp, origin = source_date_epoch(context, os.environ)
        if timestamp is not None and getattr(chosen, "reproducible", True) is False:
            err(f"note: {chosen.name} cannot build reproducibly; timestamps are the wall clock")
        elif timestamp is None:
            err(f"note: not reproducible ({origin}); set SOURCE_DATE_EPOCH to fix the timestamps")
    request = PublishRequest(
        context=context, repository=repo, name=entry_name, lockfile=config.lockfile,
        scheme=scheme_from(config), containerfile=file,
        build_args=parse_build_args(build_arg or []),
        target=target, explicit_tag=tag, floating=floating_from(config),
        max_attempts=config.max_attempts, settle_seconds=config.settle_seconds,
        verify_timeout=config.verify_timeout,
        build_timeout=config.build_timeout, push_timeout=config.push_timeout,
        keep_image=config.keep_image, dry_run=dry_run, explain=explain, timestamp=timestamp,
        always_new_version=always_new_version, cache_repo=str(cache) if cache else None,
        no_cache=no_cache,
    )  # fmt: skip
    with build_env_for(config, repo, cache) as env:
        result = Publisher(
            request, chosen, env,
            registry_factory=lambda: make_registry(config, repo),
            source_factory=lambda: source_info(context),
            say=lambda message: err(f"ocirel: {message}"),
            warn=lambda message: err(f"warning: {message}"),
        ).run()  # fmt: skip
    render_publish(result, as_json)


@contextmanager
def build_env_for(config: Settings, repo: Reference, cache: Reference | None) -> Iterator[Any]:
    """How the builder runs: isolation, storage, and — only when the builder must talk
    to a registry itself (the layer cache) — credentials in a private 0600 authfile."""
    from ocirel import auth, hostinfo, runner  # noqa: PLC0415
    from ocirel.backends.base import BuildEnv  # noqa: PLC0415
    from ocirel.transport import RegistryPolicy  # noqa: PLC0415

    storage = hostinfo.choose_storage(
        config.storage_driver, os.environ, rootless=hostinfo.is_rootless(),
        kernel=hostinfo.kernel_version(), overlay_available=hostinfo.overlay_in_kernel(),
        fuse_overlayfs=runner.which("fuse-overlayfs"),
    )  # fmt: skip
    env = BuildEnv(isolation=config.isolation or "chroot", storage=storage)
    if cache is None:
        yield env
        return
    policy = RegistryPolicy.from_settings(config, [repo.registry])
    tls_verify = policy.builder_tls_verify(cache.registry)
    creds = auth.find_credentials(cache.registry, cache.repository, env_registry=repo.registry)
    if creds is None:
        yield replace(env, tls_verify=tls_verify)
        return
    with auth.private_authfile({cache.registry: creds}) as authfile:
        yield replace(env, tls_verify=tls_verify, authfile=authfile)


def render_publish(result: Any, as_json: bool) -> None:
    if as_json:
        out_json(result.to_json())
    elif result.dry_run:
        out(f"next tag: {result.repository}:{result.tag}")
        out("plan:")
        for step in result.plan:
            out(f"  {step}")
    elif result.explain_only:
        verdict = "no new version: reuse" if result.unchanged else "a new version would be pushed"
        out(f"{verdict}{' ' + result.tag if result.unchanged else ''}")
        for reason in result.explanation:
            out(f"  {reason}")
    else:
        out(("unchanged, reusing " if result.unchanged else "published ") + result.reference)
        out(f"  tag       {result.tag}")
        out(f"  digest    {result.digest}")
        out(f"  lockfile  {result.lockfile} (entry {result.name!r})")


@app.command()
@handle_errors
def tags(
    repository: RepositoryArg,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the tags of REPOSITORY (every page)."""
    from ocirel import reference  # noqa: PLC0415

    config = load_settings(insecure=insecure, ca_file=ca_file)
    repo = reference.parse(repository).repo_only()
    found = sorted(make_registry(config, repo).list_tags(repo))
    if as_json:
        out_json({"repository": repo.name, "tags": found})
    else:
        for item in found:
            out(item)


@app.command("next")
@handle_errors
def next_version(
    repository: RepositoryArg,
    scheme: SchemeOpt = None,
    prefix: PrefixOpt = None,
    bump: BumpOpt = None,
    lockfile_path: LockfileOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the tag the next publish of REPOSITORY would get.

    The lockfile, when present, is a floor: a version it records or recorded for
    REPOSITORY is never the answer, nor anything below the highest of them.
    """
    from ocirel import lockfile, reference, release  # noqa: PLC0415

    config = load_settings(
        scheme=scheme, prefix=prefix, bump=bump, lockfile=lockfile_path, insecure=insecure,
        ca_file=ca_file,
    )  # fmt: skip
    repo = reference.parse_repository(repository)
    version_scheme = scheme_from(config)
    known = lockfile.load(config.lockfile).known_tags(repo.name)
    candidate, existing = release.next_tag(make_registry(config, repo), repo, version_scheme, known)
    lost = release.lost_versions(known, existing)
    if lost:
        err(f"warning: {release.lost_warning(repo.name, lost)}")
    if as_json:
        in_scheme = [t for t in existing if version_scheme.parse(t) is not None]
        out_json({
            "repository": repo.name, "next": candidate, "scheme": config.scheme,
            "tags": len(existing), "versions": len(in_scheme), "lost": lost,
        })  # fmt: skip
    else:
        out(candidate)


@app.command()
@handle_errors
def digest(
    ref: Annotated[str, typer.Argument(help="image reference with a tag or digest")],
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the content digest REF resolves to (HEAD, falling back to GET and hashing)."""
    from ocirel import reference  # noqa: PLC0415
    from ocirel.errors import InvalidReferenceError  # noqa: PLC0415

    config = load_settings(insecure=insecure, ca_file=ca_file)
    parsed = reference.parse(ref)
    if not parsed.tag and not parsed.digest:
        raise InvalidReferenceError(
            f"{ref!r} has no tag or digest", hint="ocirel never assumes ':latest'; name the tag"
        )
    info = make_registry(config, parsed).resolve(parsed)
    if as_json:
        out_json({
            "reference": str(parsed), "digest": info.digest, "media_type": info.media_type,
            "pinned": f"{parsed.repo_only()}{':' + parsed.tag if parsed.tag else ''}@{info.digest}",
        })  # fmt: skip
    else:
        out(info.digest)


# Commands defined in their own modules register themselves on ``app`` when imported.
from ocirel import cli_deploy as _cli_deploy  # noqa: E402,F401
from ocirel import cli_doctor as _cli_doctor  # noqa: E402,F401
