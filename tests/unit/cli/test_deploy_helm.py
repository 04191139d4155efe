"""``ocirel pin``/``lint`` on Helm values: --helm-digest-field, --chart, the settings.

Runs in ``tmp_path`` (the working directory, see conftest). The charts are copies of
``tests/unit/deploy/golden/charts``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ocirel import lockfile
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.unit.cli.invoke import run

CHARTS = Path(__file__).parents[1] / "deploy" / "golden" / "charts"
APP = "registry.example.com/team/app"
D_APP = Digest("sha256:" + "ab" * 32)
VALUES = f"image:\n  repository: {APP}\n  tag: v7\n  pullPolicy: IfNotPresent\n"
PINNED = {
    "tag": VALUES.replace("tag: v7", f"tag: v7@{D_APP}"),
    "digest": VALUES.replace("tag: v7", f"tag: v7\n  digest: {D_APP}"),
    "sha": VALUES.replace("tag: v7", f"tag: v7\n  sha: {D_APP[7:]}"),
}


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "ocirel.lock.json"
    entries = {
        "app": LockEntry("app", APP, "v7", D_APP),
        "am": LockEntry("am", "quay.io/prometheus/alertmanager", "v0.28.0", D_APP),
    }
    path.write_text(lockfile.dumps(Lockfile(entries)), encoding="utf-8")
    return path


def values_file(tmp_path: Path, name: str = "values.yaml") -> Path:
    path = tmp_path / "deploy" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(VALUES, encoding="utf-8")
    return path


@pytest.mark.parametrize("field", ["tag", "digest", "sha"])
def test_check_diff_pin_and_pin_again_for_each_key(tmp_path: Path, lock: Path, field: str) -> None:
    values = values_file(tmp_path)
    flag = ("--helm-digest-field", field)
    checked = run("pin", "--check", *flag, "deploy", code=1)
    assert "deploy/values.yaml:2: registry.example.com/team/app:v7: pinned" in checked.stderr
    patch = run("pin", "--diff", *flag, "deploy").stdout
    assert values.read_text() == VALUES
    subprocess.run(["git", "apply", "-"], input=patch, text=True, check=True, cwd=tmp_path)
    assert values.read_text() == PINNED[field]
    values.write_text(VALUES)
    run("pin", *flag, "deploy")
    assert values.read_text() == PINNED[field]
    assert "nothing to pin" in run("pin", *flag, "deploy").stderr
    run("pin", "--check", *flag, "deploy")
    assert run("lint", "deploy").stdout == ""


def test_per_file_setting_in_ocirel_toml(tmp_path: Path, lock: Path) -> None:
    ksm, other = values_file(tmp_path, "values-ksm.yaml"), values_file(tmp_path)
    (tmp_path / "ocirel.toml").write_text(
        'helm_digest_field = "digest"\n\n[helm_digest_fields]\n"deploy/values-ksm.yaml" = "sha"\n'
    )
    run("pin", "deploy")
    assert ksm.read_text() == PINNED["sha"]
    assert other.read_text() == PINNED["digest"]
    ksm.write_text(VALUES)
    run("pin", "--helm-digest-field", "tag", str(ksm))  # the flag wins
    assert ksm.read_text() == PINNED["tag"]


@pytest.mark.parametrize(
    ("args", "toml", "message"),
    [
        (("--helm-digest-field", "image"), "", "unknown Helm digest field 'image'"),
        (("--chart", "nowhere"), "", "--chart nowhere: no Chart.yaml there"),
        ((), 'helm_digest_field = "sha1"\n', "invalid value for helm_digest_field"),
        ((), '[helm_digest_fields]\n"x.yaml" = "tags"\n', "expected one of auto, digest"),
    ],
)
def test_bad_helm_options_exit_2(
    tmp_path: Path, lock: Path, args: tuple[str, ...], toml: str, message: str
) -> None:
    values = values_file(tmp_path)
    (tmp_path / "ocirel.toml").write_text(toml)
    result = run("pin", *args, "deploy", code=2)
    assert message in result.output
    assert values.read_text() == VALUES


def test_a_key_the_schema_forbids_fails_and_writes_nothing(tmp_path: Path, lock: Path) -> None:
    shutil.copytree(CHARTS / "alertmanager", tmp_path / "alertmanager")
    other = values_file(tmp_path)
    before = (tmp_path / "alertmanager" / "values.yaml").read_text()
    result = run("pin", "--helm-digest-field", "digest", "alertmanager", "deploy", code=1)
    assert "forbids 'digest' in image (additionalProperties: false)" in result.output
    assert "use --helm-digest-field tag" in result.output
    assert (tmp_path / "alertmanager" / "values.yaml").read_text() == before
    assert other.read_text() == VALUES
    run("pin", "alertmanager")  # auto: the tag carries the digest
    assert f'tag: "v0.28.0@{D_APP}"' in (tmp_path / "alertmanager" / "values.yaml").read_text()


def test_lint_with_chart_reports_a_digest_the_chart_never_reads(tmp_path: Path) -> None:
    values = tmp_path / "values-prod.yaml"
    values.write_text(f"image:\n  repository: {APP}\n  tag: v7\n  digest: {D_APP}\n")
    assert run("lint", str(values)).stdout == ""  # without the chart: the convention
    result = run("lint", "--chart", str(CHARTS / "mychart"), str(values), code=1)
    assert "its digest is in 'digest', which the chart" in result.stdout
    assert "[unpinned]" in result.stdout
