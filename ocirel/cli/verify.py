"""``ocirel verify``: does the registry still serve what the lockfile says (and do the
given manifests pin what it records)?

Exit codes beyond the shared ones: 1 when an entry is drifted or missing, else 5 when
an entry could not be checked (:data:`EXIT_UNCHECKED`). A manifest that pins one
platform of a multi-platform index is a warning, never a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocirel.cli.deploy_options import MaxFileSizeOpt, ProvenanceOpt, file_options
from ocirel.cli.options import (
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    LockfileFileOpt,
    load_lock,
    load_settings,
)
from ocirel.cli.output import err, handle_errors, note, out, out_json

if TYPE_CHECKING:
    from ocirel.deploy.verify import EntryCheck, PlatformPin
    from ocirel.lockfile import Lockfile
    from ocirel.settings import Settings

#: an entry drifted or is missing
EXIT_FINDINGS = 1
#: nothing definite is wrong, but some entry could not be checked
EXIT_UNCHECKED = 5

ManifestPathsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="[PATH...]",
        help="also read these manifests (files or directories, as for pin) and warn where "
        "one pins a single platform's manifest of an image the lockfile records as an index",
    ),
]


@handle_errors
def verify(
    paths: ManifestPathsArg = None,
    *,
    lockfile_path: LockfileFileOpt = None,
    as_json: JsonOpt = False,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    provenance: ProvenanceOpt = False,
    max_file_size: MaxFileSizeOpt = None,
) -> None:
    """Check that the registry still serves every image in the lockfile.

    For each entry, in parallel: HEAD by digest (does it still exist?) and HEAD by
    tag (does the tag still point to it?). Status per entry: ok; drifted (the tag
    points elsewhere or is gone: the detail shows the new digest, the locked one is
    in the reference); missing (the digest is gone; the detail says what became of
    the tag); unreachable (network, TLS, auth or 5xx: could not check).

    With PATH arguments, the manifests there are read too: a reference pinned to one
    platform's manifest where the lockfile records a multi-platform index is a
    warning (that workload runs on that platform's nodes only).

    Exit codes: 0 every entry ok; 1 at least one entry drifted or missing - this
    wins over unreachable entries, since something is definitely wrong and
    retrying will not fix it; 5 nothing drifted or missing, but at least one entry
    could not be checked (retry later, or fix access); 2 no lockfile or bad options.
    With --provenance, an entry without a build record naming its revision counts
    as drifted (1), one whose records could not be read as unreachable (5).
    """
    from ocirel.cli.wiring import registry_for_lock  # noqa: PLC0415
    from ocirel.deploy import verify as verifying  # noqa: PLC0415
    from ocirel.records.provenance import record_revisions  # noqa: PLC0415

    config = load_settings(
        lockfile=lockfile_path, insecure=insecure, ca_file=ca_file, max_file_size=max_file_size
    )
    lock = load_lock(config.publish.lockfile, required=True)
    pins = _platform_pins(config, lock, paths or [])
    checks: list[EntryCheck] = []
    if lock.entries:
        registry = registry_for_lock(config.registry, lock, insecure_flag=insecure)
        checks = verifying.verify_lock(
            lock, digest_exists=registry.exists,
            tag_digest=lambda ref: registry.resolve(ref).digest,
            contact=registry.transport.base_url,
            revisions=record_revisions(registry) if provenance else None,
        )  # fmt: skip
    else:
        err(f"warning: {config.publish.lockfile} has no entries; nothing to verify")
    _render(checks, pins, as_json)


def _platform_pins(config: Settings, lock: Lockfile, paths: Sequence[Path]) -> list[PlatformPin]:
    """The manifests' references pinned to one platform of a lockfile index."""
    if not paths:
        return []
    from ocirel.deploy.files import collect_paths  # noqa: PLC0415
    from ocirel.deploy.scan import scan_files  # noqa: PLC0415
    from ocirel.deploy.verify import platform_pins  # noqa: PLC0415

    files = file_options(config.deploy.max_file_size)
    return platform_pins(lock, scan_files(collect_paths(paths, files)))


def _render(checks: Sequence[EntryCheck], pins: Sequence[PlatformPin], as_json: bool) -> None:
    from ocirel.deploy import verify as verifying  # noqa: PLC0415

    counts = verifying.summarize(checks)
    code = verify_exit_code(checks)
    for pin in pins:
        err(f"warning: {pin}")
    if as_json:
        out_json({
            "entries": [check.to_json() for check in checks],
            "summary": {str(status): count for status, count in counts.items()},
            "platform_pins": [pin.to_json() for pin in pins],
            "exit_code": code,
        })  # fmt: skip
    else:
        for line in _table(checks):
            out(line)
    note(", ".join(f"{count} {status}" for status, count in counts.items()))
    if code:
        raise typer.Exit(code)


def verify_exit_code(checks: Sequence[EntryCheck]) -> int:
    """1 if anything drifted or is missing, else 5 if anything is unchecked, else 0."""
    from ocirel.deploy.verify import PROVENANCE_UNCHECKED, Status  # noqa: PLC0415

    statuses = {check.status for check in checks}
    provenance = [c.provenance for c in checks if c.provenance_failed]
    unchecked = [p for p in provenance if (p or "").startswith(PROVENANCE_UNCHECKED)]
    if statuses & {Status.DRIFTED, Status.MISSING} or len(unchecked) < len(provenance):
        return EXIT_FINDINGS
    if Status.UNREACHABLE in statuses or unchecked:
        return EXIT_UNCHECKED
    return 0


def _detail(check: EntryCheck) -> str:
    parts = [check.detail] if check.detail else []
    if check.provenance_failed:
        parts.append(f"provenance: {check.provenance}")
    return "; ".join(parts) or "-"


def _table(checks: Sequence[EntryCheck]) -> list[str]:
    rows = [("NAME", "REFERENCE", "STATUS", "DETAIL")]
    rows += [(c.entry.name, c.entry.reference, str(c.status), _detail(c)) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
