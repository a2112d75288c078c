"""Storyboard against the scripts a user would write instead, on the same fake service.

    python -m bench.baselines [--frames 1000] [--latency 0.5] [--parallelism 1 4 16 64]

Three clients make the same frames' images against the fake Atlas Cloud (its own process,
a fixed latency per prediction), first without faults, then with 10% of submits answered
429 (Retry-After: 1, whole seconds as HTTP allows; urllib3 refuses a fraction) and 5% of polls
503:

- storyboard `apply` (in this process) of the bundled example and of a generated project of
  `--frames` frames in sequential scenes, at each parallelism;
- the seed page's loop and a thread pool of `parallelism` workers doing the same with
  `requests` (bench/user_scripts.py), given each frame's rendered prompt and size.

Storyboard runs with its settings as shipped (the first poll after a second, then as long as
earlier sets took). Every client counts its requests at the fake (submits, polls, downloads,
uploads). The scripts wait 2 s between polls as the seed does (`--poll` changes that: a script
written to poll eagerly), so a frame costs them about ceil(latency / 2) × 2 s: they are run
on the first `--rounds` × parallelism frames (the seed loop on `--rounds` × 2 frames) and
their wall time and requests are scaled to all the frames (a frame costs each script the same
every time; the scaling is printed). Storyboard is always run on every frame.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import storyboard
from bench import user_scripts
from bench.apply_throughput import KEY, Fake, fake_server, fake_stats
from bench.make_project import make_project
from bench.measure import WORK, fresh_copy, table
from bench.user_scripts import Job, seed_loop, thread_pool

EXAMPLE = Path(__file__).parent.parent / "examples" / "coffee-launch"


@dataclass(frozen=True)
class Run:
    client: str
    parallelism: int | None
    frames: int  # made in this run
    wall: float
    requests: dict[str, int]  # by kind, at the fake
    scale: float = 1.0  # the scripts' runs on a sample: × this to all the frames
    failed: str = ""

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def example_project() -> Path:
    """The bundled example switched to Atlas Cloud (the fake), every setting as it ships."""
    root = WORK / "baselines-example-src"
    if not (root / "storyboard.yaml").exists():
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("out", ".storyboard", "storyboard.lock"))
        config = root / "storyboard.yaml"
        config.write_text(config.read_text().replace("  name: local ", "  name: atlascloud "))
    return root


def generated_project(frames: int) -> Path:
    """bench/make_project.py's campaign in sequential scenes on Atlas Cloud, default settings."""
    root = WORK / f"baselines-src-{frames}"
    if not (root / "storyboard.yaml").exists():
        make_project(root, frames, provider="atlascloud", all_sequential=True)
    return root


def jobs_of(root: Path) -> list[Job]:
    """Each frame's prompt and size as storyboard renders them: what a script would be given."""
    plan = storyboard.plan(storyboard.load(root))
    return [Job(change.address.replace("/", "--"), change.spec.prompt, change.spec.size)
            for change in plan.changes if change.spec is not None]


def run_storyboard(fake: Fake, source: Path, label: str, parallelism: int, poll: float | None) -> Run:
    root = fresh_copy(source, WORK / f"baselines-{label}-{parallelism}")
    if poll is not None:  # the provider's poll_interval, as the scripts' --poll
        config = root / "storyboard.yaml"
        text = re.sub(r"(\n  parallelism: \d+\n)", rf"\1  options:\n    poll_interval: {poll:g}\n",
                      config.read_text(), count=1)
        config.write_text(text)
    plan = storyboard.plan(storyboard.load(root))
    fake_stats(fake.url, reset=True)
    started = time.perf_counter()
    result = storyboard.apply(plan, parallelism=parallelism)
    wall = time.perf_counter() - started
    failed = f"{len(result.failed)} failed" if result.failed else ""
    return Run("storyboard apply", parallelism, len(result.generated), wall, fake_stats(fake.url)["calls"],
               failed=failed)


def run_script(fake: Fake, name: str, script: Callable[[list[Job], Path], None], jobs: list[Job],
               sample: int, parallelism: int | None, rounds_all: float) -> Run:
    """`script` over the first `sample` jobs, scaled to all of them (`rounds_all` / rounds run)."""
    out = WORK / "baselines-script-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    chosen = jobs[:sample]
    fake_stats(fake.url, reset=True)
    started, failed = time.perf_counter(), ""
    try:
        script(chosen, out)
    except Exception as error:  # the seed's loop has no error handling: say how far it got
        failed = f"stopped after {len(list(out.iterdir()))} of {len(chosen)}: {type(error).__name__}"
    wall = time.perf_counter() - started
    rounds_run = math.ceil(len(chosen) / (parallelism or 1))
    return Run(name, parallelism, len(list(out.iterdir())), wall, fake_stats(fake.url)["calls"],
               scale=rounds_all / rounds_run, failed=failed)


