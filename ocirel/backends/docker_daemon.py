"""The Docker daemon from the outside: what its failures mean, in plain words.

``daemon_problem`` names the endpoint and what is wrong when ``docker version`` fails;
``docker_hint_for`` maps docker-specific failure texts to what to do (tried before the
general rootless hints).
"""

from __future__ import annotations

import re

from ocirel.backends.hints import HintTable, hint_for

#: docker-specific failure texts → what to do (tried before the general rootless hints)
DOCKER_HINTS: HintTable = tuple(
    (re.compile(pattern, re.IGNORECASE), hint)
    for pattern, hint in (
        (
            r"cannot connect to the docker daemon|is the docker daemon running",
            "no Docker engine is reachable: start one (`dockerd`, or `systemctl start docker`; "
            "check DOCKER_HOST / docker context), or use a daemonless builder: --backend buildah",
        ),
        (
            r"permission denied while trying to connect to the docker daemon",
            "this user may not use the Docker socket: add it to the docker group, or use a "
            "rootless builder: --backend buildah or --backend podman",
        ),
        (
            r"server gave http response to https client",
            'the registry speaks plain http: add it to "insecure-registries" in '
            "/etc/docker/daemon.json and restart dockerd (loopback registries are allowed "
            "by default), or use --backend buildah with --insecure",
        ),
        (
            r"x509: certificate signed by unknown authority|certificate is not trusted",
            "the daemon does not trust the registry's CA: copy it to "
            "/etc/docker/certs.d/HOST:PORT/ca.crt, or use --backend buildah with --ca-file",
        ),
        (
            r"buildkit is enabled but the buildx component is missing",
            "install docker buildx, or set DOCKER_BUILDKIT=0 for the classic builder",
        ),
    )
)


def docker_hint_for(text: str) -> str | None:
    return hint_for(text, DOCKER_HINTS)


DEFAULT_HOST = "unix:///var/run/docker.sock"
_DAEMON_AT = re.compile(r"docker daemon(?: socket)? at (\S+?)[.:]?(?:\s|$)", re.IGNORECASE)
_NO_ENGINE = re.compile(
    r"cannot connect to the docker daemon|is the docker daemon running|connection refused"
    r"|no such file or directory|error during connect|nil pointer evaluating",
    re.IGNORECASE,
)


def daemon_problem(output: str, host: str | None, returncode: int = 1) -> str:
    """Plain words for a failed ``docker version``: which endpoint, and what is wrong.

    Docker's own texts vary by client (Debian's 20.10 may print only a template error
    for ``docker info --format``), so the endpoint is named from the message, the
    current context or ``DOCKER_HOST``, falling back to the default socket.
    """
    found = _DAEMON_AT.search(output)
    where = (found.group(1) if found else None) or host or DEFAULT_HOST
    if "permission denied" in output.lower():
        return f"permission denied on the Docker socket at {where}"
    if not output or _NO_ENGINE.search(output):
        return f"no Docker engine at {where} (start one: `dockerd`, or `systemctl start docker`)"
    lines = output.splitlines()
    detail = lines[-1].strip() if lines else f"exit code {returncode}"
    return f"no reachable Docker engine at {where} ({detail})"
