"""Shared adapter for the containers-family builders (buildah, podman).

Both take the same build flags and both can ``push --digestfile`` an image into a
local OCI layout, which ocirel then uploads itself (see release.py for why).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
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
    #: on Ctrl-C/SIGTERM/timeout, end the RUN step first and give the builder this long
    #: to clean up by itself (0: SIGTERM the whole group at once; buildah cleans up then)
    leaves_first_grace = 0.0

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
        argv += ["--file", str(containerfile)]
        if spec.image:
            argv += ["--tag", spec.image]
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

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        """Build and return the image ID (from ``--iidfile``, never from the log)."""
        with tempfile.TemporaryDirectory(prefix="ocirel-iid-") as scratch:
            iidfile = Path(scratch) / "iid"
            argv = self.build_argv(spec, env)
            # --force-rm: a failed or interrupted step must not leave its working
            # container (and layers) in the shared storage (buildah's default keeps it)
            argv[-1:-1] = ["--force-rm", "--iidfile", str(iidfile)]
            try:
                runner.run(argv, timeout=timeout, stream=True, install_hint=self.install_hint,
                           leaves_first_grace=self.leaves_first_grace)  # fmt: skip
            except CommandError as exc:
                raise with_hint(exc, f"{self.program} build failed") from None
            try:
                image_id = iidfile.read_text(encoding="utf-8").strip()
            except OSError:
                image_id = ""
        if not re.fullmatch(r"(sha256:)?[0-9a-f]{64}", image_id):
            raise CommandError(
                f"{self.program} build exited 0 but wrote no image ID; not trusting it",
                argv=[runner.display(argv)], returncode=0,
            )  # fmt: skip
        return image_id

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

    def problem(self) -> str | None:
        """Daemonless: installed means usable (rootless trouble shows up in ``ocirel doctor``)."""
        if runner.which(self.program) is None:
            return f"{self.program} is not installed (not on PATH)"
        return None

    def version(self) -> str | None:
        try:
            result = runner.run([self.program, "--version"], timeout=20, check=False)
        except BackendNotFoundError:
            return None
        # "buildah version 1.28.2 (image-spec 1.1.0-rc2, …)", "podman version 4.3.1"
        match = re.search(r"version\s+(\S+)", result.stdout) if result.ok else None
        return match.group(1) if match else None
