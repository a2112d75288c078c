"""The schemas with every `$ref` inlined, and the validity checks fastjsonschema makes of them.

Standard library only (fastjsonschema is imported when a check is generated): the wheel's
build hook (hatch_build.py) loads this file by its path to put a check of each schema in
the wheel, so that a fresh install validates without generating one (see schema.fast_check).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Loader = Callable[[str], dict[str, Any]]  # a schema by name

PACKAGED = "_checks"  # storyboard/_checks/<module>.py in a wheel: a check per schema
SUFFIX = ".schema.json"


def load(folder: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / f"{name}{SUFFIX}").read_text(encoding="utf-8"))
    return document


def names(folder: Path) -> list[str]:
    return sorted(path.name.removesuffix(SUFFIX) for path in folder.glob(f"*{SUFFIX}"))


def bundled(name: str, load_schema: Loader) -> dict[str, Any]:
    """Schema `name` with every `$ref` (to itself or a sibling file) replaced by its target."""
    root = load_schema(name)
    return {key: value for key, value in _inline(root, root, load_schema).items()
            if key not in ("$schema", "$id")}


def _inline(node: Any, document: dict[str, Any], load_document: Loader, depth: int = 0) -> Any:
    if depth > 50:
        raise RecursionError("recursive $ref in the schemas: a bundled schema cannot inline it")
    if isinstance(node, list):
        return [_inline(item, document, load_document, depth) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _inline(value, document, load_document, depth) for key, value in node.items()
              if key not in ("$ref", "$defs", "$id")}
    if "$ref" in node:
        file, _, pointer = str(node["$ref"]).partition("#")
        target_document = load_document(file.removesuffix(SUFFIX)) if file else document
        target: Any = target_document
        for part in filter(None, pointer.split("/")):
            target = target[part]
        result = {**_inline(target, target_document, load_document, depth + 1), **result}
    return result


def digest(schema: dict[str, Any]) -> str:
    """What a check is made from: a packaged check is used only for the schema it was made of."""
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()


def module_name(name: str) -> str:
    """`scene_manifest` for `scene-manifest`: the module of its check in the wheel."""
    return name.replace("-", "_")


def check_source(schema: dict[str, Any]) -> str:
    """Python source of a function `validate(data)` that raises unless `data` is valid (DIGEST
    names the schema it checks)."""
    import fastjsonschema

    code = fastjsonschema.compile_to_code(schema, use_default=False, use_formats=False)
    head = "# Generated from a storyboard schema by hatch_build.py: do not edit."
    return f"{head}\nDIGEST = {digest(schema)!r}\n{code}"
