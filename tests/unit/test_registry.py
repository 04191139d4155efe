"""Registry operations against the scripted fake: RELIABILITY items 1-10 and 24.

Each test name carries the item number (``test_r01_…``) so docs/reliability.md can
point at it. Transport-level faults (items 11-23) live in tests/unit/transport/.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from ocirel import reference
from ocirel.auth import Credentials
from ocirel.errors import (
    DigestMismatchError,
    InvalidReferenceError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
    UnsupportedManifestError,
)
from ocirel.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Digest,
    ImageManifest,
    sha256_digest,
)
from ocirel.reference import Reference, validate_digest
from ocirel.registry import Registry
from ocirel.registry import blobs as registry_blobs
from ocirel.registry import tags as registry_tags
from ocirel.transport import Transport, raise_for_status
from ocirel.versioning import make_scheme
from tests.unit.fakeregistry import (
    DROP,
    FakeRegistry,
    Handler,
    NetGuard,
    Request,
    Response,
    TokenService,
    json_reply,
    oci_error,
    redirect,
    sequence,
    status,
    tags_page,
)

TAGS = "/v2/team/app/tags/list"
MANIFESTS = "/v2/team/app/manifests/.*"
INDEX_ACCEPT = f"{OCI_INDEX}, {DOCKER_LIST}"


def manifest_bytes(media_type: str = OCI_MANIFEST, *, with_type: bool = True) -> bytes:
    doc: dict[str, object] = {"schemaVersion": 2}
    if with_type:
        doc["mediaType"] = media_type
    if media_type in (OCI_INDEX, DOCKER_LIST):
        doc["manifests"] = []
    else:
        doc["config"] = {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "c" * 64,
            "size": 2,
        }
        doc["layers"] = []
    return json.dumps(doc, sort_keys=True).encode()


def manifest_reply(body: bytes, content_type: str, digest: str | None = "auto") -> Response:
    headers = {"Content-Type": content_type}
    if digest == "auto":
        headers["Docker-Content-Digest"] = sha256_digest(body)
    elif digest is not None:
        headers["Docker-Content-Digest"] = digest
    return Response(200, headers, body)


def paged(pages: dict[str | None, tuple[list[str], str | None]], key: str = "last") -> Handler:
    """A tag-list handler: the page is chosen by the ``key`` query argument."""

    def handler(request: Request) -> Response:
        if request.arg(key) not in pages:
            return oci_error(400, "PAGINATION_NUMBER_INVALID", "unknown cursor")
        tags, link = pages[request.arg(key)]
        return tags_page(tags, link)

    return handler


# ------------------------------------------------------------------ item 1


def test_r01_relative_link_pages_collected(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route(
        "GET",
        TAGS,
        paged(
            {
                None: (["v1", "v2"], f"{TAGS}?n=2&last=v2"),
                "v2": (["v3", "v4"], f"{TAGS}?n=2&last=v4"),
                "v4": (["v5"], None),
            }
        ),
    )
    assert sorted(registry.list_tags(repo)) == ["v1", "v2", "v3", "v4", "v5"]
    assert [r.arg("last") for r in fake.requests(TAGS)] == [None, "v2", "v4"]


def test_r01_absolute_link_pages_collected(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route(
        "GET",
        TAGS,
        paged(
            {
                None: (["a1"], f"{fake.url}{TAGS}?last=a1&n=1"),
                "a1": (["a2"], f"{fake.url}{TAGS}?last=a2&n=1"),
                "a2": ([], None),
            }
        ),
    )
    assert registry.list_tags(repo) == ["a1", "a2"]
    assert len(fake.requests(TAGS)) == 3


def test_r01_opaque_cursor_collected(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    """Quay style: the Link carries a cursor ocirel cannot (and need not) understand."""
    fake.route(
        "GET",
        TAGS,
        paged(
            {
                None: (["v1"], f"{TAGS}?next_page=gAAAAABm0Zq3%3D%3D&n=50"),
                "gAAAAABm0Zq3==": (["v2"], f"{TAGS}?next_page=zzz-opaque"),
                "zzz-opaque": (["v3"], None),
            },
            key="next_page",
        ),
    )
    assert registry.list_tags(repo) == ["v1", "v2", "v3"]


def test_r01_link_with_other_relations_and_unquoted_rel(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    first = tags_page(["v1"])
    fake.route(
        "GET",
        TAGS,
        sequence(
            Response(
                200,
                {"Link": f'<{TAGS}?last=v0>; rel="prev", <{TAGS}?last=v1>; rel=next'},
                first.body,
            ),
            tags_page(["v2"]),
        ),
    )
    assert registry.list_tags(repo) == ["v1", "v2"]
    assert fake.requests(TAGS)[1].arg("last") == "v1"


# ------------------------------------------------------------------ item 2


@pytest.mark.parametrize("back_to", ["self", "first"])
def test_r02_link_loop_refused(
    fake: FakeRegistry, registry: Registry, repo: Reference, back_to: str
) -> None:
    loop = f"{TAGS}?last=v2" if back_to == "self" else f"{TAGS}?n=1000"
    fake.route(
        "GET",
        TAGS,
        paged(
            {
                None: (["v1"], f"{TAGS}?last=v2"),
                "v2": (["v2"], loop),
            }
        ),
    )
    with pytest.raises(RegistryError, match="loops"):
        registry.list_tags(repo)
    assert len(fake.requests(TAGS)) <= 4


def test_r02_empty_link_target_is_a_loop(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    """``<>`` names the page itself: not the end of the list."""
    self_link = Response(200, {"Link": '<>; rel="next"'}, tags_page(["v2"]).body)
    fake.route("GET", TAGS, sequence(tags_page(["v1"], link=f"{TAGS}?last=v1"), self_link))
    with pytest.raises(RegistryError, match="loops"):
        registry.list_tags(repo)


def test_r02_link_to_other_host_refused(
    fake: FakeRegistry, other: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("GET", TAGS, tags_page(["v1"], link=f"{other.url}{TAGS}?last=v1"))
    other.route("GET", TAGS, tags_page(["v2"]))
    with pytest.raises(RegistryError, match="another host"):
        registry.list_tags(repo)
    assert other.log == []


def test_r02_link_to_other_scheme_refused(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("GET", TAGS, tags_page(["v1"], link=f"https://{fake.address}{TAGS}?last=v1"))
    with pytest.raises(RegistryError, match="switches the scheme from http to https"):
        registry.list_tags(repo)
    assert len(fake.requests(TAGS)) == 1


def test_r02_page_cap_refused(
    fake: FakeRegistry, registry: Registry, repo: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_tags, "MAX_PAGES", 5)

    def endless(request: Request) -> Response:
        page = int(request.arg("page") or 0)
        return tags_page([f"v{page}"], link=f"{TAGS}?page={page + 1}")

    fake.route("GET", TAGS, endless)
    with pytest.raises(RegistryError, match="did not end after 5 pages"):
        registry.list_tags(repo)
    assert len(fake.requests(TAGS)) == 5


@pytest.mark.parametrize(
    "later_page",
    [
        oci_error(404, "NAME_UNKNOWN", "repository name not known to registry"),
        oci_error(401, "UNAUTHORIZED"),
        status(500, b"<html>oops</html>"),
        status(200, b"not json"),
    ],
    ids=["404-name-unknown", "401", "500", "garbage"],
)
def test_r02_failure_on_a_later_page_fails_the_whole_list(
    fake: FakeRegistry, registry: Registry, repo: Reference, later_page: Response
) -> None:
    """Page 1 arrived, page 2 failed: a partial list must never reach the version scheme."""
    fake.route("GET", TAGS, sequence(tags_page(["v1", "v2"], link=f"{TAGS}?last=v2"), later_page))
    with pytest.raises(RegistryError):
        registry.list_tags(repo)


# ------------------------------------------------------------------ item 3


@pytest.mark.parametrize(
    ("limit", "expected_n"), [(100, ["1000", "100"]), (0, ["1000", "100", None])]
)
def test_r03_large_n_rejected_retried_smaller(
    fake: FakeRegistry,
    registry: Registry,
    repo: Reference,
    limit: int,
    expected_n: list[str | None],
) -> None:
    def picky(request: Request) -> Response:
        n = request.arg("n")
        if n is not None and int(n) > limit:
            return oci_error(400, "PAGINATION_NUMBER_INVALID", f"n must be <= {limit}")
        return tags_page(["v1", "v2"])

    fake.route("GET", TAGS, picky)
    assert registry.list_tags(repo) == ["v1", "v2"]
    assert [r.arg("n") for r in fake.requests(TAGS)] == expected_n


def test_r03_ecr_rejects_n_over_1000(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    def ecr(request: Request) -> Response:
        if int(request.arg("n") or 100) > 1000:
            return oci_error(400, "INVALID_PARAMETER", "n must be between 1 and 1000")
        return tags_page(["v1"])

    fake.route("GET", TAGS, ecr)
    assert registry.list_tags(repo) == ["v1"]
    assert all(int(r.arg("n") or 0) <= 1000 for r in fake.requests(TAGS))


# ------------------------------------------------------------------ items 4, 5


@pytest.mark.parametrize(
    ("scheme", "pages", "expected"),
    [
        ("counter", [["v1", "v10"], ["v9", "v2"]], "v11"),
        ("counter", [["v1", "v2", "v3"], ["v4"]], "v5"),  # oldest first (GHCR)
        ("counter", [["v4", "v3"], ["v2", "v1"]], "v5"),
        ("semver", [["1.10.0", "1.2.3"], ["1.9.9"]], "1.10.1"),
        ("semver", [["0.0.9"], ["0.0.10", "0.0.2"]], "0.0.11"),
    ],
)
def test_r04_unsorted_tags_give_the_right_next_version(
    fake: FakeRegistry,
    registry: Registry,
    repo: Reference,
    scheme: str,
    pages: list[list[str]],
    expected: str,
) -> None:
    fake.route(
        "GET", TAGS, sequence(tags_page(pages[0], link=f"{TAGS}?last=x"), tags_page(pages[1]))
    )
    tags = registry.list_tags(repo)
    assert make_scheme(scheme).next_tag(tags) == expected
    shuffled = list(tags)
    random.Random(7).shuffle(shuffled)
    assert make_scheme(scheme).next_tag(shuffled) == expected


FOREIGN_TAGS = [
    "latest",
    "main",
    "stable",
    "sha256-" + "a" * 64 + ".sig",
    "sha256-" + "b" * 64 + ".att",
    "sha256-" + "c" * 64 + ".sbom",
    "sha256-" + "d" * 64,
    "feature_x",
    "v1.2",
    "v03",
    "V9",
    "1.2.3-rc.1",
    "1.2.3+build",
    "v",
    "vv7",
    "v99999999999999999999999",
    "2024.13.01",
    "ünï",
]


@pytest.mark.parametrize(
    ("scheme", "own", "expected"),
    [("counter", ["v1", "v2"], "v3"), ("semver", ["1.0.0", "1.0.1"], "1.0.2")],
)
def test_r05_foreign_tags_ignored(
    fake: FakeRegistry,
    registry: Registry,
    repo: Reference,
    scheme: str,
    own: list[str],
    expected: str,
) -> None:
    fake.route("GET", TAGS, tags_page(FOREIGN_TAGS + own))
    assert make_scheme(scheme).next_tag(registry.list_tags(repo)) == expected


# ------------------------------------------------------------------ item 6


def test_r06_name_unknown_is_the_first_version(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("GET", TAGS, oci_error(404, "NAME_UNKNOWN", "repository name not known to registry"))
    tags = registry.list_tags(repo)
    assert tags == []
    assert make_scheme("counter").next_tag(tags) == "v1"


def test_r06_404_without_name_unknown_fails(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    """A proxy's HTML 404 does not say the repository is empty."""
    fake.route("GET", TAGS, status(404, b"<html><body>Not Found</body></html>"))
    with pytest.raises(RegistryNotFoundError, match="will not assume it is empty"):
        registry.list_tags(repo)


