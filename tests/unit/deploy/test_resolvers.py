"""ocirel.deploy.resolvers: each distinct reference looked up once, in parallel; dead hosts once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from ocirel.deploy.resolvers import HostGate, ParallelResolver, resolve_all
from ocirel.errors import RegistryError, RegistryNotFoundError
from ocirel.reference import Reference, parse

DIGEST = "sha256:" + "d" * 64


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
    with ParallelResolver(lambda ref: DIGEST) as resolver:
        resolver.submit(parse("r.test/a:1"))
        resolver.submit_all([parse("r.test/a:1"), parse("r.test/b:1")])
        assert resolver.submitted == 2
        assert len(resolver.wait().digests) == 2
        resolver.submit(parse("r.test/c:1"))
        assert len(resolver.wait().digests) == 3
