"""Shared adapter for the containers-family builders (buildah, podman).

Both take the same build flags and both can ``push --digestfile`` an image into a
local OCI layout, which ocirel then uploads itself (see ocirel/publish/ for why).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, NamedTuple

from ocirel import runner
from ocirel.backends.base import BuildEnv, BuildSpec, StaleCache, find_containerfile, spec_argv
from ocirel.backends.hints import with_hint
from ocirel.backends.stored import StoredImage, stored_image
from ocirel.errors import BackendNotFoundError, CommandError, DigestMismatchError
from ocirel.oci import ImageConfig
from ocirel.reference import is_valid_digest

#: what buildah (and podman, which builds with buildah's code) prints for each build
#: step it takes from the layer cache instead of running it
CACHE_HIT = re.compile(r"^--> Using cache ([0-9a-f]{64})\s*$")
#: ``inspect`` processes run at the same time by :meth:`ContainersBackend.created_times`
INSPECT_WORKERS = 4
#: cached steps looked up at the same time while the build goes on
PREFETCH_WORKERS = 2
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


class StepImage(NamedTuple):
    """What :meth:`ContainersBackend.created_times` learns of one image."""

    created: float | None
    named: bool


def step_of(inspected: object) -> StepImage:
    """A :class:`StepImage` from ``buildah inspect``'s JSON (None: the inspect failed)."""
    if not isinstance(inspected, dict):
        return StepImage(None, named=True)  # unknown: never removed
    config = inspected.get("OCIv1")
    created = config.get("created") if isinstance(config, dict) else None
    # buildah names the image it was asked about in FromImage, "" when unnamed
    return StepImage(parse_created(created), named=inspected.get("FromImage") != "")


def one_object(found: object) -> dict[str, Any]:
    """The inspected image from an ``inspect`` answer: buildah prints one object,
    podman a list of them ({} for anything else)."""
    if isinstance(found, list):
        found = found[0] if found else None
    return found if isinstance(found, dict) else {}


def parse_created(text: object) -> float | None:
    """An image config's ``created`` (RFC 3339, maybe with nanoseconds) as epoch seconds."""
    match = _RFC3339.match(text.strip()) if isinstance(text, str) else None
    if not match:
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        when = _dt.datetime.fromisoformat(match.group(1) + zone)
    except ValueError:
        return None
    return when.timestamp() + float("0." + (match.group(2) or "0"))


class StepLookups:
    """The cached steps of a build, looked up while the build goes on: each step the
    builder reports as taken from the cache is handed to ``look_up`` in a small pool
    (buildah prints the last one about 0.3 s before it exits), so the stale-cache check
    finds most answers ready. Only reads; what is not ready is waited for."""

    def __init__(self, look_up: Callable[[str], StepImage]) -> None:
        self._look_up = look_up
        self._pool = ThreadPoolExecutor(PREFETCH_WORKERS, thread_name_prefix="ocirel-step")
        self.started: dict[str, Future[StepImage]] = {}

    def add(self, image: str) -> None:
        if image not in self.started:
            self.started[image] = self._pool.submit(self._look_up, image)

    def close(self, *, cancel: bool = False) -> None:
        self._pool.shutdown(wait=False, cancel_futures=cancel)

    def answers(self, images: Sequence[str]) -> dict[str, StepImage]:
        """The looked-up answers for ``images`` (a failed look-up is left out)."""
        found: dict[str, StepImage] = {}
        for image in images:  # the final image is the last cached step, with a prefix
            future = self.started.get(image) or self.started.get(image.removeprefix("sha256:"))
            if future is not None and not future.cancelled():
                with contextlib.suppress(Exception):
                    found[image] = future.result()
        return found