@pytest.mark.parametrize(
    "setup",
    ["basic-no-credentials", "403-denied", "token-service-refuses", "401-no-challenge"],
)
def test_r06_unauthorized_fails_never_first_version(
    fake: FakeRegistry, registry: Registry, repo: Reference, setup: str
) -> None:
    if setup == "basic-no-credentials":
        fake.require_basic("alice", "wonderland")
    elif setup == "403-denied":
        fake.route(
            "GET", TAGS, oci_error(403, "DENIED", "requested access to the resource is denied")
        )
    elif setup == "token-service-refuses":
        fake.require_bearer(TokenService(credentials=("alice", "wonderland")))
    else:
        fake.route("GET", TAGS, oci_error(401, "UNAUTHORIZED"))
    with pytest.raises(RegistryAuthError):
        registry.list_tags(repo)


# ------------------------------------------------------------------ item 7


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (status(200, b'{"name": "team/app", "tags": [v1, v2]}'), "not valid JSON"),
        (
            status(
                200, b"<!DOCTYPE html><html><body>Sign in</body></html>", Content_Type="text/html"
            ),
            "not valid JSON",
        ),
        (status(502, b"<html><h1>502 Bad Gateway</h1></html>"), "502"),
        (status(200, b"[" * 100_000), "not valid JSON"),
        (json_reply(["v1", "v2"]), "not a JSON object"),
        (json_reply({"name": "team/app", "tags": "v1"}), "malformed"),
        (json_reply({"name": "team/app", "tags": ["v1", 2]}), "malformed"),
        (json_reply({"name": "team/app"}), "malformed"),
        (status(200, b""), "not valid JSON"),
    ],
    ids=[
        "bad-json",
        "html-200",
        "html-502",
        "deep-nesting",
        "array",
        "tags-string",
        "tags-not-strings",
        "tags-missing",
        "empty",
    ],
)
def test_r07_malformed_tag_lists_fail_cleanly(
    fake: FakeRegistry, registry: Registry, repo: Reference, reply: Response, message: str
) -> None:
    fake.route("GET", TAGS, reply)
    with pytest.raises(RegistryError, match=message):
        registry.list_tags(repo)


