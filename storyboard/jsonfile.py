"""Reading the JSON files storyboard writes (lockfile, manifests, saved plans) as hostile input.

Whatever is wrong with one (not UTF-8, not JSON, a value a schema refuses) becomes the
caller's UserError subclass with the Location of the fault, never a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from storyboard.errors import Location, UserError


def read_json(path: Path, what: str, error: type[UserError], hint: str = "",
              raw: bytes | str | None = None) -> Any:
    """The parsed contents of `path` (or of `raw`, its bytes or text already read)."""
    data = path.read_bytes() if raw is None else raw
    try:
        return json.loads(data)
    except UnicodeDecodeError as problem:
        assert isinstance(data, bytes)  # text is decoded already
        line = data.count(b"\n", 0, problem.start) + 1
        raise error(f"not UTF-8 text: the {what} cannot be read", hint=hint,
                    location=Location(path, line, 1)) from None
    except json.JSONDecodeError as problem:
        raise error(f"corrupt {what}: {problem.msg}", hint=hint,
                    location=Location(path, problem.lineno, problem.colno)) from None
    except RecursionError:
        line, column = _too_deep(data)
        raise error(f"corrupt {what}: nested more than {MAX_DEPTH} levels deep", hint=hint,
                    location=Location(path, line, column)) from None


MAX_DEPTH = 500  # storyboard's own files nest a few levels; json gives up near the recursion limit
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep(data: bytes | str) -> tuple[int, int]:
    """Line and column of the first bracket past MAX_DEPTH in `data` (the error path only)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    depth = 0
    for token in _TOKENS.finditer(text):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(token.group(), 0)
        if depth > MAX_DEPTH:
            line = text.count("\n", 0, token.start()) + 1
            return line, token.start() - text.rfind("\n", 0, token.start())
    return 1, 1


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


def indented_json(value: Any, *, sort_keys: bool = False, depth: int = 0) -> str:
    """`json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys)`, the same text, twice
    as fast: Python's encoder runs in Python when it indents, and a 10,000-frame lockfile is 12 MB.
    Strings go through the C string encoder json itself uses; the rest is laid out here. `depth`:
    laid out as it would be that many levels deep in a document (its lines indented as there)."""
    out: list[str] = []
    _write(value, "\n" + "  " * depth, out, sort_keys)
    return "".join(out)


def _write(value: Any, newline: str, out: list[str], sort_keys: bool) -> None:
    """Append `value` encoded at the depth `newline` (a newline and its indentation) to `out`.

    Objects and arrays have a loop each on purpose: one loop over (label, item) pairs for both
    measured 1.18 × slower on a 10,000-frame lockfile."""
    kind = type(value)
    if (kind is dict or kind is list or kind is tuple) and not value:
        out.append("{}" if kind is dict else "[]")
    elif kind is dict:
        inner = newline + "  "
        separator = "{" + inner
        for key, item in sorted(value.items()) if sort_keys else value.items():
            out.append(separator)
            out.append(encode_basestring(key if type(key) is str else _json_key(key)))
            out.append(": ")
            if type(item) is str:
                out.append(encode_basestring(item))
            else:
                _write(item, inner, out, sort_keys)
            separator = "," + inner
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            if type(item) is str:
                out.append(encode_basestring(item))
            else:
                _write(item, inner, out, sort_keys)
            separator = "," + inner
        out.append(newline + "]")
    elif kind is str:
        out.append(encode_basestring(value))
    elif kind is int:
        out.append(int.__repr__(value))
    else:  # floats, booleans, None, subclasses: json's own rules
        out.append(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys).replace(
            "\n", newline))


def _json_key(key: Any) -> str:
    """The string json makes of a key that is not one (`1` -> "1", `True` -> "true")."""
    return str(next(iter(json.loads(json.dumps({key: None})))))
