"""The JSON Schemas of the file formats, and validation that reports every error at its line.

`schemas/` at the repository root is the source of truth; the wheel carries a copy
inside the package (see pyproject's force-include).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from storyboard.errors import Diagnostic
from storyboard.yamlsrc import YamlFile, crumb

FILE_SCHEMAS = ("storyboard", "character", "scene")
ALL_SCHEMAS = (*FILE_SCHEMAS, "plan", "manifest", "lockfile", "events")
_SECRET_WORDS = ("key", "token", "secret", "password")


def schema_dir() -> Path:
    """The folder holding the *.schema.json files (packaged copy, else the source tree)."""
    packaged = Path(__file__).parent / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / "schemas"


def available_schemas() -> list[str]:
    return sorted(p.name.removesuffix(".schema.json") for p in schema_dir().glob("*.schema.json"))


@cache
def load_schema(name: str) -> dict[str, Any]:
    path = schema_dir() / f"{name}.schema.json"
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


@cache
def validator(name: str) -> Any:
    """A compiled Draft 2020-12 validator; the other schemas resolve by file name."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = [
        (f"{other}.schema.json", Resource.from_contents(load_schema(other)))
        for other in available_schemas()
    ]
    registry: Registry[Any] = Registry().with_resources(resources)
    return Draft202012Validator(load_schema(name), registry=registry)


def validate_file(source: YamlFile, schema_name: str) -> list[Diagnostic]:
    """Every schema violation of one YAML file, each at its own file:line:col."""
    errors = sorted(validator(schema_name).iter_errors(source.data), key=_error_order)
    diagnostics: list[Diagnostic] = []
    for error in errors:
        diagnostics.extend(_diagnostics(source, error))
    return diagnostics


def _error_order(error: Any) -> tuple[str, ...]:
    return tuple(str(part) for part in error.absolute_path)


def _diagnostics(source: YamlFile, error: Any) -> Iterator[Diagnostic]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        yield from _unknown_keys(source, error, path)
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = min(error.context, key=lambda sub: len(list(sub.absolute_path)))
        yield from _diagnostics(source, best)
        return
    hint = error.schema.get("x-hint", "") if isinstance(error.schema, dict) else ""
    yield Diagnostic(_message(error), source.location(path), crumb(path), hint)


def _unknown_keys(source: YamlFile, error: Any, path: tuple[str | int, ...]) -> Iterator[Diagnostic]:
    known = sorted(error.schema.get("properties", {}))
    for key in sorted(set(error.instance) - set(known), key=str):
        key_path = (*path, key)
        if isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS):
            yield Diagnostic(
                f"`{key}` is not allowed here: secrets never go in project files",
                source.location(key_path, key=True),
                crumb(key_path),
                "set the key in the environment (ATLASCLOUD_API_KEY for atlascloud)",
            )
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        message = f"unknown key `{key}`"
        if close:
            message += f"; did you mean `{close[0]}`?"
        hint = "" if close else f"allowed keys here: {', '.join(known)}"
        yield Diagnostic(message, source.location(key_path, key=True), crumb(key_path), hint)


def _message(error: Any) -> str:
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {_article(expected)} {expected}, got {_describe(error.instance)}"
    if error.validator == "const":
        return f"must be {json.dumps(error.validator_value)}, got {_describe(error.instance)}"
    return str(error.message)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
