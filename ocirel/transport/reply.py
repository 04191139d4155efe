"""A reply whose body has been read, and the error its status means.

:func:`raise_for_status` maps a status to the error tree: 401/403 are
:class:`RegistryAuthError`, 404 :class:`RegistryNotFoundError`, anything else
:class:`RegistryError` (``temporary`` for 429 and 5xx), with the OCI error codes of
the body, or a short redacted snippet of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ocirel.errors import RegistryAuthError, RegistryError, RegistryNotFoundError
from ocirel.redact import redact
from ocirel.transport.urls import display_url

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Reply:
    """A response whose body has been read (and capped)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    method: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise RegistryError(
                f"{self.method} {display_url(self.url)}: the registry sent a body that is not "
                f"valid JSON: {snippet(self.body)}",
                status=self.status,
                method=self.method,
                url=display_url(self.url),
            ) from None


def raise_for_status(reply: Reply, *, what: str = "", ok: Collection[int] = (200,)) -> Reply:
    """Return ``reply`` when its status is in ``ok``; otherwise raise the right error."""
    if reply.status in ok:
        return reply
    codes, messages = _oci_errors(reply.body)
    where = f"{reply.method} {display_url(reply.url)}"
    detail = "; ".join(f"{c}: {m}" if m else c for c, m in zip(codes, messages, strict=True))
    if not detail:
        detail = snippet(reply.body) if reply.method != "HEAD" else "(no body)"
    message = f"{what + ': ' if what else ''}{where} → {reply.status} {detail}"
    kwargs: dict[str, Any] = {
        "status": reply.status,
        "method": reply.method,
        "url": display_url(reply.url),
        "codes": codes,
    }
    if reply.status == 401:
        raise RegistryAuthError(
            message,
            **kwargs,
            hint="check the credentials (podman login / docker login, or "
            "OCIREL_USERNAME and OCIREL_PASSWORD)",
        )
    if reply.status == 403:
        raise RegistryAuthError(message, **kwargs, hint="the credentials lack permission for this")
    if reply.status == 404:
        raise RegistryNotFoundError(message, **kwargs)
    temporary = reply.status in RETRYABLE_STATUS or reply.status >= 500
    raise RegistryError(message, **kwargs, temporary=temporary)


def _oci_errors(body: bytes) -> tuple[list[str], list[str]]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return [], []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return [], []
    codes, messages = [], []
    for item in errors[:10]:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            codes.append(item["code"][:64])
            message = item.get("message")
            messages.append(redact(str(message))[:200] if message else "")
    return codes, messages


def snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace")
    text = re.sub(r"\s+", " ", text).strip()
    return redact(text) + ("…" if len(body) > limit else "") if text else "(empty body)"
