"""``python -m ocirel``."""

from ocirel.entry import run

run()
