"""storyboard's command line keeps the frames it builds without walking them all again and again:
the garbage collector is set as mypy sets its own (storyboard.machine.tune_gc)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import MINIMAL_ROOT, build_tree

# counts the full collections (generation 2) of a `storyboard` run; "library" leaves the
# collector as CPython sets it, as for a program that imports storyboard
COUNTING = """
import atexit, gc, sys
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and full.append(1))
atexit.register(lambda: print(f"full collections: {len(full)}", file=sys.stderr))
if sys.argv[1] == "library":
    import storyboard.machine
    storyboard.machine.tune_gc = lambda: None
from storyboard.cli.commands import main
main(sys.argv[2:])
"""


def scene(number: int, frames: int) -> str:
    rows = [f"  - id: s{number}\n    frames:"]
    rows += [f"      - id: f{index}\n        shot: wide\n        action: street {number}-{index}"
             for index in range(frames)]
    return "scenes:\n" + "\n".join(rows) + "\n"


def full_collections(project: Path, collector: str) -> int:
    completed = subprocess.run([sys.executable, "-c", COUNTING, collector, "plan"], cwd=project,
                               capture_output=True, text=True, timeout=120, check=True)
    return int(completed.stderr.rsplit("full collections: ", 1)[1])


def test_a_plan_of_thousands_of_frames_makes_no_full_collection(tmp_path: Path) -> None:
    project = build_tree(tmp_path / "big", {"storyboard.yaml": MINIMAL_ROOT,
                                            **{f"scenes/s{n:02d}.yaml": scene(n, 100) for n in range(50)}})
    assert full_collections(project, "library") >= 1  # big enough that CPython's setting walks it all
    assert full_collections(project, "command line") == 0
