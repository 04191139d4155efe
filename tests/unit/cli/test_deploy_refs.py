"""``ocirel pin``/``lint`` on references ocirel cannot pin (issue 13, items 6 and 10).

Files are faithful copies of public ones: kustomize's
``examples/transformerconfigs/images/kustomization.yaml`` (no final newline, as
upstream) and the shape of getsentry/self-hosted's ``docker-compose.yml``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirel import lockfile
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.unit.cli.invoke import run

D_APP = Digest("sha256:" + "a" * 64)

#: kubernetes-sigs/kustomize examples/transformerconfigs/images/kustomization.yaml
KUSTOMIZE_EXAMPLE = """\
resources:
- resources.yaml

configurations:
- kustomizeconfig/mykind.yaml

images:
- name: crd-image
  newName: new-crd-image
  newTag: new-v1-tag
- name: my-app
  newName: new-app-1
  newTag: MYNEWTAG-1
- name: my-mysql
  newName: prod-mysql
  newTag: v3
- name: docker
  newName: my-docker2
  digest: sha256:25a0d4"""

#: getsentry/self-hosted docker-compose.yml: anchors, $VAR and ${VAR:-default} images
SENTRY_COMPOSE = """\
x-restart-policy: &restart_policy
  restart: unless-stopped
x-snuba-defaults: &snuba_defaults
  <<: *restart_policy
  image: "$SNUBA_IMAGE"
  environment:
    SNUBA_SETTINGS: self_hosted
services:
  redis:
    <<: *restart_policy
    image: "redis:6.2.14-alpine"
  snuba-api:
    <<: *snuba_defaults
  web:
    image: $SENTRY_IMAGE
  relay:
    image: "$RELAY_IMAGE"
  vroom:
    image: getsentry/vroom:$VROOM_TAG
  nginx:
    image: "nginx:${NGINX_TAG:-1.25.4-alpine}"
"""


@pytest.fixture
def lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "ocirel.lock.json"
    entry = LockEntry("app", "registry.example.com/team/app", "v7", D_APP)
    path.write_text(lockfile.dumps(Lockfile({"app": entry})), encoding="utf-8")
    return path


def test_pin_check_fails_on_kustomizes_malformed_digest(tmp_path: Path, lock: Path) -> None:
    path = tmp_path / "kustomization.yaml"
    path.write_text(KUSTOMIZE_EXAMPLE)
    result = run("pin", "--check", ".", code=1)
    assert "nothing to pin" not in result.output
    assert (
        "kustomization.yaml:19:11: 'my-docker2@sha256:25a0d4': malformed 'digest' in a "
        "kustomize images entry: malformed digest 'sha256:25a0d4': sha256 takes exactly 64 "
        "hex digits, this has 6"
    ) in result.output
    assert "cannot pin: 1 malformed image entry; no file was written" in result.output
    run("pin", ".", code=1)
    run("pin", "--diff", ".", code=1)
    assert path.read_text() == KUSTOMIZE_EXAMPLE


def test_lint_reports_kustomizes_malformed_digest_as_an_error(tmp_path: Path, lock: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(KUSTOMIZE_EXAMPLE)
    result = run("lint", ".", code=1)
    malformed = [line for line in result.stdout.splitlines() if "[invalid-reference]" in line]
    assert malformed == [
        "kustomization.yaml:19:11: error: 'my-docker2@sha256:25a0d4' is not used as an image "
        "reference: malformed 'digest' in a kustomize images entry: malformed digest "
        "'sha256:25a0d4': sha256 takes exactly 64 hex digits, this has 6 [invalid-reference]"
    ]


def test_a_kustomize_new_tag_with_invalid_characters_is_blamed_on_its_line(
    tmp_path: Path, lock: Path
) -> None:
    text = "images:\n- name: registry.example.com/team/app\n  newTag: v7+build.1\n"
    (tmp_path / "kustomization.yaml").write_text(text)
    result = run("pin", "--check", ".", code=1)
    assert "kustomization.yaml:3:11: 'registry.example.com/team/app:v7+build.1': malformed " in (
        result.output
    )
    assert "'newTag'" in result.output


def test_compose_dollar_variables_are_templated_not_invalid(tmp_path: Path, lock: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(SENTRY_COMPOSE)
    result = run("lint", "--json", "docker-compose.yml", code=1)
    assert "invalid-reference" not in result.stdout
    pinned = run("pin", "--check", "--json", "docker-compose.yml")
    assert '"templated": true' in pinned.stdout
    assert '"templated": false' not in pinned.stdout


def test_a_doubled_dollar_is_a_literal_dollar_not_a_variable(tmp_path: Path, lock: Path) -> None:
    text = "services:\n  web:\n    image: app:$$TAG\n"
    (tmp_path / "compose.yaml").write_text(text)
    result = run("lint", "compose.yaml")
    assert result.stdout.startswith("compose.yaml:3:12: warning: 'app:$$TAG' is not used")
    assert result.stdout.rstrip().endswith("[invalid-reference]")