def test_r07_null_tags_is_an_empty_list(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("GET", TAGS, tags_page(None))
    assert registry.list_tags(repo) == []


def test_r07_huge_body_refused(fake: FakeRegistry, registry: Registry, repo: Reference) -> None:
    huge = b'{"tags": ["' + b"v" * (17 * 1024 * 1024) + b'"]}'
    fake.route("GET", TAGS, Response(200, {"Content-Type": "application/json"}, huge))
    with pytest.raises(RegistryError, match="larger than"):
        registry.list_tags(repo)


# ------------------------------------------------------------------ item 8

BODY = manifest_bytes()
DIGEST = sha256_digest(BODY)


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256:1234", "md5:" + "a" * 32, "SHA256:" + "A" * 64, "sha256:" + "g" * 64],
    ids=["missing", "empty", "short", "md5", "upper-case", "not-hex"],
)
def test_r08_missing_or_malformed_digest_header_get_and_hash(
    fake: FakeRegistry, registry: Registry, repo: Reference, header: str | None
) -> None:
    fake.route("HEAD", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST, digest=header))
    fake.route("GET", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST, digest=header))
    info = registry.resolve(repo.with_tag("v1"))
    assert info.digest == DIGEST == "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert info.media_type == OCI_MANIFEST
    assert [r.method for r in fake.requests(MANIFESTS)] == ["HEAD", "GET"]


