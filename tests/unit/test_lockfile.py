"""The lockfile: canonical bytes, safe updates, refusal to rewrite what it cannot read."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocirel import lockfile
from ocirel.errors import LockfileError
from ocirel.lockfile import LockEntry, Lockfile

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha512:" + "3" * 128
REPO = "registry.example.com/team/app"


def entry(
    name: str = "app",
    repository: str = REPO,
    tag: str = "v1",
    digest: str = D1,
    **kwargs: Any,
) -> LockEntry:
    return LockEntry(name=name, repository=repository, tag=tag, digest=digest, **kwargs)


def entry_json(
    repository: str = REPO, tag: str = "v1", digest: str = D1, **extra: Any
) -> dict[str, Any]:
    return {
        "repository": repository,
        "tag": tag,
        "digest": digest,
        "reference": f"{repository}:{tag}@{digest}",
        **extra,
    }


def doc(images: dict[str, Any], schema: Any = 1) -> str:
    return json.dumps({"schema": schema, "images": images})


def leftovers(directory: Path, keep: set[str]) -> set[str]:
    """Files in ``directory`` other than ``keep`` and the sibling ``.lock`` files."""
    return {
        p.name for p in directory.iterdir() if p.name not in keep and not p.name.endswith(".lock")
    }


# -- canonical output ------------------------------------------------------------------

CANONICAL = """\
{
  "images": {
    "app": {
      "digest": "DIGEST",
      "platforms": {
        "linux/amd64": "DIGEST"
      },
      "reference": "registry.example.com/team/app:v7@DIGEST",
      "repository": "registry.example.com/team/app",
      "source": {
        "dirty": false,
        "revision": "0123abc"
      },
      "tag": "v7"
    },
    "db": {
      "digest": "DIGEST2",
      "platforms": {},
      "reference": "docker.io/library/postgres:v2@DIGEST2",
      "repository": "docker.io/library/postgres",
      "source": {},
      "tag": "v2"
    }
  },
  "issued": {},
  "schema": 2
}
""".replace("DIGEST2", D2).replace("DIGEST", D1)


def _canonical_entries() -> tuple[LockEntry, LockEntry]:
    app = entry(
        tag="v7",
        platforms={"linux/amd64": D1},
        source={"revision": "0123abc", "dirty": False},
    )
    db = entry("db", "docker.io/library/postgres", "v2", D2)
    return app, db


def test_dumps_is_canonical() -> None:
    app, db = _canonical_entries()
    text = lockfile.dumps(Lockfile({"db": db, "app": app}))
    assert text == CANONICAL
    assert text.endswith("}\n")
    assert "\r" not in text
    assert "\t" not in text


def test_written_file_is_canonical_bytes(tmp_path: Path) -> None:
    app, db = _canonical_entries()
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, db)
    lockfile.upsert(path, app)
    assert path.read_bytes() == CANONICAL.encode("utf-8")


@pytest.mark.parametrize("order", [("app", "db"), ("db", "app")])
def test_same_input_gives_identical_bytes(tmp_path: Path, order: tuple[str, str]) -> None:
    entries = dict(zip(("app", "db"), _canonical_entries(), strict=True))
    path = tmp_path / "ocirel.lock.json"
    for name in order:
        lockfile.upsert(path, entries[name])
    assert path.read_bytes() == CANONICAL.encode("utf-8")


def test_non_ascii_is_written_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry(source={"author": "Zoë"}))
    assert "Zoë".encode() in path.read_bytes()
    assert lockfile.load(path).entries["app"].source == {"author": "Zoë"}


# -- round trip ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [entry()],
        [entry(platforms={"linux/amd64": D1, "linux/arm64": D2})],
        [entry(source={"revision": "abc", "dirty": True, "url": "https://x/y"})],
        [entry(extra={"signed": True, "attestations": [D2]})],
        [entry(digest=D3)],
        [entry(), entry("db", "localhost:5000/db", "2026.01.05.1", D2)],
        [entry("web.frontend_2", "[::1]:5000/a/b", "1.4.2", D1)],
    ],
)
def test_round_trip(tmp_path: Path, entries: list[LockEntry]) -> None:
    lock = Lockfile({e.name: e for e in entries})
    assert lockfile.loads(lockfile.dumps(lock)) == lock
    path = tmp_path / "ocirel.lock.json"
    for e in entries:
        lockfile.upsert(path, e)
    assert lockfile.load(path) == lock


def test_missing_file_is_an_empty_lockfile(tmp_path: Path) -> None:
    assert lockfile.load(tmp_path / "nope.json") == Lockfile()


def test_reference_field_is_derived() -> None:
    assert entry().reference == f"{REPO}:v1@{D1}"
    assert entry().to_json()["reference"] == f"{REPO}:v1@{D1}"


def test_reference_field_is_optional_when_reading() -> None:
    data = entry_json()
    del data["reference"]
    lock = lockfile.loads(doc({"app": data}))
    assert lock.entries["app"].reference == f"{REPO}:v1@{D1}"


def test_repository_is_normalized_when_reading() -> None:
    data = {"repository": "nginx", "tag": "v1", "digest": D1}
    lock = lockfile.loads(doc({"nginx": data}))
    assert lock.entries["nginx"].repository == "docker.io/library/nginx"


def test_missing_images_is_empty() -> None:
    assert lockfile.loads('{"schema": 1}') == Lockfile()


# -- upsert ----------------------------------------------------------------------------


def test_upsert_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    result = lockfile.upsert(path, entry())
    assert result == Lockfile({"app": entry()})
    assert json.loads(path.read_text(encoding="utf-8"))["images"]["app"]["digest"] == D1


def test_upsert_keeps_other_entries_and_replaces_its_own(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry("app", tag="v1", digest=D1))
    lockfile.upsert(path, entry("db", "r.io/db", "v9", D2))
    lockfile.upsert(path, entry("app", tag="v2", digest=D2))
    lock = lockfile.load(path)
    assert set(lock.entries) == {"app", "db"}
    assert (lock.entries["app"].tag, lock.entries["app"].digest) == ("v2", D2)
    assert (lock.entries["db"].tag, lock.entries["db"].digest) == ("v9", D2)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_upsert_as_root_keeps_the_lockfile_owner_and_group(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry("app", tag="v1", digest=D1))
    os.chown(path, 1000, 1000)
    lockfile.upsert(path, entry("app", tag="v2", digest=D2))
    assert (path.stat().st_uid, path.stat().st_gid) == (1000, 1000)
    assert lockfile.load(path).entries["app"].tag == "v2"


def test_unknown_entry_fields_survive_an_upsert(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    future = entry_json(signature={"keyless": True}, sbom=D2)
    path.write_text(doc({"other": future}), encoding="utf-8")
    lockfile.upsert(path, entry())
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["images"]["other"]["signature"] == {"keyless": True}
    assert data["images"]["other"]["sbom"] == D2
    extra = lockfile.load(path).entries["other"].extra
    assert extra == {"signature": {"keyless": True}, "sbom": D2}


def test_replacing_an_entry_drops_fields_about_its_old_digest(tmp_path: Path) -> None:
    """Unknown fields describe the digest they were written with; a new entry replaces them."""
    path = tmp_path / "ocirel.lock.json"
    path.write_text(doc({"app": entry_json(signature=D1)}), encoding="utf-8")
    assert lockfile.load(path).entries["app"].extra == {"signature": D1}
    lockfile.upsert(path, entry(tag="v2", digest=D2))
    data = json.loads(path.read_text(encoding="utf-8"))["images"]["app"]
    assert "signature" not in data
    assert data["digest"] == D2


def test_unchanged_content_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry())
    before = path.stat()
    lockfile.upsert(path, entry())
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_update_applies_a_change_under_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry("app"))
    lockfile.upsert(path, entry("db", "r.io/db"))
    lockfile.update(path, lambda lock: lock.without("app"))
    assert set(lockfile.load(path).entries) == {"db"}


def test_find_repository() -> None:
    lock = Lockfile({"app": entry(), "db": entry("db", "r.io/db")})
    assert lock.find_repository("r.io/db") == entry("db", "r.io/db")
    assert lock.find_repository("r.io/other") is None


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("app", True),
        ("web.frontend_2-x", True),
        ("0", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("App", False),
        ("", False),
        ("-app", False),
        (".app", False),
        ("a/b", False),
        ("a b", False),
        ("../x", False),
    ],
)
def test_validate_name(name: str, valid: bool) -> None:
    if valid:
        assert lockfile.validate_name(name) == name
    else:
        with pytest.raises(LockfileError):
            lockfile.validate_name(name)


# -- unreadable files are errors and are never rewritten -------------------------------

GOOD = doc({"app": entry_json()})

BAD_FILES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b"  \n"),
    ("truncated", GOOD.encode()[: len(GOOD) // 2]),
    ("truncated-by-one", GOOD.encode()[:-1]),
    ("not-json", b"images: {}\n"),
    ("nul-bytes", b"\0\0\0\0"),
    ("not-utf8", b'{"schema": 1, "images": {"\xff": {}}}'),
    ("array", b"[]"),
    ("null", b"null"),
    ("string", b'"schema 1"'),
    ("number", b"1"),
    ("no-schema", b'{"images": {}}'),
    ("schema-3", doc({}, schema=3).encode()),
    ("schema-0", doc({}, schema=0).encode()),
    ("schema-string", doc({}, schema="1").encode()),
    ("schema-true", doc({}, schema=True).encode()),
    ("schema-null", doc({}, schema=None).encode()),
    ("images-array", b'{"schema": 1, "images": []}'),
    ("entry-not-object", doc({"app": "sha256:x"}).encode()),
    ("bad-name", doc({"App": entry_json()}).encode()),
    ("bad-digest", doc({"app": entry_json(digest="sha256:1234")}).encode()),
    ("upper-digest", doc({"app": entry_json(digest="sha256:" + "A" * 64)}).encode()),
    ("md5-digest", doc({"app": entry_json(digest="md5:" + "a" * 32)}).encode()),
    ("missing-digest", doc({"app": {"repository": REPO, "tag": "v1"}}).encode()),
    ("missing-tag", doc({"app": {"repository": REPO, "digest": D1}}).encode()),
    ("number-tag", doc({"app": {"repository": REPO, "tag": 1, "digest": D1}}).encode()),
    ("bad-tag", doc({"app": entry_json(tag=".v1")}).encode()),
    ("bad-repository", doc({"app": entry_json(repository="r.io/../etc")}).encode()),
    ("upper-repository", doc({"app": entry_json(repository="r.io/App")}).encode()),
    ("repository-with-tag", doc({"app": entry_json(repository="r.io/app:v1")}).encode()),
    (
        "reference-disagrees",
        doc({"app": {**entry_json(), "reference": f"{REPO}:v2@{D1}"}}).encode(),
    ),
    (
        "reference-other-digest",
        doc({"app": {**entry_json(), "reference": f"{REPO}:v1@{D2}"}}).encode(),
    ),
    ("platforms-bad-digest", doc({"app": entry_json(platforms={"linux/amd64": "x"})}).encode()),
    ("platforms-not-object", doc({"app": entry_json(platforms=[D1])}).encode()),
    ("source-not-object", doc({"app": entry_json(source="git")}).encode()),
    ("deeply-nested", b"[" * 100_000 + b"]" * 100_000),
]


@pytest.mark.parametrize(("case", "content"), BAD_FILES, ids=[c for c, _ in BAD_FILES])
def test_unreadable_lockfile_is_an_error(tmp_path: Path, case: str, content: bytes) -> None:
    path = tmp_path / "ocirel.lock.json"
    path.write_bytes(content)
    with pytest.raises(LockfileError):
        lockfile.load(path)


_NAMED_CASES = [pytest.param(case, content, id=case) for case, content in BAD_FILES]


@pytest.mark.parametrize(("case", "content"), _NAMED_CASES)
def test_unreadable_lockfile_error_names_the_file(
    tmp_path: Path, case: str, content: bytes
) -> None:
    path = tmp_path / "ocirel.lock.json"
    path.write_bytes(content)
    with pytest.raises(LockfileError) as info:
        lockfile.load(path)
    assert str(path) in str(info.value), case


@pytest.mark.parametrize(("case", "content"), BAD_FILES, ids=[c for c, _ in BAD_FILES])
def test_unreadable_lockfile_is_never_rewritten(tmp_path: Path, case: str, content: bytes) -> None:
    path = tmp_path / "ocirel.lock.json"
    path.write_bytes(content)
    before = path.stat()
    with pytest.raises(LockfileError):
        lockfile.upsert(path, entry("other", "r.io/other"))
    assert path.read_bytes() == content, case
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert leftovers(tmp_path, {path.name}) == set()


def test_unknown_schema_error_suggests_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    path.write_text(doc({}, schema=3), encoding="utf-8")
    with pytest.raises(LockfileError, match="schema 3") as info:
        lockfile.load(path)
    assert info.value.hint is not None
    assert "upgrade" in info.value.hint


def test_lockfile_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    path.mkdir()
    with pytest.raises(LockfileError):
        lockfile.upsert(path, entry())
    assert path.is_dir()


# -- file mode and symlinks ------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o644, 0o664])
def test_file_mode_is_preserved(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry())
    path.chmod(mode)
    lockfile.upsert(path, entry("db", "r.io/db"))
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert set(lockfile.load(path).entries) == {"app", "db"}


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_mode_follows_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    path = tmp_path / "ocirel.lock.json"
    old = os.umask(umask)
    try:
        lockfile.upsert(path, entry())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize("relative", [True, False])
def test_symlinked_lockfile_stays_a_symlink(tmp_path: Path, relative: bool) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    target = shared / "real.lock.json"
    lockfile.upsert(target, entry("db", "r.io/db"))
    project = tmp_path / "project"
    project.mkdir()
    link = project / "ocirel.lock.json"
    link_text = "../shared/real.lock.json" if relative else str(target)
    link.symlink_to(link_text)

    lockfile.upsert(link, entry("app"))

    assert link.is_symlink()
    assert str(link.readlink()) == link_text
    assert set(lockfile.load(target).entries) == {"app", "db"}
    assert leftovers(project, {link.name}) == set()
    assert leftovers(shared, {target.name}) == set()


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    link = tmp_path / "ocirel.lock.json"
    link.symlink_to(target.name)
    lockfile.upsert(link, entry())
    assert link.is_symlink()
    assert set(lockfile.load(target).entries) == {"app"}


# -- atomic writes ---------------------------------------------------------------------


def test_no_temp_files_after_success(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    for i in range(3):
        lockfile.upsert(path, entry(f"app{i}"))
    assert leftovers(tmp_path, {path.name}) == set()


def _raise(error: BaseException) -> Callable[..., Any]:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    return fail


INJECTED_FAILURES = [
    ("replace-enospc", "replace", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "disk is full"),
    ("fsync-enospc", "fsync", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "disk is full"),
    ("fsync-eio", "fsync", OSError(errno.EIO, os.strerror(errno.EIO)), os.strerror(errno.EIO)),
    ("fchmod-eperm", "fchmod", OSError(errno.EPERM, os.strerror(errno.EPERM)), "cannot write"),
]


@pytest.mark.parametrize(
    ("function", "error", "fragment"),
    [f[1:] for f in INJECTED_FAILURES],
    ids=[f[0] for f in INJECTED_FAILURES],
)
def test_failed_write_keeps_the_old_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    error: OSError,
    fragment: str,
) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry())
    old = path.read_bytes()
    monkeypatch.setattr(os, function, _raise(error))
    with pytest.raises(LockfileError) as info:
        lockfile.upsert(path, entry("db", "r.io/db"))
    monkeypatch.undo()
    assert fragment in str(info.value)
    assert "unchanged" in str(info.value)
    assert path.read_bytes() == old
    assert leftovers(tmp_path, {path.name}) == set()


def test_failed_first_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ocirel.lock.json"
    monkeypatch.setattr(os, "replace", _raise(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(LockfileError, match="disk is full"):
        lockfile.upsert(path, entry())
    monkeypatch.undo()
    assert not path.exists()
    assert leftovers(tmp_path, set()) == set()


def test_interrupted_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry())
    old = path.read_bytes()
    monkeypatch.setattr(os, "fsync", _raise(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        lockfile.upsert(path, entry("db", "r.io/db"))
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert leftovers(tmp_path, {path.name}) == set()


def test_temp_file_creation_failure_is_a_lockfile_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry())
    old = path.read_bytes()
    monkeypatch.setattr(tempfile, "mkstemp", _raise(OSError(errno.ENOSPC, "No space left")))
    try:
        with pytest.raises(LockfileError, match="disk is full"):
            lockfile.upsert(path, entry("db", "r.io/db"))
    finally:
        monkeypatch.undo()
        assert path.read_bytes() == old


# -- concurrent writers ----------------------------------------------------------------

WRITERS = 6
NAMES_PER_WRITER = 4


def _writer(path: str, writer: int, start: Any) -> None:
    """Runs in a spawned process: upsert a few names of its own into the shared file."""
    start.wait(30)
    for i in range(NAMES_PER_WRITER):
        name = f"w{writer}-n{i}"
        lockfile.upsert(Path(path), entry(name, f"r.io/{name}", f"v{i + 1}", D1))


def test_concurrent_writers_keep_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.upsert(path, entry("seed"))
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(path), w, start)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    expected = {"seed"} | {f"w{w}-n{i}" for w in range(WRITERS) for i in range(NAMES_PER_WRITER)}
    lock = lockfile.load(path)
    assert set(lock.entries) == expected
    assert lock.entries["w3-n2"].reference == f"r.io/w3-n2:v3@{D1}"
    assert path.read_text(encoding="utf-8") == lockfile.dumps(lock)
    assert leftovers(tmp_path, {path.name}) == set()


# -- round two: item 42 (issue 9.4): the floor -------------------------------------------


def test_r42_schema_1_lockfiles_still_load() -> None:
    old = doc({"app": entry_json()}, schema=1)
    lock = lockfile.loads(old)
    assert lock.entries["app"] == entry()
    assert lock.issued == {}
    assert lock.known_tags(REPO) == {"v1"}


def test_r42_issued_round_trips_and_is_documented_in_the_output() -> None:
    lock = Lockfile({"app": entry(tag="v2")}).with_issued(REPO, "v5")
    text = lockfile.dumps(lock)
    data = json.loads(text)
    assert data["schema"] == lockfile.SCHEMA == 2
    assert data["issued"] == {REPO: "v5"}
    assert lockfile.loads(text) == lock
    assert lock.known_tags(REPO) == {"v2", "v5"}
    assert lock.known_tags("r.io/other") == set()


def test_r42_issued_survives_removing_the_entry() -> None:
    lock = Lockfile({"app": entry(tag="v2")}).with_issued(REPO, "v5").without("app")
    assert lock.known_tags(REPO) == {"v5"}


@pytest.mark.parametrize(
    "issued",
    [[], {"reg.example.com/team/app": 3}, {"Not A Repo!": "v1"}, {REPO: "bad tag"}],
    ids=["not-object", "not-string", "bad-repository", "bad-tag"],
)
def test_r42_malformed_issued_is_an_error(issued: object) -> None:
    text = json.dumps({"schema": 2, "images": {}, "issued": issued})
    with pytest.raises(LockfileError, match="issued"):
        lockfile.loads(text)


# -- round two: item 55 (issue 9.17): duplicate keys -------------------------------------

_ENTRY_TEXT = json.dumps(entry_json())
DUPLICATES = {
    "entry-name": '{"schema": 2, "images": {"app": ENTRY, "app": ENTRY}}',
    "entry-field": '{"schema": 2, "images": {"app": {"tag": "v1", "tag": "v2"}}}',
    "top-level": '{"schema": 2, "images": {}, "images": {"app": ENTRY}}',
}


@pytest.mark.parametrize("text", DUPLICATES.values(), ids=DUPLICATES.keys())
def test_r55_duplicate_keys_are_refused_naming_the_key(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ocirel.lock.json"
    path.write_text(text.replace("ENTRY", _ENTRY_TEXT), encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(LockfileError, match=r"more than once") as info:
        lockfile.upsert(path, entry("db", "r.io/db"))
    duplicated = {"entry-name": "'app'", "entry-field": "'tag'", "top-level": "'images'"}
    assert any(key in str(info.value) for key in duplicated.values())
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


# -- round two: item 49 (issue 9.11): only a regular file is a lockfile -------------------


def _fifo(directory: Path) -> Path:
    path = directory / "ocirel.lock.json"
    os.mkfifo(path)
    return path


def _socket(directory: Path) -> Iterator[Path]:
    import socket  # noqa: PLC0415

    short = Path(tempfile.mkdtemp(prefix="ocs-"))  # AF_UNIX paths are short
    path = short / "lock.json"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    try:
        yield path
    finally:
        server.close()
        shutil.rmtree(short)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["fifo", "socket", "device", "symlink-to-fifo"])
def test_r49_a_fifo_socket_or_device_is_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    sockets = _socket(tmp_path)
    if kind == "fifo":
        path = _fifo(tmp_path)
    elif kind == "socket":
        path = next(sockets)
    elif kind == "device":
        path = Path("/dev/null")
    else:
        target = tmp_path / "pipe"
        os.mkfifo(target)
        path = tmp_path / "ocirel.lock.json"
        path.symlink_to(target)
    try:
        for action in (lambda: lockfile.load(path), lambda: lockfile.upsert(path, entry())):
            with pytest.raises(LockfileError, match="not a regular file") as info:
                action()
            assert str(path) in str(info.value) or str(path.resolve()) in str(info.value)
    finally:
        sockets.close()
    if kind == "device":
        assert Path("/dev/null").is_char_device()


# -- round two: item 59 (issue 9.21): an unwritable lockfile is found before building ----


def test_r59_writable_lockfile_passes_the_check(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    lockfile.check_writable(path)  # missing file, writable directory
    lockfile.upsert(path, entry())
    lockfile.check_writable(path)
    assert leftovers(tmp_path, {path.name}) == set()  # the probe leaves nothing behind


def test_r59_parent_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deploy").write_text("not a directory")
    with pytest.raises(LockfileError, match=r"cannot write .*deploy/ocirel.lock.json"):
        lockfile.check_writable(tmp_path / "deploy" / "ocirel.lock.json")


def test_r59_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="No such file or directory"):
        lockfile.check_writable(tmp_path / "nope" / "ocirel.lock.json")


def test_r59_lock_sibling_that_cannot_be_opened_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ocirel.lock.json"
    (tmp_path / "ocirel.lock.json.lock").mkdir()
    with pytest.raises(LockfileError, match=r"ocirel.lock.json.lock"):
        lockfile.check_writable(path)


def test_r59_permission_denied_on_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an unprivileged user meets in a directory they cannot write (root cannot be
    refused by permissions, so the refusal is simulated where the probe creates its file)."""

    def refuse(*_args: object, **_kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(LockfileError, match="Permission denied"):
        lockfile.check_writable(tmp_path / "ocirel.lock.json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_r59_read_only_directory_is_refused_as_a_user(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        with pytest.raises(LockfileError, match="Permission denied"):
            lockfile.check_writable(directory / "ocirel.lock.json")
    finally:
        directory.chmod(0o755)


def test_a_host_written_in_upper_case_by_an_older_version_loads_in_lower_case() -> None:
    upper = "Registry.Example.com/team/app"
    lock = lockfile.loads(doc({"app": entry_json(repository=upper)}))
    assert lock.entries["app"].repository == REPO
    assert lock.find_repository(REPO) is lock.entries["app"]
