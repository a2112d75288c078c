"""`storyboard export animatic`: an H.264 MP4 of a version, each frame held for its duration.

Frames in story order, each letterboxed into the video size and held for its `duration`
(`default_duration` for frames without one), optionally with a title card before each
scene and the dialogue burnt in with the bundled font. yuv420p, so browsers and editors
play it. Each board frame is drawn and converted once and handed to the encoder again for
every video frame it is held: the encoder's time goes to what changes.

PyAV (the `video` extra) carries the codec; without it the command says what to install.
The same version and options give the same bytes (x264 with one thread, no creation time).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from storyboard.errors import UserError
from storyboard.fonts import pillow_font

INSTALL_HINT = "install the video extra: pip install 'storyboard-iac[video]' (PyAV, which carries the codec)"
TITLE_SECONDS = 2.0


@dataclass(frozen=True)
class AnimaticOptions:
    size: tuple[int, int] | None = None  # None: 1920 wide at the board's most common aspect
    fps: int = 24
    default_duration: float = 2.0
    captions: bool = False
    titles: bool = False
    scenes: tuple[str, ...] = ()  # only these scene ids (all when empty)


@dataclass(frozen=True)
class Animatic:
    frames: int  # video frames written
    seconds: float
    size: tuple[int, int]
    board_frames: int


def write_animatic(version: Path, manifest: Mapping[str, Any], target: Path, options: AnimaticOptions,
                   on_frame: Callable[[int, int], None] | None = None) -> Animatic:
    """Encode the animatic of a version into `target` (an .mp4); `on_frame(done, total)` reports
    progress in board frames."""
    try:
        import av
    except ImportError:
        raise UserError("the animatic needs PyAV, which is not installed", hint=INSTALL_HINT) from None
    frames = [f for f in manifest.get("frames", []) if not options.scenes or f.get("scene") in options.scenes]
    if not frames:
        raise UserError("no frames to put in the animatic" + (" (check --scenes)" if options.scenes else ""))
    size = options.size or dominant_size(frames)
    titles = {str(s["id"]): str(s.get("title") or s["id"]) for s in manifest.get("scenes", [])}
    total = len(frames) + (len({f.get("scene") for f in frames}) if options.titles else 0)
    written = 0
    with av.open(str(target), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=options.fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, options.fps)
        stream.codec_context.thread_count = 1
        stream.options = {"preset": "veryfast", "crf": "23", "threads": "1"}
        container.metadata.clear()
        for number, (picture, seconds) in enumerate(_shots(version, frames, titles, options), 1):
            frame = av.VideoFrame.from_image(letterbox(picture, size))  # type: ignore[no-untyped-call]
            frame = frame.reformat(format="yuv420p")
            for _ in range(max(1, round(seconds * options.fps))):
                frame.pts = written
                frame.time_base = Fraction(1, options.fps)
                container.mux(stream.encode(frame))
                written += 1
            if on_frame is not None:
                on_frame(number, total)
        container.mux(stream.encode(None))
    return Animatic(written, written / options.fps, size, len(frames))


def dominant_size(frames: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """1920 wide at the aspect most frames have (even height, as yuv420p needs)."""
    aspects = Counter(round((f.get("width") or 16) / max(1, f.get("height") or 9), 3) for f in frames)
    aspect = aspects.most_common(1)[0][0]
    height = max(2, round(1920 / aspect / 2) * 2)
    return 1920, height


def parse_size(text: str) -> tuple[int, int]:
    """`1280x720` as (1280, 720): even numbers, as yuv420p needs."""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 16 or int(height) < 16 \
            or int(width) % 2 or int(height) % 2 or int(width) > 7680 or int(height) > 4320:
        raise UserError(f"--size {text}: not WIDTHxHEIGHT with even numbers from 16 to 7680x4320",
                        hint="for example 1920x1080 or 1080x1920")
    return int(width), int(height)


def _shots(version: Path, frames: Sequence[Mapping[str, Any]], titles: Mapping[str, str],
           options: AnimaticOptions) -> Any:
    """(picture, seconds) pairs in order: title cards and frames."""
    from PIL import Image

    scene = None
    for frame in frames:
        if options.titles and frame.get("scene") != scene:
            scene = frame.get("scene")
            yield title_card(titles.get(str(scene), str(scene)), options.size or dominant_size(frames)), \
                TITLE_SECONDS
        with Image.open(version / str(frame["path"])) as image:
            picture = image.convert("RGB")
        if options.captions and frame.get("dialogue"):
            picture = with_caption(picture, f"“{frame['dialogue']}”")
        duration = frame.get("duration")
        yield picture, float(duration) if duration is not None else options.default_duration


def letterbox(picture: Any, size: tuple[int, int]) -> Any:
    """`picture` scaled to fit `size`, centred on black."""
    from PIL import Image

    width, height = size
    scale = min(width / picture.width, height / picture.height)
    fitted = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                            Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
    return canvas


def with_caption(picture: Any, text: str) -> Any:
    """The picture with `text` burnt in over a dark band at the bottom (wrapped, bundled font)."""
    from PIL import ImageDraw

    picture = picture.copy()
    draw = ImageDraw.Draw(picture, "RGBA")
    font = pillow_font(max(12, picture.height // 22))
    lines = _wrap(draw, text, font, picture.width * 0.9)[:3]
    line_height = font.size * 1.3
    band = line_height * len(lines) + font.size
    draw.rectangle((0, picture.height - band, picture.width, picture.height), fill=(0, 0, 0, 170))
    for number, line in enumerate(lines):
        width = draw.textlength(line, font=font)
        top = picture.height - band + font.size / 2 + number * line_height
        draw.text(((picture.width - width) / 2, top), line, font=font, fill=(255, 255, 255))
    return picture


def title_card(title: str, size: tuple[int, int]) -> Any:
    from PIL import Image, ImageDraw

    card = Image.new("RGB", size, (12, 12, 14))
    draw = ImageDraw.Draw(card)
    font = pillow_font(max(14, size[1] // 12), bold=True)
    width = draw.textlength(title, font=font)
    draw.text(((size[0] - width) / 2, size[1] / 2 - font.size / 2), title, font=font, fill=(240, 240, 235))
    return card


def _wrap(draw: Any, text: str, font: Any, width: float) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines

