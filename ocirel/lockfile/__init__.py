"""``ocirel.lock.json``: which digest each released image name points to.

:mod:`~ocirel.lockfile.document` is the versioned schema and its canonical text
(:class:`LockEntry`, :class:`Lockfile`, :func:`dumps`, :func:`loads`);
:mod:`~ocirel.lockfile.store` is the file: :func:`load`, and :func:`update` /
:func:`upsert`, which change it under an exclusive lock and replace it atomically.
Callers import from here.
"""

from ocirel.lockfile.document import (
    READABLE_SCHEMAS,
    SCHEMA,
    LockEntry,
    Lockfile,
    dumps,
    loads,
    validate_name,
)
from ocirel.lockfile.store import check_writable, load, update, upsert, write_atomic

__all__ = [
    "READABLE_SCHEMAS",
    "SCHEMA",
    "LockEntry",
    "Lockfile",
    "check_writable",
    "dumps",
    "load",
    "loads",
    "update",
    "upsert",
    "validate_name",
    "write_atomic",
]
