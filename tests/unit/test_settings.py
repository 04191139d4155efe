"""Settings: flag > OCIREL_* env > ocirel.toml > [tool.ocirel] > defaults, coercion, errors."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest

from ocirel import settings
from ocirel.coercers import COERCERS
from ocirel.errors import ConfigError
from ocirel.settings import Settings


def value(loaded: Settings, key: str) -> Any:
    """``key``'s value from whichever group holds it (the files and env are flat)."""
    return getattr(getattr(loaded, settings.GROUP_OF[key]), key)


def write_ocirel_toml(directory: Path, body: str) -> Path:
    path = directory / "ocirel.toml"
    path.write_text(body, encoding="utf-8")
    return path


def write_pyproject(directory: Path, body: str, *, table: bool = True) -> Path:
    path = directory / "pyproject.toml"
    head = '[project]\nname = "demo"\n\n' + ("[tool.ocirel]\n" if table else "")
    path.write_text(head + body, encoding="utf-8")
    return path


# -- precedence ------------------------------------------------------------------------

SOURCES = ("flag", "env", "ocirel.toml", "pyproject")


def _precedence_cases() -> list[tuple[bool, bool, bool, bool]]:
    both = (True, False)
    return [(a, b, c, d) for a, b, c, d in itertools.product(both, both, both, both)]


@pytest.mark.parametrize(
    ("key", "values", "default"),
    [
        # key, the value each source gives (flag, env, ocirel.toml, pyproject), the default
        ("prefix", ("f-", "e-", '"t-"', '"p-"'), None),
        ("max_attempts", (1, "2", "3", "4"), 5),
        ("backend", ("buildah", "podman", '"docker"', '"auto"'), "auto"),
    ],
)
@pytest.mark.parametrize(("flag", "env", "toml", "pyproject"), _precedence_cases())
def test_precedence(
    tmp_path: Path,
    key: str,
    values: tuple[Any, str, str, str],
    default: Any,
    flag: bool,
    env: bool,
    toml: bool,
    pyproject: bool,
) -> None:
    flag_value, env_value, toml_value, pyproject_value = values
    flags = {key: flag_value} if flag else {}
    environ = {f"OCIREL_{key.upper()}": env_value} if env else {}
    if toml:
        write_ocirel_toml(tmp_path, f"{key} = {toml_value}\n")
    if pyproject:
        write_pyproject(tmp_path, f"{key} = {pyproject_value}\n")

    loaded = settings.load(flags, environ, cwd=tmp_path)

    def typed(text: Any) -> Any:
        if isinstance(text, str) and text.startswith('"'):
            text = text.strip('"')
        return int(text) if isinstance(default, int) else text

    if flag:
        expected, origin = typed(flag_value), "flag"
    elif env:
        expected, origin = typed(env_value), "env"
    elif toml:
        expected, origin = typed(toml_value), str(tmp_path / "ocirel.toml")
    elif pyproject:
        expected, origin = typed(pyproject_value), str(tmp_path / "pyproject.toml")
    else:
        expected, origin = default, None
    assert value(loaded, key) == expected
    assert loaded.origins.get(key) == origin


def test_ocirel_toml_replaces_pyproject_entirely(tmp_path: Path) -> None:
    """The documented rule: ocirel.toml, *or else* [tool.ocirel] — the two never merge."""
    write_ocirel_toml(tmp_path, 'scheme = "semver"\n')
    write_pyproject(tmp_path, 'prefix = "p-"\nscheme = "calver"\n')
    loaded = settings.load({}, {}, cwd=tmp_path)
    assert loaded.publish.scheme == "semver"
    assert loaded.publish.prefix is None
    assert "prefix" not in loaded.origins


def test_pyproject_without_tool_ocirel_is_ignored(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "[tool.black]\nline-length = 88\n", table=False)
    loaded = settings.load({}, {}, cwd=tmp_path)
    assert loaded == Settings()
    assert loaded.origins == {}


def test_defaults(tmp_path: Path) -> None:
    loaded = settings.load({}, {}, cwd=tmp_path)
    assert loaded == Settings()
    assert loaded.origins == {}
    assert loaded.publish.scheme == "counter"
    assert loaded.publish.prefix is None
    assert loaded.publish.bump == "patch"
    assert loaded.build.backend == "auto"
    assert loaded.publish.lockfile == Path("ocirel.lock.json")
    assert loaded.registry.insecure is False
    assert loaded.registry.ca_file is None
    assert loaded.publish.max_attempts >= 1


