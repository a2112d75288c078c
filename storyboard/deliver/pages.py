"""The pages of a version: index.html (the scenes), board.html (every frame), a page per
scene, and changes.html.

    out/v0002/index.html            every scene: its first frame, count, what changed in it
    out/v0002/board.html            the whole board: every frame in story order, scene
                                    headings with running times; the page a director scrolls
                                    and prints (A4 or Letter landscape)
    out/v0002/01-morning/index.html the scene's panels, in story order
    out/v0002/changes.html          the review page: before and after, why, the prompt diff;
                                    held frames beside the change they were spared

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

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2

from storyboard.actions import FAILED, MADE, Action
from storyboard.deliver.timing import clock, running_time
from storyboard.state.manifest import scene_folder
from storyboard.wording import plural

TEMPLATES = Path(__file__).parent / "page_templates"
BADGES = {Action.CREATE.status: "New", Action.REGENERATE.status: "Regenerated",
          Action.REPAIR.status: "Repaired", Action.RESTORE.status: "Restored",
          Action.HOLD.status: "Held", FAILED: "Failed: previous image"}
THUMB_WIDTH = 480
SCENE_PAGE = "index.html"


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    environment.filters["plural"] = plural
    environment.filters["clock"] = clock
    return environment


def render_pages(manifest: Mapping[str, Any], scenes: Sequence[Mapping[str, Any]], failed: Mapping[str, str],
                 removed: Iterable[str] = (), approved: Iterable[str] = ()) -> dict[str, str]:
    """{path in the version: page} for index.html, board.html, changes.html and each scene's page.

    `manifest` is the merged one (every frame, with its status); `scenes` its root's list;
    `approved` the frames approved since the version before.
    """
    environment = _environment()
    common = {"project": manifest["project"], "css": _css(), "viewer": _viewer()}
    frames = [_view(frame) for frame in manifest["frames"]]
    by_scene: dict[str, list[SimpleNamespace]] = {}
    for frame in frames:
        by_scene.setdefault(frame.folder, []).append(frame)
    pages: dict[str, str] = {}
    contents = []
    for number, scene in enumerate(scenes, 1):
        page = f"{scene['folder']}/{SCENE_PAGE}"
        members = by_scene.get(scene["folder"], [])
        neighbours = {"previous": _link(scenes, number - 2), "next": _link(scenes, number)}
        pages[page] = environment.get_template("scene.html.j2").render(
            number=number, title=scene["title"], frames=members, **neighbours, **common)
        contents.append(_scene_entry(scene, page, members))
    statuses = [frame.status for frame in frames]
    badges = [(BADGES[s].split(":")[0].lower(), statuses.count(s)) for s in BADGES if s in statuses]
    this_version = {"version": manifest["version"], "created_at": manifest["created_at"], **common}
    pages["index.html"] = environment.get_template("index.html.j2").render(
        scenes=contents, badges=badges, frame_count=len(frames), **this_version)
    board = []
    for scene, entry in zip(scenes, contents, strict=True):
        members = by_scene.get(scene["folder"], [])
        board.append({**entry, "description": scene.get("description", ""), "members": members,
                      "seconds": running_time(vars(frame) for frame in members)})
    pages["board.html"] = environment.get_template("board.html.j2").render(
        scenes=board, frame_count=len(frames), seconds=sum(scene["seconds"] for scene in board),
        approvals=sum(1 for frame in frames if frame.approval), **this_version)
    changed = [frame for frame in frames if frame.status in MADE]
    held = [frame for frame in frames if frame.status == Action.HOLD.status]
    newly = set(approved)
    pages["changes.html"] = environment.get_template("changes.html.j2").render(
        changed=changed, held=held, approved=[frame for frame in frames if frame.address in newly],
        removed=sorted(removed), failed=sorted(failed.items()), **this_version)
    return pages


@cache
def _css() -> str:
    return (TEMPLATES / "style.css").read_text(encoding="utf-8")


@cache
def _viewer() -> str:
    return (TEMPLATES / "viewer.js").read_text(encoding="utf-8")


def _link(scenes: Sequence[Mapping[str, Any]], position: int) -> dict[str, str] | None:
    if not 0 <= position < len(scenes):
        return None
    return {"title": scenes[position]["title"], "page": f"{scenes[position]['folder']}/{SCENE_PAGE}"}


def _scene_entry(scene: Mapping[str, Any], page: str, frames: Sequence[SimpleNamespace]) -> dict[str, Any]:
    first = frames[0] if frames else None
    return {"id": scene["id"], "title": scene["title"], "page": page, "frames": len(frames),
            "poster": first.thumbnail if first else None, "poster_alt": first.alt if first else "",
            "poster_height": first.thumb_height if first else 0,
            "changed": [frame for frame in frames if frame.status != Action.KEEP.status]}


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
        "thumb": f"../{frame.get('thumbnail', '')}",
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
