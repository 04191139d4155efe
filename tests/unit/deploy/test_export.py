"""Tests for ocirel.deploy.export: exact text of every format, and that tools accept it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from ocirel.deploy import export as exports
from ocirel.errors import ConfigError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest
from tests.support.kubectl import assert_pinned, rendered_images

D1 = Digest("sha256:" + "1" * 64)
D2 = Digest("sha256:" + "2" * 64)
D3 = Digest("sha256:" + "3" * 64)

LOCK = Lockfile(
    {
        "web": LockEntry("web", "docker.io/library/nginx", "1.27.1", D2),
        "api-server": LockEntry("api-server", "registry.example.com/team/api", "v7", D1),
        "2fa": LockEntry("2fa", "localhost:5000/sec/2fa", "1.10", D3),
    }
)

EXPECTED = {
    "json": f"""\
{{
  "2fa": "localhost:5000/sec/2fa:1.10@{D3}",
  "api-server": "registry.example.com/team/api:v7@{D1}",
  "web": "docker.io/library/nginx:1.27.1@{D2}"
}}
""",
    "env": f"""\
_2FA_IMAGE=localhost:5000/sec/2fa:1.10@{D3}
API_SERVER_IMAGE=registry.example.com/team/api:v7@{D1}
WEB_IMAGE=docker.io/library/nginx:1.27.1@{D2}
""",
    "kustomize": f"""\
images:
- name: localhost:5000/sec/2fa
  newTag: "1.10"
  digest: {D3}
- name: registry.example.com/team/api
  newTag: v7
  digest: {D1}
- name: nginx
  newTag: 1.27.1
  digest: {D2}
- name: docker.io/nginx
  newTag: 1.27.1
  digest: {D2}
- name: docker.io/library/nginx
  newTag: 1.27.1
  digest: {D2}
- name: index.docker.io/nginx
  newTag: 1.27.1
  digest: {D2}
- name: index.docker.io/library/nginx
  newTag: 1.27.1
  digest: {D2}
""",
    "helm": f"""\
2fa:
  repository: localhost:5000/sec/2fa
  tag: "1.10"
  digest: {D3}
api-server:
  repository: registry.example.com/team/api
  tag: v7
  digest: {D1}
web:
  repository: docker.io/library/nginx
  tag: 1.27.1
  digest: {D2}
""",
    "images-lock": f"""\
apiVersion: imgpkg.carvel.dev/v1alpha1
kind: ImagesLock
images:
- image: localhost:5000/sec/2fa@{D3}
  annotations:
    kbld.carvel.dev/id: localhost:5000/sec/2fa:1.10
- image: registry.example.com/team/api@{D1}
  annotations:
    kbld.carvel.dev/id: registry.example.com/team/api:v7
- image: docker.io/library/nginx@{D2}
  annotations:
    kbld.carvel.dev/id: docker.io/library/nginx:1.27.1
