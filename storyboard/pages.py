"""The pages of a version: index.html (the storyboard) and changes.html (the review page).

Both are rendered from the version's manifest alone, self-contained (inline CSS, no
scripts, no fonts or files from elsewhere) and work opened straight from disk. Jinja
escapes every value, so a prompt holding `<script>` is shown as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "page_templates"
BADGES = {"new": "New", "regenerated": "Regenerated", "repaired": "Repaired",
          "failed": "Failed: previous image"}
THUMB_WIDTH = 480


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def render_pages(manifest: Mapping[str, Any], scene_titles: Mapping[str, str], failed: Mapping[str, str],
                 removed: Iterable[str] = ()) -> dict[str, str]:
    """{"index.html": …, "changes.html": …} for one version."""
    frames = [_view(frame) for frame in manifest["frames"]]
    scenes: list[dict[str, Any]] = []
    for frame in frames:
        if not scenes or scenes[-1]["id"] != frame["scene"]:
            scenes.append({"id": frame["scene"], "title": scene_titles.get(frame["scene"], frame["scene"]),
                           "frames": []})
        scenes[-1]["frames"].append(frame)
    statuses = [frame["status"] for frame in frames]
    badges = [(BADGES[s].split(":")[0].lower(), statuses.count(s)) for s in BADGES if s in statuses]
    css = (TEMPLATES / "style.css").read_text(encoding="utf-8")
    common = {"project": manifest["project"], "version": manifest["version"],
              "created_at": manifest["created_at"], "css": css}
    environment = _environment()
    index = environment.get_template("index.html.j2").render(frames=frames, scenes=scenes, badges=badges,
                                                              **common)
    changed = [frame for frame in frames if frame["status"] in ("new", "regenerated", "repaired")]
    changes = environment.get_template("changes.html.j2").render(
        changed=changed, removed=sorted(removed), failed=sorted(failed.items()), **common)
    return {"index.html": index, "changes.html": changes}


def _view(frame: Mapping[str, Any]) -> dict[str, Any]:
    width, height = frame.get("width") or 16, frame.get("height") or 9
    return {
        **frame,
        "number": frame.get("index") or "",
        "shot": frame.get("shot", ""),
        "action": frame.get("action", ""),
        "dialogue": frame.get("dialogue", ""),
        "duration": frame.get("duration"),
        "alt": frame.get("action") or f"frame {frame['address']}",
        "badge": BADGES.get(frame["status"], ""),
        "thumb_height": max(1, round(THUMB_WIDTH * height / width)),
        "before": frame.get("before"),
        "previous": frame.get("previous"),
        "reasons": frame.get("reasons", []),
        "diff_lines": _diff_lines(frame.get("prompt_diff", "")),
    }


def _diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified prompt diff as (css class, line), without its ---/+++ header."""
    lines = []
    for line in diff.splitlines():
        if line.startswith(("---", "+++", "@@")):
            continue
        kind = "add" if line.startswith("+") else "del" if line.startswith("-") else "same"
        lines.append((kind, line))
    return lines
