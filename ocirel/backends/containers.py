"""Shared adapter for the containers-family builders (buildah, podman).

Both take the same build flags and both can ``push --digestfile`` an image into a
local OCI layout, which ocirel then uploads itself (see release.py for why).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ocirel import runner
from ocirel.backends.base import BuildEnv, BuildSpec, find_containerfile
from ocirel.backends.hints import with_hint
from ocirel.errors import BackendNotFoundError, CommandError, DigestMismatchError
from ocirel.reference import is_valid_digest


class ContainersBackend:
    name = "containers"
    program = "containers"
    exports_layout = True
    install_hint = "install it (Debian/Ubuntu: apt-get install buildah podman)"

    # --------------------------------------------------------------- argv

    def global_args(self, env: BuildEnv) -> list[str]:
        args: list[str] = []
        if env.storage.driver:
            args += ["--storage-driver", env.storage.driver]
        for option in env.storage.options:
            args += ["--storage-opt", option]
        return args

    def build_argv(self, spec: BuildSpec, env: BuildEnv) -> list[str]:
        containerfile = find_containerfile(spec.context, spec.containerfile)
        argv = [self.program, *self.global_args(env), "build", "--isolation", env.isolation]
        argv += ["--layers"] if spec.layers else ["--layers", "--no-cache"]
        argv += ["--file", str(containerfile), "--tag", spec.image]
        for key, value in spec.labels:
            argv += ["--label", f"{key}={value}"]
        for key, value in spec.build_args:
            argv += ["--build-arg", f"{key}={value}"]
        if spec.target:
            argv += ["--target", spec.target]
        if spec.platform:
            argv += ["--platform", spec.platform]
        if spec.timestamp is not None:
            argv += ["--timestamp", str(spec.timestamp)]
        if spec.cache_repo:
            argv += ["--cache-to", spec.cache_repo, "--cache-from", spec.cache_repo]
        if env.authfile is not None:
            argv += ["--authfile", str(env.authfile)]
        if not env.tls_verify:
            argv += ["--tls-verify=false"]
        argv.append(str(spec.context))
        return argv

    def export_argv(self, image: str, layout: Path, digestfile: Path, env: BuildEnv) -> list[str]:
        return [
            self.program, *self.global_args(env), "push", "--quiet",
            "--digestfile", str(digestfile), image, f"oci:{layout}",
        ]  # fmt: skip

    def remove_argv(self, image: str, env: BuildEnv) -> list[str]:
        return [self.program, *self.global_args(env), "rmi", image]

    # ---------------------------------------------------------------- run

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> None:
        argv = self.build_argv(spec, env)
        try:
            runner.run(argv, timeout=timeout, stream=True, install_hint=self.install_hint)
        except CommandError as exc:
            raise with_hint(exc, f"{self.program} build failed") from None

    def export(self, image: str, layout: Path, env: BuildEnv, *, timeout: float) -> str:
        """Write ``image`` into the OCI layout ``layout``; return the manifest digest.

        Success is exit code 0 *and* a digest file holding a valid digest.
        """
        digestfile = layout.with_name(layout.name + ".digest")
        argv = self.export_argv(image, layout, digestfile, env)
        try:
            runner.run(argv, timeout=timeout, install_hint=self.install_hint)
        except CommandError as exc:
            raise with_hint(exc, f"{self.program} push (export) failed") from None
        try:
            digest = digestfile.read_text(encoding="utf-8").strip()
        except OSError:
            digest = ""
        finally:
            with contextlib.suppress(OSError):
                digestfile.unlink()
        if not is_valid_digest(digest):
            raise DigestMismatchError(
                f"{self.program} push exited 0 but wrote no valid digest file; not trusting it"
            )
        return digest

    def push(self, image: str, target: str, env: BuildEnv, *, timeout: float) -> str | None:
        raise NotImplementedError("buildah and podman export a layout; ocirel uploads it")

    def image_config(self, image: str, env: BuildEnv) -> dict[str, Any] | None:
        return None

    def remove(self, image: str, env: BuildEnv) -> None:
        runner.run(self.remove_argv(image, env), check=False, timeout=120)

    def version(self) -> str | None:
        try:
            result = runner.run([self.program, "--version"], timeout=20, check=False)
        except BackendNotFoundError:
            return None
        return result.stdout.strip().split()[-1] if result.ok and result.stdout.strip() else None

