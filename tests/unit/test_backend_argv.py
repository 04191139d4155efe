"""Builder adapters: argv tuples, Containerfile lookup, --build-arg parsing, export success."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel.backends import get_backend
from ocirel.backends.base import BuildEnv, BuildSpec, find_containerfile, parse_build_args
from ocirel.backends.buildah import Buildah
from ocirel.errors import CommandError, ConfigError, DigestMismatchError
from ocirel.hostinfo import StorageChoice

IMAGE = "localhost/ocirel-build-1a2b3c:latest"
DIGEST = "sha256:" + "c" * 64
FUSE = "overlay.mount_program=/usr/bin/fuse-overlayfs"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text("FROM scratch\n", encoding="utf-8")
    return ctx


def build_argv(spec: BuildSpec, env: BuildEnv | None = None) -> tuple[str, ...]:
    return tuple(Buildah().build_argv(spec, env or BuildEnv()))


# -- build -----------------------------------------------------------------------------


def test_build_argv_minimal(context: Path) -> None:
    assert build_argv(BuildSpec(context=context, image=IMAGE)) == (
        "buildah", "build", "--isolation", "chroot", "--layers",
        "--file", str(context / "Containerfile"), "--tag", IMAGE, str(context),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec_fields", "expected_part"),
    [
        ({"build_args": (("A", "1"),)}, ("--build-arg", "A=1")),
        (
            {"build_args": (("A", "1"), ("B", "x=y z"), ("A", "2"))},
            ("--build-arg", "A=1", "--build-arg", "B=x=y z", "--build-arg", "A=2"),
        ),
        ({"target": "runtime"}, ("--target", "runtime")),
        (
            {"labels": (("org.opencontainers.image.version", "v7"),
                        ("org.opencontainers.image.revision", "0123abc"))},
            ("--label", "org.opencontainers.image.version=v7",
             "--label", "org.opencontainers.image.revision=0123abc"),
        ),
        ({"timestamp": 1700000000}, ("--timestamp", "1700000000")),
        ({"timestamp": 0}, ("--timestamp", "0")),
        ({"layers": False}, ("--layers", "--no-cache")),
        ({"platform": "linux/arm64"}, ("--platform", "linux/arm64")),
        ({"cache_repo": "r.io/cache"}, ("--cache-to", "r.io/cache", "--cache-from", "r.io/cache")),
    ],
)  # fmt: skip
def test_build_argv_options(
    context: Path, spec_fields: dict[str, object], expected_part: tuple[str, ...]
) -> None:
    argv = build_argv(BuildSpec(context=context, image=IMAGE, **spec_fields))  # type: ignore[arg-type]
    assert _contains(argv, expected_part), argv
    assert argv[0] == "buildah"
    assert argv[-1] == str(context)  # the context always comes last
    assert argv[argv.index("--tag") + 1] == IMAGE


@pytest.mark.parametrize(
    "flag",
    ["--target", "--platform", "--timestamp", "--cache-to", "--cache-from", "--build-arg",
     "--label", "--no-cache", "--authfile", "--tls-verify=false", "--storage-driver"],
)  # fmt: skip
def test_build_argv_omits_unset_options(context: Path, flag: str) -> None:
    assert flag not in build_argv(BuildSpec(context=context, image=IMAGE))


@pytest.mark.parametrize(
    ("env", "global_flags", "build_flags"),
    [
        (BuildEnv(), (), ("--isolation", "chroot")),
        (BuildEnv(isolation="oci"), (), ("--isolation", "oci")),
        (BuildEnv(isolation="rootless"), (), ("--isolation", "rootless")),
        (
            BuildEnv(storage=StorageChoice("vfs", "fallback")),
            ("--storage-driver", "vfs"),
            ("--isolation", "chroot"),
        ),
        (
            BuildEnv(storage=StorageChoice("overlay", "fuse", (FUSE,))),
            ("--storage-driver", "overlay", "--storage-opt", FUSE),
            (),
        ),
        (
            BuildEnv(storage=StorageChoice(None, "configured", ("a=1", "b=2"))),
            ("--storage-opt", "a=1", "--storage-opt", "b=2"),
            (),
        ),
        (BuildEnv(authfile=Path("/run/x/auth.json")), (), ("--authfile", "/run/x/auth.json")),
        (BuildEnv(tls_verify=False), (), ("--tls-verify=false",)),
    ],
)
def test_build_argv_environment(
    context: Path, env: BuildEnv, global_flags: tuple[str, ...], build_flags: tuple[str, ...]
) -> None:
    argv = build_argv(BuildSpec(context=context, image=IMAGE), env)
    build_at = argv.index("build")
    # storage settings are global flags: they must come before the subcommand
    assert argv[1:build_at] == global_flags
    assert _contains(argv[build_at:], build_flags)
    if env.storage.driver is None:
        assert "--storage-driver" not in argv


def test_build_argv_full(context: Path) -> None:
    spec = BuildSpec(
        context=context,
        image=IMAGE,
        containerfile=context / "Containerfile",
        build_args=(("VERSION", "v7"),),
        target="final",
        labels=(("org.opencontainers.image.source", "https://github.com/o/r"),),
        layers=False,
        timestamp=0,
    )
    env = BuildEnv(
        isolation="chroot",
        storage=StorageChoice("overlay", "fuse", (FUSE,)),
        authfile=Path("/tmp/auth/auth.json"),
    )
    assert build_argv(spec, env) == (
        "buildah", "--storage-driver", "overlay", "--storage-opt", FUSE,
        "build", "--isolation", "chroot", "--layers", "--no-cache",
        "--file", str(context / "Containerfile"), "--tag", IMAGE,
        "--label", "org.opencontainers.image.source=https://github.com/o/r",
        "--build-arg", "VERSION=v7",
        "--target", "final",
        "--timestamp", "0",
        "--authfile", "/tmp/auth/auth.json",
        str(context),
    )  # fmt: skip


def test_build_argv_uses_the_given_file(context: Path, tmp_path: Path) -> None:
    other = tmp_path / "build.Containerfile"
    other.write_text("FROM scratch\n", encoding="utf-8")
    argv = build_argv(BuildSpec(context=context, image=IMAGE, containerfile=other))
    assert argv[argv.index("--file") + 1] == str(other)


def test_build_argv_never_contains_credentials(context: Path) -> None:
    argv = build_argv(BuildSpec(context=context, image=IMAGE), BuildEnv(authfile=Path("/a.json")))
    assert not any(a.startswith(("--creds", "--password")) for a in argv)


# -- export / remove -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            BuildEnv(),
            ("buildah", "push", "--quiet", "--digestfile", "/w/layout.digest",
             IMAGE, "oci:/w/layout"),
        ),
        (
            BuildEnv(storage=StorageChoice("overlay", "fuse", (FUSE,))),
            ("buildah", "--storage-driver", "overlay", "--storage-opt", FUSE,
             "push", "--quiet", "--digestfile", "/w/layout.digest", IMAGE, "oci:/w/layout"),
        ),
    ],
)  # fmt: skip
def test_export_argv(env: BuildEnv, expected: tuple[str, ...]) -> None:
    argv = Buildah().export_argv(IMAGE, Path("/w/layout"), Path("/w/layout.digest"), env)
    assert tuple(argv) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (BuildEnv(), ("buildah", "rmi", IMAGE)),
        (
            BuildEnv(storage=StorageChoice("vfs", "x")),
            ("buildah", "--storage-driver", "vfs", "rmi", IMAGE),
        ),
    ],
)
def test_remove_argv(env: BuildEnv, expected: tuple[str, ...]) -> None:
    assert tuple(Buildah().remove_argv(IMAGE, env)) == expected


def test_buildah_adapter_identity() -> None:
    backend = get_backend("buildah")
    assert isinstance(backend, Buildah)
    assert (backend.name, backend.program, backend.delivery) == ("buildah", "buildah", "layout")
    assert "apt-get install buildah" in backend.install_hint


@pytest.mark.parametrize("name", ["kaniko", "", "auto", "Buildah"])
def test_unknown_backend(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        get_backend(name)


# -- export success: exit code 0 *and* a valid digest file ------------------------------

FAKE_BUILDAH = """#!/bin/sh
# A stand-in for buildah: the behaviour comes from $FAKE_MODE.
digestfile=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--digestfile" ]; then shift; digestfile="$1"; fi
  shift
