"""The floor of `storyboard export animatic`: the same frames encoded directly with PyAV.

    python -m bench.animatic_floor VERSION_FOLDER OUT.mp4 --size 1280x720 --fps 12 --seconds 1

What a user's own script would do, with nothing storyboard does besides: read each image of
the version in story order (from its manifest), fit it into the size, convert it once, and
hand it to the same encoder (libx264, the same preset and one thread) for as many video
frames as it is held.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from storyboard.machine import tune_gc


def main() -> None:
    tune_gc()  # the collector as storyboard's command line sets it: floors and client alike
    parser = argparse.ArgumentParser()
    parser.add_argument("version", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=1.0, help="for frames without a duration")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    root = json.loads((args.version / "manifest.json").read_text())
    frames = []
    for scene in root["scenes"]:
        frames += json.loads((args.version / scene["manifest"]).read_text())["frames"]
    with av.open(str(args.target), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=args.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"preset": "veryfast", "crf": "23", "threads": "1"}
        pts = 0
        for frame in frames:
            with Image.open(args.version / frame["path"]) as image:
                canvas = Image.new("RGB", (width, height))
                scale = min(width / image.width, height / image.height)  # up or down, as storyboard
                size = (round(image.width * scale), round(image.height * scale))
                fitted = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
                canvas.paste(fitted, ((width - fitted.width) // 2, (height - fitted.height) // 2))
            video = av.VideoFrame.from_image(canvas).reformat(format="yuv420p")
            for _ in range(round((frame.get("duration") or args.seconds) * args.fps)):
                video.pts, video.time_base = pts, Fraction(1, args.fps)
                container.mux(stream.encode(video))
                pts += 1
        container.mux(stream.encode(None))


if __name__ == "__main__":
    main()
