"""Parsers for the response headers the transport and the registry act on.

``Retry-After``, ``Warning`` and ``Link``. (``WWW-Authenticate`` is parsed in
:mod:`ocirel.transport.challenge`.) Pure functions that never raise on odd input.
"""

from __future__ import annotations

import email.utils
import re


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):  # not str.isdigit(): "²" is a digit to it
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def parse_warnings(value: str) -> list[str]:
    """Texts of ``Warning: 299 - "text"`` headers (several may be comma-joined)."""
    found = re.findall(r'\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"', value)
    return found or [value.strip()]


_LINK_RE = re.compile(r"<([^<>]*)>\s*((?:;\s*[^;,]+)*)")  # [^<>]: linear on '<<<…'


def parse_link_next(value: str | None) -> str | None:
    """The target of ``rel="next"`` in a ``Link`` header, or None."""
    if not value:
        return None
    for match in _LINK_RE.finditer(value):
        rel = re.search(r';\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))', match.group(2), re.IGNORECASE)
        # rel holds space-separated relation types: "next" must be one of them, not a prefix
        if rel and "next" in (rel.group(1) or rel.group(2) or "").lower().split():
            return match.group(1).strip()
    return None
