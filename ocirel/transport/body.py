"""Reading a reply within bounds: the read deadline's watchdog and the body checks.

``read_timeout`` is also a *deadline*: the status line and headers must arrive within
it once the request is sent, then each 64 KiB of the body (or the rest of a smaller
body) within it again, however the bytes trickle. :class:`Deadline` shuts the socket
down when it passes; the request then fails as a timeout, and is not retried.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ocirel.redact import redact
from ocirel.transport.errors import body_error
from ocirel.transport.retry import Again

CHUNK = 65536
#: the watchdog fires this long after the read timeout, so that a reply that simply
#: stops is still reported by the socket's own, more precise timeout
_DEADLINE_GRACE = 0.25
_active = threading.local()  # .deadline: the Deadline of this thread's request in flight


class Deadline:
    """A watchdog for one request: shuts its socket down when the reply is too slow.

    A socket timeout bounds each ``recv``; a reply that trickles in a byte at a time
    never trips it. This bounds the whole wait instead: armed when the request has
    been sent (the connection's ``getresponse``), re-armed for each 64 KiB of body.
    The thread starts only once armed and ends with :meth:`cancel`.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._fired = False
        self._done = False
        self._sock: object = None
        self._expires = math.inf
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def attach(self, sock: object) -> None:
        with self._wake:
            self._sock = sock
        self.rearm()

    def rearm(self) -> None:
        """Push the deadline back. The watcher is not woken: the deadline only ever
        moves later, and the watcher checks it again when its wait ends. (Waking it
        for every 64 KiB of a large download cost a thread switch each time.)"""
        with self._wake:
            self._expires = time.monotonic() + self.seconds + _DEADLINE_GRACE
            if self._thread is None and not self._done:
                self._thread = threading.Thread(target=self._watch, daemon=True)
                self._thread.start()

    def cancel(self) -> bool:
        """Stop watching; say whether the deadline passed (the reply is then void)."""
        with self._wake:
            self._done = True
            self._wake.notify()
            return self._fired

    def _watch(self) -> None:
        with self._wake:
            while not self._done:
                left = self._expires - time.monotonic()
                if left <= 0:
                    self._fired = True
                    if isinstance(self._sock, socket.socket):
                        # the plain socket's shutdown, even under TLS: wakes the reader with EOF
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
                    return
                self._wake.wait(left)


@contextmanager
def deadline_for_this_thread(seconds: float) -> Iterator[Deadline]:
    """A :class:`Deadline` that this thread's next connection arms (:func:`arm_deadline`)."""
    deadline = Deadline(seconds)
    _active.deadline = deadline
    try:
        yield deadline
    finally:
        _active.deadline = None


def arm_deadline(sock: object) -> None:
    deadline = getattr(_active, "deadline", None)
    if deadline is not None:
        deadline.attach(sock)


def check_size(size: int, limit: int, method: str, url: str, status: int) -> None:
    if size > limit:
        problem = f"response body larger than {limit} bytes; refused"
        raise body_error(method, url, status, problem)


def undecodable(method: str, url: str, status: int, headers: Mapping[str, str]) -> Exception:
    encoding = headers.get("Content-Encoding", "")
    problem = (
        f"the body does not decode as its Content-Encoding ({redact(encoding)[:40]}) says; refused"
    )
    return body_error(method, url, status, problem)


def check_complete(
    body: bytes, headers: Mapping[str, str], method: str, url: str, status: int
) -> None:
    """A body shorter than its ``Content-Length`` is retried (when the request may be)."""
    expected = headers.get("Content-Length")
    # with a Content-Encoding (gzip), Content-Length counts the encoded bytes, not these
    encoding = headers.get("Content-Encoding", "").strip().lower()
    cut_short = bool(expected and expected.isdigit() and int(expected) != len(body))
    if cut_short and method != "HEAD" and encoding in ("", "identity"):
        problem = f"body cut short ({len(body)} of {expected} bytes)"
        raise Again(body_error(method, url, status, problem, temporary=True))
