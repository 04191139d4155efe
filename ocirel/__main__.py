"""``python -m ocirel``."""

from ocirel.cli import main

main()
