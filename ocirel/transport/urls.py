"""URL rules shared by the transport: display, joining, origins, loopback and forbidden hosts.

Pure functions; nothing here talks to the network.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urljoin, urlsplit

from ocirel.errors import RegistryError
from ocirel.redact import redact

_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})

Origin = tuple[str, str, int | None]


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_forbidden_host(host: str) -> bool:
    """Link-local and cloud metadata addresses: never a registry, realm or redirect."""
    host = host.strip("[]").lower().rstrip(".")
    if host in _METADATA_HOSTS:
        return True
    address = _ip_address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:169.254.169.254
    if address.is_link_local:
        return True
    return address in ipaddress.ip_network("fd00:ec2::/64")


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # The legacy forms the resolver still accepts: 2852039166, 0xa9fea9fe, 169.254.43518
    if not re.fullmatch(r"[0-9a-fx.]+", host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def origin(url: str) -> Origin:
    """Scheme, host and port (the scheme's default when absent): what credentials belong to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").rstrip("."), port


def with_query(url: str, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    """``url`` with ``params`` appended to its query string (unchanged when there are none)."""
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


def display_url(url: str) -> str:
    """The URL without user-info or query string (query strings may carry tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:  # malformed: show a bounded, redacted prefix without the query
        text = url.split("?", 1)[0].split("#", 1)[0]
        text = re.sub(r"(?<=://)[^/@]*@", "", text)
        return redact(text[:100]) + ("…" if len(text) > 100 else "")
    return redact(f"{parts.scheme}://{host}{parts.path}")


def join_url(base: str, reference: str, *, registry: str, what: str) -> str:
    """``reference`` (from a ``Link`` or ``Location`` header) resolved against ``base``.

    A URL that does not parse — a broken IPv6 literal, a port out of range, an
    http(s) URL without a host — is a :class:`RegistryError` naming ``what`` it was.
    """
    try:
        target = urljoin(base, reference.strip())
        parts = urlsplit(target)
        _ = parts.port  # raises ValueError when out of range
        if parts.hostname:
            parts.hostname.encode("idna")
    except (ValueError, UnicodeError) as exc:
        raise RegistryError(
            f"{registry} sent a malformed URL in {what} ({display_url(reference)}): {exc}"
        ) from None
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise RegistryError(
            f"{registry} sent a malformed URL in {what} ({display_url(reference)}): no host"
        )
    return target


def check_same_origin(registry: str, base: str, target: str, *, what: str, hint: str) -> None:
    """Refuse to follow ``what`` (a ``Link``) from ``base`` to ``target`` on another
    origin, saying what differs: the host or the scheme."""
    want, got = urlsplit(base), urlsplit(target)
    if got.netloc != want.netloc:
        raise RegistryError(
            f"{registry} sent {what} to another host ({got.netloc}); refusing to follow it",
            hint=hint,
        )
    if got.scheme != want.scheme:
        raise RegistryError(
            f"{registry} sent {what} that switches the scheme from {want.scheme} to "
            f"{got.scheme} on the same host ({got.netloc}); refusing to follow it",
            hint=hint,
        )
