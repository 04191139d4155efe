"""Build contexts that need no base image.

No public image can be pulled here, so every test image starts ``FROM scratch``,
copies the static busybox (package busybox-static) to ``/bin/busybox`` and installs
its applets, after which shell-form ``RUN`` lines work.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Environment variable naming a statically linked busybox (default ``/usr/bin/busybox``).
BUSYBOX_ENV = "OCIREL_TEST_BUSYBOX"
_BUSYBOX_CANDIDATES = ("/usr/bin/busybox", "/bin/busybox")

#: A ``RUN`` line that makes every build's last layer different.
UNIQUE_RUN = "RUN echo $RANDOM$RANDOM$RANDOM > /unique"
#: A ``RUN`` line that fails the build.
FAILING_RUN = "RUN false"


def busybox_path() -> Path | None:
    """The static busybox to copy into images, or ``None`` when absent."""
    override = os.environ.get(BUSYBOX_ENV)
    candidates = (override,) if override else _BUSYBOX_CANDIDATES
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def containerfile_text(instructions: Sequence[str] = ()) -> str:
    lines = [
        "FROM scratch",
        "COPY busybox /bin/busybox",
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
        *instructions,
    ]
    return "\n".join(lines) + "\n"


def write_build_context(
    directory: Path,
    instructions: Sequence[str] = (),
    *,
    files: Mapping[str, bytes] | None = None,
    payload_mb: int = 0,
    unique: bool = False,
    containerfile: str = "Containerfile",
) -> Path:
    """Write a buildable context into ``directory`` and return ``directory``.

    ``instructions`` follow the busybox preamble verbatim. ``files`` are written
    into the context (relative paths). ``payload_mb`` adds ``payload.bin`` of that
    many MiB of random bytes, copied to ``/payload.bin``. ``unique`` copies a random
    ``nonce`` file to ``/nonce`` so that two contexts never build the same image,
    while the same context stays reproducible.
    """
    busybox = busybox_path()
    if busybox is None:
        raise FileNotFoundError("static busybox not found: install busybox-static")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(busybox, directory / "busybox")
    (directory / "busybox").chmod(0o755)
    extra: list[str] = []
    for name, content in (files or {}).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if unique:
        (directory / "nonce").write_text(os.urandom(16).hex() + "\n")
        extra.append("COPY nonce /nonce")
    if payload_mb:
        with (directory / "payload.bin").open("wb") as handle:
            for _ in range(payload_mb):
                handle.write(os.urandom(1024 * 1024))
        extra.append("COPY payload.bin /payload.bin")
    (directory / containerfile).write_text(containerfile_text([*extra, *instructions]))
    return directory
