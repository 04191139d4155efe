"""Deploy-side commands: pin, lint, lock export, verify (registered on ``cli.app``)."""

from __future__ import annotations
