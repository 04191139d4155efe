"""A layer cache filled by a build with another timestamp is detected and not kept.

``--timestamp`` is not part of buildah's cache key; these tests use stand-in builders
(shell scripts) that print buildah's cache-hit lines and answer ``inspect``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from ocirel import hostinfo, runner
from ocirel.backends.base import BuildEnv, BuildSpec, StaleCache
from ocirel.backends.buildah import Buildah
from ocirel.backends.containers import CACHE_HIT, parse_created
from ocirel.backends.podman import Podman
from ocirel.backends.stored import big_data_name
from ocirel.errors import BackendNotFoundError
from ocirel.oci import OCI_CONFIG, OCI_MANIFEST

HIT_A = "a" * 64
HIT_B = "b" * 64
BUILT = "c" * 64
T = 1700000000
T_TEXT = "2023-11-14T22:13:20Z"
OTHER_TEXT = "2023-11-14T22:30:00Z"

# A stand-in buildah/podman: `build` prints cache hits from $FAKE_HITS and writes the
# image ID; `inspect` answers with $FAKE_CREATED_<first 12 of the id>, else T_TEXT, and
# so does `images --all --json` for the hits and the built image. Each run is logged.
FAKE = r"""#!/bin/sh
iidfile=""
cmd=""
for arg in "$@"; do
  case "$prev" in --iidfile) iidfile="$arg" ;; esac
  case "$arg" in build|inspect|image|images|rmi) [ -z "$cmd" ] && cmd="$arg" ;; esac
  prev="$arg"
  last="$arg"
done
echo "$cmd" >> "$FAKE_CALL_LOG"
case "$cmd" in
  images)
    [ -n "$FAKE_IMAGES_FAIL" ] && exit 125
    printf '['
    sep=""
    for id in $FAKE_HITS sha256:$FAKE_BUILT; do
      key=$(printf '%s' "${id#sha256:}" | cut -c1-12)
      eval "value=\${FAKE_CREATED_$key:-$FAKE_DEFAULT}"
      eval "name=\${FAKE_NAMED_$key:-}"
      if [ -n "$name" ]; then names="[\"$name\"]"; else names="null"; fi
      printf '%s{"id": "sha256:%s", "names": %s, "createdatraw": "%s"}' \
        "$sep" "${id#sha256:}" "$names" "$value"
      sep=","
    done
    printf ']\n' ;;
  build)
    echo "STEP 1/2: FROM scratch"
    for id in $FAKE_HITS; do echo "--> Using cache $id"; done
    [ -n "$FAKE_BUILD_SLEEP" ] && sleep "$FAKE_BUILD_SLEEP"
    echo "build-end" >> "$FAKE_CALL_LOG"
    printf 'sha256:%s' "$FAKE_BUILT" > "$iidfile" ;;
  inspect)
    [ -n "$FAKE_INSPECT_SLEEP" ] && sleep "$FAKE_INSPECT_SLEEP"
    key=$(printf '%s' "${last#sha256:}" | cut -c1-12)
    eval "value=\${FAKE_CREATED_$key:-$FAKE_DEFAULT}"
    eval "name=\${FAKE_NAMED_$key:-}"
    printf '{"FromImage": "%s", "OCIv1": {"created": "%s"}}\n' "$name" "$value" ;;
  rmi)
    if [ -n "$FAKE_RMI_FAIL" ]; then
      echo "Error: 1 error occurred:" >&2
      echo "	* image used by 3f7c0f15b1ed: image is in use by a container" >&2
      exit 125
    fi
    echo "$last" >> "$FAKE_RMI_LOG" ;;
  image)
    shift 2>/dev/null
    printf '['
    sep=""
    for id in "$@"; do
      case "$id" in --*|image|inspect) continue ;; esac
      key=$(printf '%s' "${id#sha256:}" | cut -c1-12)
      eval "value=\${FAKE_CREATED_$key:-$FAKE_DEFAULT}"
      eval "name=\${FAKE_NAMED_$key:-}"
      if [ -n "$name" ]; then tags="[\"$name\"]"; else tags="[]"; fi
      printf '%s{"Id": "%s", "Created": "%s", "RepoTags": %s}' \
        "$sep" "${id#sha256:}" "$value" "$tags"
      sep=","
    done
    printf ']\n' ;;
