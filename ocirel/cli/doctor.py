"""``ocirel doctor``: render :mod:`ocirel.doctor`'s report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ocirel.cli.options import BackendOpt, CaFileOpt, InsecureOpt, JsonOpt, load_settings
from ocirel.cli.output import handle_errors, out, out_json

if TYPE_CHECKING:
    from ocirel.doctor import DoctorReport


@handle_errors
def doctor(
    image: Annotated[
        str | None,
        typer.Option(
            "--image", "-i", help="also check that this repository's registry answers /v2/"
        ),
    ] = None,
    backend: BackendOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check builders, rootless setup, storage, credentials and the registry; exit 1 when
    publishing could not work."""
    from ocirel import doctor as checks  # noqa: PLC0415
    from ocirel import reference  # noqa: PLC0415
    from ocirel.cli.wiring import pinger  # noqa: PLC0415

    config = load_settings(backend=backend, insecure=insecure, ca_file=ca_file)
    # an OCI layout (oci:PATH) has no registry to ask: only the builders are checked
    layout = image is not None and reference.is_layout(image)
    repo = reference.parse_repository(image) if image and not layout else None
    ping = pinger(config.registry, repo) if repo is not None else None
    build = config.build
    report = checks.diagnose(
        requested=build.backend, storage_setting=build.storage_driver,
        isolation_setting=build.isolation, registry=repo.registry if repo else None, ping=ping,
        platforms=build.platform,
    )  # fmt: skip
    if as_json:
        out_json(report.to_json())
    else:
        render(report)
    if not report.ok:
        raise typer.Exit(1)


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return ", ".join(f"{start}+{count}" for start, count in ranges) or "none"


def render(report: DoctorReport) -> None:
    out("builders:")
    for b in report.backends:
        mark = "ok" if b.usable else ("--" if not b.installed else "!!")
        detail = f"{b.version or 'version unknown'} ({b.path})" if b.installed else "not installed"
        if b.storage_driver:
            detail += f"; its storage uses {b.storage_driver}"
        out(f"  {mark} {b.name:<8} {detail}")
        if b.installed and b.problem:
            out(f"       problem: {b.problem}")
        if b.fix:
            out(f"       fix: {b.fix}")
        for note in b.notes:
            out(f"       note: {note}")
    out(f"backend:     {report.selected_reason}")
    host = report.host
    out(f"user:        {host.user} (uid {host.uid}), rootless: {'yes' if host.rootless else 'no'}"
        f", in a container: {'yes' if host.in_container else 'no'}")  # fmt: skip
    out(f"subuid:      {_ranges(host.subuid)}; subgid: {_ranges(host.subgid)}")
    userns = "unknown" if host.max_user_namespaces is None else str(host.max_user_namespaces)
    out(f"user ns:     max_user_namespaces {userns}; unshare --user: {host.unshare}"
        f"; newuidmap: {host.newuidmap or 'missing'}")  # fmt: skip
    storage = report.storage
    driver = storage.driver or "the builder's configured driver"
    options = f" [{', '.join(storage.options)}]" if storage.options else ""
    out(f"storage:     {driver}{options} ({storage.reason})")
    out(f"isolation:   {report.isolation} ({report.isolation_reason})")
    out("auth files:  " + (", ".join(report.auth_files) or "none found"))
    for number, emulated in enumerate(report.emulation):
        label = "emulation:" if number == 0 else ""
        verdict = "native" if emulated.native else ("ok" if emulated.available else "unavailable")
        detail = "" if emulated.native else f" ({emulated.detail})"
        out(f"{label:<12} {emulated.platform}: {verdict}{detail}")
    if report.registry is not None:
        state = "ok" if report.registry.reachable and report.registry.auth_ok else "FAILED"
        out(f"registry:    {report.registry.registry}: {state}: {report.registry.detail}")
    if report.problems:
        out("problems:")
        for problem in report.problems:
            out(f"  {problem.severity}: {problem.message}")
            out(f"    fix: {problem.fix}")
    out("verdict:     " + ("ready to publish" if report.ok else "publishing cannot work here"))


__all__ = ["doctor", "render"]
