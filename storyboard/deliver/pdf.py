"""`storyboard export pdf`: a printable storyboard, written with fpdf2.

A cover (project, version, date, frames, running time, approvals), then each scene from
a new page with a bookmark, its title, description and running time, and its panels in
a grid: image, then number, shot, duration, status, action, dialogue, notes and
characters. Text is drawn with the bundled DejaVu Sans, then the project's `fonts:`;
characters none of them has are reported per frame (`Board.warnings`), never turned
into "?". The same version and fonts give the same bytes (the date is the version's).
"""

from __future__ import annotations

import datetime
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyboard.deliver.timing import clock, running_time
from storyboard.fonts import BOLD, REGULAR, undrawable

MARGIN = 12.0  # mm
HEADING = 18.0
FOOTER = 8.0
CAPTION_SIZE = 7.5  # pt
CAPTION_LINE = 3.4  # mm
CAPTION_LINES = 7


@dataclass
class Board:
    """The PDF's bytes and what it could not draw."""

    data: bytes = b""
    warnings: list[str] = field(default_factory=list)


def pdf_storyboard(version: Path, manifest: Mapping[str, Any], per_page: int = 6,
                   user_fonts: Sequence[Path] = ()) -> Board:
    """The storyboard of a version: `per_page` panels per A4 landscape page, a scene per page."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_font("board", "", str(REGULAR))
    pdf.add_font("board", "B", str(BOLD))
    fallbacks = []
    for number, font in enumerate(user_fonts):
        pdf.add_font(f"user{number}", "", str(font))
        fallbacks.append(f"user{number}")
    pdf.set_fallback_fonts(fallbacks, exact_match=False)
    title = f"{manifest['project']} {_version(manifest)}"
    pdf.set_title(title)
    pdf.set_creator("storyboard")
    pdf.set_creation_date(_created(manifest))
    board = Board()
    frames = list(manifest.get("frames", []))
    _cover(pdf, manifest, frames)
    for scene, scene_frames in _scenes(manifest, frames):
        _scene_pages(pdf, version, manifest, scene, scene_frames, per_page, user_fonts)
        for frame in scene_frames:
            missing = undrawable(" ".join(_texts(frame)), user_fonts)
            if missing:
                board.warnings.append(f"{frame['address']}: no font can draw {missing!r} (left out of the "
                                      "PDF); name a font that has them under `fonts:` in storyboard.yaml")
    board.data = bytes(pdf.output())
    return board


def _version(manifest: Mapping[str, Any]) -> str:
    return f"v{int(manifest['version']):04d}"


def _created(manifest: Mapping[str, Any]) -> datetime.datetime:
    text = str(manifest.get("created_at", "")).replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


def _scenes(manifest: Mapping[str, Any],
            frames: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]]:
    """Each scene (from the manifest, else from the frames) with its frames, in story order."""
    by_scene: dict[str, list[Mapping[str, Any]]] = {}
    for frame in frames:
        by_scene.setdefault(str(frame.get("scene", frame["address"].split("/")[0])), []).append(frame)
    known = {str(scene["id"]): scene for scene in manifest.get("scenes", [])}
    return [(known.get(scene_id, {"id": scene_id, "title": scene_id}), items)
            for scene_id, items in by_scene.items()]


def _cover(pdf: Any, manifest: Mapping[str, Any], frames: Sequence[Mapping[str, Any]]) -> None:
    pdf.add_page()
    pdf.set_font("board", "B", 30)
    pdf.set_xy(MARGIN, 60)
    pdf.cell(0, 14, str(manifest["project"]))
    approved = sum(1 for frame in frames if frame.get("approval"))
    scenes = len({frame.get("scene") for frame in frames})
    lines = [
        f"Version {int(manifest['version']):04d}  ·  {str(manifest.get('created_at', ''))[:10]}",
        f"{len(frames)} frames in {scenes} scenes  ·  running time {clock(running_time(frames))}",
        f"{approved} of {len(frames)} frames approved",
    ]
    pdf.set_font("board", "", 14)
    for number, line in enumerate(lines):
        pdf.set_xy(MARGIN, 82 + number * 9)
        pdf.cell(0, 8, line)


def _scene_pages(pdf: Any, version: Path, manifest: Mapping[str, Any], scene: Mapping[str, Any],
                 frames: Sequence[Mapping[str, Any]], per_page: int, user_fonts: Sequence[Path]) -> None:
    columns = max(1, math.ceil(math.sqrt(per_page * 1.5)))
    rows = max(1, math.ceil(per_page / columns))
    title = str(scene.get("title") or scene["id"])
    pages = math.ceil(len(frames) / per_page)
    for page in range(pages):
        pdf.add_page()
        if page == 0:
            pdf.start_section(title)
        _heading(pdf, title if page == 0 else f"{title} (continued)", scene, frames)
        _footer(pdf, manifest)
        width = (pdf.w - 2 * MARGIN) / columns
        height = (pdf.h - 2 * MARGIN - HEADING - FOOTER) / rows
        for slot, frame in enumerate(frames[page * per_page:(page + 1) * per_page]):
            x = MARGIN + (slot % columns) * width
            y = MARGIN + HEADING + (slot // columns) * height
            _panel(pdf, version, frame, (x, y, width, height), user_fonts)


def _heading(pdf: Any, title: str, scene: Mapping[str, Any], frames: Sequence[Mapping[str, Any]]) -> None:
    pdf.set_xy(MARGIN, MARGIN)
    pdf.set_font("board", "B", 15)
    pdf.cell(pdf.w - 2 * MARGIN - 50, 8, title)
    pdf.set_font("board", "", 10)
    pdf.cell(50, 8, f"{len(frames)} frames  ·  {clock(running_time(frames))}", align="R")
    description = str(scene.get("description", ""))
    if description:
        pdf.set_xy(MARGIN, MARGIN + 8)
        pdf.set_font("board", "", 9)
        pdf.cell(pdf.w - 2 * MARGIN, 6, _fit(pdf, description, pdf.w - 2 * MARGIN))


def _footer(pdf: Any, manifest: Mapping[str, Any]) -> None:
    pdf.set_font("board", "", 8)
    pdf.set_xy(MARGIN, pdf.h - MARGIN - 4)
    pdf.cell(0, 4, f"{manifest['project']}  ·  version {int(manifest['version']):04d}  ·  "
                   f"page {pdf.page_no()} of {{nb}}")


def _panel(pdf: Any, version: Path, frame: Mapping[str, Any], cell: tuple[float, float, float, float],
           user_fonts: Sequence[Path]) -> None:
    from storyboard.deliver.export import frame_image

    x, y, width, height = cell
    pad = 3.0
    box_w = width - 2 * pad
    box_h = height - 2 * pad - CAPTION_LINES * CAPTION_LINE - 2
    data = frame_image(version, dict(frame))
    aspect = _aspect(data)
    image_w = min(box_w, box_h * aspect)
    image_h = image_w / aspect
    pdf.image(io.BytesIO(data), x + pad, y + pad, image_w, image_h)
    pdf.set_draw_color(200)
    pdf.rect(x + pad, y + pad, image_w, image_h)
    top = y + pad + image_h + 1.5
    lines = _caption(pdf, frame, box_w, user_fonts)
    for number, (text, bold) in enumerate(lines[:CAPTION_LINES]):
        pdf.set_font("board", "B" if bold else "", CAPTION_SIZE)
        pdf.set_xy(x + pad, top + number * CAPTION_LINE)
        pdf.cell(box_w, CAPTION_LINE, text)


def _aspect(data: bytes) -> float:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.width / max(1, image.height)


def _caption(pdf: Any, frame: Mapping[str, Any], width: float,
             user_fonts: Sequence[Path]) -> list[tuple[str, bool]]:
    """(line, bold) pairs: the panel's head, then its texts wrapped to the panel (without what no
    font can draw: it is reported instead)."""
    duration = frame.get("duration")
    status = str(frame.get("status", ""))
    if frame.get("approval"):
        status += ", approved" if status else "approved"
    head = "  ·  ".join(part for part in (f"#{frame.get('index', '')}", str(frame.get("shot", "")),
                                           f"{duration:g} s" if duration is not None else "", status) if part)
    lines = [(head, True), (str(frame["address"]), False)]
    pdf.set_font("board", "", CAPTION_SIZE)
    for text in _texts(frame)[1:]:
        missing = undrawable(text, user_fonts)
        if missing:
            text = "".join(char for char in text if char not in missing)
        wrapped = pdf.multi_cell(width, CAPTION_LINE, text, dry_run=True, output="LINES")
        lines += [(line, False) for line in wrapped[:2]]
    return lines


def _texts(frame: Mapping[str, Any]) -> list[str]:
    """What a panel says, in order: address, action, dialogue, notes, characters."""
    texts = [str(frame["address"]), str(frame.get("action", ""))]
    if frame.get("dialogue"):
        texts.append(f"“{frame['dialogue']}”")
    if frame.get("notes"):
        texts.append(f"Notes: {frame['notes']}")
    if frame.get("characters"):
        texts.append(f"Characters: {', '.join(str(c) for c in frame['characters'])}")
    return [text for text in texts if text]


def _fit(pdf: Any, text: str, width: float) -> str:
    """`text` cut (with …) to fit one line of `width`: fpdf2 wraps it once, the first line is kept."""
    lines = pdf.multi_cell(width - pdf.get_string_width(" …"), 6, text, dry_run=True, output="LINES")
    return lines[0] if len(lines) <= 1 else f"{lines[0]} …"
