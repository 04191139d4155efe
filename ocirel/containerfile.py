"""What a Containerfile builds from: its base images. Pure text work, no I/O.

Used to decide whether the builder may be given one registry's settings (TLS, an
authfile): only when every image it pulls is on that registry. ``ONBUILD`` steps of a
base image are not visible here; a base on a registry that allows plain http is the
user's choice of trust.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_FROM = re.compile(r"^\s*FROM\s+(.*)$", re.IGNORECASE)
_ARG = re.compile(r"^\s*ARG\s+(.*)$", re.IGNORECASE)
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")
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


def global_args(text: str) -> dict[str, str]:
    """The ``ARG NAME=default`` lines before the first ``FROM``: the only ones a
    ``FROM`` may use. A bare ``ARG NAME`` has no default."""
    args: dict[str, str] = {}
    for line in logical_lines(text):
        if _FROM.match(line):
            break
        match = _ARG.match(line)
        for word in match.group(1).split() if match else ():
            name, sep, value = word.partition("=")
            if sep:
                args[name] = value.strip("\"'")
    return args


def expand(word: str, args: Mapping[str, str]) -> str | None:
    """``word`` with ``$NAME``, ``${NAME}``, ``${NAME:-default}`` and ``${NAME:+word}``
    replaced from ``args`` as buildah and docker do; None when a name has no value."""
    unknown = False

    def value(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match.group(1) or match.group(4)
        given = args.get(name)
        if match.group(2) == "-":
            return given if given else match.group(3)
        if match.group(2) == "+":
            return match.group(3) if given else ""
        if given is None:
            unknown = True
            return ""
        return given

    expanded = _VARIABLE.sub(value, word)
    return None if unknown or not expanded or "$" in expanded else expanded  # nested: unknown


def base_images(text: str, build_args: Mapping[str, str] | None = None) -> list[str] | None:
    """Every image the build pulls, in order: what the stages start from and what
    ``COPY --from=`` / ``RUN --mount=…,from=`` name, without ``scratch``, earlier stages
    and stage numbers. ``$NAME`` takes its value from ``build_args``, else from an
    ``ARG`` default before the first ``FROM``; None when an image is only known at
    build time (a name with no value)."""
    args = {**global_args(text), **(build_args or {})}
    stages: set[str] = set()
    bases: list[str] = []
    for line in logical_lines(text):
        match = _FROM.match(line)
        if not match:
            for found in _FROM_OPTION.finditer(line):
                image = expand(found.group(1) or found.group(2), args)
                if image is None:
                    return None
                if image.lower() not in stages and not image.isdigit():
                    bases.append(image)
            continue
        words = [w for w in match.group(1).split() if not _OPTION.match(w)]
        if not words:
            continue
        image = expand(words[0], args)
        if image is None:
            return None
        if image.lower() != "scratch" and image.lower() not in stages:
            bases.append(image)
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
    return bases


def from_arguments(text: str) -> dict[str, str]:
    """For each ``FROM $NAME`` / ``FROM ${NAME}`` whose ARG has a default before the
    first ``FROM``: that image → ``NAME`` (the build argument that chooses it)."""
    defaults = global_args(text)
    named: dict[str, str] = {}
    for line in logical_lines(text):
        match = _FROM.match(line)
        words = [w for w in match.group(1).split() if not _OPTION.match(w)] if match else []
        whole = _VARIABLE.fullmatch(words[0]) if words else None
        if whole is None or whole.group(2):  # not a bare $NAME (a ${NAME:-x} is not one)
            continue
        image = expand(words[0], defaults)
        if image is not None:
            named[image] = whole.group(1) or whole.group(4)
    return named


_RUN = re.compile(r"^\s*RUN\s", re.IGNORECASE)
_NATIVE_PLATFORM = re.compile(r"^--platform=\$\{?BUILDPLATFORM\}?$", re.IGNORECASE)


def emulated_run_stages(text: str, target: str | None = None) -> list[str]:
    """The stages (up to ``target``, else all) whose RUN steps run as the target
    platform's programs: those with a RUN instruction that are not built ``FROM
    --platform=$BUILDPLATFORM`` (a stage that runs natively, e.g. a cross-compiler).
    Each is named by its ``AS`` name, else its number. A stage that names another
    fixed ``--platform`` counts as emulated too: only the builder knows whether it is
    native there."""
    found: list[str] = []
    stage: str | None = None
    native = False
    number = -1
    for line in logical_lines(text):
        match = _FROM.match(line)
        if match:
            if stage is not None and target is not None and stage.lower() == target.lower():
                break
            number += 1
            words = match.group(1).split()
            native = any(_NATIVE_PLATFORM.match(word) for word in words)
            plain = [word for word in words if not _OPTION.match(word)]
            stage = plain[2] if len(plain) >= 3 and plain[1].lower() == "as" else str(number)
        elif stage is not None and not native and _RUN.match(line) and stage not in found:
            found.append(stage)
    return found
