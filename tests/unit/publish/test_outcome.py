"""The outcome type and its rendering: ``--json`` and the human text are exactly what
they were when the outcome was three mode booleans (the expected bytes below were
captured from that version)."""

from __future__ import annotations

import pytest

from ocirel.cli.publish import render_publish
from ocirel.publish import Explained, Planned, Published, PublishResult, Reused

D = "sha256:" + "d" * 64
REPO = "r.example/team/app"
LOCK = "ocirel.lock.json"

RESULTS = {
    "planned": PublishResult(
        name="app", repository=REPO, tag="v4", digest=None, backend="buildah",
        outcome=Planned(("buildah build x", "record app in ocirel.lock.json")), lockfile=LOCK,
    ),
    "explained_new": PublishResult(
        name="app", repository=REPO, tag="", digest=None, backend="buildah",
        outcome=Explained(new_version=True), lockfile=LOCK,
        explanation=("the build differs from v3:", "  layers differ"),
    ),
    "explained_reuse": PublishResult(
        name="app", repository=REPO, tag="v3", digest=D, backend="docker",
        outcome=Explained(new_version=False), lockfile=LOCK,
        explanation=("same as v3; reusing it",),
    ),
    "reused": PublishResult(
        name="app", repository=REPO, tag="v3", digest=D, backend="podman",
        platforms={"linux/amd64": D}, outcome=Reused(), lockfile=LOCK,
        explanation=("same as v3; reusing it",),
    ),
    "published": PublishResult(
        name="app", repository=REPO, tag="v5", digest=D, backend="buildah",
        platforms={"linux/arm64": D}, outcome=Published(2), lockfile=LOCK,
        explanation=("no earlier counter version in r.example/team/app",),
    ),
}  # fmt: skip

EXPECTED = {
    'planned_text': (
        'next tag: r.example/team/app:v4\n'
        'plan:\n'
        '  buildah build x\n'
        '  record app in ocirel.lock.json\n'
    ),
    'planned_json': (
        '{\n'
        '  "attempts": 1,\n'
        '  "backend": "buildah",\n'
        '  "digest": null,\n'
        '  "dry_run": true,\n'
        '  "explanation": [],\n'
        '  "lockfile": "ocirel.lock.json",\n'
        '  "name": "app",\n'
        '  "plan": [\n'
        '    "buildah build x",\n'
        '    "record app in ocirel.lock.json"\n'
        '  ],\n'
        '  "platforms": {},\n'
        '  "reference": "r.example/team/app:v4",\n'
        '  "repository": "r.example/team/app",\n'
        '  "tag": "v4",\n'
        '  "unchanged": false\n'
        '}\n'
    ),
    'explained_new_text': (
        'a new version would be pushed\n'
        '  the build differs from v3:\n'
        '    layers differ\n'
    ),
    'explained_new_json': (
        '{\n'
        '  "attempts": 1,\n'
        '  "backend": "buildah",\n'
        '  "digest": null,\n'
        '  "dry_run": false,\n'
        '  "explain": true,\n'
        '  "explanation": [\n'
        '    "the build differs from v3:",\n'
        '    "  layers differ"\n'
        '  ],\n'
        '  "lockfile": "ocirel.lock.json",\n'
        '  "name": "app",\n'
        '  "platforms": {},\n'
        '  "reference": "r.example/team/app:",\n'
        '  "repository": "r.example/team/app",\n'
        '  "tag": "",\n'
        '  "unchanged": false\n'
        '}\n'
    ),
    'explained_reuse_text': (
        'no new version: reuse v3\n'
        '  same as v3; reusing it\n'
    ),
    'explained_reuse_json': (
        '{\n'
        '  "attempts": 1,\n'
        '  "backend": "docker",\n'
        '  "digest": "<D>",\n'
        '  "dry_run": false,\n'
        '  "explain": true,\n'
        '  "explanation": [\n'
        '    "same as v3; reusing it"\n'
        '  ],\n'
        '  "lockfile": "ocirel.lock.json",\n'
        '  "name": "app",\n'
        '  "platforms": {},\n'
        '  "reference": "r.example/team/app:v3@<D>",\n'
        '  "repository": "r.example/team/app",\n'
        '  "tag": "v3",\n'
        '  "unchanged": true\n'
        '}\n'
    ),
    'reused_text': (
        'unchanged, reusing r.example/team/app:v3@<D>\n'
        '  tag       v3\n'
        '  digest    <D>\n'
        "  lockfile  ocirel.lock.json (entry 'app')\n"
    ),
    'reused_json': (
        '{\n'
        '  "attempts": 0,\n'
        '  "backend": "podman",\n'
        '  "digest": "<D>",\n'
        '  "dry_run": false,\n'
        '  "explanation": [\n'
        '    "same as v3; reusing it"\n'
        '  ],\n'
        '  "lockfile": "ocirel.lock.json",\n'
        '  "name": "app",\n'
        '  "platforms": {\n'
        '    "linux/amd64": "<D>"\n'
        '  },\n'
        '  "reference": "r.example/team/app:v3@<D>",\n'
        '  "repository": "r.example/team/app",\n'
        '  "tag": "v3",\n'
        '  "unchanged": true\n'
        '}\n'
    ),
    'published_text': (
        'published r.example/team/app:v5@<D>\n'
        '  tag       v5\n'
        '  digest    <D>\n'
        "  lockfile  ocirel.lock.json (entry 'app')\n"
    ),
    'published_json': (
        '{\n'
        '  "attempts": 2,\n'
        '  "backend": "buildah",\n'
        '  "digest": "<D>",\n'
        '  "dry_run": false,\n'
        '  "explanation": [\n'
        '    "no earlier counter version in r.example/team/app"\n'
        '  ],\n'
        '  "lockfile": "ocirel.lock.json",\n'
        '  "name": "app",\n'
        '  "platforms": {\n'
        '    "linux/arm64": "<D>"\n'
        '  },\n'
        '  "reference": "r.example/team/app:v5@<D>",\n'
        '  "repository": "r.example/team/app",\n'
        '  "tag": "v5",\n'
        '  "unchanged": false\n'
        '}\n'
    ),
}  # fmt: skip


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("case", RESULTS)
def test_rendering_is_byte_for_byte_what_it_was(
    case: str, as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    render_publish(RESULTS[case], as_json)
    expected = EXPECTED[f"{case}_{'json' if as_json else 'text'}"].replace("<D>", D)
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize(
    ("case", "attempts", "unchanged", "dry_run"),
    [
        ("planned", 1, False, True),
        ("explained_new", 1, False, False),
        ("explained_reuse", 1, True, False),
        ("reused", 0, True, False),
        ("published", 2, False, False),
    ],
)
def test_the_json_fields_follow_the_outcome(
    case: str, attempts: int, unchanged: bool, dry_run: bool
) -> None:
    data = RESULTS[case].to_json()
    assert (data["attempts"], data["unchanged"], data["dry_run"]) == (attempts, unchanged, dry_run)
    assert ("plan" in data) is dry_run
    assert data.get("explain", False) is case.startswith("explained")
