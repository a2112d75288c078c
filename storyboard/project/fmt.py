"""`storyboard fmt`: the project's YAML in one canonical layout, comments kept.

Two-space indentation with sequences indented under their key, the keys storyboard knows
in a fixed order (ids first, then what a reader looks for, frames last), unknown keys
after them as written, no re-wrapping of long lines, one final newline. Values and their
quoting are not touched, and `format_text` refuses a result that storyboard's own reader
would load to other data, so a formatted project plans exactly as before. Done with
ruamel.yaml's round trip, which keeps comments, anchors and block scalars.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT_ORDER = ("$schema", "version", "project", "description", "provider", "defaults", "variables", "variants",
              "templates", "sequence_template", "include", "output", "budget", "backend", "fonts", "limits")
PROVIDER_ORDER = ("name", "model", "parallelism", "params", "options")
SCENE_ORDER = ("id", "title", "description", "sequential", "regenerate", "consistency", "template",
               "sequence_template", "size", "aspect", "seed", "vars", "variants", "frames")
FRAME_ORDER = ("id", "shot", "action", "dialogue", "characters", "duration", "template", "size", "aspect",
               "seed", "references", "notes", "vars", "variants")
CHARACTER_ORDER = ("id", "name", "description", "references", "vars")


@dataclass(frozen=True)
class Formatted:
    """One file: its bytes now and in the canonical layout."""

    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self, name: str) -> str:
        lines = difflib.unified_diff(self.before.splitlines(keepends=True),
                                     self.after.splitlines(keepends=True), f"{name} (before)",
                                     f"{name} (formatted)")
        return "".join(lines)


def format_files(paths: Iterable[Path]) -> list[Formatted]:
    """Each file in the canonical layout (nothing is written). Every file is read first with the
    project's own reader and its limits, so a file that is not UTF-8, does not parse, repeats a
    key or whose aliases explode is a ProjectError at its line, and nothing is formatted."""
    from storyboard.errors import Diagnostic, ProjectError
    from storyboard.project.yamlsrc import YamlFile

    sources: list[YamlFile] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            sources.append(YamlFile.read(path))
        except ProjectError as error:
            problems.extend(error.diagnostics)
    if problems:
        raise ProjectError(problems)
    return [Formatted(source.path, source.text, format_text(source.text)) for source in sources]


def format_text(text: str) -> str:
    """`text` (one YAML document of a storyboard project) in the canonical layout."""
    yaml = _yaml()
    document = yaml.load(text)
    if document is None:
        return text
    _order(document)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    formatted = buffer.getvalue().rstrip("\n") + "\n"
    if _data(formatted) != _data(text):
        raise ValueError("the canonical layout would change what the file means")
    return formatted


def _data(text: str) -> Any:
    """What storyboard's reader (PyYAML, YAML 1.1) makes of `text`."""
    from storyboard.project.yamlsrc import parse_text

    return parse_text(text)


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap a long prompt line
    yaml.preserve_quotes = True  # `"1:1"` unquoted is a number to a YAML 1.1 reader
    return yaml


def _order(document: Any) -> None:
    """Put the known keys of each part in their order, in place."""
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(document, CommentedMap):
        return
    if "project" in document or "version" in document:
        _reorder(document, ROOT_ORDER)
        if isinstance(document.get("provider"), CommentedMap):
            _reorder(document["provider"], PROVIDER_ORDER)
    for scene in _items(document.get("scenes")):
        _reorder(scene, SCENE_ORDER)
        for frame in _items(scene.get("frames")):
            _reorder(frame, FRAME_ORDER)
    for character in _items(document.get("characters")):
        _reorder(character, CHARACTER_ORDER)


def _items(value: Any) -> list[Any]:
    from ruamel.yaml.comments import CommentedMap

    return [item for item in value if isinstance(item, CommentedMap)] if isinstance(value, list) else []


def _reorder(mapping: Any, order: Sequence[str]) -> None:
    """Known keys first, in `order`; the rest after them as written. Comments travel with their keys,
    and the mapping's last comment (after its last key) stays last."""
    known = [key for key in order if key in mapping]
    wanted = known + [key for key in mapping if key not in known]
    if list(mapping) == wanted:
        return
    last = list(mapping)[-1]
    trailing = mapping.ca.items.get(last)
    for key in wanted:
        mapping.move_to_end(key)
    new_last = wanted[-1]
    if trailing is not None and last != new_last:
        # what follows the last key (a blank line, a comment) belongs to the end of the mapping
        mapping.ca.items[new_last], mapping.ca.items[last] = trailing, mapping.ca.items.get(new_last)
        if mapping.ca.items[last] is None:
            del mapping.ca.items[last]
