"""buildah: the default, daemonless and rootless builder."""

from __future__ import annotations

import json

from ocirel import runner
from ocirel.backends.base import BuildEnv
from ocirel.backends.containers import ContainersBackend
from ocirel.oci import ImageConfig, as_image_config


class Buildah(ContainersBackend):
    name = "buildah"
    program = "buildah"
    install_hint = "install buildah (Debian/Ubuntu: apt-get install buildah), or choose --backend"

    def inspect_argv(self, image: str, env: BuildEnv) -> list[str]:
        return [self.program, *self.global_args(env), "inspect", "--type", "image", image]

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        """The OCI config buildah would push (``OCIv1``), diff-ids included."""
        result = runner.run(self.inspect_argv(image, env), timeout=60, check=False)
        if not result.ok:
            return None
        try:
            config = json.loads(result.stdout).get("OCIv1")
        except (ValueError, AttributeError):
            return None
        return as_image_config(config) if isinstance(config, dict) else None