esac
"""


@pytest.fixture
def fake_builders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("buildah", "podman"):
        program = bindir / name
        program.write_text(FAKE, encoding="utf-8")
        program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_BUILT", BUILT)
    monkeypatch.setenv("FAKE_HITS", "")
    monkeypatch.setenv("FAKE_DEFAULT", T_TEXT)
    monkeypatch.setenv("FAKE_RMI_LOG", str(tmp_path / "rmi.log"))
    monkeypatch.setenv("FAKE_CALL_LOG", str(tmp_path / "calls.log"))
    return bindir


@pytest.fixture
def spec(tmp_path: Path) -> BuildSpec:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text("FROM scratch\n", encoding="utf-8")
    return BuildSpec(context=context, image=None, timestamp=T)


def _backends() -> list[Buildah | Podman]:
    return [Buildah(), Podman(store_driver="overlay")]


# -- parse_created ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (T_TEXT, float(T)),
        ("2023-11-14T22:13:20.000000000Z", float(T)),
        ("2023-11-14T22:13:20.5Z", T + 0.5),
        ("2023-11-14T23:13:20+01:00", float(T)),
        ("2023-11-14 22:13:20 +0000 UTC", None),
        ("", None),
        (None, None),
        (17, None),
    ],
)
def test_parse_created(text: object, expected: float | None) -> None:
    assert parse_created(text) == expected


def test_cache_hit_line() -> None:
    assert CACHE_HIT.match(f"--> Using cache {HIT_A}")
    assert not CACHE_HIT.match(f"Using cache {HIT_A}")
    assert not CACHE_HIT.match("--> Using cache abc")


# -- the runner lets the backend see streamed lines ----------------------------------


def test_runner_on_line_sees_every_streamed_line() -> None:
    seen: list[str] = []
    runner.run(
        # -u: a block-buffered stdout would reach the shared pipe after stderr's line
        [sys.executable, "-u", "-c", "print('one'); import sys; print('two', file=sys.stderr)"],
        stream=True, on_line=seen.append, timeout=30,
    )  # fmt: skip
    assert [line.strip() for line in seen] == ["one", "two"]


def test_runner_on_line_failure_does_not_stall_the_program() -> None:
    def explode(_line: str) -> None:
        raise RuntimeError("observer bug")

    result = runner.run(
        [sys.executable, "-c", "print('\\n'.join(map(str, range(5000))))"],
        stream=True, on_line=explode, timeout=30,
    )  # fmt: skip
    assert result.ok


# -- stale_cache ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_no_cache_hit_is_never_stale(
    fake_builders: Path, spec: BuildSpec, backend: Buildah | Podman
) -> None:
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image == "sha256:" + BUILT
    assert backend.cache_hits == ()
    assert backend.stale_cache(image, T, BuildEnv()) is None


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_cache_hits_with_the_same_timestamp_are_kept(
    fake_builders: Path, spec: BuildSpec, backend: Buildah | Podman,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("FAKE_HITS", f"{HIT_A} {HIT_B} {HIT_B}")
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert backend.cache_hits == (HIT_A, HIT_B)
    assert image is not None
    assert backend.stale_cache(image, T, BuildEnv()) is None


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_a_cached_step_from_another_timestamp_is_stale(
    fake_builders: Path, spec: BuildSpec, backend: Buildah | Podman,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # the first steps came from a build of an earlier commit; the last step ran now
    monkeypatch.setenv("FAKE_HITS", f"{HIT_A} {HIT_B}")
    monkeypatch.setenv(f"FAKE_CREATED_{HIT_B[:12]}", OTHER_TEXT)
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image is not None
    stale = backend.stale_cache(image, T, BuildEnv())
    assert stale is not None
    assert HIT_B[:12] in stale.reason
    assert str(T) in stale.reason
    assert stale.entries == (HIT_B,)  # the stale cached step goes after the rebuild


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_a_named_stale_image_is_never_offered_for_removal(
    fake_builders: Path, spec: BuildSpec, backend: Buildah | Podman,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # every step came from an earlier build; its last step is the user's tagged image
    monkeypatch.setenv("FAKE_HITS", f"{HIT_A} {HIT_B}")
    monkeypatch.setenv("FAKE_DEFAULT", OTHER_TEXT)
    monkeypatch.setenv(f"FAKE_NAMED_{HIT_B[:12]}", "localhost/mine:dev")
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image is not None
    stale = backend.stale_cache(image, T, BuildEnv())
    assert stale is not None
    assert HIT_A[:12] in stale.reason  # the first stale step is named
    assert HIT_A in stale.entries
    assert HIT_B not in stale.entries


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_an_image_from_another_timestamp_is_stale_even_without_log_lines(
    fake_builders: Path, spec: BuildSpec, backend: Buildah | Podman,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # every step cached, and the builder printed nothing we recognise: the final
    # image's own created time still tells
    monkeypatch.setenv("FAKE_DEFAULT", OTHER_TEXT)
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image is not None
    assert backend.stale_cache(image, T, BuildEnv()) is not None


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_unknown_created_time_is_not_stale(
    fake_builders: Path, spec: BuildSpec, backend: Buildah | Podman,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("FAKE_DEFAULT", "garbage")
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image is not None
    assert backend.stale_cache(image, T, BuildEnv()) is None


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_drop_stale_removes_each_entry(
    fake_builders: Path, backend: Buildah | Podman, tmp_path: Path
) -> None:
    stale = StaleCache("stale", entries=(HIT_A, HIT_B))
    assert backend.drop_stale(stale, BuildEnv()) is None
    assert (tmp_path / "rmi.log").read_text().split() == [HIT_A, HIT_B]


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_drop_stale_says_which_entry_a_container_holds(
    fake_builders: Path, backend: Buildah | Podman, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RMI_FAIL", "1")
    problem = backend.drop_stale(StaleCache("stale", entries=(HIT_A,)), BuildEnv())
    assert problem is not None
    assert HIT_A[:12] in problem
    assert "in use by a container" in problem
    assert backend.list_containers in problem


# -- buildah: one storage listing instead of one inspect per cached step ----------


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().split() if log.exists() else []


def test_buildah_lists_the_storage_once_for_all_cached_steps(
    fake_builders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_HITS", f"{HIT_A} {HIT_B}")
    monkeypatch.setenv(f"FAKE_CREATED_{HIT_A[:12]}", OTHER_TEXT)
    times = Buildah().created_times([HIT_A, HIT_B, "sha256:" + BUILT], BuildEnv())
    assert times[HIT_A].created != T
    assert times[HIT_B] == (T, False)
    # one process instead of one `buildah inspect` per step
    assert _calls(tmp_path) == ["images"]


def test_buildah_inspects_each_step_when_the_listing_fails(
    fake_builders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_HITS", f"{HIT_A} {HIT_B}")
    monkeypatch.setenv(f"FAKE_CREATED_{HIT_B[:12]}", OTHER_TEXT)
    monkeypatch.setenv("FAKE_IMAGES_FAIL", "1")
    times = Buildah().created_times([HIT_A, HIT_B, BUILT], BuildEnv())
    assert times[HIT_B].created != T
    assert times[HIT_A].created == T
    assert sorted(_calls(tmp_path)) == ["images", "inspect", "inspect", "inspect"]


@pytest.mark.parametrize("backend", _backends(), ids=lambda b: b.name)
def test_cached_steps_are_looked_up_while_the_build_goes_on(
    fake_builders: Path, spec: BuildSpec, tmp_path: Path, backend: Buildah | Podman,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("FAKE_HITS", f"{HIT_A} {HIT_B}")
    monkeypatch.setenv(f"FAKE_CREATED_{HIT_B[:12]}", OTHER_TEXT)
    monkeypatch.setenv("FAKE_BUILD_SLEEP", "1")
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image is not None
    during = _calls(tmp_path)
    assert during[-1] == "build-end"
    assert sorted(during[:-1]) == ["build", "image", "image"] if backend.name == "podman" else [
        "build", "inspect", "inspect"
    ]  # fmt: skip
    stale = backend.stale_cache(image, T, BuildEnv())
    assert stale is not None
    assert stale.entries == (HIT_B,)
    assert len(_calls(tmp_path)) == len(during) + 1  # only the final image was left


def test_buildah_asks_nothing_more_when_every_step_was_cached(
    fake_builders: Path, spec: BuildSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the unchanged re-publish: the final image is the last cached step; its created
    # time and its config were read while the build went on
    monkeypatch.setenv("FAKE_HITS", f"{HIT_A} {BUILT}")
    monkeypatch.setenv("FAKE_BUILD_SLEEP", "1")
    backend = Buildah()
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image == "sha256:" + BUILT
    during = _calls(tmp_path)
    assert backend.stale_cache(image, T, BuildEnv()) is None
    assert backend.image_config(image, BuildEnv()) == {"created": T_TEXT}
    assert _calls(tmp_path) == during


def test_a_build_without_a_timestamp_looks_nothing_up(
    fake_builders: Path, spec: BuildSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_HITS", f"{HIT_A} {HIT_B}")
    Buildah().build(replace(spec, timestamp=None), BuildEnv(), timeout=30)
    assert _calls(tmp_path) == ["build", "build-end"]


def test_buildah_inspects_an_image_the_listing_does_not_show(
    fake_builders: Path, tmp_path: Path
) -> None:
    # a name (not an ID) and an ID the storage does not list: never taken as "not stale"
    # from a listing that cannot say
    times = Buildah().created_times(["mine", HIT_A, HIT_B], BuildEnv())
    assert times["mine"].created == T
    assert _calls(tmp_path) == ["inspect", "inspect", "inspect"]
    unlisted = Buildah().created_times([HIT_A, HIT_B, "d" * 64], BuildEnv())
    assert unlisted["d" * 64].created is None
    assert unlisted["d" * 64].named  # unknown: never offered for removal


def test_buildah_inspects_one_or_two_images_directly(fake_builders: Path, tmp_path: Path) -> None:
    Buildah().created_times([HIT_A, BUILT], BuildEnv())
    assert _calls(tmp_path) == ["inspect", "inspect"]


def test_buildah_inspects_an_image_once_when_two_threads_ask_at_the_same_time(
    fake_builders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the final image's step look-up is still under way when the publish asks for its
    # config: the second asker waits for the first answer
    monkeypatch.setenv("FAKE_INSPECT_SLEEP", "0.5")
    backend = Buildah()
    with ThreadPoolExecutor(2) as pool:
        step = pool.submit(backend.step_image, "sha256:" + BUILT, BuildEnv())
        config = pool.submit(backend.image_config, BUILT, BuildEnv())
        assert step.result().created == T
        assert config.result() == {"created": T_TEXT}
    assert _calls(tmp_path) == ["inspect"]


def test_podman_inspects_an_image_once_for_its_created_time_and_annotations(
    fake_builders: Path, tmp_path: Path
) -> None:
    # the stale-cache check and the export's base-image look-up both read the final
    # image: one `podman image inspect`, parsed once
    backend = Podman(store_driver="overlay")
    times = backend.created_times([HIT_A, "sha256:" + BUILT], BuildEnv())
    assert times[HIT_A].created == T
    assert backend.step_image(BUILT, BuildEnv()).created == T
    assert backend.image_annotations(BUILT, BuildEnv()) == {}
    assert backend.image_annotations(HIT_A, BuildEnv()) == {}
    assert _calls(tmp_path) == ["image"]


def test_buildah_asks_again_after_a_failed_inspect(
    fake_builders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    backend = Buildah()
    with pytest.raises(BackendNotFoundError):
        backend.image_config(BUILT, BuildEnv())
    monkeypatch.setenv("PATH", f"{fake_builders}:/usr/bin:/bin")
    assert backend.image_config(BUILT, BuildEnv()) == {"created": T_TEXT}


# -- the step images' times from the storage's files -------------------------------------


def _stored_step(root: Path, created: str, n: int) -> str:
    """A step image as containers/storage keeps it (config hashing to its ID); its ID."""
    config = json.dumps({"created": created, "n": n, "rootfs": {"diff_ids": []}}).encode()
    hexid = hashlib.sha256(config).hexdigest()
    directory = root / "overlay-images" / hexid
    directory.mkdir(parents=True)
    (directory / big_data_name(f"sha256:{hexid}")).write_bytes(config)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{hexid}"}}  # fmt: skip
    (directory / "manifest").write_text(json.dumps(manifest))
    return hexid


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "graph"
    monkeypatch.setattr(hostinfo, "graph_roots", lambda env, rootless: [root])
    return root


def test_fresh_steps_in_the_storage_need_no_inspect(
    fake_builders: Path, spec: BuildSpec, storage: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    hits = [_stored_step(storage, T_TEXT, n) for n in range(3)]
    built = _stored_step(storage, T_TEXT, 9)
    monkeypatch.setenv("FAKE_HITS", " ".join(hits))
    monkeypatch.setenv("FAKE_BUILT", built)
    backend = Buildah()
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image == f"sha256:{built}"
    assert backend.stale_cache(image, T, BuildEnv()) is None
    assert _calls(tmp_path) == ["build", "build-end"]  # no inspect, no image listing


def test_a_stale_step_in_the_storage_is_named_by_the_builder(
    fake_builders: Path, spec: BuildSpec, storage: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fresh, stale_one, named = (_stored_step(storage, OTHER_TEXT if n else T_TEXT, n)
                               for n in range(3))  # fmt: skip
    built = _stored_step(storage, T_TEXT, 9)
    monkeypatch.setenv("FAKE_HITS", f"{fresh} {stale_one} {named}")
    monkeypatch.setenv("FAKE_BUILT", built)
    monkeypatch.setenv(f"FAKE_CREATED_{stale_one[:12]}", OTHER_TEXT)
    monkeypatch.setenv(f"FAKE_CREATED_{named[:12]}", OTHER_TEXT)
    monkeypatch.setenv(f"FAKE_NAMED_{named[:12]}", "localhost/kept:1")
    backend = Buildah()
    image = backend.build(spec, BuildEnv(), timeout=30)
    assert image is not None
    stale = backend.stale_cache(image, T, BuildEnv())
    assert stale is not None
    assert stale_one[:12] in stale.reason
    assert stale.entries == (stale_one,)  # the named one stays
    assert _calls(tmp_path).count("inspect") == 2  # only the two stale steps were asked
