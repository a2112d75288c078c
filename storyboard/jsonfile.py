"""Reading the JSON files storyboard writes (lockfile, manifests, saved plans) as hostile input.

Whatever is wrong with one (not UTF-8, not JSON, a value a schema refuses) becomes the
caller's UserError subclass with the Location of the fault, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storyboard.errors import Location, UserError


def read_json(path: Path, what: str, error: type[UserError], hint: str = "",
              raw: bytes | None = None) -> Any:
    """The parsed contents of `path` (or of `raw`, its bytes already read)."""
    data = path.read_bytes() if raw is None else raw
    try:
        return json.loads(data)
    except UnicodeDecodeError as problem:
        line = data.count(b"\n", 0, problem.start) + 1
        raise error(f"not UTF-8 text: the {what} cannot be read", hint=hint,
                    location=Location(path, line, 1)) from None
    except json.JSONDecodeError as problem:
        raise error(f"corrupt {what}: {problem.msg}", hint=hint,
                    location=Location(path, problem.lineno, problem.colno)) from None


def key_location(path: Path, key_path: Sequence[str | int]) -> Location:
    """Where the deepest key of `key_path` is written (storyboard writes one key per line)."""
    line = 1
    try:
        text = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return Location(path)
    column = 1
    for part in key_path:
        if isinstance(part, str):
            needle = json.dumps(part) + ":"
            for number in range(line - 1, len(text)):
                if needle in text[number]:
                    line, column = number + 1, text[number].index(needle) + 1
                    break
    return Location(path, line, column)
