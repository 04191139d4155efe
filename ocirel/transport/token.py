"""Fetching a Bearer token from a registry's token realm.

The realm must be https (http only for loopback/insecure registries on the same host),
never a link-local or metadata address, never with user-info. Credentials (the Basic
header, an identity token in a POST form) go only to the realm's own origin: a redirect
to another origin gets an anonymous request, and an identity token is never sent there.
A token service's body is never echoed (it holds secrets).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit

from ocirel.auth import Credentials
from ocirel.errors import RegistryAuthError, RegistryError
from ocirel.redact import redact, register_credentials, register_secret
from ocirel.reference import split_host_port
from ocirel.transport.redirect import MAX_REDIRECTS, Hop, follow
from ocirel.transport.reply import Reply, raise_for_status
from ocirel.transport.urls import (
    display_url,
    is_forbidden_host,
    is_loopback,
    join_url,
    origin,
    with_query,
)

_log = logging.getLogger("ocirel.transport")
DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass
class Token:
    value: str
    expires_at: float


class AnonymousRefusedError(RegistryAuthError):
    """The token service refused an anonymous request (reads may still go anonymously)."""


def fetch_token(
    registry: str,
    realm: str,
    service: str,
    scope: str,
    *,
    credentials: Callable[[], Credentials | None],
    plain_http_allowed: bool,
    send: Callable[[Hop], Reply],
    clock: Callable[[], float],
) -> Token:
    check_realm(realm, registry, plain_http_allowed=plain_http_allowed)
    creds = credentials()
    first = _first_hop(realm, service, scope, creds)
    reply = _token_request(registry, first, send)
    if reply.status in (401, 403):
        raise (RegistryAuthError if creds else AnonymousRefusedError)(
            f"the token service at {display_url(realm)} refused "
            + ("the credentials" if creds else "anonymous access")
            + f" for {scope or 'this registry'} ({reply.status})",
            status=reply.status,
            method=first.method,
            url=display_url(realm),
            hint=None
            if creds
            else f"log in to {registry} (podman login / docker login) "
            "or set OCIREL_USERNAME and OCIREL_PASSWORD",
        )
    if reply.status != 200:
        raise_for_status(reply, what="token request")
    return _token_from(reply, realm, clock)


def _first_hop(realm: str, service: str, scope: str, creds: Credentials | None) -> Hop:
    # several scopes (a cross-repository mount: push here, pull there) are space
    # separated; a GET takes each as its own ``scope`` parameter (distribution's token spec)
    params = [("service", service)] if service else []
    params += [("scope", item) for item in scope.split()]
    if creds and creds.identity_token:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": creds.identity_token,
            "client_id": "ocirel",
        }
        # the OAuth2 form takes one space-separated ``scope`` (distribution's oauth spec)
        if scope.split():
            form["scope"] = " ".join(scope.split())
        if service:
            form["service"] = service
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return Hop("POST", realm, urlencode(form).encode(), headers=headers)
    if creds:
        return Hop(
            "GET", with_query(realm, params), headers={"Authorization": basic_authorization(creds)}
        )
    return Hop("GET", with_query(realm, params))


def basic_authorization(creds: Credentials) -> str:
    encoded = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode("ascii")
    register_credentials(creds.username, creds.password)  # a server may echo it back
    return "Basic " + encoded


def _token_from(reply: Reply, realm: str, clock: Callable[[], float]) -> Token:
    try:
        data = reply.json()
    except RegistryError:  # never echo it: a token service's body holds secrets
        raise RegistryAuthError(
            f"the token service at {display_url(realm)} answered with a body that is not JSON"
        ) from None
    value = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise RegistryAuthError(f"the token service at {display_url(realm)} returned no token")
    register_secret(value)
    lifetime = data.get("expires_in", DEFAULT_TOKEN_LIFETIME)
    if not isinstance(lifetime, int | float) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    # refresh a little early so that a token never expires between check and use
    return Token(value, clock() + max(1.0, float(lifetime) * 0.9 - 5))


def _token_request(registry: str, first: Hop, send: Callable[[Hop], Reply]) -> Reply:
    """Ask the token realm, following its redirects (at most 5)."""
    realm_origin = origin(first.url)

    def prepare(hop: Hop) -> Hop:
        if hop.body is None:  # a redirect turned the POST into a GET
            hop = replace(hop, headers=_without(hop.headers, "content-type"))
        if origin(hop.url) == realm_origin:
            return hop
        if hop.body is not None:
            raise RegistryAuthError(
                f"the token service of {registry} redirected to another host "
                f"({display_url(hop.url)}); refusing to send the identity token there"
            )
        return replace(hop, headers=_without(hop.headers, "authorization"))

    def logged(hop: Hop) -> Reply:
        started = time.monotonic()
        reply = send(hop)
        if _log.isEnabledFor(logging.DEBUG):
            sent = "basic" if "Authorization" in hop.headers else "anonymous"
            sent = "identity token" if hop.body is not None else sent
            took = (time.monotonic() - started) * 1000
            _log.debug(
                redact(
                    f"token {hop.method} {display_url(hop.url)} → {reply.status} in "
                    f"{took:.0f} ms (auth: {sent})"
                )
            )
        return reply

    def too_many() -> RegistryError:
        return RegistryAuthError(
            f"too many redirects from the token service of {registry} (more than {MAX_REDIRECTS})"
        )

    return follow(first, logged, registry=registry, too_many=too_many, prepare=prepare)


def _without(headers: Mapping[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name}


def check_realm(realm: str, registry: str, *, plain_http_allowed: bool) -> None:
    try:
        join_url(realm, "", registry=registry, what="its token realm")
    except RegistryError as exc:
        raise RegistryAuthError(
            f"{registry} names a token realm that does not parse ({display_url(realm)})"
        ) from exc
    parts = urlsplit(realm)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise RegistryAuthError(f"{registry} names an invalid token realm {display_url(realm)!r}")
    if parts.username or parts.password:
        raise RegistryAuthError(f"{registry} names a token realm with user-info; refusing it")
    if is_forbidden_host(host):
        raise RegistryAuthError(
            f"{registry} names a token realm on a link-local or metadata address "
            f"({host}); refusing to send credentials there"
        )
    if parts.scheme == "http":
        same_or_local = is_loopback(host) or host == split_host_port(registry)[0]
        if not (plain_http_allowed and same_or_local):
            raise RegistryAuthError(
                f"{registry} names a plain-http token realm ({display_url(realm)}); "
                "refusing to send credentials without TLS",
                hint="serve the token realm over https, or mark the registry insecure "
                "if it is a local test registry",
            )
