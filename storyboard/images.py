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
    at = _first_chunk(data, b"IDAT")  # before the pixels, where every reader looks
    if at is None:
        return data
    head = b"".join(_chunks_before(data, at, skip=b"iTXt" + PROVENANCE_KEY.encode() + b"\0"))
    return head + chunk + data[at:]  # an earlier provenance chunk is replaced, not repeated


def _first_chunk(data: bytes, kind: bytes) -> int | None:
    """Offset of the first PNG chunk of type `kind`."""
    import struct

    offset = 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        if data[offset + 4:offset + 8] == kind:
            return offset
        offset += 12 + length
    return None


def _chunks_before(data: bytes, end: int, skip: bytes) -> list[bytes]:
    """The signature and each chunk before offset `end`, less those whose type+data start with `skip`."""
    import struct

    parts, offset = [data[:8]], 8
    while offset < end:
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        if not data.startswith(skip, offset + 4):
            parts.append(data[offset:offset + 12 + length])
        offset += 12 + length
    return parts


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
    import io

    from PIL import Image

    with Image.open(source) as image:  # type: ignore[arg-type]
        image.draft("RGB", (width, width))  # JPEG sources decode at a reduced scale
        copy = image.convert("RGB")
    copy.thumbnail((width, width * 4))
    buffer = io.BytesIO()
    copy.save(buffer, format="JPEG", quality=82, optimize=True, progressive=True)
    return buffer.getvalue()
