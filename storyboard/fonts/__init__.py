"""The fonts every deliverable draws text with: DejaVu Sans, shipped inside the package
(storyboard/fonts, with its licence), then the fonts a project names (`fonts:` in
storyboard.yaml) for what DejaVu cannot draw, such as CJK.

Text no font can draw is reported (see `undrawable`), never silently replaced by "?".
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

FOLDER = Path(__file__).resolve().parent
REGULAR = FOLDER / "DejaVuSans.ttf"
BOLD = FOLDER / "DejaVuSans-Bold.ttf"


@functools.cache
def pillow_font(size: int, bold: bool = False) -> FreeTypeFont:
    """The bundled font for Pillow drawings (placeholders, contact sheets)."""
    from PIL import ImageFont

    return ImageFont.truetype(str(BOLD if bold else REGULAR), size)


@functools.cache
def characters(font: Path) -> frozenset[int]:
    """The code points `font` has glyphs for (from its cmap)."""
    from fontTools.ttLib import TTFont

    with font.open("rb") as handle, TTFont(handle, lazy=True, fontNumber=0) as loaded:
        cmap = loaded.getBestCmap() or {}
    return frozenset(cmap)


def undrawable(text: str, fonts: Sequence[Path] = ()) -> str:
    """The characters of `text` (each once, in order) that neither DejaVu nor `fonts` can draw.

    Spaces and control characters need no glyph and are never reported.
    """
    covered = [characters(REGULAR), *(characters(font) for font in fonts)]
    missing: dict[str, None] = {}
    for char in text:
        if char.isspace() or unicodedata.category(char).startswith("C"):
            continue
        if not any(ord(char) in cover for cover in covered):
            missing[char] = None
    return "".join(missing)


def font_problem(file: Path) -> str | None:
    """Why `file` cannot be used as a font (None: it can)."""
    from fontTools.ttLib import TTFont, TTLibError

    try:
        with file.open("rb") as handle, TTFont(handle, lazy=True, fontNumber=0) as loaded:
            if not loaded.getBestCmap():
                return "has no character map"
    except (TTLibError, OSError, ValueError, AssertionError, KeyError) as error:
        return f"is not a TrueType or OpenType font ({str(error)[:80] or type(error).__name__})"
    return None