def test_mixed_sources_record_their_origins(tmp_path: Path) -> None:
    toml = write_ocirel_toml(tmp_path, 'scheme = "semver"\nbump = "minor"\nretries = 2\n')
    loaded = settings.load(
        {"bump": "major", "insecure": None},  # None means "flag not given"
        {"OCIREL_RETRIES": "7", "OCIREL_PREFIX": "v"},
        cwd=tmp_path,
    )
    assert loaded.publish.scheme == "semver"
    assert loaded.publish.bump == "major"
    assert loaded.registry.retries == 7
    assert loaded.publish.prefix == "v"
    assert loaded.origins == {
        "scheme": str(toml),
        "bump": "flag",
        "retries": "env",
        "prefix": "env",
    }


def test_a_false_flag_still_beats_the_environment(tmp_path: Path) -> None:
    loaded = settings.load({"insecure": False}, {"OCIREL_INSECURE": "1"}, cwd=tmp_path)
    assert loaded.registry.insecure is False
    assert loaded.origins["insecure"] == "flag"


def test_process_environment_and_cwd_are_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_ocirel_toml(tmp_path, 'bump = "minor"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OCIREL_SCHEME", "semver")
    loaded = settings.load()
    assert (loaded.publish.scheme, loaded.publish.bump) == ("semver", "minor")
    assert loaded.origins == {"scheme": "env", "bump": str(tmp_path / "ocirel.toml")}


def test_credentials_in_the_environment_are_not_settings(tmp_path: Path) -> None:
    loaded = settings.load(
        {}, {"OCIREL_USERNAME": "alice", "OCIREL_PASSWORD": "hunter22"}, cwd=tmp_path
    )
    assert loaded == Settings()
    assert not any("hunter22" in repr(v) for v in dataclasses.astuple(loaded))


def test_settings_are_frozen(tmp_path: Path) -> None:
    loaded = settings.load({}, {}, cwd=tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.publish.scheme = "semver"  # type: ignore[misc]


# -- shape -----------------------------------------------------------------------------


def test_every_key_has_one_group_and_one_coercer() -> None:
    grouped = [f.name for cls in settings.GROUPS.values() for f in dataclasses.fields(cls)]
    assert len(grouped) == len(set(grouped)) == 28
    assert set(grouped) == set(COERCERS)


def test_the_closed_choices_are_the_literal_types() -> None:
    assert settings.BACKENDS == ("auto", "buildah", "podman", "docker")
    assert settings.ISOLATIONS == ("chroot", "oci", "rootless")


def test_a_publish_request_takes_its_defaults_from_the_settings(tmp_path: Path) -> None:
    from ocirel.publish import PublishRequest  # noqa: PLC0415
    from ocirel.reference import parse_repository  # noqa: PLC0415
    from ocirel.versioning import FLOATING_TAGS  # noqa: PLC0415

    loaded = settings.load({"max_attempts": 2, "keep_image": True}, {}, cwd=tmp_path)
    run: dict[str, Any] = {
        "context": tmp_path,
        "repository": parse_repository("r.example/app"),
        "name": "app",
    }
    request = PublishRequest.from_options(loaded.publish, loaded.build, **run)
    assert (request.max_attempts, request.keep_image) == (2, True)
    assert request.scheme.name == "counter"
    assert request.floating == FLOATING_TAGS
    by_hand = PublishRequest(lockfile=request.lockfile, scheme=request.scheme, **run)
    assert dataclasses.replace(request, max_attempts=5, keep_image=False) == by_hand


# -- coercion --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("insecure", "1", True),
        ("insecure", "true", True),
        ("insecure", "TRUE", True),
        ("insecure", "yes", True),
        ("insecure", " on ", True),
        ("insecure", "0", False),
        ("insecure", "false", False),
        ("insecure", "No", False),
        ("insecure", "off", False),
        ("insecure", "", False),
        ("keep_image", "yes", True),
        ("retries", "0", 0),
        ("retries", "12", 12),
        ("max_attempts", " 3 ", 3),
        ("connect_timeout", "2.5", 2.5),
        ("connect_timeout", "3", 3.0),
        ("read_timeout", "1e2", 100.0),
        ("settle_seconds", "0", 0.0),
        ("insecure_registries", "a.example:5000", ("a.example:5000",)),
        ("insecure_registries", "a, b ,,c,", ("a", "b", "c")),
        ("insecure_registries", "", ()),
        ("floating_tags", "qa,uat", ("qa", "uat")),
        ("scheme", "semver", "semver"),
        ("prefix", "", ""),
        ("storage_driver", "vfs", "vfs"),
        ("isolation", "oci", "oci"),
        ("lockfile", "out/ocirel.lock.json", Path("out/ocirel.lock.json")),
        ("lockfile", "/abs/lock.json", Path("/abs/lock.json")),
        ("max_file_size", "1048576", 1 << 20),
        ("max_file_size", "100M", 100 << 20),
        ("max_file_size", " 128 MiB ", 128 << 20),
        ("max_file_size", "1g", 1 << 30),
        ("max_file_size", "512KB", 512 << 10),
    ],
)
def test_environment_coercion(tmp_path: Path, key: str, text: str, expected: Any) -> None:
    loaded = settings.load({}, {f"OCIREL_{key.upper()}": text}, cwd=tmp_path)
    got = value(loaded, key)
    assert got == expected
    assert type(got) is type(expected)
    assert loaded.origins[key] == "env"


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("insecure = true", "insecure", True),
        ("insecure = false", "insecure", False),
        ('insecure = "yes"', "insecure", True),
        ("insecure = 1", "insecure", True),
        ("retries = 3", "retries", 3),
        ('retries = "3"', "retries", 3),
        ("connect_timeout = 5", "connect_timeout", 5.0),
        ("connect_timeout = 0.5", "connect_timeout", 0.5),
        ('insecure_registries = ["a:5000", " b "]', "insecure_registries", ("a:5000", "b")),
        ("insecure_registries = []", "insecure_registries", ()),
        ('insecure_registries = "a,b"', "insecure_registries", ("a", "b")),
        ('floating_tags = ["qa"]', "floating_tags", ("qa",)),
        ('prefix = "release-"', "prefix", "release-"),
        ('backend = "buildah"', "backend", "buildah"),
        ("max_file_size = 2048", "max_file_size", 2048),
        ('max_file_size = "96MiB"', "max_file_size", 96 << 20),
    ],
)
def test_file_coercion(tmp_path: Path, line: str, key: str, expected: Any) -> None:
    for writer in (write_ocirel_toml, write_pyproject):
        directory = tmp_path / writer.__name__
        directory.mkdir()
        config = writer(directory, line + "\n")
        loaded = settings.load({}, {}, cwd=directory)
        got = value(loaded, key)
        assert got == expected, config.name
        assert type(got) is type(expected)
        assert loaded.origins[key] == str(config)


