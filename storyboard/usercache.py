"""The user's cache folder for compiled artefacts (schema checks, template bytecode).

Only ever a speed-up: everything in it can be rebuilt, and a folder that cannot be
written just means compiling again next time.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


def cache_dir(*parts: str) -> Path:
    """$STORYBOARD_CACHE_DIR, else $XDG_CACHE_HOME/storyboard, else ~/.cache/storyboard."""
    base = os.environ.get("STORYBOARD_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "storyboard")
    return Path(base, *parts)


def jinja_bytecode_cache(name: str) -> jinja2.BytecodeCache | None:
    """Compiled templates kept in the cache folder `name` (keyed by their source), if it can be
    made. Each environment gets a folder of its own: code compiled for one is never run by another.
    A folder that takes no files (full, read-only, not a folder) only means compiling again."""
    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    folder = cache_dir(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return QuietCache(str(folder))
