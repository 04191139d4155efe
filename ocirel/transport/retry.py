"""The one retry loop: every retried thing in ocirel goes through :func:`retrying`.

An attempt either returns (done), raises :class:`Again` (worth another try), or raises
anything else (done, failed). :func:`retrying` backs off between tries — jittered
exponential, or the server's ``Retry-After``, capped by ``max_wait`` — and after
``retries`` retries gives up: it raises the last :class:`Again`'s error, or returns its
``final`` value (a 503 reply after the last retry is still a reply for the caller to judge).

Used for single requests (:mod:`ocirel.transport.client`), for first contact, for
token requests, and by :mod:`ocirel.registry` to restart an upload from its first byte.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ocirel.errors import RegistryError
from ocirel.transport.headers import parse_retry_after

T = TypeVar("T")


@dataclass
class RetryPolicy:
    retries: int = 4
    base_delay: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[float, float], float] = random.uniform

    def backoff(self, attempt: int, retry_after: str | None = None) -> None:
        """Sleep before retry number ``attempt + 1``."""
        wait = parse_retry_after(retry_after, now=time.time())
        if wait is None:
            ceiling = min(self.max_wait, self.base_delay * (2**attempt))
            wait = self.jitter(ceiling / 2, ceiling)
        self.sleep(max(0.0, min(wait, self.max_wait)))


class Again(Exception):  # noqa: N818 - a signal to retrying(), not an error class
    """An attempt's signal: another try may succeed.

    When no retry is left, ``error`` is raised — or, without one, ``final`` returned.
    ``now`` retries at once without counting a retry (a refreshed credential).
    """

    def __init__(
        self,
        error: RegistryError | None = None,
        *,
        final: Any = None,
        retry_after: str | None = None,
        now: bool = False,
    ) -> None:
        super().__init__(str(error) if error else "again")
        self.error = error
        self.final = final
        self.retry_after = retry_after
        self.now = now

    def outcome(self) -> Any:
        """Giving up: raise ``error``, or else return ``final``."""
        if self.error is not None:
            raise self.error from None
        return self.final


def retrying(policy: RetryPolicy, attempt: Callable[[int], T], *, retries: int | None = None) -> T:
    """``attempt(n)`` for n = 0, 1, … until it does not raise :class:`Again`."""
    limit = policy.retries if retries is None else retries
    number = 0
    while True:
        try:
            return attempt(number)
        except Again as again:
            if again.now:
                continue
            if number >= limit:
                return cast(T, again.outcome())
            policy.backoff(number, again.retry_after)
            number += 1
