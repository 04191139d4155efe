r"""Keep secrets out of every message, log line and argv that ocirel shows.

Credentials are registered here the moment they are read (auth files, helpers,
environment, tokens from a realm); :func:`redact` replaces any registered value, and
anything that looks like an ``Authorization`` value or a URL password, with ``***``.
A registered value is also hidden in the forms a server may echo it in: URL-encoded
(``%XX`` in either case, ``+`` for spaces), JSON-escaped (with or without ``\/``
and ``\uXXXX``), HTML-escaped and base64 (standard and URL-safe, with or without
padding); :func:`register_credentials` adds the base64 of ``user:password`` that
a Basic header carries.
It is applied where foreign text enters a message (stderr tails, response bodies)
and by the CLI's single error handler, so a secret cannot reach the terminal even
when it shows up somewhere unexpected.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from urllib.parse import quote, quote_plus

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
    """Remember ``value`` (and its encoded forms) so that :func:`redact` hides it."""
    if value and len(value) >= _MIN_SECRET_LEN:
        _remember(_encoded_forms(value))


def register_credentials(username: str, password: str | None) -> None:
    """Register ``password`` and the base64 of ``username:password`` (a Basic header)."""
    register_secret(password)
    if password:
        _remember(_base64_forms(f"{username}:{password}".encode()))


def _remember(values: set[str]) -> None:
    with _lock:
        _secrets.update(v for v in values if len(v) >= _MIN_SECRET_LEN)


def _encoded_forms(value: str) -> set[str]:
    urls = {quote(value, safe=""), quote(value), quote_plus(value, safe=""), quote_plus(value)}
    urls |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), u) for u in urls}
    jsons = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    jsons |= {j.replace("/", "\\/") for j in jsons}
    return {value, html.escape(value), *urls, *jsons, *_base64_forms(value.encode())}


def _base64_forms(raw: bytes) -> set[str]:
    forms = {base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii")}
    return forms | {f.rstrip("=") for f in forms}


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
