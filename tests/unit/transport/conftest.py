"""Fixtures of the transport tests (the fakes themselves are in tests/unit/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.fakeregistry import StalledServer


@pytest.fixture
def stalled() -> Iterator[StalledServer]:
    server = StalledServer()
    yield server
    server.close()
