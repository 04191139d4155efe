"""Which digest each image reference gets: resolvers, and registry look-ups in parallel.

Two words, two meanings, used nowhere else in this package:

* a **resolver** (:data:`Resolver`) is called once per occurrence and decides what to
  write: a :class:`Pin` (digest, maybe the locked tag), a bare digest, or None to
  leave the reference alone. :func:`lock_resolver` pins references whose repository
  is in the lockfile to the locked tag and digest; :func:`tag_resolver` wraps digests
  looked up in a registry; :func:`chain` combines them.
* a **lookup** (:data:`Lookup`) asks a registry which digest a ``repo:tag`` has now.
  The registry client is not imported here: the caller passes the lookup in (in
  ocirel, ``Registry.resolve``). :class:`ParallelLookup` takes references as they are
  found (``submit``), starts one lookup per *distinct* reference on a thread pool, and
  hands back every digest and every failure when asked (``wait``). All lookups share
  whatever the ``lookup`` callable closes over — in ocirel one registry client, whose
  transport keeps one keep-alive session and caches tokens per scope.

Each registry host is *contacted* once before any lookup on it (``contact``, in
ocirel ``transport.base_url``: settle the scheme and learn the auth challenge). When
that fails — connection refused, DNS, TLS — every reference on that host fails with
the same error straight away (:class:`HostGate`), instead of each lookup retrying a
dead host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from ocirel.deploy.regmap import RegistryMap
from ocirel.errors import OcirelError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.reference import Reference

DEFAULT_WORKERS = 16

Lookup = Callable[[Reference], str]
Contact = Callable[[str], object]


@dataclass(frozen=True, slots=True)
class Pin:
    """What a resolver wants written: ``digest``, and optionally a new ``tag`` (the
    locked version) and a new ``name`` (``registry/repository``, when the image moved
    to a mirror: ``--registry-map``). ``note`` is appended to the change's reason."""

    digest: str
    tag: str | None = None
    note: str = ""
    name: str | None = None


#: Called once per occurrence with its :attr:`ImageOccurrence.reference`; returns the
#: digest for it (a ``str``), a :class:`Pin`, or None to leave the reference alone.
Resolver = Callable[[Reference], "Pin | str | None"]


@dataclass(frozen=True)
class Lookups:
    """The outcome of a batch: ``digests`` for what resolved, ``failures`` for the rest."""

    digests: Mapping[Reference, str]
    failures: Mapping[Reference, OcirelError]


def lock_resolver(lock: Lockfile, registry_map: RegistryMap | None = None) -> Resolver:
    """Pin references whose repository is in ``lock`` to the locked tag *and* digest.

    Matching is by normalized repository (``nginx`` matches ``docker.io/library/nginx``),
    whatever tag the manifest names: ``app:v6`` becomes ``app:v7@<v7 digest>`` when v7
    is locked, so tag and digest never disagree. When several entries share a
    repository, the one with the reference's digest, else its tag, is used; if none
    matches, the reference is left alone.

    With a ``registry_map``, an entry's repository is also known under its mapped name,
    and a reference to either is pinned to the mapped name (a mirror keeps digests).
    """
    by_repository: dict[str, list[LockEntry]] = {}
    mapped: dict[str, str] = {}
    for name in sorted(lock.entries):
        entry = lock.entries[name]
        by_repository.setdefault(entry.repository, []).append(entry)
        if registry_map:
            mapped[entry.repository] = registry_map.apply(entry.repository)
            if mapped[entry.repository] != entry.repository:
                by_repository.setdefault(mapped[entry.repository], []).append(entry)

    def resolve(ref: Reference) -> Pin | None:
        entry = _choose_entry(by_repository.get(ref.name, []), ref)
        if entry is None:
            return None
        note = f"lockfile entry {entry.name!r}"
        target = mapped.get(entry.repository, entry.repository)
        if target == ref.name:
            return Pin(digest=entry.digest, tag=entry.tag, note=note)
        return Pin(entry.digest, entry.tag, f"{note}, mirrored at {target}", name=target)

    return resolve


def _choose_entry(entries: Sequence[LockEntry], ref: Reference) -> LockEntry | None:
    if len(entries) <= 1:
        return entries[0] if entries else None
    for entry in entries:
        if ref.digest is not None and entry.digest == ref.digest:
            return entry
    for entry in entries:
        if entry.tag == ref.tag:
            return entry
    return None


def tag_resolver(digests: Mapping[Reference, str]) -> Resolver:
    """Look digests up in ``digests``, keyed by tag references without digest.

    Build the map with :class:`ParallelLookup` (each distinct tag looked up once, in
    parallel against the registry). References without a tag resolve to None.
    """

    def resolve(ref: Reference) -> str | None:
        if ref.tag is None:
            return None
        return digests.get(replace(ref, digest=None))

    return resolve


def chain(*resolvers: Resolver) -> Resolver:
    """The first resolver's answer that is not None (e.g. lockfile, then registry)."""

    def resolve(ref: Reference) -> Pin | str | None:
        for resolver in resolvers:
            answer = resolver(ref)
            if answer is not None:
                return answer
        return None

    return resolve


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


class ParallelLookup:
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
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocirel-lookup")
        self._futures: dict[Reference, Future[str]] = {}

    def __enter__(self) -> ParallelLookup:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)

    def submit(self, ref: Reference) -> None:
        """Start looking ``ref`` up, unless it already was."""
        if ref not in self._futures:
            self._futures[ref] = self._pool.submit(self._lookup_one, ref)

    def submit_all(self, refs: Iterable[Reference]) -> None:
        for ref in refs:
            self.submit(ref)

    @property
    def submitted(self) -> int:
        return len(self._futures)

    def wait(self) -> Lookups:
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
        return Lookups(digests, failures)

    def _lookup_one(self, ref: Reference) -> str:
        if self._gate is not None:
            self._gate.check(ref.registry)
        return self._lookup(ref)


__all__ = [
    "DEFAULT_WORKERS",
    "Contact",
    "HostGate",
    "Lookup",
    "Lookups",
    "ParallelLookup",
    "Pin",
    "Resolver",
    "chain",
    "lock_resolver",
    "tag_resolver",
]
