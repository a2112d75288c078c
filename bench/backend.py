"""Shared state on a loopback S3 server: pull, a one-frame change, a no-op plan.

    python -m bench.backend [--frames 10000] [--repeat 3] [--latency 0.5]

moto's S3 server runs as its own process on 127.0.0.1. The applied project of
bench/plan_noop.py is copied (images hard-linked), given a backend, and pushed. Then:

- **pull**: a fresh clone (the project and its lockfile, no out/, no .storyboard/) runs
  `storyboard pull`, alternating with `python -m bench.get_floor`, a plain concurrent GET
  loop through the same library at the same concurrency over the same images (once
  reading only, once also writing each to a file). The fastest of each is compared.
- **no-op plan**: its backend requests, counted at a proxy in front of the server, in the
  pushed project (out/ matches the lockfile) and in a fresh clone (every frame restored).
- **one change**: one frame edited in the pushed project and applied with a simulated
  provider latency; the requests and bytes sent to the backend, counted at the proxy, by
  kind; its overhead (wall time minus the latency) beside the same apply without a backend.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.measure import REPO, WORK, Sample, best, fresh_copy, measured_env, python, run, storyboard, table
from bench.one_change import edit_first_action
from bench.plan_noop import applied_project
from storyboard.testing.fault_proxy import FaultProxy, Request

BUCKET = "bench"
PREFIX = "campaign"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-not-a-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args()
    env = measured_env(CREDENTIALS)
    with moto_server() as (host, port):
        endpoint = f"http://{host}:{port}"
        make_bucket(endpoint)
        pushed = fresh_copy(applied_project(args.frames), WORK / f"backend-{args.frames}")
        with_backend(pushed, endpoint)
        push = run(storyboard("push"), cwd=pushed, env=env)
        print(f"\n{args.frames} frames pushed to the loopback S3 server in {push.wall:.1f} s "
              f"({push.output.strip()})", file=sys.stderr)
        pull_rows = pull(pushed, endpoint, args.repeat, env)
        with FaultProxy(host, port) as proxy:
            with_backend(pushed, proxy.url)
            plan_rows = noop_plan(pushed, proxy, env)
            change_rows, change_kinds = one_change(pushed, proxy, args.latency, args.repeat, env)
    print(f"\nPulling a {args.frames}-frame version from moto's S3 server on loopback "
          f"(fastest of {args.repeat}, alternating)\n")
    print(table(["command (16 requests at once)", "wall s", "CPU s", "peak MB", "images/s",
                 "floor wall / this wall"], pull_rows))
    print("\nBackend requests of a no-op `storyboard plan` (counted at a proxy)\n")
    print(table(["project", "plan wall s", "requests", "by kind"], plan_rows))
    print(f"\nOne edited frame of {args.frames}, applied with a provider latency of {args.latency} s "
          f"(fastest of {args.repeat})\n")
    print(table(["apply", "wall s", "overhead s (wall - latency)", "requests to the backend",
                 "bytes sent to the backend"], change_rows))
    print("\nWhat the apply with a backend sent, by kind (requests, bytes in PUT bodies)\n")
    print(table(["kind", "GET", "HEAD", "PUT", "DELETE", "LIST", "bytes sent"], change_kinds))


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    """moto's S3 server as its own process on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("moto's S3 server did not start")
            time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(timeout=30)


def make_bucket(endpoint: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket=BUCKET)


def with_backend(project: Path, endpoint: str) -> None:
    """storyboard.yaml with a `backend:` section naming `endpoint` (replacing one there)."""
    root = project / "storyboard.yaml"
    text = root.read_text().split("\nbackend:", 1)[0].rstrip("\n") + "\n"
    root.write_text(text + f"backend: {{url: 's3://{BUCKET}/{PREFIX}', endpoint: '{endpoint}', "
                           "region: us-east-1}\n")


