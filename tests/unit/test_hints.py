"""Rootless failure hints: known stderr text after a failed command → what to do."""

from __future__ import annotations

import pytest

from ocirel.backends.hints import HINTS, hint_for, with_hint
from ocirel.errors import CommandError, CommandTimeoutError

# (sample stderr, words the hint must contain) — one or more rows per line of the table in
# REFERENCE.md "Rootless failure hints", with text as the builders print it.
ROWS: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "no-userns-clone",
        "Error: cannot clone: Operation not permitted\nError: cannot re-exec process",
        ("user namespaces", "chroot", "seccomp"),
    ),
    (
        "no-userns-reexec",
        'level=error msg="cannot re-exec process to join the existing user namespace"',
        ("user namespaces", "chroot"),
    ),
    (
        "userns-disabled",
        "Error: user namespaces are not enabled in /proc/sys/user/max_user_namespaces",
        ("max_user_namespaces",),
    ),
    (
        "no-subids",
        'Error: writing blob: adding layer with blob "sha256:ab": processing tar file'
        "(potentially insufficient UIDs or GIDs available in user namespace "
        "(requested 0:42 for /etc/shadow): Check /etc/subuid and /etc/subgid): lchown "
        "/etc/shadow: invalid argument",
        ("/etc/subuid", "/etc/subgid", "65536", "podman system migrate"),
    ),
    (
        "newuidmap",
        "newuidmap: write to uid_map failed: Operation not permitted\n"
        'Error: cannot setup namespace using "/usr/bin/newuidmap": exit status 1',
        ("newuidmap", "uidmap"),
    ),
    (
        "newgidmap",
        "newgidmap: write to gid_map failed: Operation not permitted",
        ("newgidmap", "uidmap"),
    ),
    (
        "http-registry",
        'Error: pinging container registry 127.0.0.1:5000: Get "https://127.0.0.1:5000/v2/": '
        "http: server gave HTTP response to HTTPS client",
        ("plain http", "insecure"),
    ),
    (
        "overlay-devices",
        "Error: committing container: copying layers: ApplyLayer: Error processing tar file"
        "(exit status 1): operation not permitted",
        ("fuse-overlayfs", "vfs"),
    ),
    (
        "overlay-devices-multiline",
        "Error processing tar file(exit status 1):\n  mknod /dev/null: operation not permitted",
        ("fuse-overlayfs", "vfs"),
    ),
    (
        "mount-proc",
        'error mounting "/proc" to rootfs at "/proc": mount proc:/proc, flags: 0xe: '
        "operation not permitted",
        ("/proc", "chroot"),
    ),
    (
        "mount-proc-unquoted",
        "Error: mounting /proc: operation not permitted",
        ("/proc", "chroot"),
    ),
    (
        "foreign-run-without-qemu",
        "error running container: from /usr/bin/crun creating container for [/bin/sh -c "
        "apk add curl]: exec container process `/bin/sh`: Exec format error",
        ("qemu-user", "binfmt_misc", "BUILDPLATFORM"),
    ),
    (
        "disk-full",
        "Error: writing blob: storing blob to file: write /var/tmp/x: no space left on device",
        ("full", "rmi"),
    ),
]


@pytest.mark.parametrize(("sample", "words"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_known_failure_gets_its_hint(sample: str, words: tuple[str, ...]) -> None:
    hint = hint_for(sample)
    assert hint is not None
    for word in words:
        assert word in hint


@pytest.mark.parametrize("sample", [r[1] for r in ROWS], ids=[r[0] for r in ROWS])
def test_hints_ignore_case(sample: str) -> None:
    expected = hint_for(sample)
    assert expected is not None
    assert hint_for(sample.upper()) == expected
    assert hint_for(sample.lower()) == expected


@pytest.mark.parametrize("sample", [r[1] for r in ROWS], ids=[r[0] for r in ROWS])
def test_hint_is_found_inside_a_long_log(sample: str) -> None:
    log = "STEP 1/3: FROM scratch\n" * 50 + sample + "\n" + "cleanup done\n" * 50
    assert hint_for(log) == hint_for(sample)


def test_every_table_row_is_exercised() -> None:
    hints = {hint_for(sample) for _, sample, _ in ROWS}
    assert hints == {hint for _, hint in HINTS}


@pytest.mark.parametrize(
    "sample",
    [
        "container_linux.go:380: starting container process caused: process_linux.go:545: "
        'container init caused: rootfs_linux.go:76: mounting "proc" to rootfs at "/proc" '
        "caused: mount through procfd: operation not permitted",
        "runc create failed: unable to start container process: error during container init: "
        'error mounting "proc" to rootfs at "/proc": mount proc:/proc (via /proc/self/fd/6), '
        "flags: 0xe: operation not permitted",
    ],
)
def test_runc_proc_mount_failure_gets_the_chroot_hint(sample: str) -> None:
    hint = hint_for(sample)
    assert hint is not None
    assert "chroot" in hint
    assert "/proc" in hint


@pytest.mark.parametrize(
    "text",
    [
        "",
        "STEP 1/2: FROM scratch\nSTEP 2/2: RUN false\nError: building at STEP 2: exit status 1",
        "Error: initializing source docker://r.io/app:v1: reading manifest v1: manifest unknown",
        "error: unauthorized: authentication required",
        "operation not permitted",  # on its own, it says nothing about the cause
        "Error processing tar file(exit status 1): unexpected EOF",
        "user namespaces are enabled",
        "dial tcp 127.0.0.1:5000: connect: connection refused",
    ],
)
def test_unrelated_text_gets_no_hint(text: str) -> None:
    assert hint_for(text) is None


def test_with_hint_adds_the_hint_and_keeps_the_details() -> None:
    error = CommandError(
        "buildah build … failed with exit code 125",
        argv=["buildah build --isolation chroot ."],
        returncode=125,
        stderr_tail="Error: user namespaces are not enabled in /proc/sys/user/max_user_namespaces",
    )
    better = with_hint(error, "buildah build failed")
    assert type(better) is CommandError
    assert str(better) == "buildah build failed (exit code 125)"
    assert better.hint is not None
    assert "max_user_namespaces" in better.hint
    assert (better.argv, better.returncode, better.stderr_tail) == (
        error.argv,
        error.returncode,
        error.stderr_tail,
    )


def test_with_hint_keeps_an_existing_hint_when_nothing_matches() -> None:
    error = CommandError("x", argv=["x"], returncode=1, stderr_tail="boom", hint="install x")
    assert with_hint(error, "x failed").hint == "install x"
    error = CommandError("x", argv=["x"], returncode=1, stderr_tail="boom")
    assert with_hint(error, "x failed").hint is None


def test_with_hint_keeps_a_timeout_a_timeout() -> None:
    error = CommandTimeoutError(
        "buildah did not finish within 10 s and was stopped",
        argv=["buildah push"],
        returncode=None,
        stderr_tail="no space left on device",
    )
    better = with_hint(error, "buildah push (export) failed")
    assert isinstance(better, CommandTimeoutError)
    assert str(better) == (
        "buildah push (export) failed: buildah did not finish within 10 s and was stopped"
    )
    assert better.hint is not None
    assert "full" in better.hint
