"""Which base images ``bundle export --with-bases`` carries, and the mirror hints."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ocirel.bundle import bases
from ocirel.bundle.bases import Base, containerfile_bases, derived_tag, discover_bases, resolve_base
from ocirel.bundle.layout import BundleError
from ocirel.bundle.mirror import mirror_hints
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from ocirel.reference import Reference, parse_repository
from ocirel.registry import Registry
from ocirel.versioning import is_referrers_tag

D1 = Digest("sha256:" + "1" * 64)
D2 = Digest("sha256:" + "2" * 64)
D3 = Digest("sha256:" + "3" * 64)


class FakeRegistry:
    """Resolves tags from a table; records what was asked."""

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags, self.asked = tags, []  # type: tuple[dict[str, str], list[str]]

    def resolve(self, ref: Reference) -> Any:
        self.asked.append(str(ref))
        return SimpleNamespace(digest=self.tags[str(ref)])


def registry(tags: dict[str, str] | None = None) -> Any:
    return FakeRegistry(tags or {})


def test_a_from_with_a_digest_is_fetched_by_it_and_never_resolved() -> None:
    fake = registry()
    base = resolve_base(cast(Registry, fake), f"reg.example/os@{D1}")
    assert (base.repo.name, base.tag, base.digest) == ("reg.example/os", None, D1)
    assert base.name == f"reg.example/os@{D1}"
    assert base.target_tag == "base-sha256-" + "1" * 64 == derived_tag(D1)
    tagged = resolve_base(cast(Registry, fake), f"reg.example/os:3.19@{D2}")
    assert (tagged.tag, tagged.digest, tagged.target_tag) == ("3.19", D2, "3.19")
    assert fake.asked == []


def test_a_tag_is_resolved_on_its_registry_and_no_tag_means_latest() -> None:
    fake = registry({"reg.example/os:3.19": D1, "docker.io/library/alpine:latest": D2})
    assert resolve_base(cast(Registry, fake), "reg.example/os:3.19").digest == D1
    alpine = resolve_base(cast(Registry, fake), "alpine")
    assert (alpine.name, alpine.digest) == ("docker.io/library/alpine:latest", D2)


def test_a_recorded_digest_is_used_without_asking_the_registry() -> None:
    fake = registry()
    assert resolve_base(cast(Registry, fake), "reg.example/os:3.19", D3).digest == D3
    assert fake.asked == []


def test_the_derived_tag_is_not_a_referrers_tag() -> None:
    assert not is_referrers_tag(derived_tag(D1))
    assert len(derived_tag(D1)) <= 128


def test_containerfile_bases_follow_arg_defaults_and_skip_stages_and_scratch() -> None:
    text = (
        "ARG BASE=reg.example/os:3.19\n"
        "ARG TOOLS\n"
        "FROM ${BASE} AS build\n"
        f"COPY --from=reg.example/tools@{D1} /t /t\n"
        "RUN --mount=type=cache,from=build,target=/c true\n"
        "FROM scratch\n"
        "COPY --from=build /t /t\n"
    )
    assert containerfile_bases(text, "Containerfile") == [
        ("reg.example/os:3.19", "BASE"),
        (f"reg.example/tools@{D1}", None),
    ]


def test_a_from_arg_without_default_is_an_error_with_a_hint() -> None:
    with pytest.raises(BundleError) as caught:
        containerfile_bases("ARG BASE\nFROM $BASE\n", "Containerfile")
    assert "Containerfile" in str(caught.value)
    assert "ARG BASE=" in (caught.value.hint or "")


def lock(*names: str) -> Lockfile:
    entries = [LockEntry(n, f"reg.example/{n}", "v1", D1) for n in names]
    return Lockfile({e.name: e for e in entries})


def records(found: dict[str, list[tuple[str, str | None]] | None]) -> Any:
    def recorded(_registry: object, repo: Reference, _digest: str) -> Any:
        return found[repo.repository]

    return recorded


def test_build_records_come_first_and_the_containerfile_is_not_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        bases, "recorded_bases", records({"app": [("reg.example/os:3.19", str(D2))]})
    )
    found = discover_bases(registry(), lock("app"), [tmp_path / "missing"])
    assert found == [Base(parse_repository("reg.example/os"), "3.19", D2)]


def test_images_without_a_record_take_the_containerfiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    recorded: dict[str, list[tuple[str, str | None]] | None] = {
        "app": [(f"reg.example/os@{D2}", str(D2))],
        "worker": None,
    }
    monkeypatch.setattr(bases, "recorded_bases", records(recorded))
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(f"FROM reg.example/os@{D2}\nFROM reg.example/py:3\n", "utf-8")
    fake = registry({"reg.example/py:3": D3})
    found = discover_bases(fake, lock("app", "worker"), [containerfile])
    assert [b.name for b in found] == [f"reg.example/os@{D2}", "reg.example/py:3"]  # once each
    assert found[1].digest == D3
    assert fake.asked == ["reg.example/py:3"]


def test_no_record_and_no_containerfile_is_an_error_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bases, "recorded_bases", records({"app": None}))
    with pytest.raises(BundleError) as caught:
        discover_bases(registry(), lock("app"), [])
    assert "app" in str(caught.value)
    assert "--file" in (caught.value.hint or "")


def test_mirror_hints_parse_as_registries_conf() -> None:
    source = Base(parse_repository("docker.io/library/alpine"), "3.19", D1, "BASE_IMAGE")
    other = Base(parse_repository("reg.example:5000/os"), None, D2)
    moved = [
        (source, Base(parse_repository("mirror:5000/air/library/alpine"), "3.19", D1)),
        (other, Base(parse_repository("mirror:5000/air/os"), None, D2)),
    ]
    hints = mirror_hints(moved, "mirror:5000/air", insecure=True)
    conf = tomllib.loads(hints.registries_conf)
    assert conf["registry"] == [
        {"location": "docker.io", "mirror": [{"location": "mirror:5000/air", "insecure": True}]},
        {
            "location": "reg.example:5000",
            "mirror": [{"location": "mirror:5000/air", "insecure": True}],
        },
    ]
    assert hints.build_args == (
        f"--build-arg BASE_IMAGE=mirror:5000/air/library/alpine:3.19@{D1}",
        f"--build-arg BASE=mirror:5000/air/os:{derived_tag(D2)}@{D2}",
    )
    assert any("FROM ${BASE}" in line for line in hints.lines())
    assert mirror_hints([], "mirror:5000/air").lines() == []
