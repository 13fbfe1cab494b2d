"""Process-wide logging set-up, shared by the CLI and by server worker processes (which start fresh)."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``; the access log (``dockyard.access``) writes one JSON object per line."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr, force=True
    )
