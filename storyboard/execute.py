"""Carrying out a plan: submit batches concurrently, journal everything, assemble, lock.

Events (dicts with a "event" key) go to a callback; the CLI draws them as a progress
display, plain lines or JSON lines. A `stop` event (set on the first Ctrl-C) stops new
submissions; jobs already submitted are still collected and committed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from storyboard.assemble import assemble
from storyboard.batch import Batch, make_batches
from storyboard.errors import AuthError, ProviderError, UserError
from storyboard.fingerprint import FrameSpec
from storyboard.images import image_format
from storyboard.journal import Journal, Recovered, RunLock, StagedImage
from storyboard.planner import Plan
from storyboard.providers.base import ImageRequest, JobResult, Provider, create_provider

EventSink = Callable[[dict[str, Any]], None]
PARTIAL_RETRIES = 2


@dataclass
class ApplyResult:
    version: int | None = None
    generated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # address -> reason
    interrupted: bool = False
    cost: float = 0.0
    lock_written: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


async def apply(plan: Plan, *, on_event: EventSink | None = None, parallelism: int | None = None,
                stop: threading.Event | None = None, provider: Provider | None = None,
                max_cost: float | None = None) -> ApplyResult:
    """Generate what `plan` says, write a new version and the lockfile; safe to interrupt."""
    project = plan.project
    budget = project.max_cost if max_cost is None else max_cost
    if budget is not None and plan.cost > budget:
        raise UserError(f"the plan's estimated cost ${plan.cost:.2f} is above the budget ${budget:.2f}",
                        hint="raise budget.max_cost (or --max-cost), or apply fewer frames with --target")
    emit = on_event or (lambda event: None)
    state = project.state_path
    with RunLock(state):
        journal = Journal(state)
        recovered = journal.read()
        own_provider = provider is None
        provider = provider or create_provider(project.provider, state_dir=state)
        runner = _Runner(plan, provider, journal, emit, stop or threading.Event(),
                         parallelism or project.provider.parallelism)
        try:
            await runner.run(recovered)
        finally:
            if own_provider:
                await provider.aclose()
        result = runner.result
        version, lock_written = assemble(plan, runner.images, result.failed, emit)
        result.version, result.lock_written = version, lock_written
        if version is not None or not result.interrupted:
            journal.clear()  # everything paid for is in the version (or nothing was asked for)
    return result


class _Runner:
    def __init__(self, plan: Plan, provider: Provider, journal: Journal, emit: EventSink,
                 stop: threading.Event, parallelism: int) -> None:
        self.plan = plan
        self.provider = provider
        self.journal = journal
        self.emit = emit
        self.stop = stop
        self.limiter = anyio.CapacityLimiter(parallelism)
        self.images: dict[str, StagedImage] = {}  # by fingerprint
        self.result = ApplyResult()
        self.price = plan.capabilities.price_per_image

    async def run(self, recovered: Recovered) -> None:
        wanted = {c.spec.fingerprint: c.spec for c in self.plan.changes if c.generates and c.spec}
        for fingerprint, image in recovered.images.items():
            if fingerprint in wanted:
                self.images[fingerprint] = image
                self._done(wanted[fingerprint].address, reused=True)
        reattach = [job for job in recovered.jobs
                    if all(fp in wanted for fp in job["fingerprints"] if fp not in self.images)]
        pending_fps = {fp for job in reattach for fp in job["fingerprints"]}
        remaining = [spec for fp, spec in wanted.items() if fp not in self.images and fp not in pending_fps]
        batches = make_batches(self.plan.project, remaining, self.plan.capabilities)
        self.emit({"event": "apply_started", "frames": len(wanted), "requests": len(batches) + len(reattach),
                   "reused": len(self.images), "reattached": len(reattach), "cost": self.plan.cost})
        async with anyio.create_task_group() as group:
            for job in reattach:
                group.start_soon(self._reattach, job, wanted)
            for batch in batches:
                group.start_soon(self._run_batch, batch, 0)

    async def _reattach(self, job: dict[str, Any], wanted: dict[str, FrameSpec]) -> None:
        request = _request_from_journal(job)
        self.emit({"event": "job_reattached", "job": job["job"], "frames": list(request.frames)})
        async with self.limiter:
            await self._collect(job["job"], request, [wanted.get(fp) for fp in request.fingerprints], 0)

    async def _run_batch(self, batch: Batch, attempt: int) -> None:
        async with self.limiter:
            await self._submit_and_collect(batch, attempt)

    async def _submit_and_collect(self, batch: Batch, attempt: int) -> None:
        if self.stop.is_set():
            self.result.interrupted = True
            for address in batch.frames:
                self._fail(address, "not started: the run was interrupted")
            return
        request = batch.request()
        try:
            job_id = await self.provider.submit(request)
        except AuthError as error:
            self.stop.set()
            self.emit({"event": "stopping", "reason": error.message})
            for address in batch.frames:
                self._fail(address, error.message)
            return
        except ProviderError as error:
            for address in batch.frames:
                self._fail(address, error.message)
            return
        self.journal.append({"event": "submitted", "job": job_id, "frames": list(request.frames),
                             "fingerprints": list(request.fingerprints), "request": _request_json(request)})
        self.emit({"event": "job_submitted", "job": job_id, "frames": list(request.frames)})
        await self._collect(job_id, request, list(batch.specs), attempt)

    async def _collect(self, job_id: str, request: ImageRequest, specs: list[FrameSpec | None],
                       attempt: int) -> None:
        try:
            outcome = await self.provider.wait(job_id, request)
        except ProviderError as error:
            for address in request.frames:
                self._fail(address, f"{error.message} (job {job_id})")
            return
        missing = self._store(job_id, request, outcome)
        self.journal.append({"event": "job_done", "job": job_id})
        retry = [spec for spec in specs if spec is not None and spec.address in missing]
        if retry and attempt < PARTIAL_RETRIES and not self.stop.is_set():
            for batch in make_batches(self.plan.project, retry, self.plan.capabilities):
                await self._submit_and_collect(batch, attempt + 1)  # within the parent's slot
        else:
            for address in missing:
                self._fail(address, f"the provider returned no image for it (job {job_id})")

    def _store(self, job_id: str, request: ImageRequest, outcome: JobResult) -> set[str]:
        """Stage and journal every image that came back; returns addresses still missing."""
        missing: set[str] = set()
        for position, (address, fingerprint) in enumerate(zip(request.frames, request.fingerprints,
                                                               strict=True)):
            if position in outcome.failed:
                self._fail(address, f"{outcome.failed[position]} (job {job_id})")
                continue
            image = outcome.images.get(position)
            if image is None or image_format(image.data) is None:
                missing.add(address)
                continue
            digest = hashlib.sha256(image.data).hexdigest()
            file = self.journal.stage(image.data, digest, image.format)
            staged = StagedImage(address, fingerprint, file, digest, image.format, image.width,
                                 image.height, job_id)
            self.journal.append({"event": "image", "address": address, "fingerprint": fingerprint,
                                 "file": file.name, "sha256": digest, "format": image.format,
                                 "width": image.width, "height": image.height, "job": job_id})
            self.images[fingerprint] = staged
            self.result.cost = round(self.result.cost + self.price, 4)
            self._done(address)
        return missing

    def _done(self, address: str, reused: bool = False) -> None:
        self.result.generated.append(address)
        self.emit({"event": "frame_done", "address": address, "reused": reused, "cost": self.result.cost,
                   "time": time.time()})

    def _fail(self, address: str, reason: str) -> None:
        self.result.failed[address] = reason
        self.emit({"event": "frame_failed", "address": address, "reason": reason})


def _request_json(request: ImageRequest) -> dict[str, Any]:
    return {"prompt": request.prompt, "size": request.size, "seed": request.seed, "model": request.model,
            "captions": list(request.captions), "references": [str(p) for p in request.references],
            "params": dict(request.params)}


def _request_from_journal(job: dict[str, Any]) -> ImageRequest:
    from pathlib import Path

    data = job["request"]
    return ImageRequest(prompt=data["prompt"], size=data["size"], seed=data["seed"], model=data["model"],
                        frames=tuple(job["frames"]), fingerprints=tuple(job["fingerprints"]),
                        captions=tuple(data["captions"]),
                        references=tuple(Path(p) for p in data["references"]), params=data["params"])
