"""Token scopes for the distribution API (``repository:<name>:<actions>``)."""

from __future__ import annotations

from ocirel.reference import Reference


def pull(ref: Reference) -> str:
    return f"repository:{ref.repository}:pull"


def push(ref: Reference) -> str:
    return f"repository:{ref.repository}:pull,push"
