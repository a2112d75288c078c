"""What a user would write instead of storyboard: the scripts bench/baselines.py races against.

`seed_loop` is the service page's own example (../shared/seeds/), made to run: submit one
image, poll every 2 s until it is done, download it, the next frame. `thread_pool` is a
reasonable script built from it: the same per-frame loop in `parallelism` worker threads,
a `requests.Session` per thread, and urllib3's retry of 429 and 503 (honouring Retry-After),
which the seed's code lacks (its first 429 ends it with a KeyError).

Each frame is its own request with one image: a script that wants a consistent set of a
scene's frames in one request must also split the set's outputs back into frames, which is
most of what storyboard is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

MODEL = "bytedance/seedream-v4.5/sequential"
POLL_SECONDS = 2.0  # the seed's `time.sleep(2)`


@dataclass(frozen=True)
class Job:
    name: str  # the file the image is written to
    prompt: str
    size: str  # "2848x1600", as storyboard writes it


def seed_loop(jobs: Sequence[Job], base_url: str, key: str, out: Path) -> None:
    """The seed page's code, one frame after another."""
    for job in jobs:
        _one_frame(requests, job, base_url, key, out)


def thread_pool(jobs: Sequence[Job], base_url: str, key: str, out: Path, parallelism: int) -> None:
    """The same loop in `parallelism` threads, each with a retrying session."""
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            retry = Retry(total=10, backoff_factor=0.1, status_forcelist=(429, 503), allowed_methods=None,
                          respect_retry_after_header=True)
            local.session = requests.Session()
            local.session.mount("http://", HTTPAdapter(max_retries=retry))
        return local.session

    with ThreadPoolExecutor(parallelism) as pool:
        for done in pool.map(lambda job: _one_frame(session(), job, base_url, key, out), jobs):
            del done


def _one_frame(http: Any, job: Job, base_url: str, key: str, out: Path) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    data = {"model": MODEL, "prompt": job.prompt, "size": job.size.replace("x", "*"), "max_images": 1}
    url = f"{base_url}/api/v1/model/generateImage"
    generate_result = http.post(url, headers=headers, json=data, timeout=60).json()
    prediction_id = generate_result["data"]["id"]
    poll_url = f"{base_url}/api/v1/model/prediction/{prediction_id}"
    while True:
        result = http.get(poll_url, headers={"Authorization": f"Bearer {key}"}, timeout=60).json()
        if result["data"]["status"] == "completed":
            image_url = result["data"]["outputs"][0]
            break
        if result["data"]["status"] == "failed":
            raise RuntimeError(result["data"]["error"] or "Generation failed")
        time.sleep(POLL_SECONDS)
    image = http.get(image_url, timeout=60)
    (out / f"{job.name}.png").write_bytes(image.content)