def clone(project: Path, target: Path) -> Path:
    """What `git clone` gives a CI runner: the project and its lockfile, no out/, no .storyboard/."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(project, target, ignore=shutil.ignore_patterns("out", ".storyboard"))
    return target


def pull(pushed: Path, endpoint: str, repeat: int, env: dict[str, str]) -> list[tuple[object, ...]]:
    lock = json.loads((pushed / "storyboard.lock").read_text())["frames"]
    shas = sorted({entry["image"]["sha256"] for entry in lock.values()})
    images = WORK / "backend-keys-images.txt"
    images.write_text("\n".join(f"objects/{sha[:2]}/{sha}" for sha in shas))
    both = WORK / "backend-keys.txt"  # what pull reads: each image and its thumbnail
    both.write_text("\n".join(f"objects/{sha[:2]}/{sha}\nthumbs/{sha[:2]}/{sha}.jpg" for sha in shas))
    floor = python("-m", "bench.get_floor", endpoint, f"{BUCKET}/{PREFIX}")
    written = WORK / "backend-floor-files"
    samples: dict[str, list[Sample]] = {"images": [], "get": [], "get+write": [], "pull": []}
    for _ in range(repeat):
        samples["images"].append(run([*floor, images], cwd=REPO, env=env))
        samples["get"].append(run([*floor, both], cwd=REPO, env=env))
        shutil.rmtree(written, ignore_errors=True)
        samples["get+write"].append(run([*floor, both, "--write", written], cwd=REPO, env=env))
        reviewer = clone(pushed, WORK / "backend-reviewer")
        samples["pull"].append(run(storyboard("pull"), cwd=reviewer, env=env))
        assert len(list((reviewer / "out/latest").glob("*/*.png"))) == len(lock), "pull is incomplete"
    shutil.rmtree(written, ignore_errors=True)
    reference = best(samples["get"])
    rows = []
    for name, label in (("images", "GET loop over the images only"),
                        ("get", "GET loop over the images and thumbnails (the floor)"),
                        ("get+write", "the same, each body written to a file"),
                        ("pull", "`storyboard pull`")):
        sample = best(samples[name])
        rows.append((label, f"{sample.wall:.2f}", f"{sample.cpu:.2f}", f"{sample.peak_mb:.0f}",
                     f"{len(shas) / sample.wall:,.0f}", f"**{reference.wall / sample.wall:.2f}**"))
    return rows


def kind(request: Request) -> str:
    """What a request is about: objects, index, manifests, versions, journal, lock, or a listing."""
    path, _, query = request.path.partition("?")
    if "list-type=2" in query:
        return "LIST " + next((part.split("=")[1] for part in query.split("&") if part.startswith("prefix=")),
                              "").replace("%2F", "/").removeprefix(f"{PREFIX}/")
    if request.method == "POST" and "delete" in query:
        return "deletes (bulk)"
    parts = path.split("/")
    return parts[3] if len(parts) > 3 else "?"


def noop_plan(pushed: Path, proxy: FaultProxy, env: dict[str, str]) -> list[tuple[object, ...]]:
    rows = []
    runner = clone(pushed, WORK / "backend-runner")
    for label, project in (("pushed (out/ matches the lockfile)", pushed),
                           ("fresh clone (every frame restored)", runner)):
        before = len(proxy.requests)
        sample = run(storyboard("plan", "--json"), cwd=project, env=env)
        summary = json.loads(sample.output)["summary"]
        requests = proxy.requests[before:]
        kinds = Counter(kind(request) if "list-type" in request.path else f"{request.method} {kind(request)}"
                        for request in requests)
        described = ", ".join(f"{count} {name}" for name, count in sorted(kinds.items())) or "none"
        rows.append((label, f"{sample.wall:.2f}", f"**{len(requests)}**",
                     f"{described} ({summary['restore']} to restore)"))
    return rows


def one_change(pushed: Path, proxy: FaultProxy, latency: float, repeat: int,
               env: dict[str, str]) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    alone = fresh_copy(pushed, WORK / "backend-alone")
    root = alone / "storyboard.yaml"
    root.write_text(root.read_text().split("\nbackend:", 1)[0] + "\n")
    slow = f"  parallelism: 8\n  options: {{latency: {latency}}}\n"
    for project in (pushed, alone):
        config = project / "storyboard.yaml"
        config.write_text(config.read_text().replace("  parallelism: 8\n", slow))
    scenes = sorted((pushed / "scenes").glob("*.yaml"))
    with_samples: list[tuple[Sample, list[Request]]] = []
    alone_samples: list[Sample] = []
    for attempt in range(repeat + 1):  # the first: a version written by this build, untimed
        target = scenes[(attempt * 7 + len(scenes) // 2) % len(scenes)].name
        for project in (pushed, alone):
            edit_first_action(project / "scenes" / target, f"edited {attempt}")
        before = len(proxy.requests)
        with_backend_apply = run(storyboard("-q", "apply", "--auto-approve"), cwd=pushed, env=env)
        alone_apply = run(storyboard("-q", "apply", "--auto-approve"), cwd=alone, env=env)
        if attempt:
            with_samples.append((with_backend_apply, proxy.requests[before:]))
            alone_samples.append(alone_apply)
    fastest, requests = min(with_samples, key=lambda pair: pair[0].wall)
    plain = best(alone_samples)
    sent = sum(request.sent for request in requests)
    rows = [("without a backend", f"{plain.wall:.2f}", f"{plain.wall - latency:.2f}", "-", "-"),
            ("with a backend", f"{fastest.wall:.2f}", f"**{fastest.wall - latency:.2f}**",
             str(len(requests)), f"**{sent:,}**")]
    by_kind: dict[str, Counter[str]] = {}
    for request in requests:
        name = kind(request)
        method = "LIST" if name.startswith("LIST") else request.method
        name = name.removeprefix("LIST ").rstrip("/") or "(all)"
        by_kind.setdefault(name, Counter())[method] += 1
        by_kind[name]["bytes"] += request.sent
    kinds = [(name, *(counts[m] for m in ("GET", "HEAD", "PUT", "DELETE", "LIST")), f"{counts['bytes']:,}")
             for name, counts in sorted(by_kind.items())]
    return rows, kinds


if __name__ == "__main__":
    main()
