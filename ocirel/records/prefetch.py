"""What a build record needs besides the image, fetched in the background.

Kept apart from :mod:`ocirel.records.attach` (which imports the registry client, and
with it ``requests``): ``publish`` makes its :class:`Prefetch` before the build starts,
so importing this module must cost nothing on the way to the build.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable


class Prefetch:
    """What the record needs that does not depend on the image: oras-py's import
    (~0.4 s) and the builder's version (a subprocess). :meth:`start` runs them in a
    background thread once the publish knows it pushes a new version, so they overlap
    the push, and an unchanged re-publish (no record) never pays for them."""

    def __init__(self, version: Callable[[], str | None]) -> None:
        self._get_version = version
        self._version: str | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Begin fetching (once; later calls do nothing)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ocirel-record-prefetch", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            import oras.provider  # noqa: F401, PLC0415
        with contextlib.suppress(Exception):
            self._version = self._get_version()

    def backend_version(self, timeout: float = 30.0) -> str | None:
        self.start()  # a publisher that never said "new version" still gets a record
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():  # not handed over yet: the record goes without it
            return None
        return self._version
