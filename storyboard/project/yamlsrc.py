"""Reading YAML files fast, and finding where a value sits in them when an error needs it.

Files are parsed with libyaml's C safe loader (plain data only, never Python objects),
and the parsed data is kept in the user's cache folder by the sha256 of the file, so an
unchanged file is loaded, not parsed, by the next command.
Files not in the cache are parsed partly in a second process when there is much to
parse and a second core (`read_all`): a 10,000-frame campaign is ~1.5 MB of YAML.
Positions are only needed on the error path, so a file is composed into nodes, which
keep their marks, lazily and at most once, the first time a location is asked for.

Hostile files are refused before anything uses their data: a duplicate key in a mapping
is an error at the second key (not last-one-wins), bytes that are not UTF-8 are reported
at their line and column, and a document whose aliases would expand past
MAX_EXPANDED_SIZE (a "billion laughs") is an error at the alias that crosses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from storyboard.errors import Diagnostic, Location, ProjectError
from storyboard.fsutil import atomic_write
from storyboard.machine import HelperProcess, usable_cores
from storyboard.usercache import cache_dir

try:
    _BaseLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

KeyPath = tuple[str | int, ...]
_MISSING = object()
_MERGE_TAG = "tag:yaml.org,2002:merge"
# The data of one document with every alias expanded, counted as characters of its scalars
# plus one per value: 10x the largest single-file campaign we have seen (1.5 MB), and far
# below what a "billion laughs" of a few lines expands to.
MAX_EXPANDED_SIZE = 16_000_000
_CACHE_FORMAT = "2"  # bumped when what a parse accepts changes (duplicate keys are now refused)


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key written twice in one mapping; raised at the second one."""


