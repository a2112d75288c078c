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

What a plan cannot do without, apply adds: a complete version folder (every file of the
latest version hard-linked into new folders, made durable) and the whole lockfile written again. That
floor is measured in a process of its own (`python -m bench.one_change --floor ROOT`: the
links and folders, the lockfile's entries encoded as apply writes them, indented, and as one
compact line per frame), so the table says how much of apply's overhead beyond its plan is
what any complete version costs, and how much is storyboard's own work. apply links the frames
it does not regenerate while the provider works, and copies the lockfile's unchanged entries
from the one it wrote before, so with a slow enough provider (`--latency 5`) its overhead
beyond the plan can be less than that floor.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.measure import REPO, WORK, best, fresh_copy, python, run, storyboard, table
from bench.plan_noop import applied_project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        print(json.dumps(version_floor(args.floor)))
        return
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
        floor = json.loads(run(python("-m", "bench.one_change", "--floor", root), cwd=REPO).output)
        rows.append((summary["regenerate"], summary["requests"], submitted, generated, plan, apply,
                     "No changes" in again.output, added, gc, with_two - left, floor))
    regenerate, requests, submitted, generated, _, _, clean, added, _, freed, _ = rows[0]
    plan = best([row[4] for row in rows])
    apply = best([row[5] for row in rows])
    gc = best([row[8] for row in rows])
    print(f"\nOne edited frame in {args.frames} (fastest of {args.repeat}; "
          f"provider latency {args.latency} s)\n")
    print(table(["plan: regenerate", "plan: requests", "apply: jobs submitted", "frames generated",
                 "plan wall s", "apply wall s", "apply CPU s", "apply overhead s", "no changes after"],
                [(regenerate, requests, submitted, generated, f"{plan.wall:.3f}", f"{apply.wall:.3f}",
                  f"{apply.cpu:.3f}", f"**{apply.wall - args.latency:.3f}**", clean)]))
    floors = [row[10] for row in rows]
    links, lock_text = min(f["links"] for f in floors), min(f["lock_indented"] for f in floors)
    beyond = apply.wall - args.latency - plan.wall
    print(f"\nWhat apply adds to its plan (overhead − plan wall), against what any complete version costs "
          f"(each floor the fastest of {args.repeat}, in a process of its own)\n")
    print(table(["overhead − plan s", "what 1.5 × allows beyond the plan (0.5 × plan) s",
                 "floor: link every file, make its folders s",
                 "floor: lockfile encoded, indented (as written) s", "floor: one compact line per frame s",
                 "floor total s", "beyond the floor s (< 0: done while the provider worked)",
                 "ratio if only the floor were added"],
                [(f"{beyond:.3f}", f"{plan.wall / 2:.3f}", f"{links:.3f}", f"{lock_text:.3f}",
                  f"{min(f['lock_lines'] for f in floors):.3f}", f"{links + lock_text:.3f}",
                  f"{beyond - links - lock_text:.3f}",
                  f"**{(plan.wall + links + lock_text) / plan.wall:.2f}**")]))
    print(f"\nVersions on disk: bytes the new version adds to out/ (1 of {args.frames} frames new; "
          "a file linked from an older version adds nothing)\n")
    kinds = ["images", "thumbnails", "manifests", "pages", "other"]
    print(table(["total added", *kinds, "gc --keep 1 wall s", "bytes gc freed"],
                [(f"{sum(added.values()):,}", *(f"{added.get(kind, 0):,}" for kind in kinds),
                  f"{gc.wall:.3f}", f"{freed:,}")]))


def version_floor(root: Path) -> dict[str, float]:
    """Seconds for what any complete version of `root` costs beside its plan: every file of the
    latest version hard-linked into new folders and made durable, and the lockfile's entries encoded."""
    from storyboard.state.lockfile import read_lock

    latest = root / "out" / "latest"
    files = [(directory, name) for directory, _, names in os.walk(latest, followlinks=True) for name in names]
    with tempfile.TemporaryDirectory(dir=root / "out") as temp:
        started = time.perf_counter()
        made: set[str] = set()
        for directory, name in files:
            target = os.path.join(temp, os.path.relpath(directory, latest))  # noqa: PTH118
            if target not in made:
                os.makedirs(target, exist_ok=True)  # noqa: PTH103
                made.add(target)
            os.link(os.path.join(directory, name), os.path.join(target, name))  # noqa: PTH118
        os.sync()  # durable before `latest` could move, as apply makes it
        links = time.perf_counter() - started
    lock = read_lock(root / "storyboard.lock")
    started = time.perf_counter()
    lock.to_bytes()
    indented = time.perf_counter() - started
    started = time.perf_counter()
    entries = {address: entry.to_json() for address, entry in lock.frames.items()}
    lines = ",\n".join(f"    {json.dumps(address)}: {json.dumps(entry, ensure_ascii=False, sort_keys=True)}"
                        for address, entry in sorted(entries.items()))
    f"{{\n  \"frames\": {{\n{lines}\n  }}\n}}\n".encode()
    return {"links": links, "lock_indented": indented, "lock_lines": time.perf_counter() - started}


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
