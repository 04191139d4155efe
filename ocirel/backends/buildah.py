"""buildah: the default, daemonless and rootless builder."""

from __future__ import annotations

from ocirel.backends.containers import ContainersBackend


class Buildah(ContainersBackend):
    name = "buildah"
    program = "buildah"
    install_hint = "install buildah (Debian/Ubuntu: apt-get install buildah), or choose --backend"
