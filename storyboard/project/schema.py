"""The JSON Schemas of the file formats, and validation that reports every error at its line.

`schemas/` at the repository root is the source of truth; the wheel carries a copy
inside the package (see pyproject's force-include).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import importlib
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from storyboard.errors import Diagnostic, Location, Origin
from storyboard.fsutil import atomic_write
from storyboard.project import bundle
from storyboard.project.yamlsrc import YamlFile, crumb
from storyboard.usercache import cache_dir

FILE_SCHEMAS = ("storyboard", "character", "scene")
_SECRET_WORDS = ("key", "token", "secret", "password")


def schema_dir() -> Path:
    """The folder holding the *.schema.json files (packaged copy, else the source tree)."""
    package = Path(__file__).parent.parent
    packaged = package / "schemas"
    if packaged.is_dir():
        return packaged
    return package.parent / "schemas"


def available_schemas() -> list[str]:
    return bundle.names(schema_dir())


@cache
def load_schema(name: str) -> dict[str, Any]:
    return bundle.load(schema_dir(), name)


@cache
def validator(name: str) -> Any:
    """A compiled Draft 2020-12 validator. Each schema names itself with its `$id`, and refers to
    its siblings relative to it (`scene.schema.json#/$defs/id`), so they resolve by their ids."""
    from jsonschema import Draft202012Validator
    from referencing import Registry

    registry: Registry[Any] = Registry().with_contents(
        (load_schema(other)["$id"], load_schema(other)) for other in available_schemas())
    return Draft202012Validator(load_schema(name), registry=registry)


@cache
def bundled_schema(name: str) -> dict[str, Any]:
    """The schema with every `$ref` (to itself or a sibling file) replaced by its target."""
    return bundle.bundled(name, load_schema)


@cache
def fast_check(name: str) -> Any:
    """A validity check compiled to Python by fastjsonschema: ~20x faster than jsonschema.

    It only answers valid or not; jsonschema (Draft 2020-12) explains what is wrong.
    Our schemas use no keyword whose meaning differs between draft 7 and 2020-12, and
    tests hold both validators to the same answers. Generating and compiling a check
    costs ~70 ms, so a wheel carries one per schema (made when it is built, by
    hatch_build.py, and compiled when installed), used when it was made of this very
    schema. Otherwise (a source checkout, an edited schema) the compiled code is kept in
    the user's cache folder (like .pyc files), keyed by the schema, fastjsonschema's
    version and Python's.
    """
    schema = bundled_schema(name)
    digest = bundle.digest(schema)
    packaged = _packaged_check(name, digest)
    return packaged if packaged is not None else _cached_check(name, schema, digest)


def _packaged_check(name: str, digest: str) -> Any:
    """The wheel's check of schema `name` if it was made of the schema digested as `digest`."""
    try:
        module = importlib.import_module(f"storyboard.{bundle.PACKAGED}.{bundle.module_name(name)}")
    except ImportError:
        return None
    return module.validate if getattr(module, "DIGEST", None) == digest else None


def _cached_check(name: str, schema: dict[str, Any], digest: str) -> Any:
    """The check compiled once and kept in the user's cache folder (`digest`: the schema's)."""
    import marshal
    import sys

    import fastjsonschema

    key = hashlib.sha256(json.dumps([digest, fastjsonschema.VERSION, sys.version]).encode())
    cached = cache_dir() / f"check-{name}-{key.hexdigest()[:24]}.marshal"
    try:
        code = marshal.loads(cached.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        code = compile(bundle.check_source(schema), f"<schema check {name}>", "exec")
        with contextlib.suppress(OSError):
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cached, marshal.dumps(code), durable=False)
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace["validate"]


def document_schema(data: Any) -> str:
    """The schema of an included file: `character` for one that only defines characters."""
    if isinstance(data, dict) and "characters" in data and "scenes" not in data:
        return "character"
    return "scene"


@cache
def schema_key(name: str) -> str:
    """`scene-1a2b…`: the schema as it is now, by which data found valid is remembered."""
    return f"{name}-{bundle.digest(bundled_schema(name))[:16]}"


def is_valid(name: str, data: Any) -> bool:
    from fastjsonschema import JsonSchemaValueException

    try:
        fast_check(name)(data)
    except JsonSchemaValueException:
        return False
    return True


def schema_errors(name: str, data: Any) -> list[Any]:
    """jsonschema's errors for `data`, in document order; none (quickly) when it is valid."""
    if is_valid(name, data):
        return []
    return sorted(validator(name).iter_errors(data), key=_error_order)


def validate_file(source: YamlFile, schema_name: str) -> list[Diagnostic]:
    """Every schema violation of one YAML file, each at its own file:line:col."""
    return _all_diagnostics(schema_errors(schema_name, source.data), source.root_origin())


