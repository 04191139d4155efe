"""Image references: the distribution grammar, Docker Hub normalization, round trips."""

from __future__ import annotations

import pytest

from ocirel import reference
from ocirel.errors import InvalidReferenceError
from ocirel.oci import Digest
from ocirel.reference import Reference, parse, parse_repository, split_host_port

SHA256 = "sha256:" + "a" * 64
SHA256_B = "sha256:" + "0123456789abcdef" * 4
SHA512 = "sha512:" + "f" * 128


# -- valid references ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        # host forms
        ("registry.example.com/team/app", "registry.example.com", "team/app", None, None),
        ("registry.example.com:5000/app", "registry.example.com:5000", "app", None, None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/app", "localhost:5000", "app", None, None),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", None, None),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
        ("[::1]/app", "[::1]", "app", None, None),
        ("[2001:db8::1]:443/a/b:v1", "[2001:db8::1]:443", "a/b", "v1", None),
        ("host:65535/app", "host:65535", "app", None, None),
        ("my-host.example.com/app", "my-host.example.com", "app", None, None),
        # nested paths and separators
        ("r.io/a/b/c/d/e", "r.io", "a/b/c/d/e", None, None),
        ("r.io/a.b", "r.io", "a.b", None, None),
        ("r.io/a_b", "r.io", "a_b", None, None),
        ("r.io/a__b", "r.io", "a__b", None, None),
        ("r.io/a-b", "r.io", "a-b", None, None),
        ("r.io/a---b", "r.io", "a---b", None, None),
        ("r.io/a1.b2_c3__d4-e5", "r.io", "a1.b2_c3__d4-e5", None, None),
        ("r.io/0/9", "r.io", "0/9", None, None),
        # tags
        ("r.io/app:v1", "r.io", "app", "v1", None),
        ("r.io/app:_x", "r.io", "app", "_x", None),
        ("r.io/app:1.2.3-rc.1_b", "r.io", "app", "1.2.3-rc.1_b", None),
        ("r.io/app:LATEST", "r.io", "app", "LATEST", None),
        ("r.io/app:" + "t" * 128, "r.io", "app", "t" * 128, None),
        ("localhost:5000/app:v2", "localhost:5000", "app", "v2", None),
        # digests
        (f"r.io/app@{SHA256}", "r.io", "app", None, SHA256),
        (f"r.io/app@{SHA256_B}", "r.io", "app", None, SHA256_B),
        (f"r.io/app@{SHA512}", "r.io", "app", None, SHA512),
        (f"r.io/app:v7@{SHA256}", "r.io", "app", "v7", SHA256),
        (f"[::1]:5000/a/b:v1@{SHA256}", "[::1]:5000", "a/b", "v1", SHA256),
    ],
)
def test_parse_valid(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse(text)
    assert ref == Reference(registry, repository, tag, Digest(digest) if digest else None)
    assert str(ref) == text


# -- Docker Hub ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        (f"nginx@{SHA256}", f"docker.io/library/nginx@{SHA256}"),
        ("library/nginx", "docker.io/library/nginx"),
        ("bitnami/redis", "docker.io/bitnami/redis"),
        ("docker.io/nginx", "docker.io/library/nginx"),
        ("docker.io/library/nginx", "docker.io/library/nginx"),
        ("docker.io/x/y", "docker.io/x/y"),
        ("index.docker.io/x/y", "docker.io/x/y"),
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        ("registry-1.docker.io/nginx", "docker.io/library/nginx"),
        ("DOCKER.IO/nginx", "docker.io/library/nginx"),
        # no "." or ":" and not localhost: a path on Docker Hub, not a host
        ("team/app", "docker.io/team/app"),
        # a lone "localhost:5000" is Docker Hub's library/localhost with tag 5000, as in docker
        ("localhost:5000", "docker.io/library/localhost:5000"),
        ("localhost", "docker.io/library/localhost"),
    ],
)
def test_docker_hub_normalization(text: str, expected: str) -> None:
    assert str(parse(text)) == expected