def compare(fake: Fake, source: Path, label: str, parallelisms: list[int], rounds: int,
            storyboard_poll: float | None) -> list[Run]:
    jobs = jobs_of(source)
    frames = len(jobs)
    seed_sample = min(frames, rounds * 2)
    runs = [run_script(fake, "seed page's loop", lambda chosen, out: seed_loop(chosen, fake.url, KEY, out),
                       jobs, seed_sample, None, frames)]
    for parallelism in parallelisms:
        runs.append(run_storyboard(fake, source, label, parallelism, storyboard_poll))
        runs.append(run_script(
            fake, "thread pool + requests",
            lambda chosen, out, p=parallelism: thread_pool(chosen, fake.url, KEY, out, p),
            jobs, min(frames, rounds * parallelism), parallelism, math.ceil(frames / parallelism)))
    return runs


def report(runs: list[Run], frames: int) -> str:
    storyboard_runs = {run.parallelism: run for run in runs if run.client == "storyboard apply"}
    seed = runs[0]
    rows = []
    for run in runs:
        ours = storyboard_runs.get(run.parallelism)
        wall, requests = run.wall * run.scale, run.total_requests * run.scale
        versus = ("" if run.client == "storyboard apply" or ours is None else
                  f"**{wall / ours.wall:.1f} ×** / **{requests / max(ours.total_requests, 1):.1f} ×**")
        measured = "" if run.scale == 1 else f"{run.frames} frames in {run.wall:.1f} s, × {run.scale:.2f}"
        calls = " ".join(f"{kind} {count}" for kind, count in sorted(run.requests.items()) if count)
        rows.append((run.client, run.parallelism or 1, frames, f"{wall:.1f}", f"{requests:.0f}", calls,
                     measured,
                     versus or ("—" if run is not seed else ""), run.failed or "ok"))
    return table(["client", "parallelism", "frames", "wall s", "requests", "measured requests by kind",
                  "measured on (scaled to all frames)", "wall / storyboard's, requests / storyboard's",
                  "outcome"], rows)


def seed_versus(runs: list[Run]) -> str:
    """The seed loop (one frame at a time) against storyboard at each parallelism."""
    seed = runs[0]
    if seed.failed:
        return f"The seed page's loop {seed.failed} (it has no error handling)"
    cells = [f"p={run.parallelism}: {seed.wall * seed.scale / run.wall:.1f} × the wall, "
             f"{seed.total_requests * seed.scale / max(run.total_requests, 1):.1f} × the requests"
             for run in runs if run.client == "storyboard apply"]
    return "The seed page's loop against storyboard: " + "; ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of frames each script runs")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--faults-only", action="store_true")
    parser.add_argument("--poll", type=float, default=user_scripts.POLL_SECONDS,
                        help="seconds the scripts wait between polls (the seed's 2)")
    parser.add_argument("--storyboard-poll", type=float,
                        help="storyboard's poll_interval (default: as shipped, 1 s, then learned)")
    args = parser.parse_args()
    user_scripts.POLL_SECONDS = args.poll
    os.environ["ATLASCLOUD_API_KEY"] = KEY
    projects = {"example": example_project(), f"{args.frames} frames": generated_project(args.frames)}
    for faults in (True,) if args.faults_only else (False,) if args.no_faults else (False, True):
        with fake_server(args.latency, faults, retry_after=1) as fake:
            os.environ["ATLASCLOUD_BASE_URL"] = fake.url
            for label, source in projects.items():
                runs = compare(fake, source, f"{label.split()[0]}-{'faults' if faults else 'clean'}",
                               args.parallelism, args.rounds, args.storyboard_poll)
                title = "10% of submits 429 (Retry-After: 1), 5% of polls 503" if faults else "no faults"
                title += f"; the scripts poll every {args.poll:g} s"
                if args.storyboard_poll is not None:
                    title += f", storyboard's poll_interval {args.storyboard_poll:g} s"
                frames = len(jobs_of(source))
                print(f"\n{label.capitalize()} ({frames} frames), latency {args.latency} s, {title}\n")
                print(report(runs, frames))
                print(f"\n{seed_versus(runs)}", flush=True)


if __name__ == "__main__":
    main()
