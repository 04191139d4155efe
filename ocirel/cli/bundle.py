"""``ocirel bundle export`` and ``ocirel bundle import``: air-gapped delivery.

``export`` copies every image of the lockfile (all platforms) from its registry into
one OCI image layout (a directory, or a ``.tar`` of it) with the lockfile inside;
``import`` pushes such a bundle into another registry, checks every digest after the
import and writes a lockfile whose repositories point there (:mod:`ocirel.bundle`).
Progress goes to stderr (the live display's stage line on a terminal, a line per blob
elsewhere, none with ``-q``); ``--json`` prints a summary object on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocirel.cli.options import CaFileOpt, InsecureOpt, JsonOpt, LockfileFileOpt, load_settings
from ocirel.cli.output import EXIT_CODES, err, handle_errors, out_json

if TYPE_CHECKING:
    from ocirel.bundle.transfer import Progress
    from ocirel.cli.progress import Display

bundle_app = typer.Typer(
    name="bundle",
    help="Carry released images into another (air-gapped) registry, digests unchanged.",
    no_args_is_help=True,
)

OutputOpt = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        metavar="DIR|FILE.tar",
        help="the OCI layout directory to write (an earlier, interrupted export there "
        "is finished), or a .tar file of it",
    ),
]
BundleArg = Annotated[
    Path,
    typer.Argument(
        metavar="BUNDLE",
        help="a directory or .tar from 'bundle export', or an OCI layout (PATH or oci:PATH) "
        "from 'publish --image oci:PATH'",
    ),
]
ToOpt = Annotated[
    str,
    typer.Option(
        "--to",
        metavar="REGISTRY[/PREFIX]",
        help="the registry (and path prefix) to push into; repositories keep their path",
    ),
]
WithBasesOpt = Annotated[
    bool,
    typer.Option(
        "--with-bases",
        help="also carry the base images: those the build records name, else those "
        "of the --file Containerfile(s), resolved to digests",
    ),
]
FileOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--file",
        "-f",
        dir_okay=False,
        help="with --with-bases: a Containerfile whose FROM images to carry for the "
        "images without a build record (repeatable)",
    ),
]
ImportLockOpt = Annotated[
    Path | None,
    typer.Option(
        "--lockfile",
        dir_okay=False,
        help="the lockfile to write for the target registry (default ./ocirel.lock.json; "
        "its other entries are kept)",
    ),
]


@bundle_app.command("export", epilog=EXIT_CODES)
@handle_errors
def export(
    output: OutputOpt,
    lockfile_path: LockfileFileOpt = None,
    with_bases: WithBasesOpt = False,
    files: FileOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy every image of the lockfile, all platforms, into one OCI layout.

    Each image is fetched by its locked digest: the index and every platform's
    manifest, config and layers. Blobs are verified against their digest as they are
    written. The layout's index.json names each image
    (org.opencontainers.image.ref.name = repository:tag) and the lockfile is copied
    into it as ocirel.lock.json. With --with-bases the base images come too, each
    by digest, marked org.ocirel.bundle.role=base in index.json (not in the lockfile).
    """
    from ocirel import lockfile  # noqa: PLC0415
    from ocirel.bundle.export import export_bundle  # noqa: PLC0415
    from ocirel.bundle.transfer import human  # noqa: PLC0415
    from ocirel.cli.progress import stages  # noqa: PLC0415
    from ocirel.cli.wiring import registry_for_lock  # noqa: PLC0415
    from ocirel.errors import ConfigError  # noqa: PLC0415

    config = load_settings(lockfile=lockfile_path, insecure=insecure, ca_file=ca_file)
    path = config.publish.lockfile
    if not path.exists():
        raise ConfigError(
            f"no lockfile at {path}", hint="publish first, or name it with --lockfile"
        )
    lock = lockfile.load(path)
    if files and not with_bases:
        raise ConfigError("--file names the Containerfiles of --with-bases", hint="add it")
    registry = registry_for_lock(config.registry, lock, insecure_flag=insecure)
    bases = []
    if with_bases:
        from ocirel.bundle.bases import discover_bases  # noqa: PLC0415

        bases = discover_bases(registry, lock, files or [])
        err(f"base image(s): {', '.join(b.name for b in bases) or 'none (scratch only)'}")
    with stages("export") as display:
        result = export_bundle(registry, lock, output, progress=transfer(display), bases=bases)
    carried = f" and {result.bases} base image(s)" if with_bases else ""
    err(
        f"exported {result.images} image(s){carried}, {result.blobs} blob(s) to "
        f"{result.output} ({result.downloaded} downloaded, {human(result.bytes)})"
    )
    if as_json:
        out_json(
            {"output": str(result.output), "images": result.images, "blobs": result.blobs,
             "downloaded": result.downloaded, "bytes": result.bytes,
             "bases": [b.name for b in bases]}
        )  # fmt: skip


