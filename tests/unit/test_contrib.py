"""contrib/ and the pre-commit hooks are checked for syntax and shape: every file
parses, each names only ocirel commands and options that exist, the Kubernetes Job
and the Tekton Task run rootless and reference only what they declare."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from ocirel.cli import app

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"
YAML_FILES = [*sorted(CONTRIB.glob("*.y*ml")), ROOT / ".pre-commit-hooks.yaml"]
TEXT_FILES = [*YAML_FILES, *sorted(CONTRIB.glob("*.md"))]


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def command(words: list[str]) -> Any:
    """The click command ``words`` name under ``ocirel`` (``["lock", "export"]``)."""
    current: Any = typer.main.get_command(app)
    for word in words:
        if word not in getattr(current, "commands", {}):
            return None
        current = current.commands[word]
    return current


def code_lines(path: Path) -> list[str]:
    """The lines that run: YAML without its comments, Markdown's fenced blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".md":
        fences = [i for i, line in enumerate(lines) if line.startswith("```")]
        return [
            line
            for start, end in zip(fences[::2], fences[1::2], strict=True)
            for line in lines[start + 1 : end]
        ]
    return [re.sub(r"(^|\s)#.*", "", line) for line in lines]


def invocations(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Each ``ocirel <command> [sub] --option …`` written in ``lines``."""
    found = []
    for line in lines:
        for match in re.finditer(r"\bocirel ((?:[a-z]+ ?){1,2})([^\n|>&;#)]*)", line):
            words = match.group(1).split()
            options = re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", match.group(2))
            found.append((" ".join(words), options))
    return found


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_every_yaml_file_parses(path: Path) -> None:
    assert load(path)


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: p.name)
def test_only_existing_commands_and_options_are_used(path: Path) -> None:
    for words, options in invocations(code_lines(path)):
        parts = words.split()
        cmd = command(parts) or command(parts[:1])
        if cmd is None:  # prose ("the ocirel image"), not a command line
            continue
        known = {name for param in cmd.params for name in getattr(param, "opts", [])}
        known |= {"--help"}
        for option in options:
            assert option in known, f"{path.name}: 'ocirel {words}' has no option {option}"


def test_the_kubernetes_job_runs_rootless() -> None:
    job = load(CONTRIB / "k8s-job.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert all("hostPath" not in volume for volume in pod["volumes"])
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container.get("securityContext", {})
        assert context.get("privileged") is not True, container["name"]
        # a rootless build's nested user namespace needs SYS_ADMIN (scripts/dogfood), no more
        assert set(context.get("capabilities", {}).get("add", [])) <= {"SYS_ADMIN"}
        assert container["image"]
    publish = pod["containers"][0]
    assert publish["args"][0] == "publish"
    known = {name for param in command(["publish"]).params for name in param.opts}
    assert {arg for arg in publish["args"] if arg.startswith("--")} <= known
    assert {"name": "BUILDAH_ISOLATION", "value": "chroot"} in publish["env"]


def test_the_tekton_task_declares_what_it_references() -> None:
    task = load(CONTRIB / "tekton-task.yaml")
    assert (task["apiVersion"], task["kind"]) == ("tekton.dev/v1", "Task")
    spec = task["spec"]
    text = (CONTRIB / "tekton-task.yaml").read_text(encoding="utf-8")
    params = {p["name"] for p in spec["params"]}
    results = {r["name"] for r in spec["results"]}
    workspaces = {w["name"] for w in spec["workspaces"]}
    assert set(re.findall(r"\$\(params\.([\w-]+)\)", text)) <= params
    assert set(re.findall(r"\$\(results\.([\w-]+)\.path\)", text)) == results
    assert set(re.findall(r"\$\(workspaces\.([\w-]+)\.", text)) <= workspaces
    for step in spec["steps"]:
        assert step["securityContext"]["runAsNonRoot"] is True
        assert step["securityContext"].get("privileged") is not True
        assert set(step["securityContext"].get("capabilities", {}).get("add", [])) <= {"SYS_ADMIN"}


def test_the_ci_templates_have_their_platforms_shape() -> None:
    github = load(CONTRIB / "github-actions.yml")
    on = github.get("on", github.get(True))  # YAML 1.1 reads a bare 'on' as true
    assert on
    assert github["jobs"]
    for job in github["jobs"].values():
        assert job["runs-on"]
        assert all(("uses" in step) != ("run" in step) for step in job["steps"])
    gitlab = load(CONTRIB / "gitlab-ci.yml")
    jobs = {name: job for name, job in gitlab.items() if isinstance(job, dict) and "script" in job}
    assert jobs
    assert all(isinstance(job["script"], list) and job["script"] for job in jobs.values())


def test_the_pre_commit_hooks_are_well_formed() -> None:
    hooks = load(ROOT / ".pre-commit-hooks.yaml")
    assert {hook["id"] for hook in hooks} == {"ocirel-lint", "ocirel-pin-check"}
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["entry"].startswith("ocirel ")
