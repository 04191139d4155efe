"""What ``ocirel doctor`` tells the user to do: one text per cause, shared by the probes
and the verdict."""

from __future__ import annotations

SUBID_FIX = (
    "add 65536 subordinate ids for {user}: usermod --add-subuids 100000-165535 "
    "--add-subgids 100000-165535 {user} (as root), then run: podman system migrate"
)
USERNS_FIX = (
    "enable user namespaces: sysctl -w user.max_user_namespaces=15000 (and "
    "kernel.unprivileged_userns_clone=1 on older Debian kernels); in a container, allow "
    "unshare/clone in its seccomp profile (e.g. --security-opt seccomp=unconfined)"
)
SYSCTL_FIX = (
    "enable user namespaces: sysctl -w user.max_user_namespaces=15000 (persist it in "
    "/etc/sysctl.d/)"
)
USERNS_CLONE_FIX = (
    "allow unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 "
    "(persist it in /etc/sysctl.d/)"
)
APPARMOR_FIX = (
    "AppArmor refuses user namespaces to programs without a profile that allows them: "
    "rootless builds work only if buildah/podman have such a profile loaded (see "
    "/etc/apparmor.d/), else sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
)
SECCOMP_FIX = (
    "the container's seccomp profile refuses unshare/clone: run it with a profile that "
    "allows them (e.g. --security-opt seccomp=unconfined, or podman's default profile), "
    "or build as root in the container with chroot isolation"
)
CHROOT_FIX = (
    "this process is inside a chroot, where the kernel refuses user namespaces and "
    "buildah cannot remount /; no sysctl or seccomp change helps: run on the host, or in "
    "a container or a mount namespace entered with pivot_root (e.g. unshare --mount "
    "--pid --fork, then pivot_root), not a bare chroot"
)
DOCKER_SOCKET_FIX = (
    "this user may not use the Docker socket: add it to the docker group (usermod -aG "
    "docker USER, then log in again), or let ocirel use buildah or podman, which need no daemon"
)
NEWUIDMAP_FIX = "install newuidmap/newgidmap setuid root: apt-get install uidmap"
NO_BUILDER_FIX = (
    "install buildah (Debian/Ubuntu: apt-get install buildah) or podman (apt-get install "
    "podman), or start a Docker engine"
)
DOCKER_DAEMON_FIX = (
    "start the Docker engine (systemctl start docker, or dockerd), check DOCKER_HOST / "
    "`docker context ls`, or let ocirel use buildah or podman, which need no daemon"
)
