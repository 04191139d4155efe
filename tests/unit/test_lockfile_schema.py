"""The lockfile's JSON Schema (``ocirel/schemas/lockfile.schema.json``) ships in the
package and agrees with the loader: what ocirel writes is valid, and the documents
the loader refuses for their shape are invalid too."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from ocirel import lockfile
from ocirel.errors import LockfileError
from ocirel.lockfile import LockEntry, Lockfile
from ocirel.oci import Digest

D1 = Digest("sha256:" + "1" * 64)
D2 = Digest("sha256:" + "2" * 64)
D512 = Digest("sha512:" + "5" * 128)


def schema() -> dict[str, Any]:
    text = resources.files("ocirel").joinpath("schemas/lockfile.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validator() -> Any:
    jsonschema.Draft202012Validator.check_schema(schema())
    return jsonschema.Draft202012Validator(schema())


def entry(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "repository": "registry.example.com/team/app",
        "tag": "v7",
        "digest": D1,
        "reference": f"registry.example.com/team/app:v7@{D1}",
        "platforms": {"linux/amd64": D1},
        "source": {"revision": "f7571c46", "dirty": False},
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def document(**entries: object) -> dict[str, Any]:
    return {"schema": 2, "images": entries, "issued": {"registry.example.com/team/app": "v7"}}


def test_the_schema_ships_in_the_package_and_is_a_valid_schema() -> None:
    assert schema()["title"] == "ocirel.lock.json"
    validator()


def test_what_ocirel_writes_is_valid() -> None:
    lock = Lockfile(
        {
            "app": LockEntry(
                "app",
                "registry.example.com/team/app",
                "v7",
                D1,
                platforms={"linux/amd64": D1, "linux/arm64/v8": D2},
                source={"revision": "f7571c46", "dirty": True},
                extra={"written-by-a-newer-ocirel": {"x": 1}},
            ),
            "nginx.web_2": LockEntry("nginx.web_2", "docker.io/library/nginx", "1.27.1", D512),
        },
        {"registry.example.com/team/app": "v9", "docker.io/library/nginx": "1.27.1"},
    )
    validator().validate(json.loads(lockfile.dumps(lock)))


@pytest.mark.parametrize(
    "doc",
    [
        {"schema": 1, "images": {"app": entry()}},  # schema 1: no 'issued'
        {"schema": 2},
        document(app=entry(reference=None, platforms=None, source=None)),
        document(**{"a-b.c_d": entry()}),
    ],
    ids=["schema-1", "empty", "minimal-entry", "name-characters"],
)
def test_documents_the_loader_reads_are_valid(doc: dict[str, Any]) -> None:
    lockfile.loads(json.dumps(doc))
    validator().validate(doc)


@pytest.mark.parametrize(
    "doc",
    [
        {"images": {}},
        {"schema": 3, "images": {}},
        {"schema": "2", "images": {}},
        {"schema": 2, "images": []},
        document(App=entry()),
        document(app=entry(digest="sha256:25a0d4")),
        document(app=entry(digest="SHA256:" + "1" * 64)),
        document(app=entry(tag=".hidden")),
        document(app=entry(tag="v" * 129)),
        document(app=entry(tag=None)),
        document(app=entry(repository="registry.example.com/team/app:v7")),
        document(app=entry(repository=f"registry.example.com/team/app@{D1}")),
        document(app=entry(platforms={"linux/amd64": "latest"})),
        document(app=entry(source="f7571c46")),
        document(app="registry.example.com/team/app:v7"),
        {"schema": 2, "images": {}, "issued": {"registry.example.com/team/app": "-x"}},
        {"schema": 2, "images": {}, "issued": []},
    ],
    ids=[
        "no-schema", "schema-3", "schema-string", "images-list", "upper-case-name",
        "short-digest", "upper-case-digest", "tag-with-dot", "tag-too-long", "no-tag",
        "repository-with-tag", "repository-with-digest", "platform-not-digest",
        "source-string", "entry-string", "issued-bad-tag", "issued-list",
    ],
)  # fmt: skip
def test_documents_the_loader_refuses_are_invalid(doc: dict[str, Any]) -> None:
    with pytest.raises(LockfileError):
        lockfile.loads(json.dumps(doc))
    assert not validator().is_valid(doc)