class ContainersBackend:
    name = "containers"
    program = "containers"
    #: a :class:`~ocirel.backends.base.LayoutExporter`: ocirel uploads the layout
    delivery: Final = "layout"
    reproducible = True
    #: one build per ``--platform``, each exported into a layout ocirel indexes
    multi_platform = True
    install_hint = "install it (Debian/Ubuntu: apt-get install buildah podman)"
    #: on Ctrl-C/SIGTERM/timeout, end the RUN step first and give the builder this long
    #: to clean up by itself (0: SIGTERM the whole group at once; buildah cleans up then)
    leaves_first_grace = 0.0
    #: image IDs of the steps the last :meth:`build` took from the layer cache
    cache_hits: tuple[str, ...] = ()
    #: those steps' created times, looked up during a build with ``--timestamp``
    _lookups: StepLookups | None = None
    #: the command that lists build containers, with those of interrupted builds
    list_containers = "buildah containers --all"

    def __init__(self) -> None:
        self._inspect_lock = threading.Lock()
        #: ``inspect`` of each image (by ID without the prefix), asked or under way
        self._inspected: dict[str, Future[dict[str, Any]]] = {}

    # --------------------------------------------------------------- argv

    def global_args(self, env: BuildEnv) -> list[str]:
        args: list[str] = []
        if env.storage.driver:
            args += ["--storage-driver", env.storage.driver]
        for option in env.storage.options:
            args += ["--storage-opt", option]
        return args

    def build_argv(self, spec: BuildSpec, env: BuildEnv) -> list[str]:
        containerfile = find_containerfile(spec.context, spec.containerfile)
        argv = [self.program, *self.global_args(env), "build", "--isolation", env.isolation]
        argv += ["--layers"] if spec.layers else ["--layers", "--no-cache"]
        argv += spec_argv(containerfile, spec)
        if spec.target:
            argv += ["--target", spec.target]
        if spec.platform:
            argv += ["--platform", spec.platform]
        if spec.timestamp is not None:
            argv += ["--timestamp", str(spec.timestamp)]
        if spec.cache_repo:
            argv += ["--cache-to", spec.cache_repo, "--cache-from", spec.cache_repo]
        if env.authfile is not None:
            argv += ["--authfile", str(env.authfile)]
        if not env.tls_verify:
            argv += ["--tls-verify=false"]
        argv.append(str(spec.context))
        return argv

    def export_argv(self, image: str, layout: Path, digestfile: Path, env: BuildEnv) -> list[str]:
        return [
            self.program, *self.global_args(env), "push", "--quiet",
            "--digestfile", str(digestfile), image, f"oci:{layout}",
        ]  # fmt: skip

    def remove_argv(self, image: str, env: BuildEnv) -> list[str]:
        return [self.program, *self.global_args(env), "rmi", image]

    def created_argv(self, image: str, env: BuildEnv) -> list[str]:
        # the whole JSON: buildah 1.28's --format has no `json` function
        return [self.program, *self.global_args(env), "inspect", "--type", "image", image]

    # ---------------------------------------------------------------- run

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        """Build and return the image ID (from ``--iidfile``, never from the log)."""
        with tempfile.TemporaryDirectory(prefix="ocirel-iid-") as scratch:
            iidfile = Path(scratch) / "iid"
            argv = self.build_argv(spec, env)
            # --force-rm: a failed or interrupted step must not leave its working
            # container (and layers) in the shared storage (buildah's default keeps it)
            argv[-1:-1] = ["--force-rm", "--iidfile", str(iidfile)]
            hits: list[str] = []
            self.cache_hits = ()
            # only a build with --timestamp is checked for a stale cache afterwards
            lookups = self._start_lookups(env) if spec.timestamp is not None else None

            def note_cache_hit(line: str) -> None:
                match = CACHE_HIT.match(line.strip())
                if match:
                    hits.append(match.group(1))
                    if lookups is not None:
                        lookups.add(match.group(1))

            built = False
            try:
                runner.run(argv, timeout=timeout, stream=True, install_hint=self.install_hint,
                           leaves_first_grace=self.leaves_first_grace,
                           on_line=note_cache_hit)  # fmt: skip
                built = True
            except CommandError as exc:
                raise with_hint(exc, f"{self.program} build failed") from None
            finally:
                if lookups is not None:  # a failed build drops the look-ups not started
                    lookups.close(cancel=not built)
            try:
                image_id = iidfile.read_text(encoding="utf-8").strip()
            except OSError:
                image_id = ""
        if not re.fullmatch(r"(sha256:)?[0-9a-f]{64}", image_id):
            raise CommandError(
                f"{self.program} build exited 0 but wrote no image ID; not trusting it",
                argv=[runner.display(argv)], returncode=0,
            )  # fmt: skip
        self.cache_hits = tuple(dict.fromkeys(hits))
        return image_id

    def _start_lookups(self, env: BuildEnv) -> StepLookups:
        self._lookups = StepLookups(lambda image: self.step_image(image, env))
        return self._lookups

    def stored(self, image: str, env: BuildEnv) -> StoredImage | None:
        """``image`` (an ID) read from the storage's files, verified
        (:mod:`ocirel.backends.stored`); None: ask the builder."""
        return stored_image(image, self.storage_driver(env))

    def storage_driver(self, env: BuildEnv) -> str | None:
        """The driver whose store holds this builder's images, when known."""
        return env.storage.driver

    def step_image(self, image: str, env: BuildEnv) -> StepImage:
        """One image's config ``created`` time (None: the builder could not say) and
        whether it has a name: the time from the storage's files when they verify (the
        name is then unknown, so "named": never removed; :meth:`stale_cache` asks again
        about a stale one), else both from its (one) ``inspect``."""
        step = self._stored_step(image, env)
        return step if step is not None else self.step_of(self.inspect(image, env) or None)

    def _stored_step(self, image: str, env: BuildEnv) -> StepImage | None:
        stored = self.stored(image, env)
        if stored is None:
            return None
        return StepImage(parse_created(stored.config.get("created")), named=True)

    def step_of(self, inspected: dict[str, Any] | None) -> StepImage:
        """A :class:`StepImage` from this builder's ``inspect`` of one image."""
        return step_of(inspected)

    def inspect(self, image: str, env: BuildEnv) -> dict[str, Any]:
        """``inspect`` of ``image``, run once per image and run (an ID names content):
        every question about the image (its created time, config, annotations) reads
        the one answer, and a second thread asking while the inspect is under way waits
        for it instead of running another. A failed inspect (``{}``) is not kept."""
        key = image.removeprefix("sha256:")
        with self._inspect_lock:
            pending = self._inspected.get(key)
            mine = pending is None
            if pending is None:
                pending = self._inspected[key] = Future()
        if not mine:
            return pending.result()
        data: dict[str, Any] = {}
        try:
            result = runner.run(self.created_argv(image, env), timeout=60, check=False)
            with contextlib.suppress(ValueError):
                data = one_object(json.loads(result.stdout)) if result.ok else {}
        finally:
            if not data:
                with self._inspect_lock:
                    del self._inspected[key]
            pending.set_result(data)
        return data

    def remember_inspected(self, image: str, data: dict[str, Any]) -> None:
        """Keep ``data`` as ``image``'s inspect (one ``inspect`` that answered for
        several images), unless one is known or under way."""
        if not data:
            return
        done: Future[dict[str, Any]] = Future()
        done.set_result(data)
        with self._inspect_lock:
            self._inspected.setdefault(image.removeprefix("sha256:"), done)

    def created_times(self, images: Sequence[str], env: BuildEnv) -> dict[str, StepImage]:
        """:meth:`step_image` of each image; one ``inspect`` per image (buildah takes one
        at a time), all at once."""
        if not images:
            return {}
        workers = max(1, min(INSPECT_WORKERS, len(images)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = pool.map(lambda image: self.step_image(image, env), images)
            return dict(zip(images, found, strict=True))

    def _step_images(self, images: Sequence[str], env: BuildEnv) -> dict[str, StepImage]:
        """:meth:`created_times`, taking the answers looked up during the build."""
        lookups, self._lookups = self._lookups, None
        found = lookups.answers(images) if lookups is not None else {}
        for image in images:
            step = None if image in found else self._stored_step(image, env)
            if step is not None:
                found[image] = step
        missing = [image for image in images if image not in found]
        if missing:
            found.update(self.created_times(missing, env))
        return {image: found[image] for image in images}  # in the order asked

    def stale_cache(self, image: str, timestamp: int, env: BuildEnv) -> StaleCache | None:
        """Whether ``image`` (just built with ``--timestamp timestamp``) is not what a
        build on empty storage would give. ``--timestamp`` is not part of the layer
        cache's key: a step cached by a build with another timestamp is reused as it
        is, with that build's times in its files and history. Such a step's image (and
        the final image, when every step was cached) shows the other time as its
        ``created``. The builder keeps finding such a step before the one a rebuild
        caches, so the unnamed ones are returned for removal."""
        images = [*self.cache_hits, image] if self.cache_hits else [image]
        times = self._step_images(images, env)
        found = {
            name: step
            for name, step in times.items()
            if step.created is not None and step.created != timestamp
        }
        if not found:
            return None
        # only a stale step is removed: its name (the storage's files do not show it)
        # from the builder, once per image
        found = {
            name: step._replace(named=self.step_of(self.inspect(name, env) or None).named)
            for name, step in found.items()
        }
        name, first = next(iter(found.items()))
        when = _dt.datetime.fromtimestamp(first.created or 0, _dt.UTC).isoformat()
        return StaleCache(
            f"cached layer {name.removeprefix('sha256:')[:12]} was built for {when}, "
            f"not for {timestamp}",
            entries=tuple(name for name, step in found.items() if not step.named),
        )

    def export(self, image: str, layout: Path, env: BuildEnv, *, timeout: float) -> str:
        """Write ``image`` into the OCI layout ``layout``; return the manifest digest.

        Success is exit code 0 *and* a digest file holding a valid digest.
        """
        digestfile = layout.with_name(layout.name + ".digest")
        argv = self.export_argv(image, layout, digestfile, env)
        try:
            runner.run(argv, timeout=timeout, install_hint=self.install_hint)
        except CommandError as exc:
            raise with_hint(exc, f"{self.program} push (export) failed") from None
        try:
            digest = digestfile.read_text(encoding="utf-8").strip()
        except OSError:
            digest = ""
        finally:
            with contextlib.suppress(OSError):
                digestfile.unlink()
        if not is_valid_digest(digest):
            raise DigestMismatchError(
                f"{self.program} push exited 0 but wrote no valid digest file; not trusting it"
            )
        return digest

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        return None

    def image_annotations(self, image: str, env: BuildEnv) -> dict[str, str]:
        return {}

    def remove(self, image: str, env: BuildEnv) -> None:
        runner.run(self.remove_argv(image, env), check=False, timeout=120)

    def drop_stale(self, stale: StaleCache, env: BuildEnv) -> str | None:
        """``rmi`` each stale entry. One that a container still uses (a build that was
        killed leaves its working container) stays, and the next build finds it again:
        that is said, with the way out."""
        for entry in stale.entries:
            result = runner.run(self.remove_argv(entry, env), check=False, timeout=120)
            if not result.ok:
                short = entry.removeprefix("sha256:")[:12]
                why = result.stderr.strip().splitlines()[-1:] or ["no reason given"]
                return (
                    f"could not remove the stale cached layer {short} ({why[0].strip()}); "
                    f"every build will rebuild until it goes: see `{self.list_containers}` "
                    f"for build containers left by interrupted builds, and remove those "
                    f"that no build is using"
                )
        return None

    def problem(self) -> str | None:
        """Daemonless: installed means usable (rootless trouble shows up in ``ocirel doctor``)."""
        if runner.which(self.program) is None:
            return f"{self.program} is not installed (not on PATH)"
        return None

    def version(self) -> str | None:
        try:
            result = runner.run([self.program, "--version"], timeout=20, check=False)
        except BackendNotFoundError:
            return None
        # "buildah version 1.28.2 (image-spec 1.1.0-rc2, …)", "podman version 4.3.1"
        match = re.search(r"version\s+(\S+)", result.stdout) if result.ok else None
        return match.group(1) if match else None