done
case "$FAKE_MODE" in
  ok) printf '%s\\n' "$FAKE_DIGEST" > "$digestfile" ;;
  nofile) echo "Writing manifest to image destination" ;;
  empty) : > "$digestfile" ;;
  garbage) echo "Storing signatures" > "$digestfile" ;;
  short) printf 'sha256:abc' > "$digestfile" ;;
  fail-after-digest)
    printf '%s' "$FAKE_DIGEST" > "$digestfile"
    echo "Writing manifest to image destination"
    echo "Error processing tar file(exit status 1): operation not permitted" >&2
    exit 125 ;;
esac
"""


@pytest.fixture
def fake_buildah(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    program = bindir / "buildah"
    program.write_text(FAKE_BUILDAH, encoding="utf-8")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_DIGEST", DIGEST)
    return program


def test_export_returns_the_digest_and_removes_the_file(
    tmp_path: Path, fake_buildah: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "ok")
    layout = tmp_path / "layout"
    assert Buildah().export(IMAGE, layout, BuildEnv(), timeout=30) == DIGEST
    assert not (tmp_path / "layout.digest").exists()


@pytest.mark.parametrize("mode", ["nofile", "empty", "garbage", "short"])
def test_export_exit_zero_without_a_valid_digest_is_a_failure(
    tmp_path: Path, fake_buildah: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("FAKE_MODE", mode)
    with pytest.raises(DigestMismatchError, match="no valid digest"):
        Buildah().export(IMAGE, tmp_path / "layout", BuildEnv(), timeout=30)
    assert not (tmp_path / "layout.digest").exists()


def test_export_non_zero_exit_is_a_failure_even_with_a_digest(
    tmp_path: Path, fake_buildah: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "fail-after-digest")
    with pytest.raises(CommandError) as info:
        Buildah().export(IMAGE, tmp_path / "layout", BuildEnv(), timeout=30)
    assert info.value.returncode == 125
    assert "buildah push (export) failed" in str(info.value)
    assert info.value.hint is not None
    assert "fuse-overlayfs" in info.value.hint


# -- find_containerfile ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["Containerfile"], "Containerfile"),
        (["Dockerfile"], "Dockerfile"),
        (["Dockerfile", "Containerfile"], "Containerfile"),  # Containerfile is preferred
        (["Containerfile/", "Dockerfile"], "Dockerfile"),  # a directory is not a file
    ],
)
def test_find_containerfile(tmp_path: Path, files: list[str], expected: str) -> None:
    for name in files:
        if name.endswith("/"):
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text("FROM scratch\n", encoding="utf-8")
    assert find_containerfile(tmp_path, None) == tmp_path / expected


def test_find_containerfile_given_file_wins(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM scratch\n", encoding="utf-8")
    given = tmp_path / "other.Dockerfile"
    given.write_text("FROM scratch\n", encoding="utf-8")
    assert find_containerfile(tmp_path, given) == given


@pytest.mark.parametrize(
    ("files", "given", "fragment"),
    [
        ([], None, "no Containerfile or Dockerfile"),
        (["containerfile", "dockerfile"], None, "no Containerfile or Dockerfile"),
        (["Containerfile"], "missing.Containerfile", "does not exist"),
    ],
)
def test_find_containerfile_errors(
    tmp_path: Path, files: list[str], given: str | None, fragment: str
) -> None:
    for name in files:
        (tmp_path / name).write_text("FROM scratch\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=fragment) as info:
        find_containerfile(tmp_path, tmp_path / given if given else None)
    if given is None:
        assert info.value.hint is not None
        assert "--file" in info.value.hint


def test_find_containerfile_context_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        find_containerfile(tmp_path / "missing", None)
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a directory"):
        find_containerfile(tmp_path / "file", None)


def test_build_argv_without_a_containerfile_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        build_argv(BuildSpec(context=tmp_path, image=IMAGE))


# -- parse_build_args ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], ()),
        (["A=1"], (("A", "1"),)),
        (["A="], (("A", ""),)),
        (["A=b=c"], (("A", "b=c"),)),
        (["A=x y", "B=2"], (("A", "x y"), ("B", "2"))),
        (["A=1", "A=2"], (("A", "1"), ("A", "2"))),  # repeated: order kept, last wins in buildah
        (["HTTP_PROXY=http://p:3128"], (("HTTP_PROXY", "http://p:3128"),)),
        (["_private=1", "a1_b2=2"], (("_private", "1"), ("a1_b2", "2"))),
        (["OCIREL_TEST_FROM_ENV"], (("OCIREL_TEST_FROM_ENV", "env-value"),)),
        (["OCIREL_TEST_NOT_SET"], ()),  # like docker: an unset bare name is dropped
        (["OCIREL_TEST_NOT_SET", "B=2"], (("B", "2"),)),
    ],
)
def test_parse_build_args(
    monkeypatch: pytest.MonkeyPatch, items: list[str], expected: tuple[tuple[str, str], ...]
) -> None:
    monkeypatch.setenv("OCIREL_TEST_FROM_ENV", "env-value")
    monkeypatch.delenv("OCIREL_TEST_NOT_SET", raising=False)
    assert parse_build_args(items) == expected


@pytest.mark.parametrize("item", ["=1", "", "A B=1", "A-B=1", "A.B=1", "-A=1", "A$=1", " A=1"])
def test_parse_build_args_rejects_bad_keys(item: str) -> None:
    with pytest.raises(ConfigError, match="invalid --build-arg"):
        parse_build_args([item])


def _contains(argv: tuple[str, ...], part: tuple[str, ...]) -> bool:
    """True if ``part`` appears in ``argv`` as a contiguous run (the empty run always does)."""
    n = len(part)
    return n == 0 or any(argv[i : i + n] == part for i in range(len(argv) - n + 1))
