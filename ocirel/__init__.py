"""ocirel: release container images safely.

Build rootless, compute the next unique version tag from the registry, push, verify
the tag resolves to the pushed digest, and record it in a digest lockfile.
"""

__version__ = "0.1.0"
