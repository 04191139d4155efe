"""``ocirel tags``, ``next`` and ``digest``: questions answered by the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ocirel.cli.options import (
    BumpOpt,
    CaFileOpt,
    InsecureOpt,
    JsonOpt,
    LockfileOpt,
    PrefixOpt,
    RepositoryArg,
    SchemeOpt,
    load_settings,
)
from ocirel.cli.output import err, handle_errors, out, out_json

if TYPE_CHECKING:
    from ocirel.reference import LayoutTarget


@handle_errors
def tags(
    repository: RepositoryArg,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the tags of REPOSITORY (every page), or of an OCI layout (oci:PATH)."""
    from ocirel import reference  # noqa: PLC0415

    config = load_settings(insecure=insecure, ca_file=ca_file)
    if reference.is_layout(repository):
        layout = reference.parse_layout(repository)
        name, found = layout.name, sorted(_layout_tags(layout))
    else:
        from ocirel.cli.wiring import make_registry  # noqa: PLC0415

        repo = reference.parse(repository).repo_only()
        name, found = repo.name, sorted(make_registry(config.registry, repo).list_tags(repo))
    if as_json:
        out_json({"repository": name, "tags": found})
    else:
        for item in found:
            out(item)


@handle_errors
def next_version(
    repository: RepositoryArg,
    scheme: SchemeOpt = None,
    prefix: PrefixOpt = None,
    bump: BumpOpt = None,
    lockfile_path: LockfileOpt = None,
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the tag the next publish of REPOSITORY (or OCI layout oci:PATH) would get.

    The lockfile, when present, is a floor: a version it records or recorded for
    REPOSITORY is never the answer, nor anything below the highest of them.
    """
    from ocirel import lockfile, reference  # noqa: PLC0415
    from ocirel.cli.wiring import make_registry  # noqa: PLC0415
    from ocirel.publish.versions import lost_versions, lost_warning, next_tag  # noqa: PLC0415

    config = load_settings(
        scheme=scheme, prefix=prefix, bump=bump, lockfile=lockfile_path, insecure=insecure,
        ca_file=ca_file,
    )  # fmt: skip
    repo = reference.parse_destination(repository)
    version_scheme = config.publish.version_scheme()
    known = lockfile.load(config.publish.lockfile).known_tags(repo.name)
    if isinstance(repo, reference.LayoutTarget):  # an OCI layout: its ref.name tags
        existing = _layout_tags(repo)
        candidate = version_scheme.next_tag({*existing, *known})
    else:
        candidate, existing = next_tag(
            make_registry(config.registry, repo), repo, version_scheme, known
        )
    lost = lost_versions(known, existing)
    if lost:
        err(f"warning: {lost_warning(repo.name, lost)}")
    if as_json:
        in_scheme = [t for t in existing if version_scheme.parse(t) is not None]
        out_json({
            "repository": repo.name, "next": candidate, "scheme": config.publish.scheme,
            "tags": len(existing), "versions": len(in_scheme), "lost": lost,
        })  # fmt: skip
    else:
        out(candidate)


def _layout_tags(layout: LayoutTarget) -> list[str]:
    from pathlib import Path  # noqa: PLC0415

    from ocirel import ocilayout  # noqa: PLC0415

    return ocilayout.list_tags(Path(layout.path))


@handle_errors
def digest(
    ref: Annotated[str, typer.Argument(help="image reference with a tag or digest")],
    insecure: InsecureOpt = False,
    ca_file: CaFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the content digest REF resolves to (HEAD, falling back to GET and hashing)."""
    from ocirel import reference  # noqa: PLC0415
    from ocirel.cli.wiring import make_registry  # noqa: PLC0415
    from ocirel.errors import InvalidReferenceError  # noqa: PLC0415

    config = load_settings(insecure=insecure, ca_file=ca_file)
    parsed = reference.parse(ref)
    if not parsed.tag and not parsed.digest:
        raise InvalidReferenceError(
            f"{ref!r} has no tag or digest", hint="ocirel never assumes ':latest'; name the tag"
        )
    info = make_registry(config.registry, parsed).resolve(parsed)
    if as_json:
        out_json({
            "reference": str(parsed), "digest": info.digest, "media_type": info.media_type,
            "pinned": f"{parsed.repo_only()}{':' + parsed.tag if parsed.tag else ''}@{info.digest}",
        })  # fmt: skip
    else:
        out(info.digest)
