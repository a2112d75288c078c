"""Deliverables from a version: the contact-sheet PNG (the PDF is pdf.py)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storyboard.fonts import pillow_font
from storyboard.images import thumbnail


def frame_image(version: Path, frame: dict[str, Any]) -> bytes:
    """The frame's thumbnail JPEG (made from the full image when the version has none)."""
    thumb = version / str(frame.get("thumbnail", ""))
    if frame.get("thumbnail") and thumb.is_file():
        return thumb.read_bytes()
    return thumbnail(version / frame["path"])


def contact_sheet(version: Path, frames: Sequence[dict[str, Any]], columns: int = 6,
                  cell_width: int = 320) -> bytes:
    """One PNG: every frame's thumbnail in a grid, its address under it."""
    from PIL import Image, ImageDraw

    label_h, image_h = 22, round(cell_width * 9 / 16)
    rows = max(1, math.ceil(len(frames) / columns))
    sheet = Image.new("RGB", (columns * cell_width, rows * (image_h + label_h)), (24, 24, 26))
    draw = ImageDraw.Draw(sheet)
    font = pillow_font(13)
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
