"""``ocirel cache``: where ocirel's cache is, how big, and trimming it."""

from __future__ import annotations

from typing import Annotated

import typer

from ocirel.cli.output import EXIT_CODES, handle_errors, out, out_json

cache_app = typer.Typer(
    name="cache",
    help="ocirel's cache of what registries hold (layer blobs); never image content.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@cache_app.command("info", epilog=EXIT_CODES)
@handle_errors
def cache_info(*, as_json: JsonOpt = False) -> None:
    """Print the cache's directory, entries, size and cap.

    The directory is $OCIREL_CACHE_DIR, else $XDG_CACHE_HOME/ocirel, else
    ~/.cache/ocirel; the cap is $OCIREL_CACHE_MAX_SIZE (default 16M).
    """
    from ocirel.publish.layercache import LayerCache  # noqa: PLC0415

    cache = LayerCache.default()
    usage = cache.usage()
    data = {"path": str(cache.root), "entries": usage.entries, "bytes": usage.bytes,
            "max_bytes": cache.max_bytes}  # fmt: skip
    if as_json:
        out_json(data)
        return
    out(f"{cache.root}: {usage.entries} entries, {usage.bytes} bytes (cap {cache.max_bytes})")


@cache_app.command("prune", epilog=EXIT_CODES)
@handle_errors
def cache_prune(
    *,
    everything: Annotated[
        bool, typer.Option("--all", help="remove every entry, not only the least recently used")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Trim the cache to 80 % of its cap, least recently used entries first.

    Also removes the temporary files of writes that never finished (a publish that
    crashed), once they are an hour old. Safe while publishes run: a publish only
    loses hints (it checks every blob with the registry anyway). Exit code 0 when done.
    """
    from ocirel.publish.layercache import LayerCache  # noqa: PLC0415

    cache = LayerCache.default()
    removed = cache.prune(everything=everything)
    usage = cache.usage()
    if as_json:
        out_json({"path": str(cache.root), "removed": removed, "entries": usage.entries,
                  "bytes": usage.bytes})  # fmt: skip
        return
    out(f"removed {removed} entries; {usage.entries} left ({usage.bytes} bytes) in {cache.root}")