class _Loader(_BaseLoader):  # type: ignore[misc]
    """libyaml's safe loader that refuses duplicate keys instead of keeping the last one."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # called before a mapping's merge keys (`<<: *x`) are folded in: its own keys as written
        first: dict[tuple[str, str], yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = (key_node.tag, key_node.value)
            if key in first:
                line = first[key].start_mark.line + 1
                raise DuplicateKeyError(
                    None, None, f"duplicate key `{key_node.value}` (first written at line {line})",
                    key_node.start_mark)
            first[key] = key_node
        super().flatten_mapping(node)


class _ParseCache:
    """Parsed data by the sha256 of the file's bytes, in the user's cache folder (marshal).

    An unchanged file is then loaded instead of parsed, several times faster; a file
    whose data marshal cannot hold (YAML timestamps) is simply parsed each time.
    """

    def __init__(self, raw: bytes) -> None:
        salt = f"\0{yaml.__version__}\0{_BaseLoader.__name__}\0{_CACHE_FORMAT}"
        key = hashlib.sha256(raw + salt.encode()).hexdigest()
        self.file = cache_dir("yaml", key[:2]) / f"{key}.marshal"

    def load(self) -> Any:
        try:
            return marshal.loads(self.file.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return _MISSING

    def store(self, data: Any) -> None:
        with contextlib.suppress(ValueError):
            self.store_blob(marshal.dumps(data))

    def store_blob(self, blob: bytes) -> None:
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.file, blob, durable=False)

    def knows_valid(self, schema_key: str) -> bool:
        """Whether this data was found valid against the schema `schema_key` names before."""
        return self._marker(schema_key).exists()

    def mark_valid(self, schema_key: str) -> None:
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self._marker(schema_key).touch()

    def _marker(self, schema_key: str) -> Path:
        return self.file.with_name(f"{self.file.stem}.valid-{schema_key}")


class YamlFile:
    """One YAML file: its data, and the positions of its keys and values on demand."""

    def __init__(self, path: Path, text: str, data: Any, cache: _ParseCache | None = None,
                 valid_as: str | None = None) -> None:
        self.path = path
        self.text = text
        self.data = data
        self._cache = cache
        self._valid_as = valid_as  # a schema key the helper process found the data valid against

    def known_valid(self, schema_key: str) -> bool:
        """Whether the data is known to be valid against the schema `schema_key` names (see
        schema.checked_data): found so by the helper that parsed it, or remembered in the cache."""
        if schema_key == self._valid_as:
            return True
        return self._cache is not None and self._cache.knows_valid(schema_key)

    def remember_valid(self, schema_key: str) -> None:
        if self._cache is not None:
            self._cache.mark_valid(schema_key)

    def release_data(self) -> None:
        """Let the parsed document go once it is modelled: the model's origins keep the file
        for positions (found from `text`), and a 100,000-frame campaign's dicts are ~100 MB."""
        self.data = None

    @classmethod
    def read(cls, path: Path) -> YamlFile:
        """Parse `path`; a syntax error becomes a ProjectError at its line and column."""
        result = read_all([path])[0]
        if isinstance(result, ProjectError):
            raise result
        return result

    @classmethod
    def _from_bytes(cls, path: Path, raw: bytes, cache: _ParseCache, parsed: Any,
                    valid_as: str | None = None) -> YamlFile:
        """The file from its bytes and its data if already known (cache or helper), else parsed."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProjectError([bad_bytes(path, raw, exc)]) from None
        check_expansion(path, text)  # anchors and aliases: what they expand to, before parsing
        if parsed is not _MISSING:
            return cls(path, text, parsed, cache, valid_as)
        try:
            data = parse_text(text)
        except yaml.MarkedYAMLError as exc:
            raise ProjectError([_yaml_diagnostic(path, exc)]) from None
        except yaml.YAMLError as exc:
            raise ProjectError([Diagnostic(f"YAML error: {exc}", Location(path, 1, 1))]) from None
        cache.store(data)
        return cls(path, text, data, cache)

    def root_origin(self) -> YamlOrigin:
        """The origin of the whole document."""
        return YamlOrigin(self, ())

    def location(self, key_path: Sequence[str | int], *, key: bool = False) -> Location:
        """Where the value at `key_path` starts (or its key, with key=True).

        Falls back to the nearest enclosing node that exists, so a missing key is
        reported at the mapping that should hold it.
        """
        index = self._key_marks if key else self._value_marks
        path = tuple(key_path)
        while path:
            if path in index:
                line, col = index[path]
                return Location(self.path, line, col)
            if key and path in self._value_marks:
                line, col = self._value_marks[path]
                return Location(self.path, line, col)
            path = path[:-1]
        line, col = self._value_marks.get((), (1, 1))
        return Location(self.path, line, col)

    def block_offset(self, key_path: Sequence[str | int]) -> int:
        """Line number (1-based) just before a scalar's first content line.

        For a block scalar (`|` or `>`) the content starts on the next line; a template
        line N of such a string is then at file line `block_offset + N`.
        """
        line, _ = self._value_marks.get(tuple(key_path), (1, 1))
        style = self._scalar_styles.get(tuple(key_path))
        return line if style in ("|", ">") else line - 1

    @cached_property
    def _nodes(self) -> tuple[dict[KeyPath, tuple[int, int]], dict[KeyPath, tuple[int, int]],
                              dict[KeyPath, str | None]]:
        values: dict[KeyPath, tuple[int, int]] = {}
        keys: dict[KeyPath, tuple[int, int]] = {}
        styles: dict[KeyPath, str | None] = {}
        root = yaml.compose(self.text, Loader=_Loader)
        if root is not None:
            _index_node(root, (), values, keys, styles)
        return values, keys, styles

    @property
    def _value_marks(self) -> dict[KeyPath, tuple[int, int]]:
        return self._nodes[0]

    @property
    def _key_marks(self) -> dict[KeyPath, tuple[int, int]]:
        return self._nodes[1]

    @property
    def _scalar_styles(self) -> dict[KeyPath, str | None]:
        return self._nodes[2]


def parse_text(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def bad_bytes(path: Path, raw: bytes, error: UnicodeDecodeError) -> Diagnostic:
    """Where the first byte that is not UTF-8 sits: its line, and its column in characters."""
    line_start = raw.rfind(b"\n", 0, error.start) + 1
    line = raw.count(b"\n", 0, error.start) + 1
    column = len(raw[line_start:error.start].decode("utf-8", errors="replace")) + 1
    return Diagnostic(f"not UTF-8 text: byte 0x{raw[error.start]:02x} cannot be decoded ({error.reason})",
                      Location(path, line, column),
                      hint="save the file as UTF-8 (most editors offer it under 'encoding')")


def _yaml_diagnostic(path: Path, error: yaml.MarkedYAMLError) -> Diagnostic:
    """A parse error at the token that broke it.

    libyaml reports an unclosed quote or bracket where it gave up (often the end of the
    file); the place the user must look at is where it was opened, its `context_mark`.
    """
    problem = error.problem or "invalid YAML"
    mark, opened = error.problem_mark or error.context_mark, error.context_mark
    context = f" {error.context}" if error.context else ""
    if mark is not None and opened is not None and opened.line < mark.line and \
            any(word in context for word in ("flow", "quoted", "block scalar")):
        context += f" (opened here, not closed; noticed at line {mark.line + 1}, column {mark.column + 1})"
        mark = opened  # an unclosed quote or bracket: where it was opened is where to look
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    if isinstance(error, DuplicateKeyError):
        return Diagnostic(problem, Location(path, line, col),
                          hint="a key may appear once in a mapping; remove or merge one of the two")
    return Diagnostic(f"YAML syntax error: {problem}{context}", Location(path, line, col),
                      hint="check the indentation and quoting around this line")


def check_expansion(path: Path, text: str, limit: int = MAX_EXPANDED_SIZE) -> None:
    """Refuse a document whose aliases expand it past `limit` (characters plus one per value).

    Walks libyaml's events once, keeping the expanded size of every anchored value, so an
    alias counts at the size of what it names; a few lines of nested aliases (a "billion
    laughs") are stopped at the alias that crosses the limit, before anything expands them.
    Syntax errors are left to the parser, which reports them. A text without both an `&` and a
    `*` has no alias to expand and is not walked.
    """
    if "&" not in text or "*" not in text:
        return
    anchors: dict[str, int] = {}
    open_values: list[tuple[int, str | None]] = []  # (size so far, anchor) of each open collection
    total = 0
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                anchors, total = {}, 0
            elif isinstance(event, yaml.CollectionStartEvent):
                open_values.append((total, event.anchor))
                total += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                start, anchor = open_values.pop()
                if anchor:
                    anchors[anchor] = total - start
            elif isinstance(event, yaml.ScalarEvent):
                total += 1 + len(event.value)
                if event.anchor:
                    anchors[event.anchor] = 1 + len(event.value)
            elif isinstance(event, yaml.AliasEvent):
                total += anchors.get(event.anchor or "", 1)
                if total > limit:
                    mark = event.start_mark
                    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                    raise ProjectError([Diagnostic(
                        f"alias `*{event.anchor}` expands this document past {limit:,} characters "
                        "(aliases nested in aliases: a \"billion laughs\")",
                        Location(path, line, col),
                        hint="write the values out, or alias less deeply")])
    except yaml.YAMLError:
        return


HELPER_MIN_BYTES = 512 * 1024  # below this a second process costs more than it saves
_HELPER_START_BYTES = 128 * 1024  # what the helper could have parsed while it starts


def read_all(paths: Sequence[Path], check: bool = False) -> list[YamlFile | ProjectError]:
    """Read many files, in order: each a YamlFile, or the ProjectError that reading it gave.

    Files not in the parse cache are split with a helper process (storyboard.project.parse_helper)
    when they are big enough and a second core is free; the helper takes the last files,
    about half the bytes, while this process parses the rest. With `check` (included files,
    of the scene and character schemas) the helper also checks the data it parses.
    """
    raws = [path.read_bytes() for path in paths]
    caches = [_ParseCache(raw) for raw in raws]
    parsed: list[Any] = [cache.load() for cache in caches]
    valid_as: list[str | None] = [None] * len(paths)
    misses = [i for i, data in enumerate(parsed) if data is _MISSING]
    delegated = misses[len(misses) - _helper_share([len(raws[i]) for i in misses]):]
    arguments = ["--check"] * check + [str(paths[i]) for i in delegated]
    helper = HelperProcess.start("storyboard.project.parse_helper", arguments) if delegated else None
    results: list[YamlFile | ProjectError] = []
    for index, path in enumerate(paths):
        if helper is not None and index == delegated[0]:  # this process parsed its share: collect
            for position, (digest, blob, valid) in zip(delegated, _helper_results(helper, len(delegated)),
                                                       strict=True):
                if blob is not None and digest == hashlib.sha256(raws[position]).hexdigest():
                    parsed[position] = marshal.loads(blob)
                    caches[position].store_blob(blob)
                    if valid is not None:
                        caches[position].mark_valid(valid)
                        valid_as[position] = valid
        try:
            results.append(YamlFile._from_bytes(path, raws[index], caches[index], parsed[index],
                                                valid_as[index]))
        except ProjectError as error:
            results.append(error)
    return results


def _helper_results(helper: HelperProcess, count: int) -> list[tuple[str, bytes | None, str | None]]:
    """(sha256, marshal blob or None, the schema key it is valid against or None) per file the
    helper was given; all None if it failed."""
    results = helper.result()
    return results if isinstance(results, list) and len(results) == count else [("", None, None)] * count


def _helper_share(sizes: Sequence[int]) -> int:
    """How many of the last files the helper should parse (0: none, do it all here)."""
    total = sum(sizes)
    if total < HELPER_MIN_BYTES or len(sizes) < 2 or usable_cores() < 2:
        return 0
    target, taken, count = (total - _HELPER_START_BYTES) / 2, 0, 0
    for size in reversed(sizes[1:]):
        if taken + size / 2 > target:
            break
        taken, count = taken + size, count + 1
    return count


def _index_node(
    node: yaml.Node,
    path: KeyPath,
    values: dict[KeyPath, tuple[int, int]],
    keys: dict[KeyPath, tuple[int, int]],
    styles: dict[KeyPath, str | None],
) -> None:
    values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.ScalarNode):
        styles[path] = node.style
    elif isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, name)
            keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _index_node(value_node, child, values, keys, styles)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _index_node(item, (*path, position), values, keys, styles)


@dataclass(frozen=True, slots=True)
class YamlOrigin:
    """Where a model object was written in a YAML file (storyboard.errors.Origin)."""

    source: YamlFile
    path: KeyPath

    def at(self, *sub: str | int, key: bool = False) -> Location:
        return self.source.location((*self.path, *sub), key=key)

    def crumb(self, *sub: str | int) -> str:
        return crumb((*self.path, *sub))

    def child(self, *sub: str | int) -> YamlOrigin:
        return YamlOrigin(self.source, (*self.path, *sub))


def crumb(key_path: Sequence[str | int]) -> str:
    """`('scenes', 2, 'frames', 4, 'shot')` -> `scenes[2].frames[4].shot`."""
    text = ""
    for part in key_path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
