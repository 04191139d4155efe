"""Keep secrets out of every message, log line and argv that ocirel shows.

Credentials are registered here the moment they are read (auth files, helpers,
environment, tokens from a realm); :func:`redact` replaces any registered value, and
anything that looks like an ``Authorization`` value or a URL password, with ``***``.
It is applied where foreign text enters a message (stderr tails, response bodies)
and by the CLI's single error handler, so a secret cannot reach the terminal even
when it shows up somewhere unexpected.
"""

from __future__ import annotations

import re
import threading

_MIN_SECRET_LEN = 4  # shorter values would blank out ordinary words
_lock = threading.Lock()
_secrets: set[str] = set()

_PATTERNS = (
    # Authorization: Basic xxx / Bearer xxx, in headers or reprs of them
    re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    # scheme://user:password@host
    re.compile(r"(?i)(?<=://)[^/@\s:]+:[^/@\s]+(?=@)"),
    # password=..., token=..., secret=... in query strings or key=value output
    re.compile(r"(?i)\b(password|passwd|secret|token|access_token)=[^&\s\"']+"),
)


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret so that :func:`redact` hides it from now on."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every known secret and credential-shaped value masked."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    whole = match.group(0)
    if "=" in whole:
        return whole.split("=", 1)[0] + "=***"
    if whole[:6].lower() in ("basic ", "bearer"):
        return whole.split(None, 1)[0] + " ***"
    return "***"
