"""The HTTP layer under :mod:`ocirel.registry`: one session per command, one choke point.

``session`` is the only module that imports ``requests``; callers import from here.
"""

from ocirel.transport.session import (
    DEFAULT_MAX_BODY,
    MANIFEST_MAX_BODY,
    Challenge,
    Reply,
    RetryPolicy,
    Transport,
    is_forbidden_host,
    is_loopback,
    join_url,
    parse_challenges,
    parse_link_next,
    parse_retry_after,
    parse_warnings,
    parse_www_authenticate,
    raise_for_status,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "MANIFEST_MAX_BODY",
    "Challenge",
    "Reply",
    "RetryPolicy",
    "Transport",
    "is_forbidden_host",
    "is_loopback",
    "join_url",
    "parse_challenges",
    "parse_link_next",
    "parse_retry_after",
    "parse_warnings",
    "parse_www_authenticate",
    "raise_for_status",
]