@bundle_app.command(
    "import",
    epilog=EXIT_CODES + " 4 a tag in the target registry already points to another digest.",
)
@handle_errors
def import_(
    bundle: BundleArg,
    to: ToOpt,
    lockfile_path: ImportLockOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Push a bundle into REGISTRY[/PREFIX]; write a lockfile pointing there.

    Blobs the registry has already are skipped (checked first), so an interrupted
    import run again finishes. Nothing is tagged until every blob and manifest of
    every image is in place; a tag that exists with another digest stops the run, and
    a blob that does not match its digest is refused. After the import each tag must
    resolve to the bundle's digest and every manifest must be byte-identical.
    Base images (export --with-bases) go under the prefix too, tagged with their
    tag (base-sha256-HEX without one), not into the lockfile; the registries.conf
    mirror block and --build-arg lines to build against them are printed.
    """
    from ocirel import reference  # noqa: PLC0415
    from ocirel.bundle.importer import import_bundle, write_lock  # noqa: PLC0415
    from ocirel.bundle.layout import Bundle  # noqa: PLC0415
    from ocirel.bundle.mirror import mirror_hints, mirrored_reference  # noqa: PLC0415
    from ocirel.bundle.transfer import human  # noqa: PLC0415
    from ocirel.cli.progress import stages  # noqa: PLC0415
    from ocirel.cli.wiring import make_registry  # noqa: PLC0415
    from ocirel.deploy.regmap import normalize_prefix  # noqa: PLC0415

    config = load_settings(insecure=insecure, ca_file=ca_file)
    target = normalize_prefix(to, "--to")
    path = lockfile_path or Path("ocirel.lock.json")
    lockfile_check(path)
    # ``oci:PATH`` (as publish --image spells a layout) names the directory PATH
    source = Bundle(Path(str(bundle).removeprefix(reference.LAYOUT_PREFIX)))
    registry = make_registry(config.registry, reference.parse_repository(f"{target}/x"))
    with stages("import") as display:
        result = import_bundle(registry, source, target, progress=transfer(display))
        display.stage("lockfile")
        write_lock(path, result)
    err(
        f"imported {len(result.entries)} image(s) into {target}: {result.blobs} blob(s), "
        f"{result.uploaded} uploaded ({human(result.bytes)}); every tag and digest checked"
    )
    err(f"wrote {path}")
    for old, new in result.registry_map.items():
        err(f"pin manifests for the mirror with: ocirel pin --registry-map {old}={new} …")
    hints = mirror_hints(result.bases, target, insecure=insecure)
    for line in hints.lines():
        err(line)
    if as_json:
        out_json(
            {"lockfile": str(path), "blobs": result.blobs, "uploaded": result.uploaded,
             "images": {e.name: e.reference for e in result.entries},
             "registry_map": dict(result.registry_map),
             "bases": {old.name: mirrored_reference(new) for old, new in result.bases},
             **hints.to_json()}
        )  # fmt: skip


def transfer(display: Display) -> Progress:
    """The blob progress of an export or import: on the live display's stage line on a
    terminal, a line per blob elsewhere, nothing with ``-q``."""
    from ocirel.bundle.transfer import Progress  # noqa: PLC0415

    if display.mode == "plain":
        return Progress(tty=False)
    return Progress(live=display.detail)  # a display that is off ignores it


def lockfile_check(path: Path) -> None:
    """Fail before pushing anything when the lockfile to write cannot be written."""
    from ocirel import lockfile  # noqa: PLC0415

    lockfile.check_writable(path)
    lockfile.load(path)  # a corrupt lockfile is an error, never silently rewritten
