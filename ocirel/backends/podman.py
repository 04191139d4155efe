"""podman: the second daemonless builder; same flags and export as buildah.

The storage-driver rule
-----------------------
podman records the storage settings it was first run with in its libpod database,
and any later explicit ``--storage-driver`` that differs from the *recorded* value
fails ("database storage graph driver "vfs" does not match our storage graph driver
"overlay": database configuration mismatch"). The recorded value is often ``""``
(the store was set up with the default driver), so even naming the driver podman
really uses fails. A *configured* driver (storage.conf) that differs is overridden by
the database instead. Hence ocirel never passes ``--storage-driver`` to podman; it
asks podman once per run which driver its store uses (``podman info --format
{{.Store.GraphDriverName}}``, without storage flags) and then:

* ocirel's choice equals podman's driver: pass only the choice's ``--storage-opt``
  options (e.g. fuse-overlayfs as overlay's mount program);
* ocirel chose automatically and podman uses another driver: respect podman's
  driver, pass no storage flags (the options belonged to ocirel's driver);
* the user asked for a driver (``storage_driver`` / ``OCIREL_STORAGE_DRIVER``) and
  podman uses another: fail with a :class:`ConfigError` saying how to switch
  (``podman system reset`` deletes every podman image and container);
* podman cannot say (the query failed): pass the user's explicit choice (podman's
  own error then tells), else nothing, and let podman decide.

On a store that was never used, the query itself initialises it with podman's own
default (overlay where the kernel allows it, else vfs), which is a driver that works.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocirel import runner
from ocirel.backends.base import BuildEnv, BuildSpec
from ocirel.backends.containers import ContainersBackend, StepImage, parse_created
from ocirel.errors import BackendNotFoundError, CommandError, ConfigError
from ocirel.hostinfo import StorageChoice
from ocirel.oci import ImageConfig, as_image_config

STORE_DRIVER_ARGV = ("podman", "info", "--format", "{{.Store.GraphDriverName}}")
_DRIVER_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_DB_MISMATCH = re.compile(r"database .* does not match .*database configuration mismatch", re.I)
DB_MISMATCH_HINT = (
    "podman's database was set up with other storage settings: leave the storage driver "
    "to podman (unset OCIREL_STORAGE_DRIVER / storage_driver), or run `podman system "
    "reset` (deletes all podman images and containers)"
)


def podman_storage_args(choice: StorageChoice, in_use: str | None) -> list[str]:
    """Global storage flags for podman, given ocirel's ``choice`` and the driver podman's
    store already uses (``None``: unknown). See the module docstring for the rule."""
    driver = choice.driver
    options = [arg for option in choice.options for arg in ("--storage-opt", option)]
    if in_use is None:  # podman could not say which driver it uses
        return ["--storage-driver", driver, *options] if driver and choice.explicit else []
    if driver is None or driver == in_use:
        return options
    if choice.explicit:
        raise ConfigError(
            f"podman's storage uses the {in_use} driver, but the storage_driver setting "
            f"asks for {driver}; podman cannot switch drivers on an existing store",
            hint=f"unset OCIREL_STORAGE_DRIVER / storage_driver to use {in_use}, or run "
            "`podman system reset` (deletes all podman images and containers) to start "
            f"over with {driver}",
        )
    return []  # respect podman's driver; the options belonged to ocirel's choice


def parse_store_driver(stdout: str) -> str | None:
    """The driver name printed by ``podman info --format …``; None for anything else."""
    lines = stdout.strip().splitlines()
    text = lines[-1].strip() if lines else ""
    return text if _DRIVER_NAME.fullmatch(text) else None


class Podman(ContainersBackend):
    name = "podman"
    program = "podman"
    install_hint = "install podman (Debian/Ubuntu: apt-get install podman), or choose --backend"
    #: podman exits at once on SIGTERM/SIGINT and leaves its build containers in the
    #: storage; ending the RUN step first lets it fail the step and remove them
    leaves_first_grace = 10.0
    list_containers = "podman ps --all --external"

    def __init__(self, store_driver: str | None = None) -> None:
        """``store_driver``: the driver podman's store uses, when already known (tests);
        by default podman is asked once, on first use."""
        super().__init__()
        self._store_driver = store_driver
        self._asked = store_driver is not None

    def store_driver(self) -> str | None:
        """The graph driver podman's store uses (asked once), or None when podman cannot say."""
        if not self._asked:
            self._asked = True
            self._store_driver = self._query_store_driver()
        return self._store_driver

    def _query_store_driver(self) -> str | None:
        try:
            result = runner.run(STORE_DRIVER_ARGV, timeout=120, check=False)
        except BackendNotFoundError:
            return None
        return parse_store_driver(result.stdout) if result.ok else None

    def storage_driver(self, env: BuildEnv) -> str | None:
        return self.store_driver()

    def global_args(self, env: BuildEnv) -> list[str]:
        return podman_storage_args(env.storage, self.store_driver())

    def created_argv(self, image: str, env: BuildEnv) -> list[str]:
        return [self.program, *self.global_args(env), "image", "inspect", image]

    def step_of(self, inspected: dict[str, Any] | None) -> StepImage:
        """From ``podman image inspect``: ``Created``, and a name (``RepoTags``/``Names``)."""
        if not inspected:
            return StepImage(None, named=True)  # unknown: never removed
        named = bool(inspected.get("RepoTags") or inspected.get("Names"))
        return StepImage(parse_created(inspected.get("Created")), named=named)

    def created_times(self, images: Sequence[str], env: BuildEnv) -> dict[str, StepImage]:
        """One ``podman image inspect`` for those not inspected yet (its ``--format`` has
        no ``json``); each answer is kept for the image's later questions."""
        known = self._known(images)
        missing = [image for image in images if image not in known]
        if missing:
            argv = [self.program, *self.global_args(env), "image", "inspect", *missing]
            result = runner.run(argv, timeout=60, check=False)
            try:
                found = json.loads(result.stdout) if result.ok else []
            except ValueError:
                found = []
            by_id = {str(item.get("Id", "")): item for item in found if isinstance(item, dict)}
            for image in missing:
                key = image.removeprefix("sha256:")
                item = next((v for i, v in by_id.items() if i.startswith(key)), None)
                if item is not None:
                    self.remember_inspected(image, item)
                    known[image] = item
        return {image: self.step_of(known.get(image)) for image in images}

    def _known(self, images: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The inspects already answered (or under way: waited for) of ``images``."""
        known: dict[str, dict[str, Any]] = {}
        for image in images:
            with self._inspect_lock:
                pending = self._inspected.get(image.removeprefix("sha256:"))
            if pending is not None and pending.result():
                known[image] = pending.result()
        return known

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        """The OCI config the export will write, read from the storage's files when they
        verify (:mod:`ocirel.backends.stored`); podman inspect does not show it, so
        otherwise None: the publisher exports first and reads it from the layout."""
        stored = self.stored(image, env)
        return as_image_config(stored.config) if stored is not None else None

    def image_annotations(self, image: str, env: BuildEnv) -> dict[str, str]:
        stored = self.stored(image, env)
        if stored is not None:
            return stored.annotations
        annotations = self.inspect(image, env).get("Annotations")
        if not isinstance(annotations, dict):
            return {}
        return {k: v for k, v in annotations.items() if isinstance(k, str) and isinstance(v, str)}

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        try:
            return super().build(spec, env, timeout=timeout)
        except CommandError as exc:
            raise _with_podman_hint(exc) from None

    def export(self, image: str, layout: Path, env: BuildEnv, *, timeout: float) -> str:
        try:
            return super().export(image, layout, env, timeout=timeout)
        except CommandError as exc:
            raise _with_podman_hint(exc) from None


def _with_podman_hint(exc: CommandError) -> CommandError:
    """Add the hint for podman's own storage-settings error (read only after a failure)."""
    if _DB_MISMATCH.search(exc.stderr_tail):
        exc.hint = DB_MISMATCH_HINT
    return exc
