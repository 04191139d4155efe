"""buildah: the default, daemonless and rootless builder."""

from __future__ import annotations

import json
from typing import Any

from ocirel import runner
from ocirel.backends.base import BuildEnv
from ocirel.backends.containers import ContainersBackend
from ocirel.oci import ImageConfig, as_image_config


class Buildah(ContainersBackend):
    _inspected: dict[str, dict[str, Any]] = {}  # noqa: RUF012 - replaced, never mutated
    name = "buildah"
    program = "buildah"
    install_hint = "install buildah (Debian/Ubuntu: apt-get install buildah), or choose --backend"

    def inspect_argv(self, image: str, env: BuildEnv) -> list[str]:
        return [self.program, *self.global_args(env), "inspect", "--type", "image", image]

    def _inspect(self, image: str, env: BuildEnv) -> dict[str, Any]:
        """``buildah inspect`` of ``image``, asked once per image (an ID names content)."""
        if self._inspected.get(image) is None:
            result = runner.run(self.inspect_argv(image, env), timeout=60, check=False)
            try:
                data = json.loads(result.stdout) if result.ok else None
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return {}
            self._inspected = {image: data}
        return self._inspected[image]

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        """The OCI config buildah would push (``OCIv1``), diff-ids included."""
        config = self._inspect(image, env).get("OCIv1")
        return as_image_config(config) if isinstance(config, dict) else None

    def image_annotations(self, image: str, env: BuildEnv) -> dict[str, str]:
        annotations = self._inspect(image, env).get("ImageAnnotations")
        return _strings(annotations)


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
