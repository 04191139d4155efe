"""The whole exception tree of ocirel.

Every failure a user can cause or meet is an :class:`OcirelError`; the CLI maps the
class to an exit code and prints ``str(error)`` (one line, no traceback) plus an
optional ``hint``. Messages never contain secrets: whoever builds one from foreign
text (stderr, response bodies) passes it through :func:`ocirel.redact.redact` first.
"""

from __future__ import annotations

from collections.abc import Sequence


class OcirelError(Exception):
    """Base class. ``exit_code`` is what the CLI returns; ``hint`` tells what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(OcirelError):
    """Bad flags, configuration files or environment."""

    exit_code = 2


class InvalidReferenceError(OcirelError):
    """An image name, tag or digest that the distribution grammar does not allow."""

    exit_code = 2


class BackendError(OcirelError):
    """A builder (buildah, podman, docker) failed or is unusable."""


class BackendNotFoundError(BackendError):
    """No usable builder, or the one asked for is missing."""


class CommandError(BackendError):
    """A subprocess exited non-zero (or produced no valid result).

    ``argv`` is already redacted; ``stderr_tail`` holds the last lines of its output.
    """

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int | None,
        stderr_tail: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class CommandTimeoutError(CommandError):
    """A subprocess ran past its timeout and was killed with its process group."""


class RegistryError(OcirelError):
    """A registry answered with an error, or could not be reached.

    Carries the HTTP ``status`` (None when no response), ``method``, ``url`` (never
    with credentials), the OCI error ``codes`` and whether retrying may help.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        url: str = "",
        codes: Sequence[str] = (),
        temporary: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.method = method
        self.url = url
        self.codes = tuple(codes)
        self.temporary = temporary


class RegistryAuthError(RegistryError):
    """401/403, a refused token realm, or credentials that do not work."""


class RegistryNotFoundError(RegistryError):
    """404: unknown repository, manifest or blob."""


class UnsupportedManifestError(RegistryError):
    """The registry served a manifest, or an image config, that ocirel cannot read: a
    schema 1 manifest, a media type it does not know or did not ask for, a body that is
    not a JSON object, a config that is not JSON. ``reason`` says so in words that
    follow the tag's name ("v3 is a schema 1 manifest, …")."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or f"is a manifest ocirel cannot read ({message})"


class VersionError(OcirelError):
    """No next version can be computed, or a tag is not acceptable as a version."""


class TagConflictError(OcirelError):
    """The tag appeared, or moved, under us: another publisher raced this run."""

    exit_code = 4


class DigestMismatchError(OcirelError):
    """Content did not hash to the digest that was promised."""


class LayoutError(OcirelError):
    """An OCI image layout destination (``--image oci:PATH``) that cannot be read or
    written: not a layout, a damaged ``index.json``, a blob that will not link or copy."""


class LockfileError(OcirelError):
    """The lockfile is unreadable, corrupt, of an unknown schema or cannot be written."""


class ManifestError(OcirelError):
    """A deployment manifest could not be parsed or rewritten."""


class EmulationError(BackendError):
    """RUN steps for another CPU architecture, and no qemu-user registered to run them."""
