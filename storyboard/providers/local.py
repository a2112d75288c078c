"""The offline `local` provider: deterministic placeholder frames drawn with Pillow.

It behaves like Seedream sequential where it matters to the pipeline: up to 15
images per request, asynchronous jobs that outlive the process that submitted them
(kept under .storyboard/local-jobs/ so a killed run can re-attach), an optional
simulated latency, and frames that can be made to fail on purpose (`fail_frames`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from storyboard.errors import JobLost
from storyboard.project.schema import load_schema
from storyboard.project.sizes import parse_size
from storyboard.providers.base import PROTOCOL_VERSION, Capabilities, GeneratedImage, ImageRequest, JobResult

if TYPE_CHECKING:
    from storyboard.project.model import ProviderConfig

MAX_IMAGES = 15
MAX_REFERENCES = 10
DRAW_WIDTH = 480  # placeholders are drawn downscaled; the manifest records the real size
# zlib's fastest level: a placeholder encodes in 3.3 ms instead of 5.4-6.0 (Pillow's default, 6), a
# third of drawing one, for 15 KB instead of 12 (bench/RESULTS.md). The bytes are as deterministic.
PNG_LEVEL = 1


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
        images = await anyio.to_thread.run_sync(_draw_all, request, set(failed))
        return JobResult(images=images, failed=failed)

    async def aclose(self) -> None:
        return None


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


def _draw_all(request: ImageRequest, skip: set[int]) -> dict[int, GeneratedImage]:
    items = zip(request.frames, request.fingerprints, request.captions, strict=True)
    return {
        position: draw_placeholder(address, fingerprint, caption, request.size)
        for position, (address, fingerprint, caption) in enumerate(items)
        if position not in skip
    }


def draw_placeholder(address: str, fingerprint: str, caption: str, size: str) -> GeneratedImage:
    """A frame drawn from its fingerprint: colour, address, caption. Same inputs, same bytes."""
    from PIL import Image, ImageDraw

    from storyboard.fonts import pillow_font
    from storyboard.images import jpeg_thumbnail

    width, height = parse_size(size)
    draw_height = max(1, round(DRAW_WIDTH * height / width))
    seed = hashlib.sha256(fingerprint.encode()).digest()
    background = (64 + seed[0] // 2, 64 + seed[1] // 2, 64 + seed[2] // 2)
    image = Image.new("RGB", (DRAW_WIDTH, draw_height), background)
    draw = ImageDraw.Draw(image)
    font = pillow_font(14)
    title = pillow_font(22, bold=True)
    draw.rectangle((8, 8, DRAW_WIDTH - 9, draw_height - 9), outline=(255, 255, 255), width=2)
    draw.text((20, 16), address, fill=(255, 255, 255), font=title)
    lines = textwrap.wrap(caption, width=58)
    max_lines = max(1, (draw_height - 90) // 18)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][:54] + " …"]
    for number, line in enumerate(lines):
        draw.text((20, 50 + number * 18), line, fill=(245, 245, 240), font=font)
    draw.text((20, draw_height - 30), f"{size}  {fingerprint[:12]}", fill=(230, 230, 230), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return GeneratedImage(buffer.getvalue(), "png", DRAW_WIDTH, draw_height, jpeg_thumbnail(image))
