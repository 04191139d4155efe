"""buildah: the default, daemonless and rootless builder."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from ocirel import runner
from ocirel.backends.base import BuildEnv
from ocirel.backends.containers import ContainersBackend, StepImage, parse_created
from ocirel.oci import ImageConfig, as_image_config

#: from this many images on, :meth:`Buildah.created_times` lists the storage once instead
#: of inspecting each (one listing costs about 1.5 inspects on a storage of 1000 images)
LIST_FROM = 3


class Buildah(ContainersBackend):
    name = "buildah"
    program = "buildah"
    install_hint = "install buildah (Debian/Ubuntu: apt-get install buildah), or choose --backend"

    def images_argv(self, env: BuildEnv) -> list[str]:
        return [self.program, *self.global_args(env), "images", "--all", "--json", "--no-trunc"]

    def created_times(self, images: Sequence[str], env: BuildEnv) -> dict[str, StepImage]:
        """Each image's ``created`` time and whether it has a name. ``buildah inspect``
        takes one image at a time, so from :data:`LIST_FROM` images on one ``buildah
        images --all`` answers for all of them (its ``created`` is the storage's creation
        date, which containers/image sets from the config's ``created``); when that
        listing fails, each image is inspected."""
        if len(images) < LIST_FROM or not all(map(_is_image_id, images)):
            return super().created_times(images, env)
        result = runner.run(self.images_argv(env), timeout=60, check=False)
        try:
            listed = json.loads(result.stdout) if result.ok else None
        except ValueError:
            listed = None
        if not isinstance(listed, list):
            return super().created_times(images, env)
        by_id = {
            str(item.get("id", "")).removeprefix("sha256:"): item
            for item in listed
            if isinstance(item, dict)
        }
        times: dict[str, StepImage] = {}
        for image in images:
            item = by_id.get(image.removeprefix("sha256:"))
            if item is None:
                times[image] = StepImage(None, named=True)  # unknown: never removed
            else:
                created = parse_created(item.get("createdatraw"))
                times[image] = StepImage(created, named=bool(item.get("names")))
        return times

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        """The OCI config buildah would push (``OCIv1``), diff-ids included: read from
        the storage's files when they verify, else from ``buildah inspect``."""
        stored = self.stored(image, env)
        if stored is not None:
            return as_image_config(stored.config)
        config = self.inspect(image, env).get("OCIv1")
        return as_image_config(config) if isinstance(config, dict) else None

    def image_annotations(self, image: str, env: BuildEnv) -> dict[str, str]:
        stored = self.stored(image, env)
        if stored is not None:
            return stored.annotations
        annotations = self.inspect(image, env).get("ImageAnnotations")
        return _strings(annotations)


def _is_image_id(image: str) -> bool:
    return re.fullmatch(r"(sha256:)?[0-9a-f]{64}", image) is not None


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
