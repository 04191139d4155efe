"""Platforms, and running another platform's programs: the host's platform, the
``--platform`` grammar, and whether qemu-user is registered with binfmt_misc.

A RUN step of an image built for another CPU architecture runs that architecture's
programs; the kernel hands them to a qemu-user interpreter only when one is
registered in ``/proc/sys/fs/binfmt_misc`` (``qemu-aarch64``, ``qemu-x86_64``, …).
COPY and ADD steps, and stages built ``FROM --platform=$BUILDPLATFORM`` (a
cross-compiler running natively), need no emulation. Reads files only; imports
nothing of ocirel.
"""

from __future__ import annotations

import platform as _platform
import re
from dataclasses import dataclass
from pathlib import Path

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
#: OCI architecture → the name qemu (and its binfmt_misc entry) gives it
QEMU_NAMES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "arm": "arm",
    "386": "i386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64el",
}
#: ``uname -m`` → OCI architecture
_MACHINES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
#: the platforms ``ocirel doctor`` reports besides the configured ones
COMMON_PLATFORMS = ("linux/amd64", "linux/arm64")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?")
EMULATION_FIX = (
    "register qemu-user with binfmt_misc on the build host (Debian/Ubuntu: apt-get install "
    "qemu-user-static binfmt-support; in a container the host must do it, e.g. "
    "docker run --privileged --rm tonistiigi/binfmt --install all), or build the RUN steps "
    "natively in a stage FROM --platform=$BUILDPLATFORM and COPY the result"
)


def parse_platform(text: str) -> str:
    """``os/arch[/variant]`` in lower case; ValueError for anything else."""
    value = text.strip().lower()
    if not _PLATFORM.fullmatch(value):
        raise ValueError(f"{text!r} is not os/arch[/variant] (e.g. linux/arm64)")
    return value


def host_platform(machine: str | None = None) -> str:
    """This machine's platform, ``linux/amd64`` on x86_64."""
    machine = (machine or _platform.machine()).lower()
    return f"linux/{_MACHINES.get(machine, machine)}"


def architecture(platform: str) -> str:
    return platform.split("/")[1] if "/" in platform else platform


def is_foreign(platform: str, host: str | None = None) -> bool:
    """Whether programs built for ``platform`` cannot run natively here."""
    return architecture(platform) != architecture(host or host_platform())


@dataclass(frozen=True)
class Emulation:
    """Whether RUN steps for ``platform`` can run here, and why (or why not)."""

    platform: str
    native: bool
    available: bool
    detail: str

    def to_json(self) -> dict[str, object]:
        return {
            "platform": self.platform, "native": self.native,
            "available": self.available, "detail": self.detail,
        }  # fmt: skip


def emulation(platform: str, *, host: str | None = None, root: Path = BINFMT_MISC) -> Emulation:
    """Read ``root``'s ``qemu-<arch>`` entry: is an interpreter registered and enabled?"""
    host = host or host_platform()
    if not is_foreign(platform, host):
        return Emulation(platform, native=True, available=True, detail="native")
    arch = architecture(platform)
    name = f"qemu-{QEMU_NAMES.get(arch, arch)}"
    if not (root / "status").exists() and not (root / "register").exists():
        return Emulation(platform, native=False, available=False,
                         detail=f"binfmt_misc is not mounted at {root}")  # fmt: skip
    try:
        lines = (root / name).read_text(encoding="utf-8").splitlines()
    except OSError:
        return Emulation(platform, native=False, available=False,
                         detail=f"no {root / name} entry (qemu-user not registered)")  # fmt: skip
    enabled = bool(lines) and lines[0].strip() == "enabled"
    interpreter = next((ln.split(None, 1)[1] for ln in lines if ln.startswith("interpreter ")), "?")
    state = "registered" if enabled else "registered but disabled"
    return Emulation(platform, native=False, available=enabled,
                     detail=f"{name} {state} (interpreter {interpreter.strip()})")  # fmt: skip
