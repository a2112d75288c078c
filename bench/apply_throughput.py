"""Does apply keep the service busy? 1,000 frames against the fake Atlas Cloud on loopback.

    python -m bench.apply_throughput [--frames 1000] [--latency 0.5] [--parallelism 1 4 16 64]

Projects poll every latency / 50 s at first (`poll_interval`, 0.01 s at the default
latency): as eager as the default 1 s is for a 50 s set, more than for the service's
10–30 s per image.

The fake runs as its own process (`python -m storyboard.testing.fake_atlas`) with a
fixed latency per prediction; `storyboard.apply` runs in this process, so its CPU
time is ours alone. efficiency = ideal / measured, ideal = ceil(requests /
parallelism) × latency. A second pass answers 10% of submits with 429 (Retry-After
a fifth of the latency) and 5% of polls with 503; the fake's counts prove no frame
was paid for twice. Our CPU per frame (user + system: on a VM the system part swings
several-fold between runs of the same code) is set beside the part of it spent on image
work (thumbnails made, base64 decoded), keeping images durably (the store, the journal) and
writing the version (its files and pages, the store's index, the lockfile), each measured as
thread CPU around the functions that do it; the rest is HTTP and the runner around it. And
beside its floor on this machine,
measured in the same run by bench/apply_floor.py: the least work any client must do
for the same predictions (one submit and one poll each, the downloads, the uploads,
and each image kept durably and linked into the version).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import storyboard
from bench.apply_floor import Floor, measure_floor
from bench.make_project import make_project
from bench.measure import ASSEMBLY, WORK, fresh_copy, table, timed_parts
from storyboard.machine import tune_gc

KEY = "bench-key"
SETTINGS = "  options:\n    poll_interval: 0.01\n    retry_backoff: 0.05\n    request_timeout: 30\n"
MODES = {"urls": "", "base64": "    base64_outputs: true\n"}


@dataclass(frozen=True)
class Outcome:
    mode: str
    parallelism: int
    requests: int
    frames: int
    wall: float
    cpu: float
    stats: dict[str, Any]
    failed: int


@dataclass
class Fake:
    url: str
    pid: int

    def cpu(self) -> float:
        """CPU seconds the fake's process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def fake_server(latency: float, faults: bool, retry_after: float | None = None) -> Iterator[Fake]:
    """The fake as its own process; with `faults`, 429s say Retry-After `retry_after` seconds (a
    fifth of the latency unless given: not the whole seconds HTTP allows, which storyboard takes)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "storyboard.testing.fake_atlas", "--port", str(port), "--key", KEY,
               "--latency", str(latency), "--seed", "7"]
    if faults:
        wait = latency / 5 if retry_after is None else retry_after
        command += ["--rate-limit", "0.1", "--retry-after", f"{wait:g}", "--server-errors", "0.05"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    process.stdout.readline()  # the server prints its address once it listens
    try:
        yield Fake(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.communicate(timeout=10)


def fake_stats(url: str, reset: bool = False) -> dict[str, Any]:
    request = urllib.request.Request(f"{url}/_fake/stats", method="POST" if reset else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:  # loopback only
        stats: dict[str, Any] = json.load(answer)
        return stats


def source_project(frames: int, mode: str) -> Path:
    root = WORK / f"throughput-src-{frames}-{mode}"
    if not (root / "storyboard.yaml").exists():
        make_project(root, frames, provider="atlascloud", all_sequential=True)
        config = root / "storyboard.yaml"
        settings = SETTINGS + MODES[mode]
        config.write_text(config.read_text().replace("  parallelism: 8\n", f"  parallelism: 8\n{settings}"))
    return root


def measure(fake: Fake, frames: int, parallelism: int, mode: str, label: str, latency: float) -> Outcome:
    url = fake.url
    root = fresh_copy(source_project(frames, mode), WORK / f"throughput-{label}-{mode}-{parallelism}")
    config = root / "storyboard.yaml"
    config.write_text(config.read_text().replace("poll_interval: 0.01", f"poll_interval: {latency / 50:g}"))
    fake_stats(url, reset=True)
    fake_cpu = fake.cpu()
    project = storyboard.load(root)
    plan = storyboard.plan(project)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with timed_parts(PARTS) as parts:
        result = storyboard.apply(plan, parallelism=parallelism)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    stats = {**fake_stats(url), "cpu": fake.cpu() - fake_cpu, **parts(), "user": user,
             "system": system}
    cpu = user + system
    return Outcome(mode, parallelism, len(plan.batches), len(result.generated), wall, cpu, stats,
                   len(result.failed))


# image work: thumbnails made, base64 decoded; keeping images durably; writing the version, the
# store's index and the lockfile (bench.measure.timed_parts measures each as thread CPU)
PARTS: dict[str, list[tuple[str, str]]] = {
    "pixels": [("storyboard.run.execute", "thumbnail_or_none"), ("storyboard.providers.atlas_wire",
                                                                  "decode_output")],
    "keeping": [("storyboard.state.journal:Journal", "keep_images")],
    "version": [*ASSEMBLY, ("storyboard.run.apply", "write_lock"),
                ("storyboard.state.store:ImageStore", "record")],
}


def report(outcomes: list[Outcome], latency: float, floor: Floor) -> str:
    rows = []
    for o in outcomes:
        ideal = math.ceil(o.requests / o.parallelism) * latency
        paid_once = o.stats["images_billed"] == o.frames + o.failed and o.stats["predictions"] == o.requests
        least = floor.per_frame(o.mode, o.requests, max(o.frames, 1), o.stats["calls"]["upload"])
        through_httpx = floor.per_frame(o.mode, o.requests, max(o.frames, 1), o.stats["calls"]["upload"],
                                        stack="httpx")
        per_frame = 1000 / max(o.frames, 1)
        own = (o.cpu - o.stats["pixels"]) * per_frame
        rest = (o.cpu - o.stats["pixels"] - o.stats["keeping"] - o.stats["version"]) * per_frame
        rows.append((o.mode, o.parallelism, o.requests, o.frames, o.failed, f"{ideal:.2f}", f"{o.wall:.2f}",
                     f"**{ideal / o.wall:.3f}**", f"**{o.cpu / max(o.frames, 1) * 1000:.2f}**",
                     f"{o.stats['user'] / max(o.frames, 1) * 1000:.2f}",
                     f"{o.stats['system'] / max(o.frames, 1) * 1000:.2f}",
                     f"{o.stats['pixels'] * per_frame:.2f}", f"**{own:.2f}**",
                     f"{o.stats['keeping'] * per_frame:.2f}", f"{o.stats['version'] * per_frame:.2f}",
                     f"{rest:.2f}", f"{least:.2f}",
                     f"{through_httpx:.2f}",
                     f"{o.stats['cpu']:.1f}", o.stats["max_in_flight"],
                     o.stats["calls"]["submit"], o.stats["calls"]["poll"], o.stats["statuses"].get("429", 0),
                     o.stats["statuses"].get("503", 0), "yes" if paid_once else "**NO**"))
    return table(["outputs", "parallelism", "requests", "frames", "failed", "ideal s", "measured s",
                  "efficiency", "our CPU ms / frame", "user", "system", "of which image work",
                  "without image work", "keeping images", "writing the version",
                  "the rest: HTTP, the runner", "floor CPU ms / frame", "floor through httpx",
                  "fake's CPU s", "max in flight",
                  "submits", "polls", "429s", "503s", "each frame paid once"], rows)


def main() -> None:
    tune_gc()  # the collector as storyboard's command line sets it: floors and client alike
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--no-faults", action="store_true", help="skip the pass with 429s and 503s")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES),
                        help="outputs as URLs to download (the default) and/or inline base64")
    args = parser.parse_args()
    os.environ["ATLASCLOUD_API_KEY"] = KEY
    for faults in (False, True) if not args.no_faults else (False,):
        label = "faults" if faults else "clean"
        with fake_server(args.latency, faults) as fake:
            os.environ["ATLASCLOUD_BASE_URL"] = fake.url
            modes = args.modes[:1] if faults else args.modes  # faults: the default mode is enough
            outcomes = [measure(fake, args.frames, p, mode, label, args.latency)
                        for mode in modes for p in args.parallelism]
            if not faults:  # the floor is measured once, against the fake without faults
                floor = measure_floor(fake.url, KEY)
        title = ("with 10% of submits 429 and 5% of polls 503" if faults else "no faults")
        print(f"\nApply {args.frames} frames in sequential scenes, latency {args.latency} s, {title}\n")
        print(report(outcomes, args.latency, floor), flush=True)
        if not faults:
            print(f"\nFloor parts (CPU ms): one exchange {floor.exchange_ms['urls']:.3f} (URL outputs) / "
                  f"{floor.exchange_ms['base64']:.3f} (base64), one download {floor.download_ms:.3f}, "
                  f"one image kept and linked {floor.file_ms:.3f}. Through httpx: one exchange "
                  f"{floor.httpx_exchange_ms['urls']:.3f} / {floor.httpx_exchange_ms['base64']:.3f}, "
                  f"one download {floor.httpx_download_ms:.3f}", flush=True)


if __name__ == "__main__":
    main()
