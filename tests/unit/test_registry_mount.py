"""Cross-repository blob mounts against the scripted fake: ``mount_blob``, ``ensure_blob``,
and ``push_image`` with layers the registry already holds (``Layer.path`` None)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ocirel.errors import InvalidReferenceError, RegistryError
from ocirel.oci import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Digest,
    ImageManifest,
    Layer,
    OciImage,
    canonical_json,
    sha256_digest,
)
from ocirel.reference import Reference
from ocirel.registry import Registry
from tests.unit.fakeregistry import (
    FakeRegistry,
    MakeTransport,
    Request,
    Response,
    oci_error,
    status,
)

UPLOADS = "/v2/team/app/blobs/uploads/"
SESSION = "/v2/team/app/blobs/uploads/session-1"
BLOBS = "/v2/team/app/blobs/sha256:[0-9a-f]{64}"
MANIFESTS = "/v2/team/app/manifests/.*"
HELD = Digest("sha256:" + "4" * 64)


def blob_path(digest: str) -> str:
    return f"/v2/team/app/blobs/{digest}"


def start_upload(location: str = SESSION) -> Response:
    return Response(202, {"Location": location, "Docker-Upload-UUID": "session-1"})


def mounted(digest: str) -> Response:
    return Response(201, {"Location": blob_path(digest), "Docker-Content-Digest": digest})


# ------------------------------------------------------------------ mount_blob


def test_mount_201_is_true_and_sends_mount_and_from(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("POST", UPLOADS, mounted(HELD))
    assert registry.mount_blob(repo, HELD, "library/base") is True
    (post,) = fake.requests(UPLOADS)
    assert post.method == "POST"
    assert dict(post.query) == {"mount": [HELD], "from": ["library/base"]}
    assert list(post.query) == ["mount", "from"]
    assert post.body == b""
    assert fake.requests(".*", "DELETE") == []


def test_mount_202_is_false_and_cancels_the_upload_session(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("POST", UPLOADS, start_upload())
    fake.route("DELETE", SESSION, status(204))
    assert registry.mount_blob(repo, HELD, "library/base") is False
    (delete,) = fake.requests(".*", "DELETE")
    assert delete.path == SESSION
    assert [r.method for r in fake.requests("/v2/team/app/.*")] == ["POST", "DELETE"]


def test_mount_202_with_an_absolute_location_and_a_failing_delete(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("POST", UPLOADS, start_upload(f"{fake.url}{SESSION}?_state=abc"))
    fake.route("DELETE", SESSION, oci_error(404, "BLOB_UPLOAD_UNKNOWN"))
    assert registry.mount_blob(repo, HELD, "library/base") is False  # best effort
    (delete,) = fake.requests(SESSION, "DELETE")
    assert delete.arg("_state") == "abc"


def test_mount_202_without_a_location_is_false_without_a_delete(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("POST", UPLOADS, Response(202))
    assert registry.mount_blob(repo, HELD, "library/base") is False
    assert fake.requests(".*", "DELETE") == []


@pytest.mark.parametrize(
    "reply",
    [
        oci_error(404, "NAME_UNKNOWN"),
        oci_error(401, "UNAUTHORIZED"),
        oci_error(403, "DENIED"),
    ],
    ids=["404", "401", "403"],
)
def test_mount_refused_is_false(
    fake: FakeRegistry, registry: Registry, repo: Reference, reply: Response
) -> None:
    fake.route("POST", UPLOADS, reply)
    assert registry.mount_blob(repo, HELD, "library/base") is False
    assert fake.requests(".*", "DELETE") == []


def test_mount_500_raises_without_a_retry(
    fake: FakeRegistry, registry: Registry, repo: Reference, sleeps: list[float]
) -> None:
    fake.route("POST", UPLOADS, oci_error(500, "UNKNOWN", "boom"))
    with pytest.raises(RegistryError, match="mounting") as caught:
        registry.mount_blob(repo, HELD, "library/base")
    assert caught.value.status == 500
    assert caught.value.temporary
    assert len(fake.requests(UPLOADS, "POST")) == 1  # the transport retries 429/502-504 only
    assert sleeps == []


def test_mount_503_is_retried_by_the_transport_then_raises(
    fake: FakeRegistry, make_transport: MakeTransport, repo: Reference, sleeps: list[float]
) -> None:
    registry = Registry(make_transport(retries=2))
    fake.route("POST", UPLOADS, oci_error(503, "UNAVAILABLE"))
    with pytest.raises(RegistryError) as caught:
        registry.mount_blob(repo, HELD, "library/base")
    assert caught.value.status == 503
    assert len(fake.requests(UPLOADS, "POST")) == 3
    assert len(sleeps) == 2


def test_mount_rejects_a_bad_digest_before_any_request(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    with pytest.raises(InvalidReferenceError):
        registry.mount_blob(repo, Digest("sha256:nothex"), "library/base")
    assert fake.requests(UPLOADS) == []


def test_mount_asks_for_push_here_and_pull_there(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    tokens = fake.require_bearer()
    fake.route("POST", UPLOADS, mounted(HELD))
    assert registry.mount_blob(repo, HELD, "library/base") is True
    assert tokens.scopes == ["repository:team/app:pull,push", "repository:library/base:pull"]


# ----------------------------------------------------------------- ensure_blob


def test_ensure_blob_present_needs_no_mount(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", blob_path(HELD), status(200))
    assert registry.ensure_blob(repo, HELD, ["library/base"]) is True
    assert [r.method for r in fake.requests("/v2/team/app/.*")] == ["HEAD"]


def test_ensure_blob_mounts_a_missing_blob(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", blob_path(HELD), oci_error(404, "BLOB_UNKNOWN"))
    fake.route("POST", UPLOADS, mounted(HELD))
    assert registry.ensure_blob(repo, HELD, ["library/base"]) is True
    (post,) = fake.requests(UPLOADS, "POST")
    assert post.arg("from") == "library/base"


def test_ensure_blob_skips_the_target_repository_and_tries_sources_in_order(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", blob_path(HELD), oci_error(404, "BLOB_UNKNOWN"))

    def mount(request: Request) -> Response:
        if request.arg("from") == "team/second":
            return mounted(HELD)
        return oci_error(404, "BLOB_UNKNOWN")

    fake.route("POST", UPLOADS, mount)
    sources = ["team/app", "team/first", "team/app", "team/second", "team/third"]
    assert registry.ensure_blob(repo, HELD, sources) is True
    assert [r.arg("from") for r in fake.requests(UPLOADS, "POST")] == ["team/first", "team/second"]


def test_ensure_blob_false_when_nothing_holds_it(
    fake: FakeRegistry, registry: Registry, repo: Reference
) -> None:
    fake.route("HEAD", blob_path(HELD), oci_error(404, "BLOB_UNKNOWN"))
    fake.route("POST", UPLOADS, start_upload())
    fake.route("DELETE", SESSION, status(204))
    assert registry.ensure_blob(repo, HELD, ["library/a", "library/b"]) is False
    assert [r.arg("from") for r in fake.requests(UPLOADS, "POST")] == ["library/a", "library/b"]
    assert len(fake.requests(SESSION, "DELETE")) == 2
    assert registry.ensure_blob(repo, HELD, ["team/app"]) is False  # only itself: no mount
    assert registry.ensure_blob(repo, HELD, []) is False
    assert len(fake.requests(UPLOADS, "POST")) == 2


# ------------------------------------------------------------------ push_image


def make_image(tmp_path: Path, *, sources: tuple[str, ...] = ("library/base",)) -> OciImage:
    """A config, one layer the registry holds elsewhere (HELD), one layer file."""
    data = b"fresh layer bytes" * 100
    layer_file = tmp_path / "fresh"
    layer_file.write_bytes(data)
    fresh = sha256_digest(data)
    config = canonical_json({"os": "linux", "architecture": "amd64", "rootfs": {"diff_ids": []}})
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [
            {"mediaType": OCI_LAYER_GZIP, "digest": HELD, "size": 4444},
            {"mediaType": OCI_LAYER_GZIP, "digest": fresh, "size": len(data)},
        ],
    }
    body = canonical_json(document)
    return OciImage(
        ImageManifest(sha256_digest(body), OCI_MANIFEST, body),
        config,
        (Layer(HELD, 4444, None, sources), Layer(fresh, len(data), layer_file)),
    )


def script_push(fake: FakeRegistry, *, mount: Response) -> None:
    fake.route("HEAD", BLOBS, oci_error(404, "BLOB_UNKNOWN"))

    def uploads(request: Request) -> Response:
        return mount if request.arg("mount") else start_upload()

    fake.route("POST", UPLOADS, uploads)
    fake.route("PUT", SESSION, status(201))
    fake.route("DELETE", SESSION, status(204))
    fake.route("PUT", MANIFESTS, status(201))


def test_push_image_mounts_a_held_layer_and_uploads_the_rest(
    fake: FakeRegistry, registry: Registry, repo: Reference, tmp_path: Path
) -> None:
    image = make_image(tmp_path)
    script_push(fake, mount=mounted(HELD))

    assert registry.push_image(repo, image) == image.manifest.digest

    mounts = [r for r in fake.requests(UPLOADS, "POST") if r.arg("mount")]
    assert [(r.arg("mount"), r.arg("from")) for r in mounts] == [(HELD, "library/base")]
    puts = {r.arg("digest"): r.body for r in fake.requests(SESSION, "PUT")}
    assert puts == {
        image.config_digest: image.config_bytes,
        image.layers[1].digest: image.layers[1].path.read_bytes(),  # type: ignore[union-attr]
    }
    (manifest,) = fake.requests(MANIFESTS, "PUT")
    assert manifest.path == f"/v2/team/app/manifests/{image.manifest.digest}"
    assert manifest.body == image.manifest.body


def test_push_image_with_a_held_layer_already_in_the_repository(
    fake: FakeRegistry, registry: Registry, repo: Reference, tmp_path: Path
) -> None:
    image = make_image(tmp_path)
    script_push(fake, mount=oci_error(404, "BLOB_UNKNOWN"))
    fake.route("HEAD", blob_path(HELD), status(200))
    assert registry.push_image(repo, image) == image.manifest.digest
    assert [r for r in fake.requests(UPLOADS, "POST") if r.arg("mount")] == []


@pytest.mark.parametrize(
    "refusal",
    [oci_error(404, "BLOB_UNKNOWN"), start_upload(), oci_error(403, "DENIED")],
    ids=["404", "202", "403"],
)
def test_push_image_fails_naming_a_held_layer_nothing_holds(
    fake: FakeRegistry, registry: Registry, repo: Reference, tmp_path: Path, refusal: Response
) -> None:
    image = make_image(tmp_path, sources=("library/base", "library/older"))
    script_push(fake, mount=refusal)
    with pytest.raises(RegistryError) as caught:
        registry.push_image(repo, image)
    message = str(caught.value)
    assert HELD[:19] in message
    assert "library/base" in message
    assert "library/older" in message
    assert fake.requests(MANIFESTS, "PUT") == []
    assert HELD not in [r.arg("digest") for r in fake.requests(SESSION, "PUT")]  # never uploaded


def test_push_image_fails_for_a_held_layer_without_sources(
    fake: FakeRegistry, registry: Registry, repo: Reference, tmp_path: Path
) -> None:
    image = make_image(tmp_path, sources=())
    script_push(fake, mount=mounted(HELD))
    with pytest.raises(RegistryError, match="any other repository"):
        registry.push_image(repo, image)
    assert [r for r in fake.requests(UPLOADS, "POST") if r.arg("mount")] == []
    assert fake.requests(MANIFESTS, "PUT") == []


def test_push_image_checks_blobs_concurrently(
    fake: FakeRegistry, registry: Registry, repo: Reference, tmp_path: Path
) -> None:
    """Every blob's HEAD arrives before any of them is answered: a sequential push
    would leave the first HEAD waiting at the barrier until it breaks."""
    image = make_image(tmp_path)
    script_push(fake, mount=mounted(HELD))
    barrier = threading.Barrier(len(image.blobs), timeout=1.5)
    met: list[bool] = []

    def head(request: Request) -> Response:
        try:
            barrier.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)
        return oci_error(404, "BLOB_UNKNOWN")

    fake.route("HEAD", BLOBS, head)
    assert registry.push_image(repo, image) == image.manifest.digest
    assert met == [True] * len(image.blobs)
    heads = fake.requests(BLOBS, "HEAD")
    assert sorted(r.path for r in heads) == sorted(blob_path(d) for d, _ in image.blobs)
