"""The user's cache folder for compiled artefacts (schema checks, template bytecode).

Only ever a speed-up: everything in it can be rebuilt, and a folder that cannot be
written just means compiling again next time.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """$STORYBOARD_CACHE_DIR, else $XDG_CACHE_HOME/storyboard, else ~/.cache/storyboard."""
    base = os.environ.get("STORYBOARD_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "storyboard")
    return Path(base, *parts)
