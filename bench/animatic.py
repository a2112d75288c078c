"""`storyboard export animatic` of a 1,000-frame board against PyAV encoding the same frames
directly (bench/animatic_floor.py), alternating, fastest of each.

    python -m bench.animatic [--frames 1000] [--repeat 3] [--size 1280x720] [--fps 12]
"""

from __future__ import annotations

import argparse
import sys

from bench.measure import WORK, best, python, run, storyboard, table
from bench.plan_noop import applied_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=12)
    args = parser.parse_args()
    root = applied_project(args.frames)
    version = root / "out" / "latest"
    out = WORK / "animatic"
    out.mkdir(parents=True, exist_ok=True)
    ours, floors = [], []
    for _ in range(args.repeat):
        ours.append(run(storyboard("-q", "export", "animatic", "-o", out / "board.mp4", "--size", args.size,
                                   "--fps", str(args.fps), "--default-duration", "1"), cwd=root))
        floors.append(run(python("-m", "bench.animatic_floor", version.resolve(), out / "floor.mp4",
                                 "--size", args.size, "--fps", str(args.fps), "--seconds", "1")))
    mine, floor = best(ours), best(floors)
    print(f"\nAnimatic of a {args.frames}-frame board at {args.size}, {args.fps} fps "
          f"(fastest of {args.repeat}, alternating)\n", file=sys.stderr)
    print(table(["command", "wall s", "CPU s", "peak MB", "this / floor (wall)"], [
        ["PyAV encoding the same frames directly (the floor)", f"{floor.wall:.2f}", f"{floor.cpu:.2f}",
         f"{floor.peak_mb:.0f}", "**1.00**"],
        ["`storyboard export animatic`", f"{mine.wall:.2f}", f"{mine.cpu:.2f}", f"{mine.peak_mb:.0f}",
         f"**{mine.wall / floor.wall:.2f}**"],
    ]))


if __name__ == "__main__":
    main()
