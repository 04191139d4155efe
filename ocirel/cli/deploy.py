"""Deploy-side commands: pin, lint, lock export (``verify`` is in :mod:`~ocirel.cli.verify`).

Like every command, these turn options into settings, make one use-case call
(:mod:`ocirel.deploy.pin`, :mod:`ocirel.deploy.lint`, :mod:`ocirel.deploy.export`,
:mod:`ocirel.deploy.verify`) and render the result. Output convention: stdout carries what
a script consumes — the ``--json`` object, a ``--diff`` patch, lint findings, an
export, the verify table — and stderr carries progress and summaries.

Exit codes beyond the shared ones (0 ok, 1 error, 2 bad configuration, 3 internal
error, 130 interrupted):

* ``pin --check`` — 1 when pinning would change a file;
* ``lint`` — 1 when any finding is an error (warnings alone exit 0).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ocirel.cli.deploy_options import (
    ChartOpt,
    CheckOpt,
    DiffOpt,
    DigestOnlyOpt,
    ExportFormatOpt,
    FloatingOpt,
    HelmDigestFieldOpt,
    MaxFileSizeOpt,
    PathsArg,
    RegistryMapOpt,
    ResolveOpt,
    file_options,
    helm_options,
    registry_map,
)
from ocirel.cli.options import (
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    LockfileFileOpt,
    load_lock,
    load_settings,
)
from ocirel.cli.output import handle_errors, note, out, out_json, write

if TYPE_CHECKING:
    from ocirel.deploy.pin import PinPlan
    from ocirel.deploy.sites import Skipped
    from ocirel.deploy.splice import Change

#: ``pin --check``: a file would change; ``lint``: an error finding.
EXIT_FINDINGS = 1


class PinMode(StrEnum):
    """What ``pin`` does with the changes: write them, or only report them."""

    WRITE = "write"
    CHECK = "check"  # list them; exit 1 if there are any
    DIFF = "diff"  # print them as a unified diff


lock_app = typer.Typer(
    name="lock", help="Work with the lockfile (ocirel.lock.json).", no_args_is_help=True
)


# ----------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- pin


@handle_errors
def pin(
    *,
    paths: PathsArg,
    lockfile_path: LockfileFileOpt = None,
    resolve: ResolveOpt = False,
    digest_only: DigestOnlyOpt = False,
    check: CheckOpt = False,
    diff: DiffOpt = False,
    helm_digest_field: HelmDigestFieldOpt = None,
    chart: ChartOpt = None,
    as_json: JsonOpt = False,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    max_file_size: MaxFileSizeOpt = None,
    registry_maps: RegistryMapOpt = None,
) -> None:
    """Pin image references in manifests to digests from the lockfile (and the registry).

    Rewrites Kubernetes workloads (any pod template, List, multi-document files,
    custom resources), kustomization images: entries, Helm values image maps and
    compose services to repo:tag@sha256:…, changing nothing else in the files.
    References whose repository is in the lockfile get the locked tag and digest;
    with --resolve every other tag reference gets the digest its tag points to in
    the registry now (a reference that is already pinned is re-pinned if its tag
    moved). Pinning twice changes nothing. A Helm image map gets its digest in a key
    the chart renders (--helm-digest-field); a key the chart's values.schema.json
    forbids is never added.

    --registry-map OLD=NEW pins lockfile images at a mirror (same digest): a
    reference to OLD/app or NEW/app becomes NEW/app:tag@sha256:… (for kustomize the
    mirror goes into newName; for a Helm map into registry and repository).

    All or nothing: every file is parsed and every digest resolved before any file
    is written; a YAML error, a reference that cannot be resolved or a malformed
    kustomize images entry names the file and line, and no file is written.

    Directories are walked for *.yaml, *.yml and Kustomization. Only regular files
    are read (links to them are followed): a FIFO, socket or device is reported and
    skipped. A directory or file that cannot be read, or a file larger than
    --max-file-size, is an error naming it.

    Exit codes: 0 done (or nothing to change); 1 --check found changes, or an error;
    2 bad options or configuration (e.g. no lockfile without --resolve).
    """
    from ocirel.cli.wiring import registry_for_lock  # noqa: PLC0415
    from ocirel.deploy import pin as pinning  # noqa: PLC0415
    from ocirel.errors import ConfigError  # noqa: PLC0415

    if as_json and diff:
        raise ConfigError("--json and --diff both print on stdout; choose one")
    config = load_settings(
        lockfile=lockfile_path, insecure=insecure, ca_file=ca_file, max_file_size=max_file_size
    )
    files = file_options(config.deploy.max_file_size)
    mode = PinMode.CHECK if check else PinMode.DIFF if diff else PinMode.WRITE
    helm = helm_options(config, helm_digest_field, chart)
    mirrors = registry_map(config, registry_maps)
    lock = load_lock(config.publish.lockfile, required=not resolve)
    if resolve:
        registry = registry_for_lock(config.registry, lock, insecure_flag=insecure)
        plan = pinning.plan_pins(
            paths, lock, digest_only=digest_only, helm=helm, registry_map=mirrors,
            lookup=lambda ref: registry.resolve(ref).digest,
            contact=registry.transport.base_url, files=files,
        )  # fmt: skip
    else:
        plan = pinning.plan_pins(
            paths, lock, digest_only=digest_only, helm=helm, files=files, registry_map=mirrors
        )
    written = pinning.apply_plan(plan) if mode is PinMode.WRITE else []
    _render_pin(plan, written, mode=mode, as_json=as_json, diff=diff)
    if check and plan.changed:
        raise typer.Exit(EXIT_FINDINGS)


def _render_pin(
    plan: PinPlan, written: list[Path], *, mode: PinMode, as_json: bool, diff: bool
) -> None:
    from ocirel.deploy.splice import unified_diff  # noqa: PLC0415

    if as_json:
        out_json(_pin_json(plan, written, mode))
    elif diff:
        write("".join(unified_diff(result) for result in plan.changed))
    if not as_json:
        for change in plan.changes:
            note(_change_line(change))
    if plan.resolved:
        note(f"resolved {len(plan.resolved)} distinct tag reference(s) through the registry")
    note(_pin_summary(plan, written, mode))


def _change_line(change: Change) -> str:
    return f"{change.path}:{change.line}: {change.old}: {change.reason}"


def _pin_summary(plan: PinPlan, written: list[Path], mode: PinMode) -> str:
    scanned = len(plan.results)
    changes, files = len(plan.changes), len(plan.changed)
    if not changes:
        return f"nothing to pin: {scanned} file(s) scanned, no reference would change"
    if mode is PinMode.WRITE:
        return f"pinned {changes} reference(s) in {len(written)} file(s) ({scanned} scanned)"
    return f"{changes} reference(s) in {files} file(s) would be pinned ({scanned} scanned); " + (
        "nothing was written"
    )


def _pin_json(plan: PinPlan, written: list[Path], mode: PinMode) -> dict[str, Any]:
    return {
        "mode": str(mode),
        "files": len(plan.results),
        "changed_files": [result.path for result in plan.changed],
        "written": [str(path) for path in written],
        "changes": [_change_json(c) for c in plan.changes],
        "resolved": {str(ref): digest for ref, digest in sorted(plan.resolved.items(), key=str)},
        "skipped": [_skipped_json(s) for s in plan.skipped],
    }


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "path": change.path, "line": change.line, "column": change.column,
        "old": change.old, "new": change.new, "reason": change.reason,
    }  # fmt: skip


def _skipped_json(skipped: Skipped) -> dict[str, Any]:
    return {
        "path": skipped.path, "line": skipped.line, "column": skipped.column,
        "text": skipped.text, "reason": skipped.reason, "templated": skipped.templated,
        "malformed": skipped.malformed,
    }  # fmt: skip


# -------------------------------------------------------------------------- lint


@handle_errors
def lint(
    *,
    paths: PathsArg,
    floating: FloatingOpt = None,
    chart: ChartOpt = None,
    as_json: JsonOpt = False,
    max_file_size: MaxFileSizeOpt = None,
) -> None:
    """Flag image references that do not name exactly one image.

    Findings, one per line on stdout: file:line:col: severity: message [rule].
    Rules: unpinned (error) - no @sha256 digest; floating-tag (error, a warning when
    a digest pins the reference anyway) - latest, no tag, head, canary, stable,
    edge, main, master, dev, nightly and configured tags; pull-policy-always
    (warning) - imagePullPolicy: Always used as a crutch; invalid-reference
    (warning; an error for a malformed kustomize images entry) - an image value that
    is not a reference (templated values are skipped). A Helm image map is pinned
    only when its digest is in a key the chart renders (with the chart at hand,
    --chart or Chart.yaml next to the values file: a key its templates read).

    Files are chosen as for pin: regular files only; an unreadable directory or file,
    or one larger than --max-file-size, is an error.

    Exit codes: 0 no error-severity finding (warnings alone pass); 1 at least one
    error finding, or a file that is not valid YAML or cannot be read; 2 bad options.
    """
    from ocirel.deploy import lint as linting  # noqa: PLC0415
    from ocirel.deploy.files import collect_paths  # noqa: PLC0415
    from ocirel.deploy.scan import scan_files  # noqa: PLC0415

    config = load_settings(max_file_size=max_file_size)
    tags = config.publish.floating() | frozenset(floating or ())
    files = file_options(config.deploy.max_file_size)
    manifests = scan_files(collect_paths(paths, files), helm=helm_options(config, None, chart))
    findings = linting.lint_files(manifests, floating=tags)
    errors = sum(1 for f in findings if f.severity is linting.Severity.ERROR)
    warnings = len(findings) - errors
    if as_json:
        out_json({
            "findings": [f.to_json() for f in findings], "errors": errors,
            "warnings": warnings, "files": len(manifests),
        })  # fmt: skip
    else:
        for finding in findings:
            out(str(finding))
    note(f"{errors} error(s), {warnings} warning(s) in {len(manifests)} file(s)")
    if linting.has_errors(findings):
        raise typer.Exit(EXIT_FINDINGS)


# ------------------------------------------------------------------- lock export


@lock_app.command("export")
@handle_errors
def lock_export(
    *,
    fmt: ExportFormatOpt = "json",
    lockfile_path: LockfileFileOpt = None,
) -> None:
    """Print the lockfile in a format deployment tools read.

    Output is deterministic: entries sorted by name, LF line endings, one trailing
    newline. Exit codes: 0 printed; 2 unknown format or no lockfile; 1 a lockfile
    that cannot be read.
    """
    from ocirel.deploy import export as exports  # noqa: PLC0415
    from ocirel.errors import ConfigError  # noqa: PLC0415

    config = load_settings(lockfile=lockfile_path)
    if fmt not in exports.FORMATS:  # before reading the lockfile: a typo is the first thing to fix
        choices = ", ".join(exports.FORMATS)
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {choices}")
    write(exports.export(load_lock(config.publish.lockfile, required=True), fmt))
