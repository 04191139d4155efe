"""Auth challenges and what answers them: Basic credentials, or a cached Bearer token.

The first contact pings ``/v2/`` and remembers the challenge. ``Basic`` sends the
credentials; ``Bearer`` fetches a token from the realm (:mod:`ocirel.transport.token`)
for ``service`` + ``scope`` and caches it per (realm, service, scope) until it expires.
A 401 on a cached token drops it and refreshes it once. A challenge is learned only
from the registry's own origin (scheme, host and port): a redirect target or an upload
``Location`` on another host may challenge, and nothing is learned from it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ocirel.auth import Credentials
from ocirel.errors import RegistryAuthError
from ocirel.transport.policy import RegistryPolicy
from ocirel.transport.redirect import Hop
from ocirel.transport.reply import Reply
from ocirel.transport.token import (
    AnonymousRefusedError,
    Token,
    basic_authorization,
    fetch_token,
)
from ocirel.transport.urls import display_url, origin

CredentialLookup = Callable[[str, str], Credentials | None]


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: Mapping[str, str]


@dataclass
class Authenticator:
    """The challenges learned per registry, and the tokens answering them. Thread-safe."""

    credentials: CredentialLookup
    policy: RegistryPolicy
    send: Callable[[Hop], Reply]  # a request without auth handling, with retries
    scheme_of: Callable[[str], str | None]
    clock: Callable[[], float]
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _challenges: dict[str, Challenge | None] = field(default_factory=dict)
    _tokens: dict[tuple[str, str, str], Token] = field(default_factory=dict)
    _refused: dict[tuple[str, str, str], AnonymousRefusedError] = field(default_factory=dict)

    def remember(self, registry: str, ping: Reply) -> None:
        """First contact: the challenge of the ``/v2/`` ping (none unless it said 401)."""
        header = ping.header("WWW-Authenticate") or ""
        self._challenges[registry] = parse_www_authenticate(header) if ping.status == 401 else None

    def authorization_for(
        self, registry: str, scope: str | None, method: str
    ) -> tuple[str | None, RegistryAuthError | None]:
        """The Authorization value, and the token service's refusal when reading anonymously.

        Some registries challenge on ``/v2/`` but serve public repositories to anyone,
        while their token service refuses anonymous requests: a read then goes out
        without a token, and a 401 to it reports the token service's refusal.
        """
        try:
            return self._authorization(registry, scope), None
        except AnonymousRefusedError as exc:
            if method in ("GET", "HEAD") and not _wants_push(scope):
                return None, exc
            raise

    def learn(
        self, registry: str, base: str, reply: Reply, scope: str | None, stale: str | None
    ) -> bool:
        """After a 401: remember the challenge; say whether a retry can help.

        Only a 401 from the registry's own origin (``base``) teaches anything.
        """
        if origin(reply.url) != origin(base):
            return False
        challenge = parse_www_authenticate(reply.header("WWW-Authenticate") or "")
        if challenge is None:
            return False
        with self._lock:
            self._challenges[registry] = challenge
            if stale and stale.startswith("Bearer "):
                for key, token in list(self._tokens.items()):
                    if "Bearer " + token.value == stale:
                        del self._tokens[key]
        if challenge.scheme == "basic":
            return stale is None and self._lookup(registry, scope) is not None
        return challenge.scheme == "bearer"

    def source(self, registry: str, auth: str | None, fallback: bool) -> str:
        """Where ``auth`` came from, for ``--debug`` (never the credential itself)."""
        if auth is None:
            return (
                "anonymous (the token service refused an anonymous token)"
                if fallback
                else "anonymous"
            )
        if auth.startswith("Basic "):
            return "basic"
        challenge = self._challenges.get(registry)
        realm = challenge.params.get("realm", "") if challenge else ""
        return f"bearer token from realm {display_url(realm)}"

    def _lookup(self, registry: str, scope: str | None) -> Credentials | None:
        return self.credentials(registry, _scope_repository(scope))

    def _authorization(self, registry: str, scope: str | None) -> str | None:
        challenge = self._challenges.get(registry)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self._lookup(registry, scope)
            if creds is None:
                return None
            if self.scheme_of(registry) == "http" and not self.policy.plain_http_allowed(registry):
                raise RegistryAuthError(
                    f"refusing to send a password to {registry} over plain http"
                )
            return basic_authorization(creds)
        if challenge.scheme == "bearer":
            return "Bearer " + self._token(registry, challenge, scope)
        return None

    def _token(self, registry: str, challenge: Challenge, scope: str | None) -> str:
        realm = challenge.params.get("realm", "")
        service = challenge.params.get("service", "")
        scope = scope or challenge.params.get("scope", "")
        key = (realm, service, scope)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at > self.clock():
                return cached.value
            refused = self._refused.get(key)
        if refused is not None:
            raise refused
        try:
            token = fetch_token(
                registry, realm, service, scope,
                credentials=lambda: self._lookup(registry, scope),
                plain_http_allowed=self.policy.plain_http_allowed(registry),
                send=self.send, clock=self.clock,
            )  # fmt: skip
        except AnonymousRefusedError as exc:
            with self._lock:
                self._refused[key] = exc
            raise
        with self._lock:
            self._tokens[key] = token
        return token.value


def _wants_push(scope: str | None) -> bool:
    scope = _first_scope(scope)
    actions = scope.rsplit(":", 1)[-1] if scope.count(":") >= 2 else ""
    return any(action != "pull" for action in actions.split(",") if action)


def _first_scope(scope: str | None) -> str:
    """The scope of the repository a request is for: the first of several (a mount
    asks for ``repository:target:pull,push repository:source:pull``)."""
    return scope.split()[0] if scope and scope.split() else ""


def _scope_repository(scope: str | None) -> str:
    scope = _first_scope(scope)
    if not scope:
        return ""
    parts = scope.split(":")
    return parts[1] if len(parts) >= 3 else ""


_AUTH_PARAM_RE = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
# an auth-scheme starts a challenge: a token followed by a space or the end, never by "="
_AUTH_SCHEME_RE = re.compile(r"[\s,]*([A-Za-z][A-Za-z0-9_.+-]*)(?=\s|$)(?!\s*=)")


def parse_challenges(value: str) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value (two headers arrive comma-joined)."""
    found: list[tuple[str, dict[str, str]]] = []
    position = 0
    while position < len(value):
        scheme = _AUTH_SCHEME_RE.match(value, position)
        if scheme:
            found.append((scheme.group(1).lower(), {}))
            position = scheme.end()
            continue
        match = _AUTH_PARAM_RE.match(value, position)
        if not match or match.end() == position or not found:
            break
        key, raw = match.group(1).lower(), match.group(2)
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        found[-1][1][key] = raw
        position = match.end()
    return [Challenge(scheme, params) for scheme, params in found]


def parse_www_authenticate(value: str) -> Challenge | None:
    """The challenge to answer: ``Bearer`` (with a realm) over ``Basic``; None if neither."""
    challenges = parse_challenges(value)
    for challenge in challenges:
        if challenge.scheme == "bearer" and challenge.params.get("realm"):
            return challenge
    return next((c for c in challenges if c.scheme == "basic"), None)
