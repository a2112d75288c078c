"""The offline `local` provider: deterministic placeholder frames drawn with Pillow.

It behaves like Seedream sequential where it matters to the pipeline: up to 15
images per request, asynchronous jobs that outlive the process that submitted them
(kept under .storyboard/local-jobs/ so a killed run can re-attach), an optional
simulated latency, and frames that can be made to fail on purpose (`fail_frames`).

Its placeholders are drawn by storyboard.providers.placeholders: in threads, or for a large
run started by the command line, in a process per core.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from storyboard.errors import JobLost
from storyboard.project.schema import load_schema
from storyboard.providers.base import PROTOCOL_VERSION, Capabilities, ImageRequest, JobResult
from storyboard.providers.placeholders import Drawing, Placeholder

if TYPE_CHECKING:
    from storyboard.project.model import ProviderConfig

MAX_IMAGES = 15
MAX_REFERENCES = 10


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """`provider.options` of the local provider (schemas/provider-local.schema.json)."""

    latency: float = 0.0  # simulated seconds per request
    fail_frames: frozenset[str] = frozenset()  # addresses to fail on purpose

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> LocalOptions:
        return cls(float(options.get("latency", 0.0)), frozenset(options.get("fail_frames", ())))


class LocalProvider:
    name = "local"
    protocol_version: ClassVar[int] = PROTOCOL_VERSION
    options_schema: ClassVar[Mapping[str, Any]] = load_schema("provider-local")

    def __init__(self, config: ProviderConfig, *, state_dir: Path) -> None:
        self.config = config
        self.options = LocalOptions.parse(config.options)
        self.capabilities = self.capabilities_for(config)
        self.jobs_dir = state_dir / "local-jobs"
        self._drawing = Drawing()

    @classmethod
    def capabilities_for(cls, config: ProviderConfig) -> Capabilities:
        return Capabilities(
            max_images=MAX_IMAGES,
            max_references=MAX_REFERENCES,
            max_total=MAX_IMAGES,
            sizes=None,
            price_per_image=config.price_per_image or 0.0,
            image_bytes_cap=64_000,  # placeholders are drawn 480 pixels wide
        )

    async def submit(self, request: ImageRequest) -> str:
        job_id = await anyio.to_thread.run_sync(job_id_for, request)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        record = {"submitted_at": time.time(), "frames": list(request.frames)}
        path = self.jobs_dir / f"{job_id}.json"
        path.write_text(json.dumps(record), encoding="utf-8")
        return job_id

    async def wait(self, job_id: str, request: ImageRequest, *, submitted_at: float | None = None,
                   on_finished: Callable[[], None] | None = None) -> JobResult:
        path = self.jobs_dir / f"{job_id}.json"
        try:
            submitted_at = json.loads(path.read_text(encoding="utf-8"))["submitted_at"]
        except (OSError, ValueError, KeyError):
            raise JobLost(f"local job {job_id} is unknown") from None
        remaining = submitted_at + self.options.latency - time.time()
        if remaining > 0:
            await anyio.sleep(remaining)
        if on_finished is not None:
            on_finished()
        failed = {
            position: "failed on purpose (provider.fail_frames)"
            for position, address in enumerate(request.frames)
            if address in self.options.fail_frames
        }
        items = zip(request.frames, request.fingerprints, request.captions, strict=True)
        wanted = {position: Placeholder(address, fingerprint, caption, request.size)
                  for position, (address, fingerprint, caption) in enumerate(items) if position not in failed}
        drawn = await anyio.to_thread.run_sync(self._drawing.draw, list(wanted.values()))
        return JobResult(images=dict(zip(wanted, drawn, strict=True)), failed=failed)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._drawing.close)


def job_id_for(request: ImageRequest) -> str:
    """The job id of a request, from what it asks for: the same request gives the same id.

    A real service names its jobs itself; here the id is written into every image's
    provenance and the lockfile, so deriving it (from the bytes of the references, not their
    paths) makes two clones of a commit apply to byte-identical results.
    """
    references = [_file_sha256(path) for path in request.references]
    asked = [request.prompt, request.size, request.seed, request.model, list(request.fingerprints),
             list(request.captions), references, sorted(request.params.items())]
    return "local-" + hashlib.sha256(json.dumps(asked, default=str).encode()).hexdigest()[:16]


def _file_sha256(path: str | Path) -> str:
    """The sha256 of a reference file; hashed once per process while it keeps its size, time and
    inode (a character's sheet is sent with each of its scenes' requests)."""
    stat = os.stat(path)  # noqa: PTH116 - path may be a string
    return _sha256_of_file(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@cache
def _sha256_of_file(path: str, size: int, mtime_ns: int, inode: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