@pytest.mark.parametrize(
    ("text", "api_host", "hostname"),
    [
        ("nginx", "registry-1.docker.io", "docker.io"),
        ("index.docker.io/x/y", "registry-1.docker.io", "docker.io"),
        ("localhost:5000/app", "localhost:5000", "localhost"),
        ("[::1]:5000/app", "[::1]:5000", "::1"),
        ("[::1]/app", "[::1]", "::1"),
        ("ghcr.io/org/app", "ghcr.io", "ghcr.io"),
    ],
)
def test_api_host_and_hostname(text: str, api_host: str, hostname: str) -> None:
    ref = parse(text)
    assert ref.api_host == api_host
    assert ref.hostname == hostname


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com:5000", ("example.com", 5000)),
        ("[::1]", ("::1", None)),
        ("[::1]:5000", ("::1", 5000)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ],
)
def test_split_host_port(registry: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(registry) == expected


@pytest.mark.parametrize(
    ("text", "name", "last"),
    [
        ("nginx", "docker.io/library/nginx", "nginx"),
        ("r.io/team/sub/app:v1", "r.io/team/sub/app", "app"),
        ("localhost:5000/app", "localhost:5000/app", "app"),
    ],
)
def test_name_and_last_component(text: str, name: str, last: str) -> None:
    ref = parse(text)
    assert ref.name == name
    assert ref.last_component == last


# -- rejections ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # empty, padded
        "",
        " nginx",
        "nginx ",
        "nginx\n",
        # upper case in the path
        "Nginx",
        "MyOrg/app",
        "r.io/Team/app",
        "r.io/team/App",
        # path traversal and encoded separators
        "r.io/../app",
        "r.io/team/..",
        "r.io/a..b",
        "..",
        "r.io/a%2Fb",
        "r.io/a%2fb",
        "r.io/team%2F..%2Fapp",
        # empty components
        "r.io/",
        "r.io//app",
        "r.io/team//app",
        "r.io/app/",
        "/app",
        "team/",
        # leading / trailing / doubled separators
        "r.io/-app",
        "r.io/_app",
        "r.io/.app",
        "r.io/app-",
        "r.io/app_",
        "r.io/app.",
        "r.io/a___b",
        "r.io/a._b",
        "r.io/a b",
        "r.io/a+b",
        # bad hosts and ports
        "-host.com/app",
        "host-.com/app",
        "my_host.com/app",
        "host:0/app",
        "host:65536/app",
        "host:123456/app",
        "host:/app",
        "[::1]:/app",
        "[::1/app",
        # tags
        "r.io/app:",
        "r.io/app:.v1",
        "r.io/app:-v1",
        "r.io/app:v1/x",
        "r.io/app:v 1",
        "r.io/app:v1\u00e9",
        "r.io/app:" + "t" * 129,
        "r.io/app:a:b",
        # digests
        "r.io/app@",
        "r.io/app@sha256:" + "a" * 63,
        "r.io/app@sha256:" + "a" * 65,
        "r.io/app@sha256:" + "A" * 64,
        "r.io/app@sha256:" + "g" * 64,
        "r.io/app@SHA256:" + "a" * 64,
        "r.io/app@sha512:" + "a" * 64,
        "r.io/app@md5:" + "a" * 32,
        "r.io/app@sha1:" + "a" * 40,
        "r.io/app@blake3:" + "a" * 64,
        "r.io/app@" + "a" * 64,
        f"r.io/app@{SHA256}@{SHA256}",
        f"r.io/app@{SHA256}:v1",
        f"@{SHA256}",
        # over-long names (> 255 characters including the host)
        "r.io/" + "a" * 251,
        "r.io/" + "/".join(["abcdefghi"] * 26),
        "a" * 250,  # docker.io/library/ + 250 > 255
        "x/" + "a" * 244,  # docker.io/x/ + 244 = 256
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse(text)


@pytest.mark.parametrize(
    ("text", "length"),
    [("r.io/" + "a" * 250, 255), ("x/" + "a" * 243, 255), ("nginx", 23)],
)
def test_names_up_to_255_characters_are_accepted(text: str, length: int) -> None:
    ref = parse(text)
    assert len(ref.name) == length


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("r.io/Team/app", "lower case"),
        ("r.io//app", "empty path component"),
        ("r.io/app:" + "t" * 129, "129 characters"),
        ("r.io/app@sha256:" + "g" * 64, "malformed digest"),
        ("r.io/app@md5:" + "a" * 32, "unsupported digest"),
        ("r.io/app@sha256:" + "A" * 64, "lower-case sha256"),
        ("r.io/" + "a" * 251, "longer than 255"),
        ("host:65536/app", "invalid port"),
    ],
)
def test_rejection_messages_say_why(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError, match=fragment):
        parse(text)


@pytest.mark.parametrize("digest", ["sha256:" + "a" * 63, "sha256:" + "a" * 65])
def test_truncated_sha256_digest_is_reported_as_malformed(digest: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse(f"r.io/app@{digest}")
    assert "unsupported" not in str(info.value)
    assert "64" in str(info.value)


def test_long_inputs_are_shortened_in_messages() -> None:
    text = "r.io/" + "a" * 5000
    with pytest.raises(InvalidReferenceError) as info:
        parse(text)
    assert len(str(info.value)) < 400


def test_rejection_is_a_usage_error() -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse("r.io/A")
    assert info.value.exit_code == 2


# -- parse_repository -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registry.example.com/team/app", "registry.example.com/team/app"),
        ("localhost:5000/app", "localhost:5000/app"),
        ("nginx", "docker.io/library/nginx"),
    ],
)
def test_parse_repository_accepts_bare_repositories(text: str, expected: str) -> None:
    ref = parse_repository(text)
    assert str(ref) == expected
    assert ref.tag is None
    assert ref.digest is None