def checked_data(source: YamlFile, schema_name: str) -> tuple[list[Diagnostic], Any]:
    """Every schema violation of one YAML file, and its data without the values at fault.

    So that loading goes on past a bad value and finds the problems of the later stages
    too: an unknown key is dropped, a value of the wrong type or form is dropped, an object
    missing a required key is dropped (a list keeps a None in its place, so positions, and
    the file:line:col found from them, stay right).
    """
    key = schema_key(schema_name)
    if source.known_valid(key):  # found valid by the parse helper, or before (the parse cache)
        return [], source.data
    errors = schema_errors(schema_name, source.data)
    if not errors:
        source.remember_valid(key)
        return [], source.data
    cleaned = copy.deepcopy(source.data)
    for error in errors:
        for path in _faulty_paths(error):
            cleaned = _without(cleaned, path)
    return _all_diagnostics(errors, source.root_origin()), cleaned


def _faulty_paths(error: Any) -> Iterator[tuple[str | int, ...]]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        yield from ((*path, key) for key in error.instance if key not in known)
    else:
        yield path  # `required`: the object missing the key


def _without(data: Any, path: tuple[str | int, ...]) -> Any:
    """`data` with the value at `path` removed (a list item becomes None); {} for the root."""
    if not path:
        return {} if isinstance(data, dict) else None
    parent = data
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return data  # already removed with an enclosing value
    last = path[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        parent[last] = None
    return data


def validate_value(value: Any, schema: Mapping[str, Any], origin: Origin | None) -> list[Diagnostic]:
    """Every violation of `schema` by `value`, located below `origin` (a provider's options)."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=_error_order)
    return _all_diagnostics(errors, origin)


def _all_diagnostics(errors: Iterable[Any], origin: Origin | None) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    for error in errors:
        diagnostics.extend(_diagnostics(origin, error))
    return diagnostics


def _error_order(error: Any) -> tuple[str, ...]:
    return tuple(str(part) for part in error.absolute_path)


def _diagnostics(origin: Origin | None, error: Any) -> Iterator[Diagnostic]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        yield from _unknown_keys(origin, error, path)
        return
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = min(error.context, key=lambda sub: len(list(sub.absolute_path)))
        yield from _diagnostics(origin, best)
        return
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = schema.get("x-hint") or schema.get("description", "")  # what the value is for
    yield Diagnostic(describe_error(error), _at(origin, path), _crumb(origin, path), hint)


def _unknown_keys(origin: Origin | None, error: Any, path: tuple[str | int, ...]) -> Iterator[Diagnostic]:
    known = sorted(error.schema.get("properties", {}))
    for key in sorted(set(error.instance) - set(known), key=str):
        key_path = (*path, key)
        where, breadcrumb = _at(origin, key_path, key=True), _crumb(origin, key_path)
        if isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS):
            yield Diagnostic(f"`{key}` is not allowed here: secrets never go in project files", where,
                             breadcrumb, "credentials come from the environment only (ATLASCLOUD_API_KEY for "
                             "atlascloud; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for an s3:// backend)")
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        message = f"unknown key `{key}`"
        if close:
            message += f"; did you mean `{close[0]}`?"
        hint = "" if close else error.schema.get("x-unknown-hint") or f"allowed keys here: {', '.join(known)}"
        yield Diagnostic(message, where, breadcrumb, hint)


def _at(origin: Origin | None, path: tuple[str | int, ...], *, key: bool = False) -> Location | None:
    return origin.at(*path, key=key) if origin is not None else None


def _crumb(origin: Origin | None, path: tuple[str | int, ...]) -> str:
    return origin.crumb(*path) if origin is not None else crumb(path)


def describe_error(error: Any) -> str:
    """jsonschema's error in the words a user reads, never the validator's own text."""
    kind, limit, value = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = next((name for name in limit if isinstance(value, dict) and name not in value), limit[0])
        return f"`{missing}` is required here"
    if kind == "type":
        expected = " or ".join(limit) if isinstance(limit, list) else limit
        return f"expected {_article(expected)} {expected}, got {_describe(value)}"
    if kind == "const":
        return f"must be {json.dumps(limit)}, got {_describe(value)}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {_number(limit)}, got {_number(value)}"
    if kind == "minProperties":
        return "must not be empty" if limit == 1 else f"needs at least {limit} entries"
    if kind in ("minItems", "minLength"):
        unit = "item" if kind == "minItems" else "character"
        return "must not be empty" if limit == 1 else f"needs at least {limit} {unit}s, got {len(value)}"
    if kind in ("maxItems", "maxLength"):
        unit = "items" if kind == "maxItems" else "characters"
        return f"may hold at most {limit} {unit}, got {len(value)}"
    if kind == "pattern":
        return f"`{value}` is not valid here"
    if kind == "enum":
        close = difflib.get_close_matches(str(value), [str(v) for v in limit], n=1)
        suggestion = f"; did you mean `{close[0]}`?" if close else ""
        return f"must be one of {', '.join(f'`{v}`' for v in limit)}, got {_describe(value)}{suggestion}"
    if kind == "uniqueItems":
        twice = next((item for position, item in enumerate(value) if item in value[:position]), None)
        return f"lists `{twice}` more than once; each item may appear once"
    if kind == "propertyNames":
        return "has a name that is not allowed here"
    return "is not valid here"


def _number(value: float) -> str:
    """1,000 for whole numbers, 0.5 for the rest."""
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


_BOUNDS = {"minimum": "at least", "exclusiveMinimum": "more than", "maximum": "at most",
           "exclusiveMaximum": "less than"}


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
