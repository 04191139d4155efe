"""``ocirel doctor`` (registered on ``cli.app``)."""

from __future__ import annotations
