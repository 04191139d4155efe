"""``python -m ocirel``."""

from ocirel.entry import main

main()
