"""One edited frame in a large applied project: one request, and what apply costs around it.

    python -m bench.one_change [--frames 10000] [--latency 0.5]

A copy of the applied project from bench/plan_noop.py (images hard-linked) gets a
simulated provider latency (the local provider's `latency`, which no fingerprint
covers) and one edited frame. Then `plan` must show one frame and one request, and
`apply` must submit one job; its overhead is its wall time minus that latency.
"""

from __future__ import annotations

import argparse
import json

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
        config.write_text(config.read_text().replace("  parallelism: 8\n",
                                                     f"  parallelism: 8\n  latency: {args.latency}\n"))
        scene_files = sorted((root / "scenes").glob("*.yaml"))
        scene_file = scene_files[len(scene_files) // 2]
        text = scene_file.read_text()
        first_action = text.index("action: ") + len("action: ")
        scene_file.write_text(text[:first_action] + f"edited {attempt} " + text[first_action:])
        plan = run(storyboard("plan", "--json"), cwd=root)
        summary = json.loads(plan.output)["summary"]
        apply = run(storyboard("apply", "--auto-approve", "--json"), cwd=root)
        events = [json.loads(line) for line in apply.output.splitlines() if line.startswith("{")]
        submitted = sum(1 for e in events if e["event"] == "job_submitted")
        generated = sum(1 for e in events if e["event"] == "frame_done")
        again = run(storyboard("plan", "--detailed-exitcode"), cwd=root)
        rows.append((summary["regenerate"], summary["requests"], submitted, generated, plan, apply,
                     "No changes" in again.output))
    regenerate, requests, submitted, generated, _, _, clean = rows[0]
    plan = best([row[4] for row in rows])
    apply = best([row[5] for row in rows])
    print(f"\nOne edited frame in {args.frames} (fastest of {args.repeat}; "
          f"provider latency {args.latency} s)\n")
    print(table(["plan: regenerate", "plan: requests", "apply: jobs submitted", "frames generated",
                 "plan wall s", "apply wall s", "apply CPU s", "apply overhead s", "no changes after"],
                [(regenerate, requests, submitted, generated, f"{plan.wall:.3f}", f"{apply.wall:.3f}",
                  f"{apply.cpu:.3f}", f"**{apply.wall - args.latency:.3f}**", clean)]))


if __name__ == "__main__":
    main()