@pytest.mark.parametrize("writer", [write_ocirel_toml, write_pyproject])
def test_relative_paths_in_a_file_are_relative_to_its_directory(
    tmp_path: Path, writer: Any
) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("cert", encoding="utf-8")
    writer(tmp_path, 'ca_file = "certs/ca.pem"\nlockfile = "deploy/ocirel.lock.json"\n')
    loaded = settings.load({}, {}, cwd=tmp_path)
    assert loaded.registry.ca_file == tmp_path / "certs" / "ca.pem"
    assert loaded.publish.lockfile == tmp_path / "deploy" / "ocirel.lock.json"


def test_absolute_and_home_paths_in_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "ca.pem").write_text("cert", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    project = tmp_path / "project"
    project.mkdir()
    write_ocirel_toml(project, f'ca_file = "~/ca.pem"\nlockfile = "{tmp_path}/x.json"\n')
    loaded = settings.load({}, {}, cwd=project)
    assert loaded.registry.ca_file == home / "ca.pem"
    assert loaded.publish.lockfile == tmp_path / "x.json"


def test_paths_from_flags_and_env_are_not_rebased(tmp_path: Path) -> None:
    loaded = settings.load(
        {"lockfile": "a/flag.json"}, {"OCIREL_LOCKFILE": "b/env.json"}, cwd=tmp_path
    )
    assert loaded.publish.lockfile == Path("a/flag.json")
    loaded = settings.load({}, {"OCIREL_LOCKFILE": "b/env.json"}, cwd=tmp_path)
    assert loaded.publish.lockfile == Path("b/env.json")


def test_ca_file_from_flag(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("cert", encoding="utf-8")
    loaded = settings.load({"ca_file": str(ca)}, {}, cwd=tmp_path)
    assert loaded.registry.ca_file == ca
    assert loaded.origins["ca_file"] == "flag"


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"OCIREL_INSECURE": "maybe"}, ["insecure", "OCIREL_INSECURE", "boolean"]),
        ({"OCIREL_INSECURE": "2"}, ["insecure", "OCIREL_INSECURE"]),
        ({"OCIREL_RETRIES": "three"}, ["retries", "OCIREL_RETRIES"]),
        ({"OCIREL_RETRIES": "2.5"}, ["retries", "OCIREL_RETRIES"]),
        ({"OCIREL_RETRIES": "-1"}, ["retries", "negative"]),
        ({"OCIREL_CONNECT_TIMEOUT": "fast"}, ["connect_timeout"]),
        ({"OCIREL_READ_TIMEOUT": "-0.5"}, ["read_timeout", "negative"]),
        ({"OCIREL_MAX_ATTEMPTS": "0"}, ["max_attempts", "at least 1"]),
        ({"OCIREL_BACKEND": "kaniko"}, ["unknown backend", "kaniko"]),
        ({"OCIREL_BACKEND": "Buildah"}, ["unknown backend"]),
        ({"OCIREL_ISOLATION": "none"}, ["unknown isolation"]),
        ({"OCIREL_CA_FILE": "/nonexistent/ca.pem"}, ["CA file", "/nonexistent/ca.pem"]),
        ({"OCIREL_MAX_FILE_SIZE": "big"}, ["max_file_size", "OCIREL_MAX_FILE_SIZE", "64MiB"]),
        ({"OCIREL_MAX_FILE_SIZE": "0"}, ["max_file_size", "at least 1 byte"]),
        ({"OCIREL_MAX_FILE_SIZE": "1.5G"}, ["max_file_size", "a size such as"]),
    ],
)
def test_bad_environment_values(tmp_path: Path, env: dict[str, str], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        settings.load({}, env, cwd=tmp_path)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ('colour = "blue"\n', ["unknown setting", "colour"]),
        ('sceme = "semver"\nbakend = "x"\n', ["unknown setting", "bakend", "sceme"]),
        ('ca-file = "x"\n', ["unknown setting", "ca-file"]),
        ('insecure = "maybe"\n', ["insecure"]),
        ("insecure = 2\n", ["insecure"]),
        ("retries = true\n", ["retries", "number"]),
        ("retries = -3\n", ["retries", "negative"]),
        ('retries = "many"\n', ["retries"]),
        ("scheme = 5\n", ["scheme", "string"]),
        ("prefix = true\n", ["prefix", "string"]),
        ("insecure_registries = [1, 2]\n", ["insecure_registries", "list of strings"]),
        ("insecure_registries = 5\n", ["insecure_registries", "list of strings"]),
        ('backend = "kaniko"\n', ["unknown backend"]),
        ('isolation = "vm"\n', ["unknown isolation"]),
        ('ca_file = "missing.pem"\n', ["CA file", "missing.pem"]),
        ("max_attempts = 0\n", ["max_attempts"]),
        ("max_file_size = true\n", ["max_file_size", "a size such as"]),
        ("max_file_size = -1\n", ["max_file_size", "at least 1 byte"]),
    ],
)
def test_bad_file_values(tmp_path: Path, body: str, fragments: list[str]) -> None:
    for writer in (write_ocirel_toml, write_pyproject):
        directory = tmp_path / writer.__name__
        directory.mkdir()
        writer(directory, body)
        with pytest.raises(ConfigError) as info:
            settings.load({}, {}, cwd=directory)
        for fragment in fragments:
            assert fragment in str(info.value), writer.__name__


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ocirel.toml", b'scheme = "semver\n'),
        ("ocirel.toml", b"scheme semver\n"),
        ("ocirel.toml", b"[[[\n"),
        ("ocirel.toml", b'scheme = "semver"\nscheme = "calver"\n'),
        ("ocirel.toml", b'prefix = "\xff\xfe"\n'),
        ("pyproject.toml", b"[tool.ocirel\nscheme = 1\n"),
        ("pyproject.toml", b"[tool.ocirel]\nscheme = \n"),
        ("pyproject.toml", b"\xff\xfe[tool.ocirel]\n"),
    ],
)
def test_bad_toml(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        settings.load({}, {}, cwd=tmp_path)
    assert name in str(info.value)


def test_tool_ocirel_must_be_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool]\nocirel = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a table"):
        settings.load({}, {}, cwd=tmp_path)


@pytest.mark.parametrize("body", ['tool = "x"\n', "tool = 5\n", "tool = [1]\n"])
def test_tool_must_be_a_table(tmp_path: Path, body: str) -> None:
    (tmp_path / "pyproject.toml").write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError):
        settings.load({}, {}, cwd=tmp_path)


@pytest.mark.parametrize("body", ["retries = 2.5\n", "max_attempts = 1.9\n"])
def test_fractional_value_for_an_integer_setting_is_refused(tmp_path: Path, body: str) -> None:
    write_ocirel_toml(tmp_path, body)
    with pytest.raises(ConfigError):
        settings.load({}, {}, cwd=tmp_path)


@pytest.mark.parametrize("key", ["connect_timeout", "read_timeout", "build_timeout"])
def test_nan_is_not_a_number_setting(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError):
        settings.load({}, {f"OCIREL_{key.upper()}": "nan"}, cwd=tmp_path)


def test_ca_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA file"):
        settings.load({"ca_file": str(tmp_path)}, {}, cwd=tmp_path)


def test_unknown_keys_are_reported_even_if_everything_else_is_flags(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'scheme = "semver"\ntypo = 1\n')
    with pytest.raises(ConfigError, match="typo") as info:
        settings.load({"scheme": "counter"}, {}, cwd=tmp_path)
    assert "pyproject.toml" in str(info.value)


# -- round two: items 47 and 51 (issue 9.9, 9.13) ----------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"OCIREL_SCHEME": "date"},
        {"OCIREL_SCHEME": ""},
        {"OCIREL_BUMP": "huge"},
        {"OCIREL_PREFIX": "-v"},
        {"OCIREL_PREFIX": "a/b"},
        {"OCIREL_PREFIX": "x" * 33},
    ],
    ids=["scheme", "empty-scheme", "bump", "prefix-dash", "prefix-slash", "prefix-long"],
)
def test_r51_bad_version_settings_are_config_errors(tmp_path: Path, env: dict[str, str]) -> None:
    (name,) = env
    with pytest.raises(ConfigError) as info:
        settings.load({}, env, cwd=tmp_path)
    assert info.value.exit_code == 2
    assert name in str(info.value)  # where the bad value came from


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        ({"scheme": "date"}, "--scheme"),
        ({"bump": "huge"}, "--bump"),
        ({"prefix": "-v"}, "--prefix"),
    ],
)
def test_r51_bad_version_flags_are_config_errors(
    tmp_path: Path, flags: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        settings.load(flags, {}, cwd=tmp_path)
    assert info.value.exit_code == 2


def test_r51_bad_version_settings_in_a_file_name_the_file(tmp_path: Path) -> None:
    write_ocirel_toml(tmp_path, 'scheme = "date"\n')
    with pytest.raises(ConfigError, match=r"ocirel\.toml"):
        settings.load({}, {}, cwd=tmp_path)


TIMEOUTS = ("connect_timeout", "read_timeout", "build_timeout", "push_timeout", "verify_timeout")


@pytest.mark.parametrize("value", ["0", "0.0", "-0", "0e5"])
@pytest.mark.parametrize("name", TIMEOUTS)
def test_r47_zero_timeouts_are_config_errors(tmp_path: Path, name: str, value: str) -> None:
    env_name = f"OCIREL_{name.upper()}"
    with pytest.raises(ConfigError) as info:
        settings.load({}, {env_name: value}, cwd=tmp_path)
    assert info.value.exit_code == 2
    assert env_name in str(info.value)
    assert name in str(info.value)


@pytest.mark.parametrize("name", TIMEOUTS)
def test_r47_zero_timeout_in_a_file_is_a_config_error(tmp_path: Path, name: str) -> None:
    write_ocirel_toml(tmp_path, f"{name} = 0\n")
    with pytest.raises(ConfigError, match=name):
        settings.load({}, {}, cwd=tmp_path)


def test_waits_that_may_be_zero_stay_allowed(tmp_path: Path) -> None:
    env = {"OCIREL_SETTLE_SECONDS": "0", "OCIREL_MAX_RETRY_WAIT": "0", "OCIREL_RETRIES": "0"}
    loaded = settings.load({}, env, cwd=tmp_path)
    registry = loaded.registry
    assert (loaded.publish.settle_seconds, registry.max_retry_wait, registry.retries) == (
        0.0,
        0.0,
        0,
    )


def test_helm_digest_fields_from_a_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "ocirel.toml").write_text(
        'helm_digest_field = "tag"\n[helm_digest_fields]\n"deploy/*.yaml" = "sha"\n'
    )
    loaded = settings.load({}, {}, cwd=tmp_path)
    assert loaded.deploy.helm_digest_field == "tag"
    assert loaded.deploy.helm_digest_fields == ((str(tmp_path / "deploy" / "*.yaml"), "sha"),)
    env = {"OCIREL_HELM_DIGEST_FIELDS": f"{tmp_path}/a.yaml=digest, {tmp_path}/b.yaml=auto"}
    from_env = settings.load({}, env, cwd=tmp_path).deploy.helm_digest_fields
    assert from_env == ((f"{tmp_path}/a.yaml", "digest"), (f"{tmp_path}/b.yaml", "auto"))
    with pytest.raises(ConfigError, match="OCIREL_HELM_DIGEST_FIELD: expected one of auto"):
        settings.load({}, {"OCIREL_HELM_DIGEST_FIELD": "sha1"}, cwd=tmp_path)
