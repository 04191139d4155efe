"""Build records: what an image was built from, attached to it in the registry.

* ``record`` — the record document (media type :data:`RECORD_TYPE`), pure;
* ``orasclient`` — oras-py over ocirel's transport (the only module importing oras);
* ``referrers`` — push a record as an artifact with a ``subject``, list records
  (referrers API, else the ``sha256-<hex>`` referrers tag);
* ``attach`` — what ``publish`` calls once the tag is claimed and recorded;
* ``prefetch`` — what the record needs besides the image, fetched in the background
  (cheap to import: ``publish`` makes one before its build starts);
* ``show`` — what ``ocirel show`` reports about an image.
"""

from ocirel.records.record import RECORD_TYPE, BuildFacts, build_record

__all__ = ["RECORD_TYPE", "BuildFacts", "build_record"]
