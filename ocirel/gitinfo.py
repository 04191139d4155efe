"""What source an image was built from: git revision, dirtiness, remote URL, commit time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ocirel import runner
from ocirel.errors import ConfigError, OcirelError


@dataclass(frozen=True)
class SourceInfo:
    revision: str | None = None
    dirty: bool | None = None
    url: str | None = None
    commit_time: int | None = None

    def lock_fields(self) -> dict[str, object]:
        if self.revision is None:
            return {}
        return {"revision": self.revision, "dirty": bool(self.dirty)}


_SCP_RE = re.compile(r"^[\w.-]+@([\w.-]+):(?!//)(.+?)(?:\.git)?/?$")


def public_url(remote: str) -> str | None:
    """A remote URL fit for a label: no user-info, no query; scp-style becomes https."""
    remote = remote.strip()
    scp = _SCP_RE.match(remote)
    if scp:
        return f"https://{scp.group(1)}/{scp.group(2)}"
    parts = urlsplit(remote)
    if parts.scheme not in ("https", "http", "ssh", "git") or not parts.hostname:
        return None
    # an ssh or git port says nothing about where the web page is
    keep_port = parts.scheme in ("http", "https") and parts.port
    host = parts.hostname + (f":{parts.port}" if keep_port else "")
    path = re.sub(r"\.git/?$", "", parts.path)
    scheme = "https" if parts.scheme in ("ssh", "git") else parts.scheme
    return urlunsplit((scheme, host, path, "", ""))


def source_info(context: Path) -> SourceInfo:
    """Git facts about ``context``; an empty :class:`SourceInfo` outside git or without git."""
    if runner.which("git") is None:
        return SourceInfo()
    base = ["git", "-C", str(context)]
    try:
        log = runner.run([*base, "log", "-1", "--format=%H %ct"], check=False, timeout=30)
        if not log.ok or not log.stdout.strip():
            return SourceInfo()
        revision, _, commit_time = log.stdout.strip().partition(" ")
        status = runner.run([*base, "status", "--porcelain", "--", "."], check=False, timeout=60)
        remote = runner.run(
            [*base, "config", "--get", "remote.origin.url"], check=False, timeout=30
        )
    except OcirelError:
        return SourceInfo()
    return SourceInfo(
        revision=revision,
        dirty=bool(status.stdout.strip()) if status.ok else None,
        url=public_url(remote.stdout) if remote.ok else None,
        commit_time=int(commit_time) if commit_time.isdigit() else None,
    )


def source_date_epoch(context: Path, env: Mapping[str, str]) -> tuple[int | None, str]:
    """The build timestamp for reproducible builds, and where it came from.

    ``SOURCE_DATE_EPOCH`` from the environment, else the time of the last git commit
    that touched ``context`` (not the last commit of the repository), else None
    (builds use the wall clock). A commit elsewhere in the repository then leaves the
    timestamp, the layers and so the digest unchanged: no new version, and the layer
    cache of the previous build stays valid (``--timestamp`` is stamped on every file).
    """
    value = env.get("SOURCE_DATE_EPOCH")
    if value is not None:
        if not value.strip().isdigit():
            raise ConfigError(f"SOURCE_DATE_EPOCH must be a whole number of seconds, got {value!r}")
        return int(value), "SOURCE_DATE_EPOCH"
    if runner.which("git") is None:
        return None, "no git"
    try:
        log = runner.run(
            ["git", "-C", str(context), "log", "-1", "--format=%ct", "--", "."],
            check=False, timeout=60,
        )  # fmt: skip
    except OcirelError:
        return None, "git failed"
    text = log.stdout.strip()
    if log.ok and text.isdigit():
        return int(text), "last git commit touching the build context"
    if log.ok:  # a git checkout, but no commit holds the context yet
        return None, "the build context has no commit yet"
    return None, "not a git checkout"
