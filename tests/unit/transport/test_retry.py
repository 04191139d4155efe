"""The retry loop: ``Retry-After`` (13), 5xx and broken connections (14).

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import pytest

from ocirel import reference
from ocirel.errors import (
    RegistryError,
)
from ocirel.registry import Registry
from ocirel.transport import (
    Again,
    RetryPolicy,
    Transport,
    parse_retry_after,
    retrying,
)
from tests.unit.fakeregistry import (
    DROP,
    RESET,
    FakeRegistry,
    MakeTransport,
    NetGuard,
    Response,
    oci_error,
    sequence,
    status,
    tags_page,
)
from tests.unit.transport.helpers import (
    TAGS,
    closed_port,
    get,
)

# ------------------------------------------------------------------ item 13


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def test_r13_retry_after_seconds_honoured(
    fake: FakeRegistry, transport: Transport, sleeps: list[float]
) -> None:
    fake.route("GET", TAGS, sequence(status(429, Retry_After="3"), tags_page(["v1"])))
    assert get(transport, fake.address).status == 200
    assert sleeps == [3.0]


def test_r13_retry_after_http_date_honoured(
    fake: FakeRegistry, transport: Transport, sleeps: list[float]
) -> None:
    fake.route("GET", TAGS, sequence(status(429, Retry_After=http_date(12)), tags_page(["v1"])))
    assert get(transport, fake.address).status == 200
    assert len(sleeps) == 1
    assert 9.0 <= sleeps[0] <= 12.5


@pytest.mark.parametrize(
    "retry_after",
    [http_date(3600), "99999999999", "1" * 400],
    ids=["date", "seconds", "400-digits"],
)
def test_r13_retry_after_capped(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float], retry_after: str
) -> None:
    transport = make_transport(max_wait=7.5)
    fake.route("GET", TAGS, sequence(status(503, Retry_After=retry_after), tags_page(["v1"])))
    assert get(transport, fake.address).status == 200
    assert sleeps == [7.5]


def test_r13_persistent_429_fails_clearly(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(retries=3, max_wait=5)
    fake.route(
        "GET",
        TAGS,
        Response(
            429,
            {"Retry-After": "2", "Content-Type": "application/json"},
            oci_error(429, "TOOMANYREQUESTS", "slow down").body,
        ),
    )
    with pytest.raises(RegistryError, match="429 TOOMANYREQUESTS") as caught:
        Registry(transport).list_tags(reference.parse(f"{fake.address}/team/app"))
    assert caught.value.temporary
    assert sleeps == [2.0, 2.0, 2.0]
    assert len(fake.requests(TAGS)) == 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("-5", None),
        ("1.5", None),
        ("²", None),
        ("٣", None),
        ("soon", None),
        ("", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_r13_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=time.time()) == expected


def test_r13_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0


# ------------------------------------------------------------------ item 14


def test_r14_5xx_burst_retried_with_jittered_backoff(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(retries=4)
    fake.route(
        "GET", TAGS, sequence(status(503), status(502), status(504), status(503), tags_page([]))
    )
    assert get(transport, fake.address).status == 200
    assert len(sleeps) == 4
    for attempt, wait in enumerate(sleeps):
        ceiling = 0.5 * 2**attempt
        assert ceiling / 2 <= wait <= ceiling


def test_r14_backoff_capped_by_max_wait(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float]
) -> None:
    transport = make_transport(retries=8, max_wait=2.0)
    fake.route("GET", TAGS, status(503))
    assert get(transport, fake.address).status == 503
    assert len(sleeps) == 8
    assert max(sleeps) <= 2.0
    assert len(fake.requests(TAGS)) == 9


@pytest.mark.parametrize("code", [500, 501, 400, 401, 403, 404])
def test_r14_not_retried(
    fake: FakeRegistry, transport: Transport, sleeps: list[float], code: int
) -> None:
    fake.route("GET", TAGS, status(code))
    assert get(transport, fake.address).status == code
    assert len(fake.requests(TAGS)) == 1
    assert sleeps == []


@pytest.mark.parametrize("fault", [DROP, RESET], ids=["dropped", "reset"])
def test_r14_broken_connections_retried(
    fake: FakeRegistry, transport: Transport, sleeps: list[float], fault: Response
) -> None:
    fake.route("GET", TAGS, sequence(fault, fault, tags_page(["v1"])))
    assert get(transport, fake.address).json()["tags"] == ["v1"]
    assert len(sleeps) == 2


@pytest.mark.parametrize("fault", [DROP, RESET], ids=["dropped", "reset"])
def test_r14_broken_connections_fail_after_bounded_retries(
    fake: FakeRegistry, make_transport: MakeTransport, sleeps: list[float], fault: Response
) -> None:
    transport = make_transport(retries=2)
    fake.route("GET", TAGS, fault)
    with pytest.raises(RegistryError, match="cannot reach") as caught:
        get(transport, fake.address)
    assert caught.value.temporary
    assert len(fake.requests(TAGS)) == 3
    assert len(sleeps) == 2


def test_r14_connection_refused_retried_then_fails(
    make_transport: MakeTransport, sleeps: list[float], net: NetGuard
) -> None:
    transport = make_transport(retries=3)
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(RegistryError, match="connection refused") as caught:
        get(transport, address)
    assert caught.value.temporary
    assert len(sleeps) == 3
    assert len(net.connections) == 4


def test_r14_dns_failure_retried_then_fails(
    make_transport: MakeTransport, sleeps: list[float], net: NetGuard
) -> None:
    transport = make_transport(retries=2)
    with pytest.raises(RegistryError, match=r"cannot reach https://nxdomain\.test/v2/"):
        get(transport, "nxdomain.test")
    assert net.connections == [("nxdomain.test", 443)] * 3
    assert len(sleeps) == 2


def test_r14_bytes_bodies_replayed_streams_never(
    fake: FakeRegistry, transport: Transport, sleeps: list[float], tmp_path: Path
) -> None:
    fake.route("PUT", "/v2/team/app/manifests/v1", sequence(status(503), status(201)))
    reply = transport.request("PUT", fake.address, "/v2/team/app/manifests/v1", data=b"{}")
    assert reply.status == 201
    assert [r.body for r in fake.requests("/v2/team/app/manifests/v1")] == [b"{}", b"{}"]
    blob = tmp_path / "blob"
    blob.write_bytes(b"streamed")
    fake.route("PUT", "/upload", status(503))
    streamed = transport.request(
        "PUT", fake.address, "/upload", data=lambda: blob.open("rb"), content_length=8
    )
    assert streamed.status == 503
    assert len(fake.requests("/upload")) == 1
    assert len(sleeps) == 1


# ------------------------------------------------------------------ the loop itself


def _policy(sleeps: list[float], retries: int = 2) -> RetryPolicy:
    return RetryPolicy(retries=retries, base_delay=1.0, max_wait=30.0, sleep=sleeps.append)


def test_retrying_returns_the_first_success_after_backing_off(sleeps: list[float]) -> None:
    seen: list[int] = []

    def attempt(number: int) -> str:
        seen.append(number)
        if number < 2:
            raise Again(RegistryError("down"))
        return "up"

    assert retrying(_policy(sleeps), attempt) == "up"
    assert seen == [0, 1, 2]
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 <= sleeps[1] <= 2.0  # jittered, growing


def test_retrying_gives_up_with_the_error_or_the_final_value(sleeps: list[float]) -> None:
    def broken(_number: int) -> str:
        raise Again(RegistryError("still down"))

    with pytest.raises(RegistryError, match="still down"):
        retrying(_policy(sleeps), broken)
    assert len(sleeps) == 2

    def busy(_number: int) -> str:
        raise Again(final="503 reply", retry_after="7")

    assert retrying(_policy(sleeps, retries=1), busy) == "503 reply"
    assert sleeps[-1] == 7.0  # Retry-After honoured


def test_retrying_now_retries_at_once_without_counting(sleeps: list[float]) -> None:
    seen: list[int] = []

    def attempt(number: int) -> int:
        seen.append(number)
        if len(seen) == 1:
            raise Again(now=True)
        return number

    assert retrying(_policy(sleeps), attempt) == 0
    assert seen == [0, 0]
    assert sleeps == []


def test_retrying_does_not_catch_other_errors(sleeps: list[float]) -> None:
    def attempt(_number: int) -> None:
        raise RegistryError("permanent")

    with pytest.raises(RegistryError, match="permanent"):
        retrying(_policy(sleeps), attempt)
    assert sleeps == []


def test_retrying_takes_its_own_retry_count(sleeps: list[float]) -> None:
    def attempt(_number: int) -> None:
        raise Again(RegistryError("x"))

    with pytest.raises(RegistryError):
        retrying(_policy(sleeps, retries=9), attempt, retries=3)
    assert len(sleeps) == 3