@pytest.mark.parametrize(
    "text",
    ["r.io/app:v1", f"r.io/app@{SHA256}", f"r.io/app:v1@{SHA256}", "nginx:latest", "r.io/App"],
)
def test_parse_repository_rejects_tags_and_digests(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_repository(text)


def test_parse_repository_explains_how_to_choose_a_tag() -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_repository("r.io/app:v1")
    assert info.value.hint is not None
    assert "--tag" in info.value.hint


# -- with_tag / with_digest / str ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "r.io/app",
        "r.io/app:v1",
        f"r.io/app@{SHA256}",
        f"r.io/app:v1@{SHA512}",
        "docker.io/library/nginx:1.25",
        "[::1]:5000/a/b:v1",
        "localhost:5000/team/app",
    ],
)
def test_str_round_trip(text: str) -> None:
    ref = parse(text)
    assert str(ref) == text
    assert parse(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "tag", "expected"),
    [
        ("r.io/app", "v2", "r.io/app:v2"),
        ("r.io/app:v1", "v2", "r.io/app:v2"),
        (f"r.io/app:v1@{SHA256}", "v2", f"r.io/app:v2@{SHA256}"),
        ("nginx", "1.25", "docker.io/library/nginx:1.25"),
    ],
)
def test_with_tag(text: str, tag: str, expected: str) -> None:
    ref = parse(text)
    tagged = ref.with_tag(tag)
    assert str(tagged) == expected
    assert parse(expected) == tagged
    assert ref == parse(text)  # the original is unchanged


@pytest.mark.parametrize(
    ("text", "digest", "expected"),
    [
        ("r.io/app", SHA256, f"r.io/app@{SHA256}"),
        ("r.io/app:v1", SHA512, f"r.io/app:v1@{SHA512}"),
        (f"r.io/app@{SHA256}", SHA256_B, f"r.io/app@{SHA256_B}"),
    ],
)
def test_with_digest(text: str, digest: str, expected: str) -> None:
    pinned = parse(text).with_digest(digest)
    assert str(pinned) == expected
    assert parse(expected) == pinned


@pytest.mark.parametrize("tag", ["", ".v1", "-v1", "v/1", "t" * 129, "v:1"])
def test_with_tag_validates(tag: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse("r.io/app").with_tag(tag)


@pytest.mark.parametrize(
    "digest", ["", "sha256:" + "a" * 63, "sha256:" + "A" * 64, "md5:" + "a" * 32, "a" * 64]
)
def test_with_digest_validates(digest: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse("r.io/app").with_digest(digest)


def test_repo_only_drops_tag_and_digest() -> None:
    ref = parse(f"r.io/team/app:v1@{SHA256}").repo_only()
    assert ref == Reference("r.io", "team/app")
    assert str(ref) == "r.io/team/app"


@pytest.mark.parametrize(
    ("text", "identifier"),
    [
        ("r.io/app:v1", "v1"),
        (f"r.io/app@{SHA256}", SHA256),
        (f"r.io/app:v1@{SHA256}", SHA256),  # the digest wins
    ],
)
def test_identifier_prefers_the_digest(text: str, identifier: str) -> None:
    assert parse(text).identifier == identifier


def test_identifier_needs_a_tag_or_digest() -> None:
    with pytest.raises(InvalidReferenceError):
        _ = parse("r.io/app").identifier


@pytest.mark.parametrize(
    ("digest", "valid"),
    [
        (SHA256, True),
        (SHA512, True),
        ("sha256:" + "a" * 63, False),
        ("sha256:" + "A" * 64, False),
        ("sha384:" + "a" * 96, False),
        ("", False),
    ],
)
def test_is_valid_digest(digest: str, valid: bool) -> None:
    assert reference.is_valid_digest(digest) is valid


def test_host_names_compare_case_insensitively_paths_do_not() -> None:
    assert parse("Registry.Example.com/team/app:v1") == parse("registry.example.com/team/app:v1")
    assert parse("REGISTRY.example.com:5000/team/app").name == "registry.example.com:5000/team/app"
    assert reference.normalize_host("Index.Docker.IO") == "docker.io"
    with pytest.raises(InvalidReferenceError, match="lower case"):
        parse("registry.example.com/Team/app")
