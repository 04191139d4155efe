"""The testcontainers path of the registry fixture, exercised end to end.

The registry image is built on the spot from the distribution binary (no public
image can be pulled in CI); see tests/support/container_registry.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import OcirelRunner
from tests.support.container_registry import IMAGE_ENV, LOCAL_IMAGE, ContainerRegistryServer
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.builder


def test_publish_to_a_registry_run_by_testcontainers(
    ocirel: OcirelRunner, container_registry: RegistryServer, unique_repo: str,
    build_context: Callable[..., Path], require_engine: Callable[[str], None],
) -> None:  # fmt: skip
    require_engine("buildah")
    assert isinstance(container_registry, ContainerRegistryServer)
    assert container_registry.running()
    # built locally from the distribution binary unless another image was asked for
    assert container_registry.container.image == os.environ.get(IMAGE_ENV, LOCAL_IMAGE)

    context = build_context(unique=True)
    repo = f"{container_registry.host}/{unique_repo}"
    runs = [ocirel("publish", "--image", repo, "--json", "--always-new-version", str(context),
                   cwd=context) for _ in range(2)]  # fmt: skip
    for run in runs:
        assert run.returncode == 0, run.explain()
    first, second = (json.loads(run.stdout) for run in runs)
    assert (first["tag"], second["tag"]) == ("v1", "v2")
    with container_registry.client() as client:
        assert client.manifest_digest(unique_repo, "v2") == second["digest"]
        assert sorted(client.tags(unique_repo)) == ["v1", "v2"]
    # the container's own log saw the pushes
    assert "PUT" in container_registry.log_file.read_text(errors="replace")
