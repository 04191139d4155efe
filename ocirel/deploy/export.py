"""Export the lockfile in the shapes deployment tools read (``ocirel lock export``).

Every format is deterministic (entries sorted by lockfile name, LF line endings, one
trailing newline) and written by hand, so no YAML library is loaded and the same
lockfile always gives the same bytes.

``json``
    ``{"<name>": "<repository>:<tag>@<digest>", …}`` — the one value a script needs
    (``jq -r .app``). The lockfile itself already is canonical JSON with every field,
    so this format does not repeat it.
``env``
    ``APP_IMAGE=<repository>:<tag>@<digest>`` lines for ``docker --env-file``,
    ``$GITHUB_ENV`` or ``set -a; . file``. The variable is the name in upper case with
    every other character than a letter or digit turned into ``_`` (``my-app.v2`` →
    ``MY_APP_V2_IMAGE``), prefixed with ``_`` when it would start with a digit; two
    names giving the same variable are an error.
``kustomize``
    An ``images:`` block of ``{name, newTag, digest}``. kustomize compares ``name``
    with the name part of each image in the resources *as written*, with no
    normalisation (its ``image.IsImageMatched``: ``^name(:tag)?(@digest)?$``), so
    ``name: nginx`` pins ``nginx:1.25`` but not ``docker.io/library/nginx:1.25``. A
    Docker Hub repository therefore gets one entry per spelling that means it:
    ``nginx``, ``docker.io/nginx``, ``docker.io/library/nginx``,
    ``index.docker.io/nginx``, ``index.docker.io/library/nginx`` (``bitnami/redis``,
    ``docker.io/bitnami/redis``, ``index.docker.io/bitnami/redis`` outside
    ``library/``); entries naming no image in the resources do nothing. Other
    repositories are written once, in full and with the host in lower case.
    Not matched, because kustomize cannot be told: ``registry-1.docker.io/…`` and a
    host written in another case (``Registry.Example.com/…``). With both ``newTag``
    and ``digest`` set, kustomize 4+
    (``kubectl`` >= 1.21) renders ``name:tag@digest``; kubectl 1.20 (Debian 12's
    ``kubernetes-client``) renders ``name@digest``, dropping the tag. Either way the
    image is pinned to the digest.
``helm``
    Values ``<name>: {repository, tag, digest}`` with the full repository, for
    ``helm install -f``. Charts that read ``image.repository``/``image.tag`` need the
    keys placed under their own structure; this is the common shape.
``images-lock``
    A Carvel imgpkg ``ImagesLock`` (``apiVersion: imgpkg.carvel.dev/v1alpha1``): one
    ``image: <repository>@<digest>`` per entry, annotated with
    ``kbld.carvel.dev/id: <repository>:<tag>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

from ocirel.errors import ConfigError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.reference import DOCKER_HUB

FORMATS = ("json", "env", "kustomize", "helm", "images-lock")
IMAGES_LOCK_API_VERSION = "imgpkg.carvel.dev/v1alpha1"
KBLD_ID_ANNOTATION = "kbld.carvel.dev/id"
#: The hosts Docker Hub images are written with in manifests (short names aside).
_HUB_SPELLINGS = (DOCKER_HUB, "index.docker.io")

_PLAIN_RE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@+-]*")
_NON_STRING_RE = re.compile(
    r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o[0-7_]+)"
    r"|y|n|yes|no|on|off|true|false|null",
    re.IGNORECASE,
)


def export(lock: Lockfile, fmt: str) -> str:
    """The text of ``lock`` in format ``fmt`` (one of :data:`FORMATS`)."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return renderer(lock)


def env_name(name: str) -> str:
    """The environment variable for lockfile name ``name`` (``my-app`` → ``MY_APP_IMAGE``)."""
    base = re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_IMAGE"
    return f"_{base}" if base[0].isdigit() else base


def kustomize_name(repository: str) -> str:
    """How kustomize resources usually spell ``repository`` (Docker Hub shortened)."""
    return kustomize_names(repository)[0]


def kustomize_names(repository: str) -> tuple[str, ...]:
    """Every spelling of ``repository`` that kustomize must be given to match it, the
    usual one first (kustomize compares names as written, see the module docstring)."""
    hub = f"{DOCKER_HUB}/"
    if not repository.startswith(hub):
        return (repository,)
    path = repository[len(hub) :]
    short = path.removeprefix("library/")
    paths = (short, path) if short != path else (path,)
    return (short, *(f"{host}/{p}" for host in _HUB_SPELLINGS for p in paths))


def _entries(lock: Lockfile) -> Iterator[LockEntry]:
    for name in sorted(lock.entries):
        yield lock.entries[name]


def _json(lock: Lockfile) -> str:
    data = {entry.name: entry.reference for entry in _entries(lock)}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _env(lock: Lockfile) -> str:
    owners: dict[str, str] = {}
    lines: list[str] = []
    for entry in _entries(lock):
        variable = env_name(entry.name)
        if variable in owners:
            raise ConfigError(
                f"lockfile names {owners[variable]!r} and {entry.name!r} both become {variable}",
                hint="rename one of the images so the names differ in more than punctuation",
            )
        owners[variable] = entry.name
        lines.append(f"{variable}={entry.reference}\n")
    return "".join(lines)


def _kustomize(lock: Lockfile) -> str:
    lines = ["images:"]
    for entry in _entries(lock):
        for name in kustomize_names(entry.repository):
            lines += [
                f"- name: {_scalar(name)}",
                f"  newTag: {_scalar(entry.tag)}",
                f"  digest: {_scalar(entry.digest)}",
            ]
    if len(lines) == 1:
        lines[0] += " []"
    return "\n".join(lines) + "\n"


def _helm(lock: Lockfile) -> str:
    lines: list[str] = []
    for entry in _entries(lock):
        lines += [
            f"{_scalar(entry.name)}:",
            f"  repository: {_scalar(entry.repository)}",
            f"  tag: {_scalar(entry.tag)}",
            f"  digest: {_scalar(entry.digest)}",
        ]
    return "\n".join(lines) + "\n" if lines else "{}\n"


def _images_lock(lock: Lockfile) -> str:
    lines = [f"apiVersion: {IMAGES_LOCK_API_VERSION}", "kind: ImagesLock", "images:"]
    for entry in _entries(lock):
        lines += [
            f"- image: {_scalar(f'{entry.repository}@{entry.digest}')}",
            "  annotations:",
            f"    {KBLD_ID_ANNOTATION}: {_scalar(f'{entry.repository}:{entry.tag}')}",
        ]
    if len(lines) == 3:
        lines[2] += " []"
    return "\n".join(lines) + "\n"


def _scalar(value: str) -> str:
    """``value`` as a YAML scalar: plain when YAML reads it back as this string."""
    if _PLAIN_RE.fullmatch(value) and not _NON_STRING_RE.fullmatch(value):
        return value
    return json.dumps(value)


_RENDERERS: dict[str, Callable[[Lockfile], str]] = {
    "json": _json,
    "env": _env,
    "kustomize": _kustomize,
    "helm": _helm,
    "images-lock": _images_lock,
}

__all__ = ["FORMATS", "env_name", "export", "kustomize_name", "kustomize_names"]
