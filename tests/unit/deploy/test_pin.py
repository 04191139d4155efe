"""ocirel.deploy.pin: what --resolve asks the registry, and how failures are reported."""

from __future__ import annotations

from pathlib import Path

from ocirel.deploy.pin import MAX_LISTED, plan_pins, registry_references, unresolved_error
from ocirel.deploy.resolvers import lock_resolver
from ocirel.deploy.scan import scan_text
from ocirel.errors import RegistryAuthError, RegistryError, RegistryNotFoundError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from ocirel.reference import Reference, parse

D_LOCK = Digest("sha256:" + "1" * 64)
D_REG = "sha256:" + "2" * 64
LOCK = Lockfile({"app": LockEntry("app", "r.test/team/app", "v7", D_LOCK)})


def pod(*images: str) -> str:
    return "kind: Pod\nspec:\n  containers:\n" + "".join(f"  - image: {i}\n" for i in images)


def test_registry_references_are_the_tag_references_the_lockfile_does_not_answer() -> None:
    manifest = scan_text(pod(
        "r.test/team/app:v1", "r.test/team/db:5", f"r.test/team/db:5@{D_LOCK}",
        f"r.test/team/cache@{D_LOCK}", "r.test/team/web",
    ))  # fmt: skip
    assert registry_references(manifest, lock_resolver(LOCK)) == {
        parse("r.test/team/db:5"), parse("r.test/team/web:latest"),
    }  # fmt: skip


def test_plan_with_a_registry_lookup(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(pod("r.test/team/app:v1", f"r.test/team/db:5@{D_LOCK}", "r.test/team/web"))
    asked: list[Reference] = []

    def lookup(ref: Reference) -> str:
        asked.append(ref)
        return D_REG

    plan = plan_pins([path], LOCK, lookup=lookup)
    assert sorted(map(str, asked)) == ["r.test/team/db:5", "r.test/team/web:latest"]
    assert [c.new for c in plan.changes] == [
        f"r.test/team/app:v7@{D_LOCK}", f"r.test/team/db:5@{D_REG}", f"r.test/team/web@{D_REG}",
    ]  # fmt: skip
    assert path.read_text() == pod(  # planning writes nothing
        "r.test/team/app:v1", f"r.test/team/db:5@{D_LOCK}", "r.test/team/web"
    )


def test_unresolved_error_lists_places_in_file_order_and_keeps_the_error_kind() -> None:
    first = scan_text(pod("r.test/a:1", "r.test/b:1"), filename="one.yaml")
    second = scan_text(pod(*["r.test/b:1"] * 4, "r.test/a:1"), filename="two.yaml")
    failures = {
        parse("r.test/b:1"): RegistryAuthError("401 for b", status=401, hint="log in"),
        parse("r.test/a:1"): RegistryNotFoundError("404 for a", status=404),
    }
    error = unresolved_error(failures, [first, second])
    assert isinstance(error, RegistryNotFoundError)  # a comes first in the files
    assert error.message.splitlines() == [
        "cannot resolve 2 image references; no file was written:",
        "  r.test/a:1 (one.yaml:4, two.yaml:8): 404 for a",
        "  r.test/b:1 (one.yaml:5, two.yaml:4, two.yaml:5 and 2 more): 401 for b",
    ]
    single = unresolved_error({parse("r.test/b:1"): failures[parse("r.test/b:1")]}, [first])
    assert isinstance(single, RegistryAuthError)
    assert single.message == (
        "cannot resolve r.test/b:1 (one.yaml:5): 401 for b; no file was written"
    )
    assert single.hint == "log in"


def test_unresolved_error_lists_at_most_max_listed_references() -> None:
    refs = [f"r.test/img{i:02d}:1" for i in range(MAX_LISTED + 5)]
    manifest = scan_text(pod(*refs), filename="p.yaml")
    down = RegistryError("cannot reach r.test", temporary=True)
    error = unresolved_error({parse(r): down for r in refs}, [manifest])
    lines = error.message.splitlines()
    assert lines[0] == f"cannot resolve {MAX_LISTED + 5} image references; no file was written:"
    assert len(lines) == MAX_LISTED + 2
    assert lines[-1] == "  ... and 5 more"
    assert error.temporary
