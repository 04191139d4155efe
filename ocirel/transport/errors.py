"""What a failed exchange means: TLS and connection failures as :class:`RegistryError`.

:mod:`ocirel.transport.session` catches the library's exceptions and calls these; a
failure worth retrying (refused, reset, DNS, a broken or short body) comes back as
:class:`~ocirel.transport.retry.Again` carrying the error, so :func:`retrying` decides.
Timeouts are final. Messages never carry a query string or user-info, and say what to do.
"""

from __future__ import annotations

from ocirel.errors import RegistryError
from ocirel.redact import redact
from ocirel.transport.retry import Again
from ocirel.transport.urls import display_url

_PLAIN_HTTP_MARKERS = (
    "wrong version number",
    "record layer failure",
    "http request",
    "packet length",
)
_REASONS = (
    "Connection refused",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Connection reset",
    "Connection aborted",
    "Remote end closed",
    "certificate verify failed",
    "timed out",
)


class AnswersPlainHttp(Again):
    """The server answered the TLS handshake with plain HTTP."""


def reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in _REASONS:
        if marker.lower() in text.lower():
            return marker.lower()
    return redact(text)[:200]


def classify_ssl(exc: Exception, method: str, url: str, registry: str | None) -> Exception:
    text = str(exc).lower()
    where = display_url(url)
    if any(marker in text for marker in _PLAIN_HTTP_MARKERS):
        error = RegistryError(
            f"{where} answers plain http, not TLS",
            method=method,
            url=where,
            hint=f"if {registry or 'the registry'} is meant to be plain http, pass --insecure "
            "(or list it in insecure_registries)",
        )
        return AnswersPlainHttp(error)
    if "certificate" in text or "verify failed" in text:
        return RegistryError(
            f"TLS verification failed for {where}: {reason(exc)}",
            method=method,
            url=where,
            hint="pass --ca-file PATH with the registry's CA certificate (OCIREL_CA_FILE); "
            "ocirel never falls back to plain http or skips verification by itself",
        )
    return RegistryError(f"TLS error talking to {where}: {reason(exc)}", method=method, url=where)


def timed_out(
    method: str, url: str, *, connecting: bool, connect_timeout: float, read_timeout: float
) -> RegistryError:
    kind = "connecting to" if connecting else "waiting for"
    return _temporary(
        method,
        url,
        f"timed out {kind} {display_url(url)} (connect {connect_timeout:g} s, "
        f"read {read_timeout:g} s)",
        hint="raise OCIREL_READ_TIMEOUT / OCIREL_CONNECT_TIMEOUT if the registry is slow",
    )


def overran(method: str, url: str, read_timeout: float) -> RegistryError:
    """The read deadline passed: the reply stalled, or trickled in too slowly."""
    return _temporary(
        method,
        url,
        f"timed out waiting for {display_url(url)}: the reply stalled or trickled in "
        f"for longer than the read timeout ({read_timeout:g} s)",
        hint="raise OCIREL_READ_TIMEOUT if the registry is slow",
    )


def unreachable(method: str, url: str, exc: BaseException) -> Again:
    return Again(_temporary(method, url, f"cannot reach {display_url(url)}: {reason(exc)}"))


def _temporary(method: str, url: str, message: str, *, hint: str | None = None) -> RegistryError:
    return RegistryError(message, method=method, url=display_url(url), temporary=True, hint=hint)


def request_failed(method: str, url: str, exc: BaseException) -> RegistryError:
    return RegistryError(f"{method} {display_url(url)} failed: {reason(exc)}")


def malformed_reply_url(method: str, url: str, exc: BaseException) -> RegistryError:
    """requests parses a redirect's Location before ocirel sees it."""
    return RegistryError(
        f"{method} {display_url(url)}: the reply names a malformed URL "
        f"(a redirect Location?): {reason(exc)}",
        method=method,
        url=display_url(url),
    )


def body_error(
    method: str, url: str, status: int, problem: str, *, temporary: bool = False
) -> RegistryError:
    """``METHOD URL: <problem>`` about a reply's body."""
    return RegistryError(
        f"{method} {display_url(url)}: {problem}",
        status=status,
        method=method,
        url=display_url(url),
        temporary=temporary,
    )


def body_stalled(method: str, url: str, status: int, read_timeout: float) -> RegistryError:
    problem = f"the body stalled for more than {read_timeout:g} s"
    return body_error(method, url, status, problem, temporary=True)


def body_broken(method: str, url: str, status: int, exc: BaseException) -> Again:
    problem = f"the connection broke while reading the body ({reason(exc)})"
    return Again(body_error(method, url, status, problem, temporary=True))
