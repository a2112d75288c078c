"""The offline path: `storyboard apply` with the local provider against Pillow alone.

    python -m bench.local_apply [--frames 1000] [--repeat 3]

What users' own CI runs. The floor (`python -m bench.local_apply --floor ROOT`, a process
of its own) draws the same placeholders with the local provider's drawing code
(`draw_placeholder`: Pillow calls and nothing else), which encodes each as PNG and its page
thumbnail as JPEG from the picture in memory, one after another, timing only that (the
frames' captions and fingerprints are worked out before the clock starts). Storyboard's apply
is the whole command on a fresh copy of the project: start, load, plan, draw, store, write the
version, the pages and the lockfile. Then one more apply runs in this process, its CPU per frame
split into drawing, keeping images, writing the version and the rest (bench.measure.timed_parts):
the library's apply, which draws in threads (`storyboard apply` draws in a process per core once
a run has more than 96 frames). A second floor draws the same in a pool of processes, one per
core, their start included: what Pillow alone can do on this machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from bench.make_project import make_project
from bench.measure import ASSEMBLY, WORK, best, fresh_copy, python, run, storyboard, table, timed_parts
from storyboard.machine import tune_gc

# where a local apply's CPU goes, each part thread CPU around the functions that do it
PARTS = {
    "drawing and encoding placeholders": [("storyboard.providers.placeholders", "draw_placeholder")],
    "keeping images durably (store, journal)": [("storyboard.state.journal:Journal", "keep_images")],
    "writing the version, the store's index, the lockfile": [
        *ASSEMBLY, ("storyboard.run.apply", "write_lock"),
        ("storyboard.state.store:ImageStore", "record")],
}


def floor(root: Path, processes: bool) -> None:
    """Print the seconds (wall, CPU) Pillow alone takes to draw, encode and thumbnail every frame:
    one after another, or (`processes`) in a pool of spawned processes, one per core, its start
    included (as apply pays it)."""
    import storyboard as api
    from storyboard.providers.placeholders import draw_placeholder

    plan = api.plan(api.load(root))
    work = [(spec.address, spec.fingerprint, spec.prompt, batch.size) for batch in plan.batches
            for spec in batch.specs]
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    if processes:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        cores = len(os.sched_getaffinity(0))
        with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(draw_placeholder, *zip(*work, strict=True), chunksize=4))
    else:
        for address, fingerprint, caption, size in work:
            draw_placeholder(address, fingerprint, caption, size)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before, strict=True))
    print(f"{len(work)} {wall:.4f} {cpu:.4f}")


def split(source: Path, frames: int) -> str:
    """One in-process apply of a fresh copy, its CPU per frame split into PARTS and the rest."""
    import resource

    import storyboard as api

    root = fresh_copy(source, WORK / f"local-apply-{frames}")
    plan = api.plan(api.load(root))
    before = resource.getrusage(resource.RUSAGE_SELF)
    with timed_parts(PARTS) as parts:
        result = api.apply(plan)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    per_frame = 1000 / max(len(result.generated), 1)
    spent = parts()
    rows = [(label, f"{seconds * per_frame:.2f}") for label, seconds in spent.items()]
    rest = cpu - sum(spent.values())
    rows.append(("the rest: the event loop, the runner, threads", f"{rest * per_frame:.2f}"))
    rows.append(("**apply (after its plan), in this process**", f"**{cpu * per_frame:.2f}**"))
    return table(["part", "CPU ms per frame"], rows)


def main() -> None:
    tune_gc()  # the collector as storyboard's command line sets it: floors and client alike
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor-processes", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-split", action="store_true", help="skip the in-process split of apply's CPU")
    args = parser.parse_args()
    if args.floor or args.floor_processes:
        floor(args.floor or args.floor_processes, processes=bool(args.floor_processes))
        return
    source = WORK / f"local-src-{args.frames}"
    if not (source / "storyboard.yaml").exists():
        make_project(source, args.frames)
    applies, floors, pooled = [], [], []
    for attempt in range(args.repeat):  # alternating, so all see the same moments of the machine
        root = fresh_copy(source, WORK / f"local-apply-{args.frames}")
        applies.append(run(storyboard("-q", "apply", "--auto-approve"), cwd=root))
        count, wall, cpu = run(python("-m", "bench.local_apply", "--floor", source)).output.split()[-3:]
        floors.append((int(count), float(wall), float(cpu)))
        _, wall, cpu = run(python("-m", "bench.local_apply", "--floor-processes", source)).output.split()[-3:]
        pooled.append((float(wall), float(cpu)))
        print(f"attempt {attempt + 1}: apply {applies[-1].wall:.2f} s, floor {floors[-1][1]:.2f} s, "
              f"in a process per core {pooled[-1][0]:.2f} s", file=sys.stderr)
    apply = best(applies)
    images, floor_wall, floor_cpu = min(floors, key=lambda item: item[1])
    pool_wall, pool_cpu = min(pooled)
    print(f"\nA local apply of {args.frames} frames ({images} placeholders) against Pillow alone "
          f"(fastest of {args.repeat}, alternating)\n")
    print(table(["command", "wall s", "CPU s", "peak MB", "ms per frame (wall)", "this / floor (wall)",
                 "this / floor (CPU)"], [
        ("Pillow alone: draw, PNG, thumbnail (the floor)", f"{floor_wall:.2f}", f"{floor_cpu:.2f}", "",
         f"{floor_wall / images * 1000:.2f}", "**1.00**", "**1.00**"),
        ("`storyboard apply` (local provider)", f"{apply.wall:.2f}", f"{apply.cpu:.2f}",
         f"{apply.peak_mb:.0f}", f"{apply.wall / images * 1000:.2f}", f"**{apply.wall / floor_wall:.2f}**",
         f"**{apply.cpu / floor_cpu:.2f}**"),
        (f"Pillow alone in a process per core ({len(os.sched_getaffinity(0))}), their start included",
         f"{pool_wall:.2f}", f"{pool_cpu:.2f}", "", f"{pool_wall / images * 1000:.2f}",
         f"{pool_wall / floor_wall:.2f}", f"{pool_cpu / floor_cpu:.2f}"),
    ]))
    print(f"\n`storyboard apply` against Pillow alone in a process per core: "
          f"**{apply.wall / pool_wall:.2f} ×** in wall time, **{apply.cpu / pool_cpu:.2f} ×** in CPU")
    if not args.no_split:
        print("\nWhere a local apply's CPU goes (one more apply, in this process)\n")
        print(split(source, args.frames))


if __name__ == "__main__":
    main()