""",
}

EMPTY = {
    "json": "{}\n",
    "env": "",
    "kustomize": "images: []\n",
    "helm": "{}\n",
    "images-lock": "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n",
}


def load_yaml(text: str) -> object:
    return YAML(typ="safe", pure=True).load(text)


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_export_text(fmt: str) -> None:
    assert exports.export(LOCK, fmt) == EXPECTED[fmt]


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_export_of_an_empty_lockfile(fmt: str) -> None:
    assert exports.export(Lockfile(), fmt) == EMPTY[fmt]


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_export_is_deterministic(fmt: str) -> None:
    reordered = Lockfile(dict(reversed(list(LOCK.entries.items()))))
    assert exports.export(reordered, fmt) == exports.export(LOCK, fmt)


def test_yaml_exports_read_back_as_strings() -> None:
    assert json.loads(EXPECTED["json"])["2fa"] == f"localhost:5000/sec/2fa:1.10@{D3}"
    helm = load_yaml(EXPECTED["helm"])
    assert helm == {
        name: {"repository": e.repository, "tag": e.tag, "digest": e.digest}
        for name, e in LOCK.entries.items()
    }
    kustomize = load_yaml(EXPECTED["kustomize"])
    assert isinstance(kustomize, dict)
    assert [i["newTag"] for i in kustomize["images"]] == ["1.10", "v7"] + ["1.27.1"] * 5
    images_lock = load_yaml(EXPECTED["images-lock"])
    assert isinstance(images_lock, dict)
    assert images_lock["images"][0] == {
        "image": f"localhost:5000/sec/2fa@{D3}",
        "annotations": {"kbld.carvel.dev/id": "localhost:5000/sec/2fa:1.10"},
    }


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("app", "APP_IMAGE"),
        ("my-app", "MY_APP_IMAGE"),
        ("my.app_v2", "MY_APP_V2_IMAGE"),
        ("2fa", "_2FA_IMAGE"),
        ("a--b", "A__B_IMAGE"),
    ],
)
def test_env_name(name: str, variable: str) -> None:
    assert exports.env_name(name) == variable


def test_env_names_that_collide_are_an_error() -> None:
    lock = Lockfile(
        {
            "my-app": LockEntry("my-app", "r.io/a", "v1", D1),
            "my.app": LockEntry("my.app", "r.io/b", "v1", D2),
        }
    )
    with pytest.raises(ConfigError, match=r"'my-app' and 'my\.app' both become MY_APP_IMAGE"):
        exports.export(lock, "env")


def test_unknown_format() -> None:
    with pytest.raises(ConfigError, match="unknown export format 'xml'"):
        exports.export(LOCK, "xml")


@pytest.mark.parametrize(
    ("repository", "name"),
    [
        ("docker.io/library/nginx", "nginx"),
        ("docker.io/bitnami/redis", "bitnami/redis"),
        ("registry.example.com/team/app", "registry.example.com/team/app"),
        ("localhost:5000/app", "localhost:5000/app"),
    ],
)
def test_kustomize_name(repository: str, name: str) -> None:
    assert exports.kustomize_name(repository) == name


@pytest.mark.parametrize(
    ("repository", "names"),
    [
        (
            "docker.io/library/nginx",
            (
                "nginx", "docker.io/nginx", "docker.io/library/nginx",
                "index.docker.io/nginx", "index.docker.io/library/nginx",
            ),
        ),
        (
            "docker.io/bitnami/redis",
            ("bitnami/redis", "docker.io/bitnami/redis", "index.docker.io/bitnami/redis"),
        ),
        ("registry.example.com/team/app", ("registry.example.com/team/app",)),
    ],
)  # fmt: skip
def test_kustomize_names_are_every_spelling_kustomize_must_be_given(
    repository: str, names: tuple[str, ...]
) -> None:
    assert exports.kustomize_names(repository) == names


def test_kubectl_kustomize_accepts_the_kustomize_export(tmp_path: Path) -> None:
    (tmp_path / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n    spec:\n      containers:\n"
        "      - {name: a, image: 'nginx:1.25'}\n"
        "      - {name: b, image: 'registry.example.com/team/api:v6'}\n"
        "      - {name: c, image: 'localhost:5000/sec/2fa'}\n"
    )
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [deployment.yaml]\n" + exports.export(LOCK, "kustomize")
    )
    # kubectl 1.20 renders name@digest, newer ones name:tag@digest: the digest counts.
    assert_pinned(
        rendered_images(tmp_path),
        [
            f"nginx:1.27.1@{D2}",
            f"registry.example.com/team/api:v7@{D1}",
            f"localhost:5000/sec/2fa:1.10@{D3}",
        ],
    )


#: One container per spelling of Docker Hub's nginx and bitnami/redis (issue 13 item 8).
SPELLINGS = (
    "nginx:1.25", "docker.io/library/nginx:1.25", "docker.io/nginx:1.25",
    "index.docker.io/library/nginx:1.25", "index.docker.io/nginx", "nginx",
    "bitnami/redis:7.2", "docker.io/bitnami/redis:7.2", "index.docker.io/bitnami/redis",
)  # fmt: skip
#: What kustomize cannot be told to match: it compares names as written.
UNMATCHED = ("registry-1.docker.io/library/nginx:1.25", "Registry.Example.com/team/api:v6")


def test_kubectl_kustomize_pins_every_docker_hub_spelling_of_the_export(tmp_path: Path) -> None:
    lock = Lockfile(
        {
            "web": LockEntry("web", "docker.io/library/nginx", "1.27.1", D2),
            "cache": LockEntry("cache", "docker.io/bitnami/redis", "7.4.1", D1),
            "api": LockEntry("api", "registry.example.com/team/api", "v7", D3),
        }
    )
    containers = "".join(
        f"      - {{name: c{i}, image: '{image}'}}\n"
        for i, image in enumerate((*SPELLINGS, *UNMATCHED))
    )
    (tmp_path / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n    spec:\n      containers:\n" + containers
    )
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [deployment.yaml]\n" + exports.export(lock, "kustomize")
    )
    expected = [
        image.partition(":")[0] + (f":7.4.1@{D1}" if "redis" in image else f":1.27.1@{D2}")
        for image in SPELLINGS
    ]
    assert_pinned(rendered_images(tmp_path), [*expected, *UNMATCHED])
