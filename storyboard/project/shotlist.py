"""`storyboard import shotlist`: a shot-list spreadsheet (exported as CSV) into a scene file.

The header row says which column is which (common names are recognised: `Scene`, `Shot #`,
`Shot type`, `Description`, `VO`, `Length`, `Cast`, …); `--map COLUMN=FIELD` settles the
rest. Rows become frames in story order, grouped into scenes in the order they first
appear, with ids derived from the names: lower-case, `a-z0-9-`, unique, the same for the
same sheet. A row that cannot be read is reported at its line and left out; characters
the project does not define are listed so they can be added.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyboard.errors import Diagnostic, Location, ProjectError, UserError
from storyboard.project.yamlsrc import bad_bytes

FIELDS = ("scene", "shot_number", "shot", "action", "dialogue", "duration", "characters", "notes")
SYNONYMS = {
    "scene": ("scene", "scene name", "sequence", "scene title"),
    "shot_number": ("shot", "shot #", "shot no", "shot number", "#", "no", "number", "shot id"),
    "shot": ("shot type", "type", "size", "shot size", "framing", "camera"),
    "action": ("action", "description", "desc", "what happens", "visual", "picture"),
    "dialogue": ("dialogue", "dialog", "line", "lines", "vo", "v/o", "voice over", "audio", "script"),
    "duration": ("duration", "length", "secs", "seconds", "time", "dur", "duration (s)"),
    "characters": ("characters", "cast", "talent", "who", "character"),
    "notes": ("notes", "note", "comments", "comment", "remarks"),
}
_ID = re.compile(r"[^a-z0-9]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # what no prompt or page should carry (tabs, newlines may)


@dataclass
class Imported:
    """The scene YAML made from a sheet, and what could not be taken."""

    text: str
    scenes: int = 0
    frames: int = 0
    problems: list[Diagnostic] = field(default_factory=list)  # rows left out, at their lines
    unknown_characters: list[str] = field(default_factory=list)


def import_shotlist(path: Path, known_characters: Sequence[str] = (),
                    mapping: Mapping[str, str] | None = None) -> Imported:
    """The scene file for the shot list at `path` (nothing is written)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"no shot list at {path}") from None
    except OSError as error:
        raise UserError(f"cannot read the shot list {path}: {error.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ProjectError([bad_bytes(path, raw, error)]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []  # (the line the row starts on, its cells)
    start = 1
    try:
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1  # a quoted cell may span lines
    except csv.Error as error:  # a NUL byte, a cell past the csv module's size limit
        raise ProjectError([Diagnostic(f"not a readable CSV row: {error}", Location(path, start, 1),
                                       hint="export the sheet again as CSV UTF-8")]) from None
    if not rows:
        raise UserError(f"{path} is empty", location=Location(path, 1, 1))
    header = rows[0][1]
    columns = _columns(path, header, mapping or {})
    result = Imported("")
    scenes: dict[str, dict[str, Any]] = {}
    frame_ids: dict[str, set[str]] = {}
    characters: dict[str, None] = {}
    for line, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        values = _values(path, line, row, columns, len(header), result.problems)
        if values is None:
            continue
        scene_name = values.get("scene") or (next(reversed(scenes)) if scenes else "scene")
        scene = scenes.setdefault(scene_name, {"id": _unique(_slug(scene_name, "scene"), {
            s["id"] for s in scenes.values()}), "title": scene_name, "frames": []})
        used = frame_ids.setdefault(scene["id"], set())
        frame = _frame(values, used)
        used.add(frame["id"])
        scene["frames"].append(frame)
        for name in frame.get("characters", []):
            characters[name] = None
    result.scenes = len(scenes)
    result.frames = sum(len(scene["frames"]) for scene in scenes.values())
    result.unknown_characters = [name for name in characters if name not in set(known_characters)]
    result.text = _yaml(path, list(scenes.values()))
    return result


def _columns(path: Path, header: Sequence[str], mapping: Mapping[str, str]) -> dict[str, int]:
    """field -> column index, from the header row and --map."""
    names = [cell.strip().lower() for cell in header]
    columns: dict[str, int] = {}
    for column, wanted in mapping.items():
        if wanted not in FIELDS:
            raise UserError(f"--map {column}={wanted}: no field `{wanted}`",
                            hint=f"fields: {', '.join(FIELDS)}")
        if column.strip().lower() not in names:
            raise UserError(f"--map {column}={wanted}: the sheet has no column `{column}`",
                            hint=f"its columns: {', '.join(cell for cell in header if cell)}")
        columns[wanted] = names.index(column.strip().lower())
    for name, synonyms in SYNONYMS.items():
        if name in columns:
            continue
        taken = set(columns.values())
        found = next((names.index(s) for s in synonyms if s in names and names.index(s) not in taken), None)
        if found is not None:
            columns[name] = found
    if "action" not in columns:
        raise UserError(f"{path}: no column says what happens in a shot", location=Location(path, 1, 1),
                        hint="name one `Action` or `Description`, or map one: --map 'What we see=action'")
    return columns


def _values(path: Path, line: int, row: Sequence[str], columns: Mapping[str, int], width: int,
            problems: list[Diagnostic]) -> dict[str, str] | None:
    """The row's cells by field; None (and the problem reported at its line) if it cannot be read."""
    if len(row) > width and any(cell.strip() for cell in row[width:]):
        problems.append(Diagnostic(f"row has {len(row)} cells, the header {width}: left out",
                                   Location(path, line, 1),
                                   hint="a comma inside a cell needs the cell in quotes"))
        return None
    values = {name: row[index].strip() for name, index in columns.items() if index < len(row)}
    control = next((name for name, value in values.items() if _CONTROL.search(value)), None)
    if control is not None:
        problems.append(Diagnostic(f"row's {control} holds a control character: left out",
                                   Location(path, line, columns[control] + 1)))
        return None
    if not values.get("action"):
        problems.append(Diagnostic("row has no action (what happens in the shot): left out",
                                   Location(path, line, 1)))
        return None
    duration = values.get("duration", "")
    if duration:
        try:
            seconds = float(duration.lower().removesuffix("s").strip().replace(",", "."))
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 3600:
            problems.append(Diagnostic(f"duration `{duration}` is not a number of seconds: row left out",
                                       Location(path, line, columns["duration"] + 1)))
            return None
        values["duration"] = f"{seconds:g}"
    return values


def _frame(values: Mapping[str, str], used: set[str]) -> dict[str, Any]:
    number = values.get("shot_number", "")
    words = " ".join(values["action"].split()[:4])
    base = _slug(f"shot {number}", "shot") if _slug(number, "") else _slug(words, "shot")
    frame: dict[str, Any] = {"id": _unique(base, used)}
    for key in ("shot", "action", "dialogue"):
        if values.get(key):
            frame[key] = values[key]
    if values.get("characters"):
        names = re.split(r"[,;/&]| and ", values["characters"])
        frame["characters"] = [_slug(name, "someone") for name in names if name.strip()]
    if values.get("duration"):
        frame["duration"] = float(values["duration"])
    if values.get("notes"):
        frame["notes"] = values["notes"]
    return frame


def _slug(text: str, fallback: str) -> str:
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = _ID.sub("-", plain).strip("-")[:48].strip("-")
    if slug and not slug[0].isalpha():
        slug = f"{fallback or 'n'}-{slug}"
    return slug or fallback


def _unique(base: str, used: set[str]) -> str:
    candidate, number = base, 2
    while candidate in used:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def _yaml(path: Path, scenes: list[dict[str, Any]]) -> str:
    import yaml

    head = ("# yaml-language-server: $schema=https://raw.githubusercontent.com/storyboard-iac/storyboard/main/"
            "schemas/scene.schema.json\n"
            f"# Imported from {path.name} by `storyboard import shotlist`.\n")
    body = yaml.safe_dump({"scenes": scenes}, sort_keys=False, allow_unicode=True, width=4096, indent=2)
    from storyboard.project.fmt import format_text

    return format_text(head + body)
