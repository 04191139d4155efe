"""What a Containerfile builds from: its base images. Pure text work, no I/O.

Used to decide whether the builder may be given one registry's settings (TLS, an
authfile): only when every image it pulls is on that registry. ``ONBUILD`` steps of a
base image are not visible here; a base on a registry that allows plain http is the
user's choice of trust.
"""

from __future__ import annotations

import re

_FROM = re.compile(r"^\s*FROM\s+(.*)$", re.IGNORECASE)
_OPTION = re.compile(r"^--[A-Za-z-]+(=\S*)?$")


def logical_lines(text: str) -> list[str]:
    """The instructions of ``text``: comments dropped, ``\\`` continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return lines


_FROM_OPTION = re.compile(r"(?:^|[\s,])--from=(\S+)|[\s,]from=([^,\s]+)", re.IGNORECASE)


def base_images(text: str) -> list[str] | None:
    """Every image the build pulls, in order: what the stages start from and what
    ``COPY --from=`` / ``RUN --mount=…,from=`` name, without ``scratch``, earlier stages
    and stage numbers; None when one is only known at build time (``FROM $BASE``)."""
    stages: set[str] = set()
    bases: list[str] = []
    for line in logical_lines(text):
        match = _FROM.match(line)
        if not match:
            for found in _FROM_OPTION.finditer(line):
                image = found.group(1) or found.group(2)
                if "$" in image:
                    return None
                if image.lower() not in stages and not image.isdigit():
                    bases.append(image)
            continue
        words = [w for w in match.group(1).split() if not _OPTION.match(w)]
        if not words:
            continue
        image = words[0]
        if "$" in image:
            return None
        if image.lower() != "scratch" and image.lower() not in stages:
            bases.append(image)
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
    return bases
