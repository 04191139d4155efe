"""Status to error: what a failed reply says (item 11).

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

import pytest

from ocirel.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
)
from ocirel.transport import (
    Reply,
    Transport,
    raise_for_status,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    oci_error,
    status,
)
from tests.unit.transport.helpers import (
    PULL,
    TAGS,
    get,
)

# ------------------------------------------------------------------ item 11


def test_r11_non_json_4xx_shows_status_and_truncated_body(
    fake: FakeRegistry, transport: Transport
) -> None:
    page = b"<html><head><title>Proxy error</title></head><body>" + b"x" * 5000 + b"</body></html>"
    fake.route("GET", TAGS, status(400, page, Content_Type="text/html"))
    with pytest.raises(RegistryError) as caught:
        raise_for_status(get(transport, fake.address), what="listing tags")
    message = str(caught.value)
    assert "400" in message
    assert "Proxy error" in message
    assert message.endswith("…")
    assert len(message) < 400
    assert caught.value.status == 400
    assert not caught.value.temporary


def test_r11_unknown_error_code_shown(fake: FakeRegistry, transport: Transport) -> None:
    fake.route("GET", TAGS, oci_error(418, "TEAPOT_OVERHEATED", "short and stout"))
    with pytest.raises(RegistryError, match="418 TEAPOT_OVERHEATED: short and stout") as caught:
        raise_for_status(get(transport, fake.address))
    assert caught.value.codes == ("TEAPOT_OVERHEATED",)


def test_r11_head_error_has_no_body(fake: FakeRegistry, transport: Transport) -> None:
    fake.route("HEAD", "/v2/team/app/manifests/v1", status(400))
    reply = transport.request("HEAD", fake.address, "/v2/team/app/manifests/v1", scope=PULL)
    with pytest.raises(RegistryError, match=r"400 \(no body\)"):
        raise_for_status(reply)


@pytest.mark.parametrize(
    ("code", "error", "temporary"),
    [
        (401, RegistryAuthError, False),
        (403, RegistryAuthError, False),
        (404, RegistryNotFoundError, False),
        (409, RegistryError, False),
        (500, RegistryError, True),
        (503, RegistryError, True),
    ],
)
def test_r11_status_maps_to_error_class(
    code: int, error: type[RegistryError], temporary: bool
) -> None:
    reply = Reply(code, {}, b'{"errors": [{"code": "X"}]}', "https://r.example/v2/", "GET")
    with pytest.raises(error) as caught:
        raise_for_status(reply)
    assert type(caught.value) is error
    assert caught.value.temporary is temporary
    assert raise_for_status(Reply(200, {}, b"", "https://r.example/v2/", "GET")).status == 200
