"""What a placeholder costs to encode, by format: the choice behind the local provider's PNGs.

    python -m bench.placeholder_formats [--samples 200]

One placeholder as the local provider draws it (480 pixels wide, a frame's caption), encoded
`samples` times each way in this process: CPU ms and bytes. PNG at zlib levels 0, 1 (what the
provider writes), 3 and 6 (Pillow's default), and the page thumbnail as JPEG with and without
Pillow's `optimize` and `progressive`. Drawing it (text and frame, no encoding) is the last
row, for scale.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

from PIL import Image, ImageDraw

from storyboard.fonts import pillow_font
from storyboard.providers.placeholders import PNG_LEVEL, draw_placeholder

CAPTION = "A barista pours steamed milk into a cup, late morning light through the window. " * 3


def cpu_ms(encode: Callable[[], bytes], samples: int) -> tuple[float, int]:
    """CPU milliseconds per call and the bytes it returns."""
    started = time.process_time()
    for _ in range(samples):
        data = encode()
    return (time.process_time() - started) / samples * 1000, len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    drawn = draw_placeholder("01-morning/04-pour", "ab" * 32, CAPTION, "2848x1600")
    with Image.open(io.BytesIO(drawn.data)) as opened:
        picture = opened.convert("RGB")

    def encoded(**options: object) -> Callable[[], bytes]:
        def encode() -> bytes:
            buffer = io.BytesIO()
            picture.save(buffer, **options)  # type: ignore[arg-type]
            return buffer.getvalue()
        return encode

    def drawing() -> bytes:
        image = Image.new("RGB", picture.size, (100, 120, 140))
        draw = ImageDraw.Draw(image)
        draw.rectangle((8, 8, picture.width - 9, picture.height - 9), outline=(255, 255, 255), width=2)
        draw.text((20, 16), "01-morning/04-pour", fill=(255, 255, 255), font=pillow_font(22, bold=True))
        for line in range(6):
            draw.text((20, 50 + line * 18), CAPTION[:58], fill=(245, 245, 240), font=pillow_font(14))
        return b""

    rows: list[tuple[str, Callable[[], bytes]]] = [
        *((f"PNG, zlib level {level}" + (" (the provider's)" if level == PNG_LEVEL else "")
           + (" (Pillow's default)" if level == 6 else ""), encoded(format="PNG", compress_level=level))
          for level in (0, 1, 3, 6)),
        ("JPEG q82, optimize + progressive",
         encoded(format="JPEG", quality=82, optimize=True, progressive=True)),
        ("JPEG q82, optimize (the thumbnails')", encoded(format="JPEG", quality=82, optimize=True)),
        ("JPEG q82, neither", encoded(format="JPEG", quality=82)),
        ("drawing it, no encoding", drawing),
    ]
    print(f"One {picture.width} x {picture.height} placeholder, {args.samples} samples each\n")
    print("| encoding | CPU ms | bytes |")
    print("|---|---|---|")
    for label, encode in rows:
        milliseconds, size = cpu_ms(encode, args.samples)
        print(f"| {label} | {milliseconds:.2f} | {f'{size:,}' if size else ''} |")


if __name__ == "__main__":
    main()
