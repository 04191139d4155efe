"""Malformed URLs fail cleanly (44); a Link that only switches the scheme (57).

Nothing here really sleeps for a retry: ``sleeps`` records what the policy asked for.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ocirel.errors import (
    RegistryAuthError,
    RegistryError,
)
from ocirel.oci import Digest
from ocirel.reference import parse
from ocirel.registry import Registry
from ocirel.transport import (
    Transport,
    check_same_origin,
)
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    Response,
    redirect,
    status,
    tags_page,
)
from tests.unit.transport.helpers import (
    BLOB,
    TAGS,
    alice,
    get,
)

# ------------------------------------------------------------------ item 44

BROKEN_URLS = [
    "http://[::1/v2/team/app/tags/list?last=v1",
    "http://127.0.0.1:99999/v2/team/app/tags/list?last=v1",
    "http://127.0.0.1:-1/x",
    "http://[fe80::zz]/x",
]


@pytest.mark.parametrize("url", BROKEN_URLS)
def test_r44_malformed_link_fails_cleanly(fake: FakeRegistry, registry: Registry, url: str) -> None:
    fake.route("GET", TAGS, tags_page(["v1"], link=url))
    with pytest.raises(RegistryError, match=r"malformed|another host") as caught:
        registry.list_tags(parse(f"{fake.address}/team/app"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("url", BROKEN_URLS)
def test_r44_malformed_redirect_location_fails_cleanly(
    fake: FakeRegistry, transport: Transport, url: str
) -> None:
    fake.route("GET", BLOB, redirect(url))
    with pytest.raises(RegistryError, match="malformed"):
        get(transport, fake.address, BLOB)


@pytest.mark.parametrize("url", BROKEN_URLS)
def test_r44_malformed_upload_location_fails_cleanly(
    fake: FakeRegistry, registry: Registry, tmp_path: Path, url: str
) -> None:
    fake.route("POST", "/v2/team/app/blobs/uploads/", status(202, Location=url))
    blob = tmp_path / "blob"
    blob.write_bytes(b"layer")
    with pytest.raises(RegistryError, match="malformed"):
        registry.upload_blob(
            parse(f"{fake.address}/team/app"),
            Digest("sha256:" + "c" * 64),
            lambda: blob.open("rb"),
            5,
        )


@pytest.mark.parametrize("realm", BROKEN_URLS)
def test_r44_token_realm_that_does_not_parse_fails_cleanly(
    fake: FakeRegistry, make_transport: MakeTransport, realm: str
) -> None:
    transport = make_transport(credentials=lambda r, p: alice())
    challenge = Response(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="s"'})
    fake.route("GET", "/v2/", challenge)
    fake.route("GET", TAGS, challenge)
    with pytest.raises(RegistryAuthError, match="token realm"):
        get(transport, fake.address)


def test_r44_cli_exit_1_for_a_malformed_link(fake: FakeRegistry, clean_home: Path) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    from ocirel.cli import app  # noqa: PLC0415

    fake.route("GET", TAGS, tags_page(["v1"], link=BROKEN_URLS[0]))
    result = CliRunner().invoke(app, ["tags", f"{fake.address}/team/app"])
    assert result.exit_code == 1, result.output
    assert "malformed" in result.output
    assert "internal error" not in result.output


# ------------------------------------------------------------------ item 57


def test_r57_link_to_https_on_the_same_host_names_the_scheme(
    fake: FakeRegistry, registry: Registry
) -> None:
    link = f"https://{fake.address}{TAGS}?last=v1"
    fake.route("GET", TAGS, tags_page(["v1"], link=link))
    with pytest.raises(RegistryError) as caught:
        registry.list_tags(parse(f"{fake.address}/team/app"))
    message = str(caught.value)
    assert "another host" not in message
    assert "https" in message
    assert "scheme" in message
    assert len(fake.requests(TAGS)) == 1


@pytest.mark.parametrize(
    ("target", "differs"),
    [
        ("https://other.example/v2/a/tags/list?last=b", "another host (other.example)"),
        ("http://reg.example/v2/a/tags/list?last=b", "switches the scheme from https to http"),
    ],
)
def test_check_same_origin_says_what_differs(target: str, differs: str) -> None:
    base = "https://reg.example"
    check_same_origin("reg.example", base, base + "/v2/a/tags/list?n=1", what="a Link", hint="h")
    with pytest.raises(RegistryError, match=re.escape(differs)) as info:
        check_same_origin("reg.example", base, target, what="a Link", hint="h")
    assert str(info.value).startswith("reg.example sent a Link ")
    assert info.value.hint == "h"
