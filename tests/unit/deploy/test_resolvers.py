"""ocirel.deploy.resolvers: lockfile and registry resolvers; parallel look-ups, each once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

import pytest

from ocirel.deploy.resolvers import (
    Contact,
    HostGate,
    Lookup,
    Lookups,
    ParallelLookup,
    Pin,
    chain,
    lock_resolver,
    tag_resolver,
)
from ocirel.deploy.scan import ScannedFile, scan_text
from ocirel.deploy.splice import pin_text
from ocirel.errors import RegistryError, RegistryNotFoundError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.reference import Reference, parse
from tests.unit.deploy.samples import APP, D_APP6, D_APP7, D_BUSYBOX, D_NGINX, D_STALE, NGINX_REF

DIGEST = "sha256:" + "d" * 64


def resolve_all(
    refs: Iterable[Reference], lookup: Lookup, contact: Contact | None = None, *, workers: int = 16
) -> Lookups:
    """Look ``refs`` up (duplicates once) and wait for all of them."""
    with ParallelLookup(lookup, contact, workers=workers) as lookups:
        lookups.submit_all(refs)
        return lookups.wait()


def test_each_distinct_reference_is_looked_up_once() -> None:
    calls: Counter[Reference] = Counter()
    lock = threading.Lock()

    def lookup(ref: Reference) -> str:
        with lock:
            calls[ref] += 1
        return DIGEST

    refs = [parse(f"r.test/app{i % 5}:v{i % 2}") for i in range(100)]
    result = resolve_all(refs, lookup)
    assert set(result.digests) == set(refs)
    assert len(result.digests) == 10
    assert set(calls.values()) == {1}
    assert result.failures == {}


def test_lookups_run_in_parallel() -> None:
    barrier = threading.Barrier(4, timeout=5)

    def lookup(ref: Reference) -> str:
        barrier.wait()  # only returns when 4 lookups run at the same time
        return DIGEST

    result = resolve_all([parse(f"r.test/a{i}:1") for i in range(4)], lookup, workers=4)
    assert len(result.digests) == 4


def test_failures_are_collected_per_reference() -> None:
    def lookup(ref: Reference) -> str:
        if ref.repository.endswith("gone"):
            raise RegistryNotFoundError(f"{ref}: 404", status=404)
        return DIGEST

    ok, gone = parse("r.test/ok:1"), parse("r.test/gone:1")
    result = resolve_all([ok, gone, gone], lookup)
    assert result.digests == {ok: DIGEST}
    assert list(result.failures) == [gone]
    assert isinstance(result.failures[gone], RegistryNotFoundError)


def test_bugs_are_not_swallowed() -> None:
    def lookup(ref: Reference) -> str:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        resolve_all([parse("r.test/a:1")], lookup)


def test_a_dead_host_is_contacted_once_and_fails_every_reference() -> None:
    contacts: Counter[str] = Counter()
    looked_up: list[Reference] = []

    def contact(host: str) -> None:
        contacts[host] += 1
        if host == "dead.test":
            time.sleep(0.05)  # concurrent lookups for the host wait for this one contact
            raise RegistryError("cannot reach dead.test: Connection refused", temporary=True)

    def lookup(ref: Reference) -> str:
        looked_up.append(ref)
        return DIGEST

    dead = [parse(f"dead.test/a{i}:1") for i in range(20)]
    alive = [parse(f"alive.test/a{i}:1") for i in range(20)]
    result = resolve_all(dead + alive, lookup, contact)
    assert contacts == {"dead.test": 1, "alive.test": 1}
    assert set(result.failures) == set(dead)
    assert all("Connection refused" in str(e) for e in result.failures.values())
    assert set(looked_up) == set(alive)


def test_host_gate_remembers_success() -> None:
    contacts: list[str] = []
    gate = HostGate(contacts.append)
    for _ in range(3):
        gate.check("r.test")
    assert contacts == ["r.test"]


def test_submit_is_idempotent_and_wait_can_be_called_as_work_arrives() -> None:
    with ParallelLookup(lambda ref: DIGEST) as resolver:
        resolver.submit(parse("r.test/a:1"))
        resolver.submit_all([parse("r.test/a:1"), parse("r.test/b:1")])
        assert resolver.submitted == 2
        assert len(resolver.wait().digests) == 2
        resolver.submit(parse("r.test/c:1"))
        assert len(resolver.wait().digests) == 3


# --------------------------------------------------------------------------- resolvers


def test_lock_resolver_matches_normalized_repository_and_keeps_spelling() -> None:
    lock = Lockfile({"web": LockEntry("web", "docker.io/library/nginx", "1.27", D_NGINX)})
    text = (
        "kind: Pod\nspec:\n  containers:\n  - image: nginx:1.25\n  - image: index.docker.io/nginx\n"
    )
    result = pin_text(text, resolve=lock_resolver(lock))
    assert result.text == (
        "kind: Pod\nspec:\n  containers:\n"
        f"  - image: nginx:1.27@{D_NGINX}\n  - image: index.docker.io/nginx@{D_NGINX}\n"
    )
    assert result.changes[0].reason == "updated to the locked version 1.27 (lockfile entry 'web')"


def test_lock_resolver_with_several_entries_for_one_repository() -> None:
    lock = Lockfile(
        {
            "app": LockEntry("app", APP, "v7", D_APP7),
            "app-debug": LockEntry("app-debug", APP, "v7-debug", D_APP6),
        }
    )
    resolve = lock_resolver(lock)
    by_digest = resolve(parse(f"{APP}:v1@{D_APP6}"))
    by_tag = resolve(parse(f"{APP}:v7-debug"))
    assert isinstance(by_digest, Pin)
    assert isinstance(by_tag, Pin)
    assert (by_digest.tag, by_tag.tag) == ("v7-debug", "v7-debug")
    assert resolve(parse(f"{APP}:v1")) is None
    assert resolve(parse("other:v1")) is None


def test_tag_resolver_chain_and_tag_references() -> None:
    manifest = scan_text(
        "kind: Pod\nspec:\n  containers:\n"
        f"  - image: nginx\n  - image: nginx:1.25@{D_STALE}\n  - image: busybox@{D_BUSYBOX}\n"
    )
    assert tag_references([manifest]) == {parse("nginx:latest"), parse("nginx:1.25")}
    lookup = tag_resolver({parse("nginx:1.25"): D_NGINX})
    assert lookup(parse(f"nginx:1.25@{D_STALE}")) == D_NGINX
    assert lookup(parse(f"busybox@{D_BUSYBOX}")) is None
    first = chain(lambda ref: None, lambda ref: D_NGINX, lambda ref: D_STALE)
    assert first(NGINX_REF) == D_NGINX
    assert chain()(NGINX_REF) is None


def tag_references(scanned: Iterable[ScannedFile]) -> set[Reference]:
    """Every distinct ``repo:tag`` (digest stripped) a registry would have to resolve."""
    return {
        replace(occ.reference, digest=None)
        for one in scanned
        for occ in one.occurrences
        if occ.reference.tag is not None
    }


def test_registry_host_names_match_in_any_case_and_keep_their_spelling() -> None:
    # issue 13 item 11: host names are case-insensitive, repository paths are not
    lock = Lockfile({"app": LockEntry("app", APP, "v7", D_APP7)})
    text = (
        "kind: Pod\nspec:\n  containers:\n  - image: Registry.Example.com/team/app:v6\n"
        "  - image: registry.example.com/Team/app:v6\n"
    )
    result = pin_text(text, resolve=lock_resolver(lock))
    assert result.text == (
        "kind: Pod\nspec:\n  containers:\n"
        f"  - image: Registry.Example.com/team/app:v7@{D_APP7}\n"
        "  - image: registry.example.com/Team/app:v6\n"
    )
