"""One edited frame in a large applied project: one request, and what apply costs around it.

    python -m bench.one_change [--frames 10000] [--latency 0.5]

A copy of the applied project from bench/plan_noop.py (images hard-linked) gets a
simulated provider latency (the local provider's `latency`, which no fingerprint
covers), one untimed edit and apply (so the version before is written by this build,
whatever wrote the cached project), and then the measured edit of one frame. Then
`plan` must show one frame and one request, and `apply` must submit one job; its
overhead is its wall time minus that latency.
Versions on disk: the bytes the new version adds to out/ (each file counted once
however many versions link it, as `du` does), and `storyboard gc --keep 1` timed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from bench.measure import WORK, best, fresh_copy, run, storyboard, table
from bench.plan_noop import applied_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = applied_project(args.frames)
    rows = []
    for attempt in range(args.repeat):
        root = fresh_copy(source, WORK / f"one-change-{args.frames}")
        config = root / "storyboard.yaml"
        latency = f"  options: {{latency: {args.latency}}}\n"
        config.write_text(config.read_text().replace("  parallelism: 8\n", f"  parallelism: 8\n{latency}"))
        scene_files = sorted((root / "scenes").glob("*.yaml"))
        # first a version written by this build (the cached project may be older), then the edit
        edit_first_action(scene_files[0], f"warm-up {attempt}")
        run(storyboard("-q", "apply", "--auto-approve"), cwd=root)
        edit_first_action(scene_files[len(scene_files) // 2], f"edited {attempt}")
        plan = run(storyboard("plan", "--json"), cwd=root)
        summary = json.loads(plan.output)["summary"]
        before = files_by_inode(root / "out")
        apply = run(storyboard("apply", "--auto-approve", "--json"), cwd=root)
        added = added_bytes(before, files_by_inode(root / "out"))
        events = [json.loads(line) for line in apply.output.splitlines() if line.startswith("{")]
        submitted = sum(1 for e in events if e["event"] == "job_submitted")
        generated = sum(1 for e in events if e["event"] == "frame_done")
        again = run(storyboard("plan", "--detailed-exitcode"), cwd=root)
        with_two = sum(size for size, _ in files_by_inode(root / "out").values())
        gc = run(storyboard("gc", "--keep", "1"), cwd=root)
        left = sum(size for size, _ in files_by_inode(root / "out").values())
        rows.append((summary["regenerate"], summary["requests"], submitted, generated, plan, apply,
                     "No changes" in again.output, added, gc, with_two - left))
    regenerate, requests, submitted, generated, _, _, clean, added, _, freed = rows[0]
    plan = best([row[4] for row in rows])
    apply = best([row[5] for row in rows])
    gc = best([row[8] for row in rows])
    print(f"\nOne edited frame in {args.frames} (fastest of {args.repeat}; "
          f"provider latency {args.latency} s)\n")
    print(table(["plan: regenerate", "plan: requests", "apply: jobs submitted", "frames generated",
                 "plan wall s", "apply wall s", "apply CPU s", "apply overhead s", "no changes after"],
                [(regenerate, requests, submitted, generated, f"{plan.wall:.3f}", f"{apply.wall:.3f}",
                  f"{apply.cpu:.3f}", f"**{apply.wall - args.latency:.3f}**", clean)]))
    print(f"\nVersions on disk: bytes the new version adds to out/ (1 of {args.frames} frames new; "
          "a file linked from an older version adds nothing)\n")
    kinds = ["images", "thumbnails", "manifests", "pages", "other"]
    print(table(["total added", *kinds, "gc --keep 1 wall s", "bytes gc freed"],
                [(f"{sum(added.values()):,}", *(f"{added.get(kind, 0):,}" for kind in kinds),
                  f"{gc.wall:.3f}", f"{freed:,}")]))


def edit_first_action(scene_file: Path, words: str) -> None:
    text = scene_file.read_text()
    first_action = text.index("action: ") + len("action: ")
    scene_file.write_text(text[:first_action] + f"{words} " + text[first_action:])


def files_by_inode(folder: Path) -> dict[tuple[int, int], tuple[int, str]]:
    """(size, one path) of each inode under `folder`: hard links share one, as `du` counts."""
    found: dict[tuple[int, int], tuple[int, str]] = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)  # noqa: PTH118 - 20,000 files: no Path objects
            stat = os.lstat(path)
            found.setdefault((stat.st_dev, stat.st_ino), (stat.st_size, path))
    return found


def added_bytes(before: dict[tuple[int, int], tuple[int, str]],
                after: dict[tuple[int, int], tuple[int, str]]) -> dict[str, int]:
    """Bytes of the inodes that are new, by kind of file."""
    kinds: dict[str, int] = {}
    for inode, (size, path) in after.items():
        if inode not in before:
            parts = Path(path).parts
            kind = ("thumbnails" if "thumbs" in parts else "pages" if path.endswith(".html")
                    else "manifests" if path.endswith(("manifest.json", "scene.json")) else
                    "images" if path.endswith((".png", ".jpg", ".webp")) else "other")
            kinds[kind] = kinds.get(kind, 0) + size
    return kinds


if __name__ == "__main__":
    main()
