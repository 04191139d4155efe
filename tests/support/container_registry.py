"""The registry fixture's other path: testcontainers' ``DockerRegistryContainer``.

When a Docker engine is reachable, a registry can run as a container. Public images
cannot be pulled on the CI machines, so the image is **built locally from the
distribution binary** that the ``docker-registry`` package installs:

    FROM scratch
    COPY docker-registry /bin/registry            (dynamically linked against glibc,
    COPY libc.so.6, ld-linux-x86-64.so.2 ...       so the two libraries go in too)
    COPY config.yml /etc/docker/registry/config.yml
    ENTRYPOINT ["/bin/registry", "serve", "/etc/docker/registry/config.yml"]

tagged ``localhost/ocirel-test-registry:<version>`` (:func:`build_registry_image`).
On a laptop with Docker Hub access, ``OCIREL_TEST_REGISTRY_IMAGE=registry:2`` uses the
upstream image instead.

Test traffic may only use loopback addresses, and the CI engine runs without a bridge
network, so the container uses the **host network** and listens on a free port of
127.0.0.1 (``REGISTRY_HTTP_ADDR``) instead of publishing a port. Ryuk (the reaper
container) cannot be pulled either: ``TESTCONTAINERS_RYUK_DISABLED=true``; the fixture
stops its container itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.registry import RegistryServer, free_port, registry_binary

IMAGE_ENV = "OCIREL_TEST_REGISTRY_IMAGE"
LOCAL_IMAGE = "localhost/ocirel-test-registry:2.8"
_CONFIG = """version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
"""


def _docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _shared_libraries(binary: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    found: list[Path] = []
    for line in out.splitlines():
        parts = line.split()
        path = next((p for p in parts if p.startswith("/")), None)
        if path:
            found.append(Path(path))
    return found


def build_registry_image(image: str = LOCAL_IMAGE) -> str:
    """Build ``image`` from the installed distribution binary (once per engine)."""
    if _docker("image", "inspect", image).returncode == 0:
        return image
    binary = registry_binary()
    if binary is None:
        raise RuntimeError("docker-registry not found: install the docker-registry package")
    with tempfile.TemporaryDirectory(prefix="registry-image-") as scratch:
        context = Path(scratch)
        shutil.copy2(binary, context / "registry")
        lines = ["FROM scratch", "COPY registry /bin/registry"]
        for number, library in enumerate(_shared_libraries(Path(binary))):
            name = f"lib{number}"
            shutil.copy2(library.resolve(), context / name)
            lines.append(f"COPY {name} {library}")
        (context / "config.yml").write_text(_CONFIG)
        lines += [
            "COPY config.yml /etc/docker/registry/config.yml",
            'ENTRYPOINT ["/bin/registry", "serve", "/etc/docker/registry/config.yml"]',
        ]
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        built = _docker("build", "--network", "none", "-t", image, str(context))
        if built.returncode != 0:
            raise RuntimeError(f"building {image} failed:\n{built.stderr[-2000:]}")
    return image


def _container_class() -> Any:
    from testcontainers.community.registry import DockerRegistryContainer  # noqa: PLC0415

    class HostNetworkRegistryContainer(DockerRegistryContainer):
        """DockerRegistryContainer on the host network, listening on 127.0.0.1:``port``."""

        def __init__(self, image: str, port: int) -> None:
            super().__init__(image=image, port=port)
            self.ports = {}  # nothing to publish: the host network is shared
            self.with_kwargs(network_mode="host")
            self.with_env("REGISTRY_HTTP_ADDR", f"127.0.0.1:{port}")

        def get_registry(self) -> str:
            return f"127.0.0.1:{self.port}"

    return HostNetworkRegistryContainer


@dataclass
class ContainerRegistryServer(RegistryServer):
    """A :class:`RegistryServer` whose registry runs in a container; ``process`` follows
    the container's log into ``log_file``."""

    container: Any = None

    def running(self) -> bool:
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        return bool(wrapped.status == "running")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.container.stop()
        super().stop()


@contextlib.contextmanager
def start_container_registry(workdir: Path) -> Iterator[ContainerRegistryServer]:
    """Run a plain-http registry container for the duration of the ``with`` block."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    image = os.environ.get(IMAGE_ENV) or build_registry_image()
    port = free_port()
    container = _container_class()(image, port).start()  # waits until /v2 answers
    workdir.mkdir(parents=True, exist_ok=True)
    log_file = workdir / "registry.log"
    with log_file.open("wb") as log:
        follower = subprocess.Popen(
            ["docker", "logs", "-f", container.get_wrapped_container().id],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = ContainerRegistryServer(
        host=f"127.0.0.1:{port}", scheme="http", auth="none", workdir=workdir,
        data_dir=workdir / "inside-the-container", config_file=workdir / "config.yml",
        log_file=log_file, ca=None, ca_file=None, username=None, password=None,
        token_server=None, process=follower, container=container,
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()
