"""Known rootless and registry failure texts → what to do about them.

Matched only *after* a command has already failed (non-zero exit): a hint explains,
it never decides success.
"""

from __future__ import annotations

import re

from ocirel.errors import CommandError, CommandTimeoutError

#: (pattern, what to do) pairs, tried in order
HintTable = tuple[tuple[re.Pattern[str], str], ...]

HINTS: HintTable = tuple(
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), hint)
    for pattern, hint in (
        (
            r"cannot clone: operation not permitted|cannot re-exec process",
            "user namespaces are unavailable here: use chroot isolation "
            "(OCIREL_ISOLATION=chroot) and allow unshare/clone in the seccomp profile",
        ),
        (
            r"user namespaces are not enabled",
            "raise the user.max_user_namespaces sysctl "
            "(e.g. sysctl -w user.max_user_namespaces=15000)",
        ),
        (
            r"potentially insufficient uids or gids",
            "add /etc/subuid and /etc/subgid ranges for this user (65536 ids each, "
            "e.g. usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER), "
            "then run: podman system migrate",
        ),
        (
            r"newuidmap: write to uid_map failed|newgidmap: write to gid_map failed",
            "newuidmap/newgidmap need setuid root or file capabilities: "
            "install the uidmap package (apt-get install uidmap)",
        ),
        (
            r"server gave http response to https client",
            "the registry speaks plain http: mark it insecure explicitly (--insecure)",
        ),
        (
            r"error processing tar file.*operation not permitted",
            "rootless overlay cannot create device nodes here: use fuse-overlayfs or "
            "OCIREL_STORAGE_DRIVER=vfs",
        ),
        (
            r"mounting \"?/?proc\"?.*operation not permitted",
            "the OCI runtime cannot mount /proc here: use chroot isolation "
            "(OCIREL_ISOLATION=chroot)",
        ),
        (
            r"exec format error",
            "a RUN step ran a program built for another CPU architecture and no emulator "
            "took it: register qemu-user with binfmt_misc (apt-get install qemu-user-static "
            "binfmt-support), or run those steps in a stage FROM --platform=$BUILDPLATFORM; "
            "`ocirel doctor` shows which platforms can be emulated here",
        ),
        (
            r"no space left on device",
            "the disk holding container storage is full: remove unused images "
            "(buildah rmi --prune) or point storage elsewhere",
        ),
    )
)


def hint_for(text: str, table: HintTable = HINTS) -> str | None:
    """The first hint of ``table`` whose pattern appears in ``text``, or None."""
    for pattern, hint in table:
        if pattern.search(text):
            return hint
    return None


def with_hint(exc: CommandError, message: str) -> CommandError:
    """A copy of ``exc`` with a clearer message and the matching hint, if any."""
    cls = CommandTimeoutError if isinstance(exc, CommandTimeoutError) else CommandError
    return cls(
        f"{message}: {exc.message}"
        if isinstance(exc, CommandTimeoutError)
        else f"{message} (exit code {exc.returncode})",
        argv=exc.argv,
        returncode=exc.returncode,
        stderr_tail=exc.stderr_tail,
        hint=hint_for(exc.stderr_tail) or exc.hint,
    )
