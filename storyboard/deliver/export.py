"""Deliverables from a version: a printable PDF storyboard and a contact-sheet PNG."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storyboard.deliver.pdf import PdfDocument, PdfPage
from storyboard.images import thumbnail

MARGIN = 28.0
HEADER = 30.0
CAPTION_SIZE = 8.0
CAPTION_LINES = 5


def frame_image(version: Path, frame: dict[str, Any]) -> bytes:
    """The frame's thumbnail JPEG (made from the full image when the version has none)."""
    thumb = version / str(frame.get("thumbnail", ""))
    if frame.get("thumbnail") and thumb.is_file():
        return thumb.read_bytes()
    return thumbnail(version / frame["path"])


def pdf_storyboard(version: Path, manifest: dict[str, Any], per_page: int = 6) -> bytes:
    """A storyboard PDF: `per_page` panels per A4 landscape page, captions under each."""
    from PIL import Image

    frames = manifest["frames"]
    columns = max(1, math.ceil(math.sqrt(per_page * 1.5)))
    rows = max(1, math.ceil(per_page / columns))
    document = PdfDocument(title=f"{manifest['project']} v{manifest['version']:04d}")
    pages = max(1, math.ceil(len(frames) / per_page))
    for page_number in range(pages):
        page = document.new_page()
        header = (f"{manifest['project']}  ·  version {manifest['version']:04d}  ·  "
                  f"page {page_number + 1} of {pages}")
        page.text(MARGIN, page.height - MARGIN - 10, 11, header, bold=True)
        cell_w = (page.width - 2 * MARGIN) / columns
        cell_h = (page.height - 2 * MARGIN - HEADER) / rows
        for slot, frame in enumerate(frames[page_number * per_page:(page_number + 1) * per_page]):
            x = MARGIN + (slot % columns) * cell_w
            top = page.height - MARGIN - HEADER - (slot // columns) * cell_h
            data = frame_image(version, frame)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
            image_index = document.add_jpeg(data, width, height)
            _panel(page, image_index, width / height, frame, x, top, cell_w, cell_h)
    return document.to_bytes()


def _panel(page: PdfPage, image: int, aspect: float, frame: dict[str, Any], x: float, top: float,
           cell_w: float, cell_h: float) -> None:
    pad = 6.0
    caption_h = CAPTION_LINES * (CAPTION_SIZE + 2) + 4
    box_w, box_h = cell_w - 2 * pad, cell_h - 2 * pad - caption_h
    width = min(box_w, box_h * aspect)
    height = width / aspect
    image_y = top - pad - height
    page.image(image, x + pad, image_y, width, height)
    page.rectangle(x + pad, image_y, width, height)
    y = image_y - CAPTION_SIZE - 3
    for number, line in enumerate(caption_lines(frame, box_w)):
        page.text(x + pad, y, CAPTION_SIZE, line, bold=number == 0)
        y -= CAPTION_SIZE + 2


def caption_lines(frame: dict[str, Any], width: float) -> list[str]:
    """Number, shot and address; action; dialogue; duration — wrapped to the panel."""
    chars = max(10, int(width / (CAPTION_SIZE * 0.52)))
    title = " · ".join(str(part) for part in (frame.get("index", ""), frame.get("shot", ""), frame["address"])
                       if part)
    lines = [title]
    if frame.get("action"):
        lines += textwrap.wrap(str(frame["action"]), chars)[:2]
    if frame.get("dialogue"):
        lines += textwrap.wrap(f"“{frame['dialogue']}”", chars)[:1]
    if frame.get("duration") is not None:
        lines.append(f"{frame['duration']:g} s")
    return lines[:CAPTION_LINES]


def contact_sheet(version: Path, frames: Sequence[dict[str, Any]], columns: int = 6,
                  cell_width: int = 320) -> bytes:
    """One PNG: every frame's thumbnail in a grid, its address under it."""
    from PIL import Image, ImageDraw, ImageFont

    label_h, image_h = 22, round(cell_width * 9 / 16)
    rows = max(1, math.ceil(len(frames) / columns))
    sheet = Image.new("RGB", (columns * cell_width, rows * (image_h + label_h)), (24, 24, 26))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    for slot, frame in enumerate(frames):
        x, y = (slot % columns) * cell_width, (slot // columns) * (image_h + label_h)
        with Image.open(io.BytesIO(frame_image(version, frame))) as image:
            picture = image.convert("RGB")
        picture.thumbnail((cell_width - 8, image_h - 8))
        sheet.paste(picture, (x + (cell_width - picture.width) // 2, y + (image_h - picture.height) // 2))
        draw.text((x + 6, y + image_h + 3), frame["address"], fill=(235, 235, 230), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
