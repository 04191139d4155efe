"""docker: the fallback builder. It needs a daemon, and it pushes by itself.

Differences from buildah and podman, stated rather than papered over:

* **No OCI layout export** (``delivery = "push"``, a ``SelfPusher``): the daemon pushes
  the image, so ocirel chooses the tag before the build, checks the tag is absent right
  before ``docker push``, and verifies the registry afterwards (see
  ``ocirel/publish/selfpush.py``). The
  digest printed by ``docker push`` (``<tag>: digest: sha256:… size: …``) is only the
  *reported* digest that the registry must confirm; success is the exit code.
* **Not reproducible with the classic builder** (``reproducible``): without buildx,
  ``docker build`` stamps the wall clock into the image config and layer history, and
  has no ``--timestamp``/``SOURCE_DATE_EPOCH``. The same inputs give a new digest on
  every build. ocirel says so on stderr each time it builds with the classic builder.
  With buildx, ``SOURCE_DATE_EPOCH`` is passed as a build argument (BuildKit ≥ 0.11
  uses it for the config and history timestamps).
* **buildx / BuildKit where available**: ``docker buildx build --load --metadata-file F``
  (``DOCKER_BUILDKIT=1``); otherwise the classic builder with ``DOCKER_BUILDKIT=0`` set
  explicitly, so a newer client does not fail looking for the missing buildx plugin.
  The metadata file's ``containerimage.config.digest`` (or the image ID, which is the
  config digest in the classic image store) is offered as :meth:`Docker.config_digest`
  to check against the config of the manifest the registry serves.
* **Credentials never on argv**: for ``docker push`` ocirel writes the registry's
  credentials to a private ``config.json`` (0600, in a fresh 0700 directory, removed
  afterwards) and points ``DOCKER_CONFIG`` at it. The daemon endpoint of the user's
  current context is kept by passing ``DOCKER_HOST`` explicitly.
* **Registry trust is the daemon's**: plain-http registries other than loopback
  (127.0.0.0/8 is allowed by default) and private CAs are configured in the daemon
  (``insecure-registries`` in daemon.json, ``/etc/docker/certs.d/HOST:PORT/ca.crt``),
  not per command; ``--insecure``/``--ca-file`` cannot reach it.
* Storage driver and isolation are the daemon's; ``BuildEnv.storage`` and
  ``BuildEnv.isolation`` do not apply.

The pure argv builders and output parsers live in :mod:`ocirel.backends.docker_argv`,
the daemon's failure texts in :mod:`ocirel.backends.docker_daemon`; this module is the
adapter that runs them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from ocirel import runner
from ocirel.backends.base import BuildEnv, BuildSpec, StaleCache
from ocirel.backends.docker_argv import (
    build_argv,
    build_environment,
    inspect_argv,
    oci_config_from_inspect,
    parse_metadata_config_digest,
    parse_push_digest,
    push_argv,
    remove_argv,
    tag_argv,
)
from ocirel.backends.docker_daemon import daemon_problem, docker_hint_for
from ocirel.backends.hints import with_hint
from ocirel.errors import BackendNotFoundError, CommandError
from ocirel.oci import ImageConfig, as_image_config

PROBE_TIMEOUT = 15.0
CLASSIC_NOTE = (
    "note: docker's classic builder (no buildx here) stamps the build time into the "
    "image, so rebuilding the same inputs gives a different digest; use buildah or podman "
    "(or install docker buildx) for reproducible images"
)
_IMAGE_ID = re.compile(r"(sha256:)?[0-9a-f]{64}")


def _with_docker_hint(exc: CommandError, message: str) -> CommandError:
    error = with_hint(exc, message)
    error.hint = docker_hint_for(exc.stderr_tail) or error.hint
    return error


class Docker:
    name = "docker"
    program = "docker"
    #: a :class:`~ocirel.backends.base.SelfPusher`: no OCI layout, it pushes by itself
    delivery: Final = "push"
    #: the classic builder cannot give reproducible timestamps (see the module docstring)
    reproducible = False
    #: it pushes by itself, one image per tag: an index of several platforms needs
    #: buildx's multi-platform push, which ocirel cannot claim race-safely
    multi_platform = False
    install_hint = (
        "install docker (Debian/Ubuntu: apt-get install docker.io) and start the engine, "
        "or use a daemonless builder (apt-get install buildah)"
    )

    def __init__(self, *, buildx: bool | None = None) -> None:
        self._buildx = buildx
        self._problem: tuple[str | None] | None = None
        self._host: tuple[str | None] | None = None
        self._pushed: dict[str, list[str]] = {}
        self._config_digests: dict[str, str] = {}

    # ----------------------------------------------------------------- probes

    def has_buildx(self) -> bool:
        """buildx is installed and ``DOCKER_BUILDKIT`` does not ask for the classic builder."""
        if self._buildx is None:
            if os.environ.get("DOCKER_BUILDKIT", "").strip().lower() in ("0", "false"):
                self._buildx = False
            else:
                result = self._probe(["docker", "buildx", "version"])
                self._buildx = result is not None and result.ok
        return self._buildx

    def problem(self) -> str | None:
        """None when the CLI is installed and its daemon answers, else why not (cached)."""
        if self._problem is None:
            self._problem = (self._find_problem(),)
        return self._problem[0]

    def _find_problem(self) -> str | None:
        if runner.which(self.program) is None:
            return "docker is not installed (not on PATH)"
        result = self._probe(["docker", "version", "--format", "{{.Server.Version}}"])
        if result is None:
            return f"`docker version` did not answer within {PROBE_TIMEOUT:g} s"
        if not result.ok or not result.stdout.strip():
            output = (result.stderr or result.stdout).strip()
            return daemon_problem(output, self._daemon_host(), result.returncode)
        return None

    def version(self) -> str | None:
        """``client X`` and, when reachable, ``engine Y``."""
        result = self._probe(
            ["docker", "version", "--format", "{{.Client.Version}} {{.Server.Version}}"]
        )
        if result is None or not result.stdout.strip():
            return None
        parts = result.stdout.split()
        text = f"client {parts[0]}"
        return text + (f", engine {parts[1]}" if len(parts) > 1 and result.ok else "")

    @staticmethod
    def _probe(argv: list[str]) -> runner.Result | None:
        try:
            return runner.run(argv, timeout=PROBE_TIMEOUT, check=False)
        except BackendNotFoundError:
            return None
        except CommandError:  # timed out
            return None

    # ------------------------------------------------------------------ argv

    def build_argv(self, spec: BuildSpec, env: BuildEnv) -> list[str]:
        return build_argv(spec, buildx=self.has_buildx())

    # ------------------------------------------------------------------- run

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        """Build; return the image ID (from ``--iidfile``, never from the log) of an
        unnamed build, or None for a named one: then ``spec.image``, unique to this
        run, is the handle for push and remove (an image ID cannot be untagged)."""
        buildx = self.has_buildx()
        if not buildx:
            note = CLASSIC_NOTE
            if spec.timestamp is not None:
                note += f" (the requested timestamp {spec.timestamp} cannot be applied)"
            if spec.cache_repo:
                note += f"; the registry cache {spec.cache_repo} needs buildx and is not used"
            sys.stderr.write(f"ocirel: {note}\n")
            sys.stderr.flush()
        with tempfile.TemporaryDirectory(prefix="ocirel-docker-") as scratch:
            iidfile, metadata = Path(scratch) / "iid", Path(scratch) / "metadata.json"
            argv = build_argv(spec, buildx=buildx, iidfile=iidfile, metadata_file=metadata)
            try:
                runner.run(argv, timeout=timeout, stream=True, install_hint=self.install_hint,
                           env=build_environment(os.environ, buildx=buildx))  # fmt: skip
            except CommandError as exc:
                raise _with_docker_hint(exc, "docker build failed") from None
            image_id = _read(iidfile)
            config_digest = parse_metadata_config_digest(_read(metadata)) if buildx else None
        if not _IMAGE_ID.fullmatch(image_id):
            raise CommandError(
                "docker build exited 0 but wrote no image ID; not trusting it",
                argv=[runner.display(argv)], returncode=0,
            )  # fmt: skip
        if not image_id.startswith("sha256:"):
            image_id = f"sha256:{image_id}"
        self._config_digests[image_id] = config_digest or image_id
        if spec.image:
            self._config_digests[spec.image] = config_digest or image_id
            return None
        return image_id

    def push(self, image: str, target: str, env: BuildEnv, *, timeout: float) -> str | None:
        """Tag ``image`` as ``target`` and push it; return the digest docker reported."""
        with self._push_environment(target) as push_env:
            try:
                runner.run(tag_argv(image, target), timeout=60, env=push_env,
                           install_hint=self.install_hint)  # fmt: skip
                self._pushed.setdefault(image, []).append(target)
                result = runner.run(push_argv(target), timeout=timeout, stream=True, env=push_env,
                                    install_hint=self.install_hint)  # fmt: skip
            except CommandError as exc:
                raise _with_docker_hint(exc, "docker push failed") from None
        return parse_push_digest(result.stdout + "\n" + result.stderr)

    def config_digest(self, image: str) -> str | None:
        """The digest of the config this run built as ``image`` (buildx metadata, else the
        image ID, which is the config digest in the classic image store): the config of
        the manifest the registry serves after the push must be this one."""
        return self._config_digests.get(image)

    def stale_cache(self, image: str, timestamp: int, env: BuildEnv) -> StaleCache | None:
        """Not checked: the classic builder cannot apply a timestamp at all, and BuildKit
        keys its cache on ``SOURCE_DATE_EPOCH`` (a build argument)."""
        return None

    def drop_stale(self, stale: StaleCache, env: BuildEnv) -> str | None:
        return None  # stale_cache never finds any

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        """The image's config as the registry will store it. ``docker image inspect``
        without ``--format``: the CLI then prints the daemon's JSON unchanged, whereas a
        template re-encodes it and drops empty and false fields (client 28)."""
        result = self._probe(inspect_argv(image))
        if result is None or not result.ok:
            return None
        try:
            data = json.loads(result.stdout)
        except ValueError:
            return None
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            return as_image_config(oci_config_from_inspect(data[0]))
        return None

    def remove(self, image: str, env: BuildEnv) -> None:
        """Remove the tags this run pushed from, then the image itself."""
        targets = self._pushed.pop(image, [])
        if targets:
            runner.run(remove_argv(targets), check=False, timeout=120)
        runner.run(remove_argv([image]), check=False, timeout=120)

    # ----------------------------------------------------------- credentials

    @contextlib.contextmanager
    def _push_environment(self, target: str) -> Iterator[dict[str, str] | None]:
        """``None`` (inherit ours) when ocirel knows no credentials for the target's
        registry; else an environment whose ``DOCKER_CONFIG`` is a private directory
        holding only those credentials."""
        from ocirel import auth, reference  # noqa: PLC0415

        ref = reference.parse(target)
        creds = auth.find_credentials(ref.registry, ref.repository, env_registry=ref.registry)
        if creds is None:
            yield None
            return
        host = self._daemon_host()
        with auth.private_authfile({ref.registry: creds}) as authfile:
            env = dict(os.environ)
            env["DOCKER_CONFIG"] = str(authfile.parent)
            if host:
                env["DOCKER_HOST"] = host
                env.pop("DOCKER_CONTEXT", None)
            yield env

    def _daemon_host(self) -> str | None:
        """The daemon endpoint of the current context, kept when DOCKER_CONFIG moves."""
        if self._host is None:
            host = os.environ.get("DOCKER_HOST")
            if not host:
                result = self._probe(
                    ["docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"]
                )
                text = result.stdout.strip() if result is not None and result.ok else ""
                host = text if "://" in text else None
            self._host = (host,)
        return self._host[0]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
