"""A no-op `storyboard plan` against its floor, and how fast the CLI starts.

    python -m bench.plan_noop [--frames 100 1000 10000] [--repeat 5] [--variants]

For each size: a generated project, applied once with the local provider (kept under
bench/.work/ for the next run). Then three commands run alternately: `storyboard plan`
(nothing to do) with the user cache warm, the same with an empty cache (a fresh CI
machine), and `python -m bench.floor` (parse + render + hash only). The fastest of
each is compared, and a first plan of the same project with no lockfile and no versions
(everything to create: a team's first run), cold. Then `storyboard --help`, `validate` and
`plan` on the bundled example beside Python starting and importing the libraries they need,
`plan` with an empty user cache from the checkout and from this commit's wheel installed, and
the slowest imports of `storyboard validate` (python -X importtime). With --variants the
projects have 2 locales × 3 formats (a master): 10,000 frames are 60,000 expanded frames.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.make_project import make_project
from bench.measure import REPO, WORK, Sample, best, measured_env, python, run, storyboard, table

EXAMPLE = REPO / "examples" / "coffee-launch"


def applied_project(frames: int, variants: bool = False) -> Path:
    """A fully applied project of `frames` frames (made once, then reused)."""
    root = WORK / (f"noop-{frames}-variants" if variants else f"noop-{frames}")
    if not (root / "storyboard.lock").exists():
        make_project(root, frames, variants=variants)
    elif subprocess.run(storyboard("-q", "plan", "--detailed-exitcode"), cwd=root, env=measured_env(),
                        capture_output=True, check=False).returncode == 0:
        return root  # made by an earlier run, and still a no-op for this build
    print(f"  applying {frames} frames with the local provider …", file=sys.stderr, flush=True)
    run(storyboard("-q", "apply", "--auto-approve"), cwd=root)
    return root


def unapplied_project(frames: int, variants: bool = False) -> Path:
    """The same generated project as `applied_project`'s, never applied: no lockfile, no out/."""
    root = WORK / (f"first-{frames}-variants" if variants else f"first-{frames}")
    if not (root / "storyboard.yaml").exists():
        make_project(root, frames, variants=variants)
    return root


def noop(frames: int, repeat: int, variants: bool = False) -> tuple[Sample, Sample, Sample, Sample]:
    """(warm plan, cold plan, floor, cold first plan): warm reuses the user cache (parsed YAML,
    compiled checks and templates) as a developer's machine does; cold starts from an empty one,
    as a fresh CI machine does; the first plan is of the project before it was ever applied."""
    root = applied_project(frames, variants)
    first_root = unapplied_project(frames, variants)
    warm: list[Sample] = []
    cold: list[Sample] = []
    floors: list[Sample] = []
    first: list[Sample] = []
    for _ in range(repeat):  # alternate, so all of them see the same machine
        warm.append(run(storyboard("plan", "--detailed-exitcode"), cwd=root))
        with tempfile.TemporaryDirectory() as empty:
            cold.append(run(storyboard("plan", "--detailed-exitcode"), cwd=root,
                            env={"STORYBOARD_CACHE_DIR": empty}))
        floors.append(run(python("-m", "bench.floor", root), cwd=REPO))
        with tempfile.TemporaryDirectory() as empty:
            first.append(run(storyboard("plan", "--detailed-exitcode"), cwd=first_root,
                             env={"STORYBOARD_CACHE_DIR": empty}))
    for sample in (*warm, *cold):
        assert "No changes" in sample.output, sample.output
    assert all(f"{frames} to create" in sample.output for sample in first) or variants, first[0].output
    return best(warm), best(cold), best(floors), best(first)


STARTS = {
    "python -c pass (the interpreter alone)": python("-c", "pass"),
    "python -c 'import click' (what --help cannot do without)": python("-c", "import click"),
    "python importing click, yaml, jinja2, fastjsonschema (what a plan cannot do without)":
        python("-c", "import click, yaml, jinja2, fastjsonschema, hashlib"),
    "storyboard --help": storyboard("-C", EXAMPLE, "--help"),
    "storyboard validate": storyboard("-C", EXAMPLE, "validate"),
    "storyboard plan": storyboard("-C", EXAMPLE, "plan"),
}


