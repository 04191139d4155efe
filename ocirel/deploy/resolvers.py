"""Resolve many image references to digests at once: parallel, each one once.

:class:`ParallelResolver` takes references as they are found (``submit``), starts
one lookup per *distinct* reference on a thread pool, and hands back every digest
and every failure when asked (``wait``). All lookups share whatever the ``lookup``
callable closes over — in ocirel one :class:`~ocirel.registry.Registry`, whose
transport keeps one keep-alive session and caches tokens per scope.

Each registry host is *contacted* once before any lookup on it (``contact``, in
ocirel ``transport.base_url``: settle the scheme and learn the auth challenge). When
that fails — connection refused, DNS, TLS — every reference on that host fails with
the same error straight away, instead of each lookup retrying a dead host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ocirel.errors import OcirelError
from ocirel.reference import Reference

DEFAULT_WORKERS = 16

Lookup = Callable[[Reference], str]
Contact = Callable[[str], object]


@dataclass(frozen=True)
class Resolution:
    """The outcome of a batch: ``digests`` for what resolved, ``failures`` for the rest."""

    digests: Mapping[Reference, str]
    failures: Mapping[Reference, OcirelError]


class HostGate:
    """Contact each registry host once; remember a failure and repeat it.

    Thread-safe: concurrent callers for one host wait for the first contact.
    """

    def __init__(self, contact: Contact) -> None:
        self._contact = contact
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._done: set[str] = set()
        self._errors: dict[str, OcirelError] = {}

    def check(self, host: str) -> None:
        """Return when ``host`` answered; raise its contact error otherwise."""
        with self._lock:
            host_lock = self._host_locks.setdefault(host, threading.Lock())
        with host_lock:
            if host in self._errors:
                raise self._errors[host]
            if host in self._done:
                return
            try:
                self._contact(host)
            except OcirelError as exc:
                self._errors[host] = exc
                raise
            self._done.add(host)


class ParallelResolver:
    """Resolve references on a thread pool; each distinct reference is looked up once.

    Use as a context manager (the pool is shut down on exit, pending lookups
    cancelled when leaving with an exception). ``submit`` is cheap and idempotent;
    ``wait`` blocks until every submitted lookup has finished.
    """

    def __init__(
        self,
        lookup: Lookup,
        contact: Contact | None = None,
        *,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        self._lookup = lookup
        self._gate = HostGate(contact) if contact is not None else None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocirel-resolve")
        self._futures: dict[Reference, Future[str]] = {}

    def __enter__(self) -> ParallelResolver:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)

    def submit(self, ref: Reference) -> None:
        """Start looking ``ref`` up, unless it already was."""
        if ref not in self._futures:
            self._futures[ref] = self._pool.submit(self._resolve_one, ref)

    def submit_all(self, refs: Iterable[Reference]) -> None:
        for ref in refs:
            self.submit(ref)

    @property
    def submitted(self) -> int:
        return len(self._futures)

    def wait(self) -> Resolution:
        """Every digest and every failure (an :class:`OcirelError`) so far."""
        digests: dict[Reference, str] = {}
        failures: dict[Reference, OcirelError] = {}
        for ref, future in self._futures.items():
            error = future.exception()
            if error is None:
                digests[ref] = future.result()
            elif isinstance(error, OcirelError):
                failures[ref] = error
            else:
                raise error
        return Resolution(digests, failures)

    def _resolve_one(self, ref: Reference) -> str:
        if self._gate is not None:
            self._gate.check(ref.registry)
        return self._lookup(ref)


def resolve_all(
    refs: Iterable[Reference],
    lookup: Lookup,
    contact: Contact | None = None,
    *,
    workers: int = DEFAULT_WORKERS,
) -> Resolution:
    """Resolve ``refs`` (duplicates looked up once) and wait for all of them."""
    with ParallelResolver(lookup, contact, workers=workers) as resolver:
        resolver.submit_all(refs)
        return resolver.wait()


__all__ = ["DEFAULT_WORKERS", "HostGate", "ParallelResolver", "Resolution", "resolve_all"]
