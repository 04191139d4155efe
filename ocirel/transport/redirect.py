"""Redirect policy: followed by hand, at most :data:`MAX_REDIRECTS` hops.

* a target that is not http(s), that carries user-info, or that is a link-local or
  metadata address is refused, and so is a step from https down to http;
* 303 (and 301/302 after a POST) turns the request into a body-less GET;
* a streamed upload that is redirected is not replayed: the caller restarts it;
* who gets credentials on each hop is the caller's ``prepare``/``send`` business
  (same origin only: :func:`ocirel.transport.urls.origin`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import IO
from urllib.parse import urlsplit

from ocirel.errors import RegistryError
from ocirel.transport.reply import Reply
from ocirel.transport.urls import display_url, is_forbidden_host, join_url

REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Hop:
    """One request on the way: where, how, and with what."""

    method: str
    url: str
    body: bytes | IO[bytes] | None = None
    content_length: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def follow(
    first: Hop,
    send: Callable[[Hop], Reply],
    *,
    registry: str,
    too_many: Callable[[], RegistryError],
    prepare: Callable[[Hop], Hop] = lambda hop: hop,
) -> Reply:
    """Send ``first`` and follow redirects; ``prepare`` adjusts each hop before it goes."""
    hop = first
    for _hop in range(MAX_REDIRECTS + 1):
        hop = prepare(hop)
        reply = send(hop)
        after = next_hop(hop, reply, registry)
        if after is None:
            return reply
        hop = after
    raise too_many()


def next_hop(hop: Hop, reply: Reply, registry: str) -> Hop | None:
    """Where a redirect leads, or None when ``reply`` is not one."""
    location = reply.header("Location")
    if reply.status not in REDIRECT_STATUS or not location:
        return None
    url = redirect_target(hop.url, location, registry)
    if reply.status == 303 or (reply.status in (301, 302) and hop.method == "POST"):
        return replace(hop, method="GET", url=url, body=None, content_length=None)
    if hop.body is not None and not isinstance(hop.body, bytes):
        raise RegistryError(
            f"{registry} redirected an upload ({reply.status}); it will be restarted",
            status=reply.status,
            method=hop.method,
            url=display_url(url),
            temporary=True,
        )
    return replace(hop, url=url)


def redirect_target(current: str, location: str, registry: str) -> str:
    target = join_url(current, location, registry=registry, what="a redirect Location")
    old, new = urlsplit(current), urlsplit(target)
    if new.scheme not in ("http", "https"):
        raise RegistryError(f"{registry} redirected to an unsupported URL scheme {new.scheme!r}")
    if old.scheme == "https" and new.scheme == "http":
        raise RegistryError(
            f"{registry} redirected from https to plain http ({display_url(target)}); refused"
        )
    if new.username or new.password:
        raise RegistryError(f"{registry} redirected to a URL with user-info; refused")
    if is_forbidden_host(new.hostname or ""):
        raise RegistryError(
            f"{registry} redirected to a link-local or metadata address ({new.hostname}); refused"
        )
    return target
