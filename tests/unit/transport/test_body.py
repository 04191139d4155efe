"""Reading bodies: timeouts and cut bodies (15), undecodable bodies (45), the read
deadline against trickling replies (48).

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

import time
import zlib

import pytest

from ocirel.errors import (
    RegistryAuthError,
    RegistryError,
)
from ocirel.transport import (
    Transport,
)
from tests.unit.fakeregistry import (
    STALL,
    FakeRegistry,
    MakeTransport,
    Response,
    StalledServer,
    sequence,
    tags_page,
)
from tests.unit.transport.helpers import (
    TAGS,
    get,
)

# ------------------------------------------------------------------ item 15


def test_r15_stalled_socket_times_out(
    stalled: StalledServer, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(connect_timeout=0.3, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="timed out") as caught:
        transport.ping(stalled.address)
    assert time.monotonic() - started < 2.0
    assert "OCIREL_READ_TIMEOUT" in (caught.value.hint or "")
    assert sleeps == []


def test_r15_registry_that_stops_answering_times_out(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(read_timeout=0.3)
    fake.route("GET", TAGS, STALL)
    transport.ping(fake.address)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="timed out waiting for"):
        get(transport, fake.address)
    assert time.monotonic() - started < 2.0  # nothing hangs (retries show in sleeps)
    assert len(fake.requests(TAGS)) == 1
    assert sleeps == []


def test_r15_body_stalled_mid_stream_times_out(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(read_timeout=0.3)
    body = tags_page(["v" + str(i) for i in range(200)]).body
    fake.route("GET", TAGS, Response(200, {}, body, stall_body=True))
    started = time.monotonic()
    with pytest.raises(RegistryError, match="stalled"):
        get(transport, fake.address)
    assert time.monotonic() - started < 2.0  # nothing hangs (retries show in sleeps)
    assert len(fake.requests(TAGS)) == 1
    assert sleeps == []


def test_r15_body_cut_short_detected_and_retried(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(retries=1)
    cut = Response(200, {"Content-Type": "application/json"}, b'{"tags": ["v1"', declared_length=64)
    fake.route("GET", TAGS, sequence(cut, tags_page(["v1"])))
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    fake.route("GET", TAGS, cut)
    with pytest.raises(RegistryError, match=r"broke while reading|cut short") as caught:
        get(transport, fake.address)
    assert caught.value.temporary


def test_r15_gzip_body_is_not_taken_for_a_cut_one(fake: FakeRegistry, transport: Transport) -> None:
    import gzip  # noqa: PLC0415

    plain = tags_page([f"v{i}" for i in range(300)]).body
    fake.route("GET", TAGS, Response(200, {"Content-Encoding": "gzip"}, gzip.compress(plain)))
    assert get(transport, fake.address).body == plain


# ------------------------------------------------------------------ item 45


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "x-gzip"])
def test_r45_body_that_does_not_decode_fails_cleanly(
    fake: FakeRegistry, transport: Transport, encoding: str
) -> None:
    garbage = (
        b"\x1f\x8b\x08\x00not really compressed at all" if "gzip" in encoding else b"\xff" * 40
    )
    fake.route("GET", TAGS, Response(200, {"Content-Encoding": encoding}, garbage))
    with pytest.raises(RegistryError, match="Content-Encoding") as caught:
        get(transport, fake.address)
    assert not isinstance(caught.value, RegistryAuthError)


def test_r45_deflate_that_decodes_is_read(fake: FakeRegistry, transport: Transport) -> None:
    plain = tags_page(["v1"]).body
    fake.route("GET", TAGS, Response(200, {"Content-Encoding": "deflate"}, zlib.compress(plain)))
    assert get(transport, fake.address).body == plain


# ------------------------------------------------------------------ item 48


@pytest.mark.parametrize("headers_too", [True, False], ids=["headers", "body"])
def test_r48_trickling_reply_cannot_evade_the_read_timeout(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float], headers_too: bool
) -> None:
    """One byte every 0.1 s never trips a 0.5 s per-read timeout; the deadline does."""
    transport = make_transport(read_timeout=0.5)
    transport.ping(fake.address)
    body = tags_page(["v1", "v2", "v3"]).body
    fake.route("GET", TAGS, Response(200, {}, body, trickle=0.1, trickle_headers=headers_too))
    started = time.monotonic()
    with pytest.raises(RegistryError, match="timed out") as caught:
        get(transport, fake.address)
    assert time.monotonic() - started < 2.0
    assert "OCIREL_READ_TIMEOUT" in (caught.value.hint or "")
    assert len(fake.requests(TAGS)) == 1  # a timeout is not retried
    assert sleeps == []


def test_r48_a_slow_but_steady_body_is_read(
    fake: FakeRegistry, make_transport: MakeTransport
) -> None:
    """The deadline is per 64 KiB of body: a large body that keeps coming is fine."""
    transport = make_transport(read_timeout=0.5)
    body = tags_page([f"v{i}" for i in range(30000)]).body
    assert len(body) > 4 * 65536
    fake.route("GET", TAGS, Response(200, {}, body))
    assert get(transport, fake.address).body == body


def test_rearming_does_not_wake_the_watcher() -> None:
    """A large download re-arms its deadline every 64 KiB: that must not cost a thread
    switch each time. The deadline still fires once re-arming stops."""
    from ocirel.transport.body import Deadline  # noqa: PLC0415

    deadline = Deadline(0.2)
    deadline.rearm()  # starts the watcher
    wakes: list[int] = []
    real_notify = deadline._wake.notify

    def counting_notify(n: int = 1) -> None:
        wakes.append(n)
        real_notify(n)

    deadline._wake.notify = counting_notify  # type: ignore[method-assign]
    for _ in range(2000):
        deadline.rearm()
    assert wakes == []
    time.sleep(0.2 + 0.25 + 0.35)  # the deadline, its grace, and slack
    assert deadline.cancel() is True  # it fired