def startup(repeat: int) -> list[tuple[str, Sample]]:
    """STARTS, and `plan` with an empty user cache (a fresh CI machine) from the source checkout and
    from this commit's wheel installed (which carries the schema checks: hatch_build.py)."""
    site = installed_wheel()
    cold = {"storyboard plan, empty user cache, source checkout (pip install -e)": {},
            "storyboard plan, empty user cache, the wheel installed (pip install)": {"PYTHONPATH": str(site)}}
    samples: dict[str, list[Sample]] = {label: [] for label in [*STARTS, *cold]}
    for _ in range(repeat):  # alternating, so each sees the same moments of the machine
        for label, command in STARTS.items():
            samples[label].append(run(command))
        for label, env in cold.items():
            with tempfile.TemporaryDirectory() as empty:
                # cwd: `python -m` puts the folder it runs in first on the path (here: not the checkout)
                sample = run(storyboard("plan"), cwd=EXAMPLE, env={**env, "STORYBOARD_CACHE_DIR": empty})
                samples[label].append(sample)
    return [(label, best(found)) for label, found in samples.items()]


def installed_wheel() -> Path:
    """This checkout built as a wheel and installed into a folder of bench/.work (pip compiles it)."""
    dist, site = WORK / "wheel-dist", WORK / "wheel-site"
    for folder in (dist, site):
        shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(dist), str(REPO)], check=True, capture_output=True)
    wheel = next(dist.glob("storyboard_iac-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                    str(wheel)], check=True, capture_output=True)
    return site


def slowest_imports(count: int = 6) -> list[tuple[str, float]]:
    """The modules with the largest cumulative import time in `storyboard validate`."""
    command = [sys.executable, "-X", "importtime", "-m", "storyboard", "-C", str(EXAMPLE), "validate"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=measured_env())
    times = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if match and len(match.group(2)) <= 2:  # top-level imports only
            times.append((match.group(3), int(match.group(1)) / 1e6))
    return sorted(times, key=lambda item: -item[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variants", action="store_true", help="2 locales × 3 formats per frame")
    parser.add_argument("--no-startup", action="store_true", help="only the plans")
    args = parser.parse_args()
    rows = []
    per_frame: dict[int, float] = {}
    for frames in args.frames:
        plan, cold, floor, first = noop(frames, args.repeat, args.variants)
        per_frame[frames] = cold.wall / frames
        rows.append((frames, f"{plan.wall:.3f}", f"{plan.cpu:.3f}", f"{plan.peak_mb:.0f}",
                     f"{cold.wall:.3f}", f"{cold.cpu:.3f}", f"{cold.peak_mb:.0f}", f"{floor.wall:.3f}",
                     f"{floor.cpu:.3f}", f"**{plan.wall / floor.wall:.2f}**",
                     f"**{cold.wall / floor.wall:.2f}**",
                     f"{cold.cpu / floor.cpu:.2f}", f"{first.wall:.3f}", f"{first.peak_mb:.0f}",
                     f"**{first.wall / floor.wall:.2f}**", f"{cold.wall / frames * 1000:.3f}"))
    print("\nNo-op plan against its floor (fastest of", args.repeat, "runs each, interleaved; CPU includes"
          " the YAML helper process)\n")
    print(table(["frames", "plan wall s", "plan CPU s", "plan peak MB", "cold plan wall s", "cold plan CPU s",
                 "cold peak MB", "floor wall s", "floor CPU s", "plan / floor", "cold plan / floor",
                 "cold CPU / floor CPU", "first plan (no lockfile, cold) wall s", "first plan peak MB",
                 "first plan / floor", "cold ms per frame"], rows))
    sizes = sorted(per_frame)
    if len(sizes) > 1:
        low, high = sizes[-2], sizes[-1]
        print(f"\nGrowth {low} → {high} frames: time per frame × {per_frame[high] / per_frame[low]:.2f} "
              "(1.00 is linear; start-up weighs on the small sizes)")
    if args.no_startup:
        return
    print("\nStart-up on the bundled example\n")
    starts = [(label, f"{s.wall:.3f}", f"{s.cpu:.3f}", f"{s.peak_mb:.0f}")
              for label, s in startup(args.repeat)]
    print(table(["command", "wall s", "CPU s", "peak MB"], starts))
    print("\nSlowest top-level imports of `storyboard validate` (python -X importtime)\n")
    imports = [(name, f"{seconds:.3f}") for name, seconds in slowest_imports()]
    print(table(["module", "cumulative s"], imports))


if __name__ == "__main__":
    main()
