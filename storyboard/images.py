"""Recognising image files by their bytes."""

from __future__ import annotations

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
