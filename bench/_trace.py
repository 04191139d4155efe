"""Run ``ocirel ARGS`` in this process with a time line of what it did.

``python bench/_trace.py publish --image … CONTEXT`` (with ocirel importable) runs the
CLI once and prints, in ms from the start of this script (interpreter start-up not
included), every subprocess (``ocirel.runner.run``), every HTTP exchange (the
transport's session) and the publish's phases (build, config, decision, export,
upload, claim, lockfile, build record), each with its thread, so it shows what runs
one after the other and what overlaps. The benches call it for ``--breakdown``.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

START = time.perf_counter()
EVENTS: list[tuple[float, float, str, str, str]] = []

#: (module, attribute path, label) of the phases timed besides subprocesses and HTTP
PHASES = (
    ("ocirel.publish.job", "Job.build", "build (incl. stale-cache check)"),
    ("ocirel.publish.job", "Job.prepare", "prepare: client, git, tags, token, previous"),
    ("ocirel.publish.job", "Job.local_config", "local config"),
    ("ocirel.publish.job", "Job.decide", "decide"),
    ("ocirel.publish.layout", "LayoutPublisher._export", "export (reuse, layout, early uploads)"),
    ("ocirel.publish.layout", "LayoutPublisher._push", "push + claim + record"),
    ("ocirel.registry", "Registry.push_image", "push_image (blobs + manifest)"),
    ("ocirel.publish.claim", "TagClaim.claim", "claim (HEAD, PUT, settle, verify)"),
    ("ocirel.publish.job", "Job.record", "lockfile update"),
    ("ocirel.publish.job", "Job.clean_up", "clean-up wait"),
    ("ocirel.records.attach", "RecordAttacher.start", "build record: start"),
    ("ocirel.records.attach", "PendingRecord.finish", "build record: finish (wait)"),
    ("ocirel.cli.wiring", "publish", "wiring.publish (whole)"),
)


def _describe_argv(argv: Any, *_a: Any, **_k: Any) -> str:
    parts = [a for a in argv if not str(a).startswith(("/", "overlay."))]
    return " ".join(str(p) for p in parts)[:90]


def _describe_http(_session: Any, method: str, url: str, *_a: Any, **_k: Any) -> str:
    return f"{method} {url.split('/v2', 1)[-1][:80]}"


def timed(kind: str, describe: Callable[..., str], call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        begin = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            end = time.perf_counter() - START
            thread = threading.current_thread().name
            EVENTS.append((begin - START, end, thread, kind, describe(*args, **kwargs)))

    return wrapper


def install() -> None:
    from ocirel import runner  # noqa: PLC0415
    from ocirel.transport import session  # noqa: PLC0415

    runner.run = timed("exec", _describe_argv, runner.run)  # type: ignore[assignment]
    session.HttpSession.exchange = timed(  # type: ignore[method-assign]
        "http", _describe_http, session.HttpSession.exchange
    )
    for module_name, path, label in PHASES:
        module = importlib.import_module(module_name)
        owner: Any = module
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, name, timed("step", lambda *a, _l=label, **k: _l, getattr(owner, name)))


def main() -> None:
    install()
    ready = time.perf_counter() - START
    from ocirel.entry import main as ocirel_main  # noqa: PLC0415

    sys.argv = ["ocirel", *sys.argv[1:]]
    with contextlib.suppress(SystemExit):
        ocirel_main()
    end = time.perf_counter() - START
    print(f"tracer set-up (imports the publish modules early): {ready * 1000:.0f} ms")
    first = min((e[0] for e in EVENTS), default=end)
    print(f"until the first traced call: {first * 1000:.0f} ms")
    for begin, finish, thread, kind, what in sorted(EVENTS):
        print(f"{begin * 1000:7.0f} {finish * 1000:7.0f} {(finish - begin) * 1000:6.0f} ms "
              f"{thread[:14]:14} {kind:4} {what}")  # fmt: skip
    print(f"{end * 1000:7.0f} end of the run (interpreter start not included)")


if __name__ == "__main__":
    main()
