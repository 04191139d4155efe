"""ocirel.deploy.verify: the verdict table, and the parallel check of a whole lockfile."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from ocirel.deploy.verify import Status, _Outcome, judge, summarize, verify_lock
from ocirel.errors import RegistryAuthError, RegistryError, RegistryNotFoundError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from ocirel.reference import Reference

LOCKED = Digest("sha256:" + "1" * 64)
OTHER = "sha256:" + "2" * 64
ENTRY = LockEntry("app", "r.test/team/app", "v7", LOCKED)

GONE = RegistryNotFoundError("404", status=404)
DOWN = RegistryError("cannot reach r.test: Connection refused", temporary=True)
DENIED = RegistryAuthError("401", status=401)

EXISTS = _Outcome(value=True)
ABSENT = _Outcome(value=False)


@pytest.mark.parametrize(
    ("by_digest", "by_tag", "status", "detail"),
    [
        (EXISTS, _Outcome(value=LOCKED), Status.OK, ""),
        (EXISTS, _Outcome(value=OTHER), Status.DRIFTED, f"tag v7 now points to {OTHER}"),
        (EXISTS, _Outcome(error=GONE), Status.DRIFTED, "tag v7 no longer exists"),
        (ABSENT, _Outcome(error=GONE), Status.MISSING,
         f"{LOCKED} no longer exists in r.test/team/app; tag v7 no longer exists"),
        (ABSENT, _Outcome(value=OTHER), Status.MISSING, f"tag v7 now points to {OTHER}"),
        (ABSENT, _Outcome(error=DOWN), Status.MISSING, "tag v7 could not be checked"),
        # a definite answer about the tag wins over an unchecked digest
        (_Outcome(error=DOWN), _Outcome(value=OTHER), Status.DRIFTED, "now points to"),
        (_Outcome(error=DOWN), _Outcome(error=GONE), Status.DRIFTED, "no longer exists"),
        # nothing definite wrong, something unchecked: unreachable, never ok
        (_Outcome(error=DOWN), _Outcome(value=LOCKED), Status.UNREACHABLE,
         "could not check: cannot reach r.test"),
        (EXISTS, _Outcome(error=DENIED), Status.UNREACHABLE, "could not check: 401"),
        (_Outcome(error=DENIED), _Outcome(error=DENIED), Status.UNREACHABLE, "could not check"),
    ],
)  # fmt: skip
def test_judge(
    by_digest: _Outcome[bool], by_tag: _Outcome[str], status: Status, detail: str
) -> None:
    check = judge(ENTRY, by_digest, by_tag)
    assert check.status is status
    assert (detail in check.detail) if detail else check.detail == ""


def entries(count: int, host: str = "r.test") -> Lockfile:
    return Lockfile({
        f"e{i}": LockEntry(f"e{i}", f"{host}/team/e{i}", "v1", LOCKED) for i in range(count)
    })  # fmt: skip


def test_verify_lock_checks_digest_and_tag_of_every_entry_in_parallel() -> None:
    seen: list[str] = []
    barrier = threading.Barrier(6, timeout=5)

    def exists(ref: Reference) -> bool:
        barrier.wait()
        seen.append(f"digest {ref.repository}@{ref.digest}")
        return True

    def tag_digest(ref: Reference) -> str:
        barrier.wait()
        seen.append(f"tag {ref.repository}:{ref.tag}")
        return LOCKED if ref.repository != "team/e1" else OTHER

    checks = verify_lock(entries(3), digest_exists=exists, tag_digest=tag_digest, workers=6)
    assert [(c.entry.name, c.status) for c in checks] == [
        ("e0", Status.OK), ("e1", Status.DRIFTED), ("e2", Status.OK),
    ]  # fmt: skip
    assert sorted(seen) == sorted(
        [f"digest team/e{i}@{LOCKED}" for i in range(3)] + [f"tag team/e{i}:v1" for i in range(3)]
    )
    assert summarize(checks) == {
        Status.OK: 2, Status.DRIFTED: 1, Status.MISSING: 0, Status.UNREACHABLE: 0,
    }  # fmt: skip


def test_verify_lock_contacts_a_dead_host_once() -> None:
    contacts: Counter[str] = Counter()

    def contact(host: str) -> None:
        contacts[host] += 1
        raise DOWN

    def never(ref: Reference) -> str:
        raise AssertionError("no request to a host that did not answer")

    checks = verify_lock(entries(10), digest_exists=bool, tag_digest=never, contact=contact)
    assert contacts == {"r.test": 1}
    assert {c.status for c in checks} == {Status.UNREACHABLE}
    assert "Connection refused" in checks[0].detail


def test_verify_lock_of_an_empty_lockfile() -> None:
    assert verify_lock(Lockfile(), digest_exists=lambda r: True, tag_digest=lambda r: LOCKED) == []
