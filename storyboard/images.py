"""Recognising image files by their bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def image_format(data: bytes) -> str | None:
    """'png', 'jpeg', 'webp' or 'gif' from the file's magic bytes; None if it is no image."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "gif": ".gif"}
FORMATS = {extension.lstrip("."): name for name, extension in EXTENSIONS.items()}  # "jpg" -> "jpeg"


def image_complete(data: bytes, image_format_name: str) -> bool:
    """Whether the bytes run to the format's end marker (a cut-off download does not)."""
    if image_format_name == "png":
        return data.endswith(b"IEND\xaeB`\x82")
    if image_format_name == "jpeg":
        return data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9")
    if image_format_name == "webp":
        return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data)
    if image_format_name == "gif":
        return data.rstrip(b"\0").endswith(b";")
    return False


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the image's header (Pillow reads no pixels for this)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return width, height


PROVENANCE_KEY = "storyboard"  # the PNG iTXt keyword holding the provenance JSON


def with_provenance(data: bytes, image_format_name: str, fields: dict[str, object]) -> bytes:
    """The image with `fields` (JSON) in an iTXt chunk before IEND; pixels are not re-encoded.

    Only PNG carries it for now; other formats come back unchanged.
    """
    import json
    import struct
    import zlib

    if image_format_name != "png" or not image_complete(data, "png"):
        return data
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()
    # keyword, NUL, not compressed, method 0, no language tag, no translated keyword, then the text
    body = PROVENANCE_KEY.encode() + b"\0" + b"\0\0" + b"\0" + b"\0" + text
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    chunks = list(_png_chunks(data))
    at = next((start for start, kind, _ in chunks if kind == b"IDAT"), None)  # before the pixels
    if at is None:
        return data
    ours = b"iTXt" + PROVENANCE_KEY.encode() + b"\0"  # an earlier provenance chunk is replaced
    kept = [data[start:end] for start, _, end in chunks if end <= at and not data.startswith(ours, start + 4)]
    return data[:8] + b"".join(kept) + chunk + data[at:]


def _png_chunks(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """(start, type, end) of each chunk of a PNG, in order."""
    import struct

    start = 8
    while start + 8 <= len(data):
        (length,) = struct.unpack(">I", data[start:start + 4])
        yield start, data[start + 4:start + 8], start + 12 + length
        start += 12 + length


def read_provenance(path: object) -> dict[str, object] | None:
    """The provenance fields of a PNG written by storyboard, read back with Pillow."""
    import json

    from PIL import Image

    with Image.open(path) as image:  # type: ignore[arg-type]
        text = image.info.get(PROVENANCE_KEY)
    return json.loads(text) if isinstance(text, str) else None


def thumbnail_or_none(data: bytes) -> bytes | None:
    """The thumbnail of image bytes, or None when Pillow cannot read them."""
    import io

    try:
        return thumbnail(io.BytesIO(data))
    except (OSError, ValueError, SyntaxError):  # what Pillow raises for bytes it cannot decode
        return None


def thumbnail(source: object, width: int = 480) -> bytes:
    """A JPEG at most `width` pixels wide, for pages that must load fast."""

    from PIL import Image

    with Image.open(source) as image:  # type: ignore[arg-type]
        image.draft("RGB", (width, width))  # JPEG sources decode at a reduced scale
        return jpeg_thumbnail(image.convert("RGB"), width)


def jpeg_thumbnail(image: PILImage, width: int = 480) -> bytes:
    """`thumbnail` of a picture already decoded to RGB (scaled down in place).

    Baseline, not progressive: progressive encoding took 3 x the CPU (3.3 ms against 1.1 ms for
    a 480 x 270 frame) to save 6% of the bytes of a file pages load from disk (bench/RESULTS.md).
    """
    import io

    image.thumbnail((width, width * 4))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82, optimize=True)
    return buffer.getvalue()