def test_r08_valid_digest_header_needs_no_get(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST))
    assert registry.resolve(repo.with_tag("v1")).digest == DIGEST
    assert [r.method for r in fake.requests(MANIFESTS)] == ["HEAD"]
    accept = fake.requests(MANIFESTS)[0].header("Accept") or ""
    assert all(t in accept for t in (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))


def test_r08_head_refused_falls_back_to_get(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", MANIFESTS, status(405))
    fake.route("GET", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST))
    assert registry.resolve(repo.with_tag("v1")).digest == DIGEST


def test_r08_wrong_digest_header_on_get_detected(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST, digest=None))
    fake.route("GET", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST, digest="sha256:" + "0" * 64))
    with pytest.raises(DigestMismatchError, match="hash to"):
        registry.resolve(repo.with_tag("v1"))


def test_r08_digest_reference_checked_against_head_and_bytes(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    wanted = repo.with_digest("sha256:" + "1" * 64)
    fake.route("HEAD", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST))
    with pytest.raises(DigestMismatchError):
        registry.resolve(wanted)
    fake.route("GET", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST, digest=None))
    with pytest.raises(DigestMismatchError):
        registry.get_manifest(wanted)


# ------------------------------------------------------------------ item 9


def test_r09_single_platform_instead_of_index_detected_on_head(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST))
    with pytest.raises(RegistryError, match="instead of"):
        registry.resolve(repo.with_tag("v1"), accept=INDEX_ACCEPT)


