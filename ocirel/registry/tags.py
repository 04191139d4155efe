"""Tag listing: ``GET /v2/<name>/tags/list``.

Follows ``Link: <…>; rel="next"`` (relative or absolute), refusing a page on another
host, a loop, or more than ``MAX_PAGES`` pages; a registry that rejects ``n`` is asked
again with a smaller page size, then without ``n``. ``404 NAME_UNKNOWN`` on the first
page means "no tags yet"; any other failure (a 404 on a later page, a body without
``tags``) raises — a version is never computed from a partial list.
"""

from __future__ import annotations

from collections.abc import Iterator

from ocirel.errors import RegistryError, RegistryNotFoundError
from ocirel.reference import Reference
from ocirel.registry import scope
from ocirel.transport import (
    Reply,
    Transport,
    check_same_origin,
    join_url,
    parse_link_next,
    raise_for_status,
)

PAGE_SIZES = (1000, 100, None)
MAX_PAGES = 1000
MAX_TAGS = 1_000_000
NOT_FOUND_CODES = frozenset({"NAME_UNKNOWN", "NOT_FOUND"})

_PARTIAL_LIST_HINT = "a partial tag list could reuse a version; fix the registry's Link header"


class _PageSizeRejectedError(Exception):
    pass


def list_tags(transport: Transport, repo: Reference) -> list[str]:
    """Every tag of ``repo``, each once (a registry may repeat one), in the order
    listed (not meaningful); [] for an unknown repository."""
    for page_size in PAGE_SIZES:
        try:
            return list(dict.fromkeys(_iter_tags(transport, repo, page_size)))
        except _PageSizeRejectedError:
            continue
        except RegistryNotFoundError as exc:
            if NOT_FOUND_CODES.intersection(exc.codes):
                return []
            raise RegistryNotFoundError(
                f"{exc} — the registry did not say the repository is unknown "
                "(no NAME_UNKNOWN), so ocirel will not assume it is empty",
                status=exc.status,
                method=exc.method,
                url=exc.url,
                codes=exc.codes,
            ) from None
    raise RegistryError(f"{repo.registry} rejected every page size for the tag list")


def _iter_tags(transport: Transport, repo: Reference, page_size: int | None) -> Iterator[str]:
    path = f"/v2/{repo.repository}/tags/list"
    params = {"n": str(page_size)} if page_size else None
    base = transport.base_url(repo.registry)
    url: str | None = None
    seen: set[str] = set()
    count = 0
    for _page in range(MAX_PAGES):
        reply = transport.request(
            "GET",
            repo.registry,
            path,
            scope=scope.pull(repo),
            url=url,
            params=params if url is None else None,
        )
        if reply.status == 400 and page_size and url is None:
            raise _PageSizeRejectedError
        if reply.status == 404 and url is not None:  # not "no tags": earlier pages had some
            raise RegistryError(
                f"listing tags of {repo.name}: a later page answered 404; refusing a partial list"
            )
        raise_for_status(reply, what=f"listing tags of {repo.name}")
        for tag in _tags_from(reply, repo):
            count += 1
            yield tag
        if count > MAX_TAGS:
            raise RegistryError(f"{repo.name} lists more than {MAX_TAGS} tags; refusing")
        next_link = parse_link_next(reply.header("Link"))
        if next_link is None:  # "<>" is a Link to this very page: a loop, not the end
            return
        url = _next_page(reply, next_link, repo, base, seen)
    raise RegistryError(
        f"{repo.name}: the tag list did not end after {MAX_PAGES} pages; refusing a partial list"
    )


def _next_page(reply: Reply, link: str, repo: Reference, base: str, seen: set[str]) -> str:
    """The absolute URL of the next page: same origin, never one already read."""
    target = join_url(reply.url, link, registry=repo.registry, what="a tag-list Link")
    check_same_origin(repo.registry, base, target, what="a tag-list Link", hint=_PARTIAL_LIST_HINT)
    if target in seen:
        raise RegistryError(
            f"{repo.registry} sent a tag-list Link that loops back to a page already "
            "read; refusing a partial list"
        )
    seen.add(target)
    return target


def _tags_from(reply: Reply, repo: Reference) -> list[str]:
    data = reply.json()
    if not isinstance(data, dict):
        raise RegistryError(f"the tag list of {repo.name} is not a JSON object")
    if "tags" not in data:  # a body without "tags" is not a tag list (a proxy's "{}")
        raise RegistryError(f"the tag list of {repo.name} is malformed (no 'tags' member)")
    tags = data["tags"]
    if tags is None:  # distribution answers null for a repository without tags
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RegistryError(
            f"the tag list of {repo.name} is malformed ('tags' is not a list of strings)"
        )
    return tags
