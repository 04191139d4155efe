"""The HTTP layer under :mod:`ocirel.registry`, one concern per module.

``client`` (the :class:`Transport` session per command) over ``session`` (the only
module that imports ``requests``), ``retry`` (the one retry loop), ``challenge`` and
``token`` (auth), ``redirect``, ``body`` (size cap, read deadline), ``errors`` (TLS and
connection failures), ``reply`` (status → error), ``headers``, ``urls`` and ``policy``
(the one :class:`RegistryPolicy`: insecure hosts, CA file, timeouts, retries).
Callers import from here.
"""

from ocirel.transport.challenge import Challenge, parse_challenges, parse_www_authenticate
from ocirel.transport.client import DEFAULT_MAX_BODY, MANIFEST_MAX_BODY, Transport
from ocirel.transport.headers import parse_link_next, parse_retry_after, parse_warnings
from ocirel.transport.policy import RegistryPolicy
from ocirel.transport.reply import Reply, raise_for_status
from ocirel.transport.retry import Again, RetryPolicy, retrying
from ocirel.transport.urls import check_same_origin, is_forbidden_host, is_loopback, join_url

__all__ = [
    "DEFAULT_MAX_BODY",
    "MANIFEST_MAX_BODY",
    "Again",
    "Challenge",
    "RegistryPolicy",
    "Reply",
    "RetryPolicy",
    "Transport",
    "check_same_origin",
    "is_forbidden_host",
    "is_loopback",
    "join_url",
    "parse_challenges",
    "parse_link_next",
    "parse_retry_after",
    "parse_warnings",
    "parse_www_authenticate",
    "raise_for_status",
    "retrying",
]