def test_r09_single_platform_instead_of_index_detected_on_get(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST, digest=None))
    fake.route("GET", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST))
    with pytest.raises(RegistryError, match="instead of"):
        registry.resolve(repo.with_tag("v1"), accept=INDEX_ACCEPT)
    with pytest.raises(RegistryError, match="instead of"):
        registry.get_manifest(repo.with_tag("v1"), accept=INDEX_ACCEPT)


def test_r09_index_digest_answered_with_a_platform_manifest(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    index = manifest_bytes(OCI_INDEX)
    fake.route("HEAD", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST))
    fake.route("GET", MANIFESTS, manifest_reply(BODY, OCI_MANIFEST))
    with pytest.raises(DigestMismatchError):
        registry.resolve(repo.with_digest(sha256_digest(index)))


def test_r09_index_accepted_when_asked(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    index = manifest_bytes(OCI_INDEX)
    fake.route("HEAD", MANIFESTS, manifest_reply(index, OCI_INDEX))
    info = registry.resolve(repo.with_tag("v1"), accept=INDEX_ACCEPT)
    assert (info.digest, info.media_type) == (sha256_digest(index), OCI_INDEX)


# ------------------------------------------------------------------ item 10


@pytest.mark.parametrize(
    ("body_type", "content_type"),
    [(OCI_INDEX, OCI_MANIFEST), (DOCKER_MANIFEST, OCI_MANIFEST), (OCI_MANIFEST, DOCKER_LIST)],
)
def test_r10_media_type_disagreeing_with_content_type_fails(
    fake: FakeRegistry, registry: Registry, repo: Reference, body_type: str, content_type: str
) -> None:
    body = manifest_bytes(body_type)
    fake.route("GET", MANIFESTS, manifest_reply(body, content_type))
    with pytest.raises(RegistryError, match="refusing an ambiguous manifest"):
        registry.get_manifest(repo.with_tag("v1"))
    fake.route("HEAD", MANIFESTS, manifest_reply(body, content_type, digest=None))
    with pytest.raises(RegistryError, match="refusing an ambiguous manifest"):
        registry.resolve(repo.with_tag("v1"))


def test_r10_unknown_media_type_fails(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    body = manifest_bytes(with_type=False)
    fake.route("GET", MANIFESTS, manifest_reply(body, "application/octet-stream"))
    with pytest.raises(RegistryError, match="unsupported media type"):
        registry.get_manifest(repo.with_tag("v1"))


def test_r10_missing_media_type_taken_from_content_type(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    body = manifest_bytes(with_type=False)
    fake.route("GET", MANIFESTS, manifest_reply(body, OCI_MANIFEST + "; charset=utf-8"))
    manifest = registry.get_manifest(repo.with_tag("v1"))
    assert (manifest.media_type, manifest.digest, manifest.body) == (
        OCI_MANIFEST,
        sha256_digest(body),
        body,
    )


# ------------------------------------------------------------------ item 24

BAD_REFERENCES = [
    "{host}/team/../etc",
    "{host}/team/..",
    "{host}/team%2Fapp",
    "{host}/team/app%2F..%2F..",
    "{host}/Team/App",
    "{host}/team/" + "a" * 260,
    "{host}/team/app:" + "t" * 129,
    "{host}/team/app:.hidden",
    "{host}/team/app:-dash",
    "{host}/team/app@sha256:abc",
    "{host}/team/app@sha256:" + "G" * 64,
    "{host}/team/app@md5:" + "a" * 32,
    "{host}/team/app@sha256:" + "A" * 64,
    "{host}/team//app",
    "{host}/team/app/",
    "user:secret@{host}/team/app",
    " {host}/team/app",
    "{host}/team/app\n",
    "{host}/team/app?x=1",
    "{host}/team/app#frag",
]


@pytest.mark.parametrize("template", BAD_REFERENCES)
def test_r24_bad_references_rejected_before_any_request(
    fake: FakeRegistry, registry: Registry, net: NetGuard, template: str
) -> None:
    with pytest.raises(InvalidReferenceError):
        registry.list_tags(reference.parse(template.format(host=fake.address)))
    assert fake.log == []
    assert net.connections == []


@pytest.mark.parametrize(
    "digest", ["../../etc/passwd", "sha256:abc", "sha256:" + "0" * 64 + "&x=1", ""]
)
def test_r24_malformed_digests_rejected_before_any_request(
    fake: FakeRegistry,
    registry: Registry,
    repo: Reference,
    net: NetGuard,
    digest: str,
    tmp_path: Path,
) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"x")
    digest = Digest(digest)  # not one: the registry must refuse it before any request
    calls: list[Callable[[], object]] = [
        lambda: registry.get_blob(repo, digest),
        lambda: registry.blob_exists(repo, digest),
        lambda: delete_manifest(registry, repo, digest),
        lambda: registry.upload_blob(repo, digest, lambda: blob.open("rb"), 1),
        lambda: repo.with_digest(digest),
    ]
    for call in calls:
        with pytest.raises(InvalidReferenceError):
            call()
    assert fake.log == []
    assert net.connections == []


def delete_manifest(registry: Registry, repo: Reference, digest: str) -> None:
    """What the tests' support client does (ocirel itself never deletes), through the
    transport: the digest is validated before a URL is built."""
    validate_digest(digest)
    path = f"/v2/{repo.repository}/manifests/{digest}"
    scope = f"repository:{repo.repository}:pull,push"
    reply = registry.transport.request("DELETE", repo.registry, path, scope=scope)
    raise_for_status(reply, what=f"deleting {repo.name}@{digest}", ok=(200, 202))


def test_r24_long_tag_rejected_by_with_tag() -> None:
    repo = reference.parse("127.0.0.1:5000/team/app")
    assert repo.with_tag("t" * 128).tag == "t" * 128
    with pytest.raises(InvalidReferenceError, match="128"):
        repo.with_tag("t" * 129)


# ---------------------------------------------------- uploads (items 14, 16, 17)

UPLOADS = "/v2/team/app/blobs/uploads/"
SESSION = "/v2/team/app/blobs/uploads/session-1"


def start_upload(location: str = SESSION) -> Response:
    return Response(202, {"Location": location, "Docker-Upload-UUID": "session-1"})


@pytest.fixture
def blob(tmp_path: Path) -> tuple[Path, Digest, int]:
    data = b"layer bytes " * 1000
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path, sha256_digest(data), len(data)


@pytest.mark.parametrize("failure", [status(503), DROP, status(502)], ids=["503", "dropped", "502"])
def test_r14_upload_restarted_from_the_first_byte(
    fake: FakeRegistry,
    registry: Registry,
    repo: Reference,
    blob: tuple[Path, Digest, int],
    sleeps: list[float],
    failure: Response,
) -> None:
    path, digest, size = blob
    fake.route("POST", UPLOADS, start_upload())
    fake.route("PUT", SESSION, sequence(failure, status(201)))
    registry.upload_blob(repo, digest, lambda: path.open("rb"), size)
    puts = fake.requests(SESSION, "PUT")
    assert len(fake.requests(UPLOADS, "POST")) == 2
    assert len(puts) == 2
    assert all(p.body == path.read_bytes() and p.arg("digest") == digest for p in puts)
    assert len(sleeps) == 1


def test_r14_upload_fails_after_bounded_restarts(
    fake: FakeRegistry, registry: Registry, repo: Reference, blob: tuple[Path, Digest, int]
) -> None:
    path, digest, size = blob
    fake.route("POST", UPLOADS, start_upload())
    fake.route("PUT", SESSION, status(503))
    with pytest.raises(RegistryError, match="failed 4 times") as caught:
        registry.upload_blob(repo, digest, lambda: path.open("rb"), size)
    assert caught.value.temporary
    assert len(fake.requests(SESSION, "PUT")) == registry_blobs.UPLOAD_ATTEMPTS


def test_r14_upload_not_restarted_on_a_permanent_error(
    fake: FakeRegistry, registry: Registry, repo: Reference, blob: tuple[Path, Digest, int]
) -> None:
    path, digest, size = blob
    fake.route("POST", UPLOADS, start_upload())
    fake.route("PUT", SESSION, oci_error(400, "DIGEST_INVALID", "provided digest did not match"))
    with pytest.raises(RegistryError, match="DIGEST_INVALID"):
        registry.upload_blob(repo, digest, lambda: path.open("rb"), size)
    assert len(fake.requests(SESSION, "PUT")) == 1


def test_r16_token_expiring_before_the_upload_put_restarts_the_upload(
    fake: FakeRegistry, registry: Registry, repo: Reference, blob: tuple[Path, Digest, int]
) -> None:
    path, digest, size = blob
    tokens = fake.require_bearer(TokenService(uses=2))  # each token: the POST and one more
    fake.route("POST", UPLOADS, start_upload())
    fake.route("PUT", SESSION, status(201))
    registry.warm_up(repo, push=True)  # uses the first token once
    registry.upload_blob(
        repo, digest, lambda: path.open("rb"), size
    )  # POST ok, PUT → 401, restart with a new token
    assert len(fake.requests(SESSION, "PUT")) == 2
    assert len(tokens.calls) == 2


def test_r17_upload_location_on_another_host_gets_no_authorization(
    fake: FakeRegistry,
    other: FakeRegistry,
    registry: Registry,
    repo: Reference,
    blob: tuple[Path, Digest, int],
) -> None:
    path, digest, size = blob
    fake.require_bearer()
    fake.route("POST", UPLOADS, start_upload(f"{other.url}/upload/session-1?state=abc"))
    other.route("PUT", "/upload/session-1", status(201))
    registry.upload_blob(repo, digest, lambda: path.open("rb"), size)
    assert (fake.requests(UPLOADS, "POST")[0].header("Authorization") or "").startswith("Bearer ")
    (put,) = other.requests("/upload/session-1", "PUT")
    assert put.header("Authorization") is None
    assert put.body == path.read_bytes()


def test_put_manifest_reports_mismatched_digest(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    manifest = ImageManifest(DIGEST, OCI_MANIFEST, BODY)
    fake.route("PUT", MANIFESTS, Response(201, {"Docker-Content-Digest": "sha256:" + "9" * 64}))
    with pytest.raises(DigestMismatchError):
        registry.put_tag(repo, "v1", manifest)
    fake.route("PUT", MANIFESTS, Response(201, {"Docker-Content-Digest": DIGEST}))
    assert registry.put_tag(repo, "v1", manifest) == DIGEST
    put = fake.requests(MANIFESTS, "PUT")[-1]
    assert (put.path, put.body, put.header("Content-Type")) == (
        "/v2/team/app/manifests/v1",
        BODY,
        OCI_MANIFEST,
    )


def test_exists_is_head_200_or_404(fake: FakeRegistry, registry: Registry, repo: Reference) -> None:
    fake.route("HEAD", "/v2/team/app/manifests/v1", manifest_reply(BODY, OCI_MANIFEST))
    fake.route("HEAD", "/v2/team/app/manifests/v2", oci_error(404, "MANIFEST_UNKNOWN"))
    fake.route("HEAD", "/v2/team/app/manifests/v3", status(403))
    assert registry.exists(repo.with_tag("v1")) is True
    assert registry.exists(repo.with_tag("v2")) is False
    with pytest.raises(RegistryAuthError):
        registry.exists(repo.with_tag("v3"))


def test_get_blob_verifies_digest(fake: FakeRegistry, registry: Registry, repo: Reference) -> None:
    data = b'{"architecture": "amd64"}'
    digest = sha256_digest(data)
    fake.route("GET", f"/v2/team/app/blobs/{digest}", Response(200, {}, data))
    assert registry.get_blob(repo, digest) == data
    fake.route("GET", f"/v2/team/app/blobs/{digest}", Response(200, {}, data + b" "))
    with pytest.raises(DigestMismatchError):
        registry.get_blob(repo, digest)


def test_r17_blob_redirect_followed_without_credentials(
    fake: FakeRegistry, other: FakeRegistry, transport: Transport, repo: Reference
) -> None:
    """Presigned blob storage: the registry answers 307 to another host."""
    data = b"config"
    digest = sha256_digest(data)
    fake.require_basic("alice", "wonderland")
    transport.credentials = lambda _registry, _repository: Credentials("alice", "wonderland")
    fake.route(
        "GET", f"/v2/team/app/blobs/{digest}", redirect(f"{other.url}/storage/{digest[7:]}?sig=1")
    )
    other.route("GET", "/storage/.*", Response(200, {}, data))
    assert Registry(transport).get_blob(repo, digest) == data
    assert fake.requests("/v2/team/app/blobs/.*")[0].header("Authorization") is not None
    assert other.log[0].header("Authorization") is None


# -- round two: item 54 (issue 9.16) ---------------------------------------------------


def test_r54_repeated_tags_are_listed_once_in_their_order(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route(
        "GET",
        TAGS,
        sequence(
            tags_page(["v2", "v1", "v2"], link=f"{TAGS}?last=v2"), tags_page(["v1", "v3", "v3"])
        ),
    )
    assert registry.list_tags(repo) == ["v2", "v1", "v3"]


# -- issue 12: manifests and configs ocirel cannot read ---------------------------------


def test_a_schema1_manifest_raises_unsupported_manifest_error(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    body = b'{"schemaVersion": 1, "fsLayers": []}'
    schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    fake.route("GET", MANIFESTS, manifest_reply(body, schema1))
    with pytest.raises(UnsupportedManifestError, match="unsupported media type") as info:
        registry.get_manifest(repo.with_tag("v1"))
    assert "schema 1" in info.value.reason


def serve_config(fake: FakeRegistry, config: bytes) -> ImageManifest:
    """Serve ``config`` as a blob; the manifest naming it."""
    fake.route("GET", "/v2/team/app/blobs/.*", Response(200, {}, config))
    body = json.dumps({"config": {"digest": sha256_digest(config)}}).encode()
    return ImageManifest(sha256_digest(body), OCI_MANIFEST, body)


def test_get_config_reads_the_config_a_manifest_names(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    manifest = serve_config(fake, b'{"os": "linux", "architecture": "amd64"}')
    assert registry.get_config(repo, manifest) == {"os": "linux", "architecture": "amd64"}
    empty = ImageManifest(sha256_digest(b"{}"), OCI_MANIFEST, b"{}")
    assert registry.get_config(repo, empty) == {}


def test_a_config_that_is_not_json_raises_unsupported_manifest_error(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    manifest = serve_config(fake, b"\x00\xff\xfe binary \x80")
    with pytest.raises(UnsupportedManifestError, match="is not JSON") as info:
        registry.get_config(repo, manifest)
    assert info.value.reason == "has a configuration that is not JSON"
