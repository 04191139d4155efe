"""The build step of a publish: the stale-cache check and the read of the image's
config run at the same time, and the config is read once (the unchanged re-publish
used to run ``buildah inspect`` of the same image twice, one after the other)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocirel.backends.base import BuildEnv, BuildSpec, StaleCache
from ocirel.oci import ImageConfig
from ocirel.publish.job import Job
from ocirel.publish.request import PublishRequest
from ocirel.reference import parse
from ocirel.versioning import make_scheme

FIRST = "sha256:" + "1" * 64
AGAIN = "sha256:" + "2" * 64
T = 1700000000


@dataclass
class CheckingBuilder:
    """Builds FIRST (then AGAIN without the cache); its stale-cache check waits until
    the config of the image is being read, as a real one would run alongside it."""

    stale: StaleCache | None = None
    calls: list[str] = field(default_factory=list)
    reading: threading.Event = field(default_factory=threading.Event)
    overlapped: bool = False
    name: str = "checking"
    program: str = "checking"
    install_hint: str = ""
    reproducible: bool = True
    multi_platform: bool = True

    def build_argv(self, spec: BuildSpec, env: BuildEnv) -> list[str]:
        return []

    def build(self, spec: BuildSpec, env: BuildEnv, *, timeout: float) -> str | None:
        self.calls.append("build" if spec.layers else "build --no-cache")
        return FIRST if spec.layers else AGAIN

    def stale_cache(self, image: str, timestamp: int, env: BuildEnv) -> StaleCache | None:
        self.calls.append(f"stale_cache {image[-4:]}")
        self.overlapped = self.reading.wait(timeout=10)
        return self.stale

    def image_config(self, image: str, env: BuildEnv) -> ImageConfig | None:
        self.calls.append(f"image_config {image[-4:]}")
        self.reading.set()
        return {"rootfs": {"type": "layers", "diff_ids": [image]}}

    def drop_stale(self, stale: StaleCache, env: BuildEnv) -> str | None:
        self.calls.append("drop")
        return None

    def remove(self, image: str, env: BuildEnv) -> None:
        self.calls.append("remove")

    def version(self) -> str | None:
        return None

    def problem(self) -> str | None:
        return None


def job(tmp_path: Path, builder: CheckingBuilder, **options: Any) -> Job:
    request = PublishRequest(
        context=tmp_path, repository=parse("r.example/team/app"), name="app",
        lockfile=tmp_path / "ocirel.lock.json", scheme=make_scheme("counter"), **options,
    )  # fmt: skip

    def no_registry() -> Any:
        raise AssertionError("the build step needs no registry")

    return Job(request, builder, BuildEnv(), no_registry)


def test_the_config_is_read_while_the_cache_is_checked_and_only_once(tmp_path: Path) -> None:
    builder = CheckingBuilder()
    publish = job(tmp_path, builder, timestamp=T)
    publish.build(publish.spec(named=False))
    config = publish.local_config()
    assert builder.overlapped  # the check did not wait for the read to finish first
    assert config == {"rootfs": {"type": "layers", "diff_ids": [FIRST]}}
    assert sorted(builder.calls) == ["build", "image_config 1111", "stale_cache 1111"]


def test_after_a_stale_cache_the_rebuilt_image_is_read(tmp_path: Path) -> None:
    builder = CheckingBuilder(stale=StaleCache("stale", entries=("abc",)))
    publish = job(tmp_path, builder, timestamp=T)
    publish.build(publish.spec(named=False))
    assert publish.local_image == AGAIN
    config = publish.local_config()
    assert config == {"rootfs": {"type": "layers", "diff_ids": [AGAIN]}}  # never FIRST's
    assert builder.calls[-2:] == ["drop", "image_config 2222"]


def test_without_a_timestamp_the_config_is_read_when_asked(tmp_path: Path) -> None:
    builder = CheckingBuilder()
    publish = job(tmp_path, builder)
    publish.build(publish.spec(named=False))
    assert builder.calls == ["build"]
    assert publish.local_config() == {"rootfs": {"type": "layers", "diff_ids": [FIRST]}}
    assert builder.calls == ["build", "image_config 1111"]


def test_the_export_and_push_modules_load_only_when_there_is_something_to_push() -> None:
    # an unchanged re-publish never exports nor claims a tag: it need not import them
    # before its build starts (measured: ~20-40 ms of a ~1 s run)
    code = (
        "import sys, ocirel.publish\n"
        "lazy = ('ocirel.publish.export', 'ocirel.publish.claim', 'ocirel.image',\n"
        "        'ocirel.publish.layercache', 'ocirel.publish.reuse', 'ocirel.publish.early')\n"
        "print(' '.join(m for m in lazy if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == ""
