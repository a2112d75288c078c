"""The pages of a version: index.html (the scenes), board.html (every frame), a page per
scene, and changes.html.

    out/v0002/index.html            every scene: its first frame, count, what changed in it
    out/v0002/board.html            the whole board: every frame in story order, scene
                                    headings with running times; the page a director scrolls
                                    and prints (A4 or Letter landscape)
    out/v0002/01-morning/index.html the scene's panels, in story order
    out/v0002/changes.html          the review page: before and after, why, the prompt diff;
                                    held frames beside the change they were spared

With campaign variants, scene folders sit in a folder per variant (`de-DE/story/01-morning`),
each variant has its board (`de-DE/story/board.html`; board.html is the first variant's,
with a switcher), and variants.html shows every frame across all variants, a row per frame.

A scene page shows only what stays true of its frames from version to version (each
frame says which version made it), so an untouched scene's page is byte-identical to
the previous version's and is hard-linked, not written again. What is new in *this*
version is on index.html and changes.html. Every page is rendered from the manifest
alone, self-contained (inline CSS, nothing from elsewhere) and works opened straight from
disk. The board and scene pages carry one small inline script, the viewer (arrow keys move
between full-size images, Esc closes); without it every image still links to its file.
Jinja escapes every value, so a prompt holding `<script>` is text.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2

from storyboard.actions import FAILED, MADE, Action
from storyboard.deliver.timing import clock, running_time
from storyboard.state.manifest import VERSION_FIELDS, scene_folder, scene_manifest_of
from storyboard.usercache import jinja_bytecode_cache
from storyboard.wording import plural

TEMPLATES = Path(__file__).parent / "page_templates"
BADGES = {Action.CREATE.status: "New", Action.REGENERATE.status: "Regenerated",
          Action.REPAIR.status: "Repaired", Action.RESTORE.status: "Restored",
          Action.HOLD.status: "Held", FAILED: "Failed: previous image"}
THUMB_WIDTH = 480
SCENE_PAGE = "index.html"
BOARD_SECTION = re.compile(r"<!-- board-scene ([0-9a-f]{64}) -->\n")  # starts a scene of a board


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                                     bytecode_cache=jinja_bytecode_cache("jinja-pages"))
    environment.filters["plural"] = plural
    environment.filters["clock"] = clock
    return environment


def render_pages(manifest: Mapping[str, Any], scenes: Sequence[Mapping[str, Any]], failed: Mapping[str, str],
                 removed: Iterable[str] = (), approved: Iterable[str] = (),
                 unchanged: Collection[str] = (),
                 earlier: Callable[[str], str] = lambda path: "",
                 encoded_members: Mapping[str, EncodedMembers] | None = None) -> dict[str, str]:
    """{path in the version: page} for index.html, board.html, changes.html and each scene's page.

    `manifest` is the merged one (every frame, with its status); `scenes` its root's list;
    `approved` the frames approved since the version before; `unchanged` the scene folders whose
    page is the latest version's (same `scene_page_key`): not rendered. `earlier` gives the page
    at a path in the latest version ("" if none): a board takes from it each scene section whose
    inputs are the same (see `_board_sections`). `encoded_members`: by scene folder, a scene's frames
    with their scene manifest, made ahead of time (what the sections' keys hash).
    """
    environment = _environment()
    common = {"project": manifest["project"], "css": _css(), "viewer": _viewer()}
    frames: Sequence[Mapping[str, Any]] = manifest["frames"]
    view = _Views()  # a frame's view is made only for the pages that show it
    by_scene: dict[str, list[Mapping[str, Any]]] = {}
    for frame in frames:
        by_scene.setdefault(scene_folder(frame["path"]), []).append(frame)
    pages: dict[str, str] = {}
    contents = []
    places = _places(scenes)
    for scene in scenes:
        page = f"{scene['folder']}/{SCENE_PAGE}"
        members = by_scene.get(scene["folder"], [])
        if scene["folder"] not in unchanged:
            number, neighbours = places[scene["folder"]]
            pages[page] = environment.get_template("scene.html.j2").render(
                number=number, title=_titled(scene), frames=view.all(members), up=_up(page), **neighbours,
                **common)
        contents.append(_scene_entry(scene, page, members, view))
    statuses = [frame["status"] for frame in frames]
    badges = [(BADGES[s].split(":")[0].lower(), statuses.count(s)) for s in BADGES if s in statuses]
    this_version = {"version": manifest["version"], "created_at": manifest["created_at"], **common}
    pages["index.html"] = environment.get_template("index.html.j2").render(
        scenes=contents, badges=badges, frame_count=len(frames),
        variants=any(frame.get("variant") for frame in frames), **this_version)
    total = {"approvals": sum(1 for frame in frames if frame.get("approval")), **this_version}
    combinations = _combinations(frames)
    if not combinations:
        rows = [_board_row(scene, entry, by_scene.get(scene["folder"], []))
                for scene, entry in zip(scenes, contents, strict=True)]
        pages["board.html"] = _render_board(rows, "", [], total, earlier("board.html"), view,
                                            encoded_members=encoded_members or {})
    for number, combination in enumerate(combinations):
        page = _board_page(combination)
        switcher = [{"label": _label(other), "page": _board_page(other), "current": other == combination}
                    for other in combinations]
        rows = _variant_rows(scenes, [frame for frame in frames
                                      if _serves(frame.get("variant", {}), combination)], view)
        pages[page] = _render_board(rows, _up(page), switcher, total, earlier(page), view,
                                    _label(combination))
        if number == 0:
            pages["board.html"] = _render_board(rows, "", switcher, total, earlier("board.html"), view,
                                                _label(combination))
    if combinations:
        pages["variants.html"] = environment.get_template("variants.html.j2").render(
            columns=[{"label": _label(c), "page": _board_page(c)} for c in combinations],
            rows=_matrix(view.all(frames), combinations), **this_version)
    newly = set(approved)
    pages["changes.html"] = environment.get_template("changes.html.j2").render(
        changed=view.all(frame for frame in frames if frame["status"] in MADE),
        held=view.all(frame for frame in frames if frame["status"] == Action.HOLD.status),
        approved=view.all(frame for frame in frames if frame["address"] in newly),
        removed=sorted(removed), failed=sorted(failed.items()), **this_version)
    return pages


@cache
def _css() -> str:
    return (TEMPLATES / "style.css").read_text(encoding="utf-8")


@cache
def _viewer() -> str:
    return (TEMPLATES / "viewer.js").read_text(encoding="utf-8")


def scene_page_keys(project: str, scenes: Sequence[Mapping[str, Any]],
                    manifests: Mapping[str, bytes]) -> dict[str, str]:
    """Per scene folder, what its page is made from: its scene manifest (`manifests`, by path), its
    place among the scenes, the project's name and the page templates, hashed. Two versions with
    the same key have byte-identical pages."""
    places = _places(scenes)
    keys = {}
    for scene in scenes:
        number, neighbours = places[scene["folder"]]
        place = json.dumps([project, number, _titled(scene), neighbours, _templates_digest()], sort_keys=True)
        digest = hashlib.sha256(place.encode() + b"\0" + manifests[scene["manifest"]])
        keys[scene["folder"]] = digest.hexdigest()
    return keys


@cache
def _templates_digest() -> str:
    """The page templates, CSS and viewer as this storyboard ships them, and the code that fills
    them in (a new release: new pages)."""
    digest = hashlib.sha256()
    code = [Path(__file__), Path(clock.__code__.co_filename), Path(plural.__code__.co_filename)]
    for file in [*sorted(TEMPLATES.iterdir()), *code]:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def _render_board(rows: Sequence[Mapping[str, Any]], up: str, switcher: Sequence[Mapping[str, Any]],
                  common: Mapping[str, Any], earlier: str, view: _Views, variant: str = "", *,
                  encoded_members: Mapping[str, EncodedMembers] | None = None) -> str:
    """A board: `rows` (scenes with their frames); `up` leads from the page to the version's folder;
    `earlier` is the board this one replaces ("" if none)."""
    return _environment().get_template("board.html.j2").render(
        scenes=rows, sections=_board_sections(rows, up, earlier, view, encoded_members or {}), up=up,
        frame_count=sum(len(row["members"]) for row in rows), switcher=switcher, variant=variant,
        seconds=sum(row["seconds"] for row in rows), **common)


def _board_sections(rows: Sequence[Mapping[str, Any]], up: str, earlier: str, view: _Views,
                    encoded_members: Mapping[str, EncodedMembers]) -> list[str]:
    """Each scene's section of a board, marked with the key of what it shows. A 10,000-frame board
    is 5 MB: a section whose key is in `earlier` (the board it replaces) is taken from it as it
    is, so a version that changes one frame renders one section. Like a linked scene page, the
    section is the latest version's own output, trusted as that."""
    reusable = _sections_of(earlier)
    template = _environment().get_template("board-scene.html.j2")
    sections = []
    for number, row in enumerate(rows, 1):
        # a section shows its frames' views, each made from its manifest entry alone: the entries
        # (a superset of what is shown) and the code that makes views and pages are its inputs; a
        # manifest read back (sync renders pulled versions) keeps its entries' order: the same key
        known = encoded_members.get(posixpath.dirname(row["page"]))
        key = _section_key([number, up, row["id"], row["title"], row["frames"], row["description"],
                            row["seconds"]], row["members"], known)
        section = reusable.get(key)
        if section is None:
            scene = {**row, "members": view.all(row["members"])}
            section = f"<!-- board-scene {key} -->\n{template.render(number=number, scene=scene, up=up)}\n"
        sections.append(section)
    return sections


@dataclass(frozen=True)
class EncodedMembers:
    """A scene's frames (the very objects) and their scene manifest, made ahead of time."""

    members: Sequence[Mapping[str, Any]]
    manifest: bytes


def _section_key(row: list[Any], members: Sequence[Mapping[str, Any]], known: EncodedMembers | None) -> str:
    """What a board section shows, hashed: its row's fields, its frames (their scene manifest, as
    `scene_manifest_of` makes it, and the fields true of them in this version only) and the code.
    The manifest is `known`'s when that was made of these very frame objects (apply makes the
    untouched scenes' while the service works)."""
    if known is not None and len(known.members) == len(members) and \
            all(a is b for a, b in zip(known.members, members, strict=True)):
        manifest = known.manifest
    else:
        manifest = scene_manifest_of(members) if members else b""
    changing = [{key: frame[key] for key in VERSION_FIELDS if key in frame} for frame in members]
    shown = json.dumps([*row, changing, _templates_digest()], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(shown.encode() + b"\0" + manifest).hexdigest()


def _sections_of(board: str) -> dict[str, str]:
    """{key: section} of a board's scene sections (each runs to the next, the last to `</main>`)."""
    found = list(BOARD_SECTION.finditer(board))
    end = board.find("</main>", found[-1].end()) if found else -1
    if end < 0:
        return {}
    ends = [match.start() for match in found[1:]] + [end]
    return {match.group(1): board[match.start():stop] for match, stop in zip(found, ends, strict=True)}


def _board_row(scene: Mapping[str, Any], entry: Mapping[str, Any],
               members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {**entry, "description": scene.get("description", ""), "members": members,
            "seconds": running_time(members)}


def _variant_rows(scenes: Sequence[Mapping[str, Any]], members: Sequence[Mapping[str, Any]],
                  view: _Views) -> list[dict[str, Any]]:
    """A variant's board: each scene once (in story order), its frames of the variant by number (a
    frame that does not vary over an axis sits in its own folder, beside the variant's)."""
    first: dict[str, Mapping[str, Any]] = {}  # scene id -> its first manifest entry (title, description)
    for scene in scenes:
        first.setdefault(scene["id"], scene)
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for frame in members:
        by_id.setdefault(frame["scene"], []).append(frame)
    rows = []
    for scene_id, scene in first.items():
        chosen = sorted(by_id.get(scene_id, []), key=lambda frame: frame.get("index") or 0)
        if chosen:
            widest = max(chosen, key=lambda frame: len(frame.get("variant", {})))
            page = f"{scene_folder(widest['path'])}/{SCENE_PAGE}"
            rows.append(_board_row(scene, _scene_entry(scene, page, chosen, view), chosen))
    return rows


def _combinations(frames: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The variants that have a board: those naming a value of every axis, in story order."""
    axes = max((len(frame.get("variant", {})) for frame in frames), default=0)
    found: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for frame in frames:
        variant = frame.get("variant", {})
        if axes and len(variant) == axes:
            found.setdefault(tuple(variant.items()), variant)
    return list(found.values())


def _serves(variant: Mapping[str, str], combination: Mapping[str, str]) -> bool:
    """Whether a frame of `variant` is on `combination`'s board (one that does not vary over an
    axis is on every value's)."""
    return all(combination.get(axis) == value for axis, value in variant.items())


def _matrix(frames: Sequence[SimpleNamespace],
            combinations: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """A row per frame (all its variants), a cell per combination: the image on that board."""
    rows: dict[str, dict[str, Any]] = {}
    for frame in frames:
        base = frame.address.partition("@")[0]
        row = rows.setdefault(base, {"address": base, "scene": frame.scene, "index": frame.number or 0,
                                     "action": frame.action, "cells": [None] * len(combinations)})
        for position, combination in enumerate(combinations):
            if _serves(frame.variant, combination):
                row["cells"][position] = frame
    order = {scene: number for number, scene in enumerate(dict.fromkeys(f.scene for f in frames))}
    return sorted(rows.values(), key=lambda row: (order[row["scene"]], row["index"]))


def _board_page(combination: Mapping[str, str]) -> str:
    return "/".join(combination.values()) + "/board.html"


def _label(combination: Mapping[str, str]) -> str:
    return " · ".join(combination.values())


def _up(path: str) -> str:
    """`../../` from a file at `path` (relative to the version folder) back to the version folder."""
    return "../" * path.count("/")


def _titled(scene: Mapping[str, Any]) -> str:
    """A scene's title, with its variant when it sits in a variant's folder."""
    variant = posixpath.dirname(scene["folder"])
    return f"{scene['title']} · {variant.replace('/', ' · ')}" if variant else str(scene["title"])


Place = tuple[int, dict[str, dict[str, str] | None]]


def _places(scenes: Sequence[Mapping[str, Any]]) -> dict[str, Place]:
    """Per scene folder, its page's number and neighbours: among the scenes of its variant folder."""
    by_variant: dict[str, list[Mapping[str, Any]]] = {}
    for scene in scenes:
        by_variant.setdefault(posixpath.dirname(scene["folder"]), []).append(scene)
    places: dict[str, Place] = {}
    for same in by_variant.values():

        def link(at: int, same: list[Mapping[str, Any]] = same) -> dict[str, str] | None:
            if not 0 <= at < len(same):
                return None
            return {"title": same[at]["title"], "page": f"{same[at]['folder']}/{SCENE_PAGE}"}

        for position, scene in enumerate(same):
            neighbours = {"previous": link(position - 1), "next": link(position + 1)}
            places[scene["folder"]] = (position + 1, neighbours)
    return places


def _scene_entry(scene: Mapping[str, Any], page: str, frames: Sequence[Mapping[str, Any]],
                 view: _Views) -> dict[str, Any]:
    first = view(frames[0]) if frames else None
    return {"id": scene["id"], "title": _titled(scene), "page": page, "frames": len(frames),
            "poster": first.thumbnail if first else None, "poster_alt": first.alt if first else "",
            "poster_height": first.thumb_height if first else 0,
            "changed": view.all(frame for frame in frames if frame["status"] != Action.KEEP.status)}


class _Views:
    """Each frame's view (`_view`), made once and only when a page shows the frame: an apply that
    changes one frame of 10,000 renders a few of them."""

    def __init__(self) -> None:
        self._made: dict[int, SimpleNamespace] = {}

    def __call__(self, frame: Mapping[str, Any]) -> SimpleNamespace:
        made = self._made.get(id(frame))
        if made is None:
            made = self._made[id(frame)] = _view(frame)
        return made

    def all(self, frames: Iterable[Mapping[str, Any]]) -> list[SimpleNamespace]:
        return [self(frame) for frame in frames]


def _view(frame: Mapping[str, Any]) -> SimpleNamespace:
    """What the templates show of a frame: attributes, which Jinja reads directly (a dict's keys
    it reads only after a failed attribute lookup, a third of the render time)."""
    width, height = frame.get("width") or 16, frame.get("height") or 9
    folder = scene_folder(frame["path"])
    return SimpleNamespace(**{
        **frame,
        "number": frame.get("index") or "",
        "shot": frame.get("shot", ""),
        "action": frame.get("action", ""),
        "dialogue": frame.get("dialogue", ""),
        "duration": frame.get("duration"),
        "notes": frame.get("notes", ""),
        "characters": frame.get("characters", []),
        "approval": frame.get("approval"),
        "alt": frame.get("action") or f"frame {frame['address']}",
        "badge": BADGES.get(frame["status"], ""),
        "thumb_height": max(1, round(THUMB_WIDTH * height / width)),
        "anchor": frame["address"].replace("/", "--"),
        "folder": folder,
        "href": frame["path"][len(folder) + 1:],  # from the scene's page, which sits beside its images
        "thumbnail": frame.get("thumbnail", ""),
        "thumb": f"{_up(frame['path'])}{frame.get('thumbnail', '')}",
        "variant": frame.get("variant", {}),
        "scene_page": f"{folder}/{SCENE_PAGE}",
        "before": frame.get("before"),
        "previous": frame.get("previous"),
        "reasons": frame.get("reasons", []),
        "diff_lines": _diff_lines(frame.get("prompt_diff", "")),
        "made": f"v{frame.get('generated_in', 0):04d}",
    })


def _diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified prompt diff as (css class, line), without its ---/+++ header."""
    lines = []
    for line in diff.splitlines():
        if line.startswith(("---", "+++", "@@")):
            continue
        kind = "add" if line.startswith("+") else "del" if line.startswith("-") else "same"
        lines.append((kind, line))
    return lines
