"""Running a plan's jobs: submit batches concurrently, journal everything, stage the images.

`execute` returns what was generated and staged (an Execution); storyboard.run.apply
puts the version together from it. Events go to a callback (storyboard.run.events). A
`stop` event (set on the first Ctrl-C) stops new submissions; jobs already submitted are
still collected.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from storyboard.errors import AuthError, JobLost, ProviderError
from storyboard.images import image_format, thumbnail_or_none, with_provenance
from storyboard.plans.batch import Batch, make_batches, with_first_references, with_references
from storyboard.plans.fingerprint import FrameSpec
from storyboard.plans.planner import Plan
from storyboard.providers.base import GeneratedImage, ImageRequest, JobResult, Provider, create_provider
from storyboard.run.events import (
    ApplyStarted,
    EventSink,
    FrameDone,
    FrameFailed,
    JobFinished,
    JobForgotten,
    JobReattached,
    JobSubmitted,
    Stopping,
)
from storyboard.state.journal import Journal, Recovered, StagedImage, claim
from storyboard.state.store import IndexEntry
from storyboard.state.versions import now_iso

log = logging.getLogger("storyboard.run")
PARTIAL_RETRIES = 2
DISK_THREADS = 2


@dataclass
class Execution:
    """What running a plan's jobs gave: the images staged, and what was not made."""

    images: dict[str, StagedImage] = field(default_factory=dict)  # by fingerprint
    generated: list[str] = field(default_factory=list)  # addresses, in the order they came
    failed: dict[str, str] = field(default_factory=dict)  # address -> why it was not made
    not_done: set[str] = field(default_factory=set)  # of those, never got to (interrupted, stopped, pending)
    interrupted: bool = False
    cost: float = 0.0
    collected: set[str] = field(default_factory=set)  # jobs finished with in this run
    later_jobs: list[dict[str, Any]] = field(default_factory=list)  # paid for, for a later apply
    later_images: list[StagedImage] = field(default_factory=list)


async def execute(plan: Plan, journal: Journal, recovered: Recovered, *, version: int, emit: EventSink,
                  stop: threading.Event, parallelism: int, provider: Provider | None = None) -> Execution:
    """Collect what an interrupted run left, submit the rest, and stage every image that comes.

    `version`: the number the new version will have (staged images carry it in their
    provenance). The provider is created (from the plan's project) only when there is work.
    """
    runner = _Runner(plan, journal, emit, stop, parallelism, version)
    await runner.run(recovered, provider)
    runner.result.later_jobs, runner.result.later_images = runner.left_for_later()
    return runner.result


class _Runner:
    def __init__(self, plan: Plan, journal: Journal, emit: EventSink, stop: threading.Event,
                 parallelism: int, version: int) -> None:
        self.plan = plan
        self.version = version  # the number the new version will have: staged images name it
        self.provider: Provider | None = None
        self.journal = journal
        self.emit = emit
        self.stop = stop
        self.limiter = anyio.CapacityLimiter(parallelism)
        # threads writing to .storyboard/ at once: dozens of them creating files in one folder
        # spin on its lock (measured: 1.5 ms of CPU per image at 40 threads)
        self.disk = anyio.CapacityLimiter(DISK_THREADS)
        self.collecting = anyio.CapacityLimiter(2 * parallelism)  # jobs between submitted and kept
        self.pace = Pace(plan.project.provider.requests_per_minute)
        self.unfinished: dict[str, dict[str, Any]] = {}  # job id -> its journal record, until collected
        self.set_aside = Recovered()  # an earlier run's jobs and images this plan does not want
        self.wanted: dict[str, FrameSpec] = {}  # by fingerprint
        self.refused: str | None = None  # why the service will take no more submits
        self.result = Execution()
        self.parallelism = parallelism
        self.price = plan.capabilities.price_per_image
        self.made: dict[str, anyio.Event] = {}  # fingerprint -> set once its image is staged or it failed
        self.fingerprints: dict[str, str] = {}  # address -> fingerprint, of every frame to generate

    async def run(self, recovered: Recovered, provider: Provider | None) -> None:
        """Collect, submit and wait for everything; the provider is opened only if there is work."""
        own = provider is None
        work = self._prepare(recovered)
        if work is None:
            return
        self.provider = provider or create_provider(self.plan.project.provider,
                                                    state_dir=self.plan.project.state_path,
                                                    parallelism=self.parallelism)
        try:
            await self._execute(*work)
        finally:
            if own:
                await self.provider.aclose()

    def _prepare(self, recovered: Recovered) -> tuple[list[dict[str, Any]], list[Batch]] | None:
        """Take over what an earlier run left; the jobs to re-attach and the batches to submit."""
        wanted: dict[str, FrameSpec] = {}  # frames with the same inputs are one image: the first names it
        for change in self.plan.changes:
            if change.generates and change.spec is not None:
                wanted.setdefault(change.spec.fingerprint, change.spec)
                self.fingerprints[change.address] = change.spec.fingerprint
        self.wanted = wanted
        taken = claim(recovered, wanted)
        for fingerprint, image in taken.images.items():
            self.result.images[fingerprint] = image
            self._done(wanted[fingerprint].address, reused=True)
        self.set_aside = taken.set_aside
        reattach = taken.jobs
        covered = taken.covered
        if covered == self.plan.covered:  # what the plan saw: its batches hold the rest
            batches = list(self.plan.batches)
        else:  # the journal changed since planning: batch again what is left to do
            batches = self._batches([spec for fp, spec in wanted.items() if fp not in covered])
        self.emit(ApplyStarted(len(wanted), len(batches) + len(reattach), len(self.result.images),
                               len(reattach), self.plan.cost))
        return (reattach, batches) if reattach or batches else None

    def left_for_later(self) -> tuple[list[dict[str, Any]], list[StagedImage]]:
        """Paid-for work the new version does not hold and a later plan may still want: jobs not
        collected, and an earlier run's jobs and images for frames this plan left out (--target).
        Work for frames whose image is now locked, or that changed again, is dropped."""
        later = self.plan.outstanding - self.result.images.keys()
        jobs = [*self.unfinished.values(),
                *(job for job in self.set_aside.jobs if later.intersection(job["fingerprints"]))]
        return jobs, [image for fingerprint, image in self.set_aside.images.items() if fingerprint in later]

    async def _execute(self, reattach: list[dict[str, Any]], batches: list[Batch]) -> None:
        async with anyio.create_task_group() as group:
            for job in reattach:
                group.start_soon(self._reattach, job)
            for batch in batches:
                group.start_soon(self._run_batch, batch, 0)

    def _batches(self, specs: list[FrameSpec]) -> list[Batch]:
        return make_batches(self.plan.project, specs, self.plan.capabilities, neighbours=self.plan.neighbours)

    async def _reattach(self, job: dict[str, Any]) -> None:
        """Collect a job an earlier run submitted; submit again only if the service lost it."""
        request = _request_from_journal(job)
        self.unfinished[job["job"]] = job
        self.emit(JobReattached(job["job"], request.frames))
        log.info("re-attaching to job %s, submitted by an interrupted run", job["job"])
        specs = [self.wanted.get(fp) for fp in request.fingerprints]
        async with _Slot(self.limiter) as slot:
            try:
                await self._collect(job["job"], request, specs, 0, slot, submitted_at=job.get("at"))
                return
            except JobLost as lost:
                await self._finished(job["job"])
                self.emit(JobForgotten(job["job"], lost.message))
        retry = [spec for spec in specs if spec is not None and spec.fingerprint not in self.result.images]
        for batch in self._batches(retry):
            await self._run_batch(batch, 0)

    async def _run_batch(self, batch: Batch, attempt: int) -> None:
        if batch.after:  # waits for images made in this run, holding no slot meanwhile
            ready = await self._after(batch)
            if ready is None:
                return
            batch = ready
        async with _Slot(self.limiter) as slot:
            await self._submit_and_collect(batch, attempt, slot)

    async def _after(self, batch: Batch) -> Batch | None:
        """The batch with the images it waits for first among its references; None (its frames
        failed) when a variant's master was not made: what it would be made from does not exist."""
        own = {spec.fingerprint for spec in batch.specs}
        files: list[Path] = []
        for address in batch.after:
            fingerprint = self.fingerprints.get(address)
            if fingerprint in own:
                continue  # its image is this batch's own
            if fingerprint is None:  # not made in this run: the image it has
                if address in self.plan.neighbours:
                    files.append(self.plan.neighbours[address])
                continue
            maker = self.wanted[fingerprint].address  # the frame whose request makes this image
            if fingerprint not in self.result.images and maker not in self.result.failed:
                await self.made.setdefault(fingerprint, anyio.Event()).wait()
            if fingerprint in self.result.images:
                files.append(self.result.images[fingerprint].file)
            elif any(spec.master == address for spec in batch.specs):
                for frame in batch.frames:
                    self._fail(frame, f"not made: its master {address} was not made", done=False)
                return None
        return with_first_references(batch, files, self.plan.capabilities)

    async def _submit_and_collect(self, batch: Batch, attempt: int, slot: _Slot) -> None:
        if self.refused is not None:
            for address in batch.frames:
                self._fail(address, f"not submitted: {self.refused}", done=False)
            return
        if self.stop.is_set():
            self.result.interrupted = True
            for address in batch.frames:
                self._fail(address, "not started: the run was interrupted", done=False)
            return
        request = batch.request()
        assert self.provider is not None
        await self.pace.wait()
        try:
            job_id = await self.provider.submit(request)
        except AuthError as error:
            self._refuse(error)
            for address in batch.frames:
                self._fail(address, error.message)
            return
        except ProviderError as error:
            for address in batch.frames:
                self._fail(address, error.message)
            return
        record = {"event": "submitted", "job": job_id, "frames": list(request.frames), "at": time.time(),
                  "fingerprints": list(request.fingerprints), "request": _request_json(request)}
        await anyio.to_thread.run_sync(self.journal.append, record)  # before anything else: it is paid for
        self.unfinished[job_id] = record
        self.emit(JobSubmitted(job_id, request.frames))
        try:
            await self._collect(job_id, request, list(batch.specs), attempt, slot)
        except JobLost as lost:  # lost by the service within this run: do not pay again now
            await self._finished(job_id)
            for address in request.frames:
                self._fail(address, f"{lost.message}; run `storyboard apply` again to submit it again")

    async def _collect(self, job_id: str, request: ImageRequest, specs: list[FrameSpec | None],
                       attempt: int, slot: _Slot, submitted_at: float | None = None) -> None:
        """Wait for a job, give its slot to the next request, then keep its images.

        At most 2 × parallelism jobs are between submitted and kept: a job whose images come back
        (downloaded, or drawn) faster than they can be kept holds its slot until one is, so the
        images waiting to be kept stay bounded (unbounded, 60,000 placeholders took gigabytes).
        """
        assert self.provider is not None
        async with self.collecting:
            try:
                try:
                    outcome = await self.provider.wait(job_id, request, submitted_at=submitted_at,
                                                       on_finished=slot.release)  # the next job may start
                finally:
                    self.emit(JobFinished(job_id))
            except JobLost:
                raise
            except ProviderError as error:
                await self._uncollected(job_id, request, error)
                return
            slot.release()  # the service is done with it: staging must not hold back the next submit
            missing = await self._store(job_id, request, outcome)
            await self._finished(job_id)
        retry = [spec for spec in specs if spec is not None and spec.address in missing]
        if retry and attempt < PARTIAL_RETRIES and not self.stop.is_set() and self.refused is None:
            log.info("job %s returned %d of %d images: asking again for the rest", job_id,
                     request.count - len(missing), request.count)
            kept = self._kept_images(request, outcome)
            for batch in self._batches(retry):
                await self._run_batch(with_references(batch, kept, self.plan.capabilities), attempt + 1)
        else:
            for address in missing:
                self._fail(address, f"the provider returned no image for it (job {job_id})")

    async def _uncollected(self, job_id: str, request: ImageRequest, error: ProviderError) -> None:
        """A job that could not be collected now: keep it for the next run if it may still finish."""
        if isinstance(error, AuthError):
            self._refuse(error)
        pending = error.retryable or isinstance(error, AuthError)  # the job may still finish
        if not pending:
            await self._finished(job_id)
        for address in request.frames:
            self._fail(address, f"{error.message} (job {job_id})", done=not pending)

    def _refuse(self, error: AuthError) -> None:
        """The service refused the key or the balance: submit nothing more, collect what runs."""
        if self.refused is None:
            self.refused = error.message
            self.emit(Stopping(error.message))

    async def _finished(self, job_id: str) -> None:
        await anyio.to_thread.run_sync(self.journal.append, {"event": "job_done", "job": job_id},
                                       limiter=self.disk)
        self.unfinished.pop(job_id, None)
        self.result.collected.add(job_id)

    def _kept_images(self, request: ImageRequest, outcome: JobResult) -> list[Path]:
        """Files of the images a short set did return, to send along when asking for the rest."""
        return [self.result.images[request.fingerprints[p]].file for p in sorted(outcome.images)
                if request.fingerprints[p] in self.result.images]

    async def _store(self, job_id: str, request: ImageRequest, outcome: JobResult) -> set[str]:
        """Stage and journal every image that came back; returns addresses still missing."""
        missing: set[str] = set()
        keep: list[tuple[str, str, GeneratedImage]] = []
        for position, (address, fingerprint) in enumerate(zip(request.frames, request.fingerprints,
                                                               strict=True)):
            image = outcome.images.get(position)
            if position in outcome.failed:
                self._fail(address, f"{outcome.failed[position]} (job {job_id})")
            elif image is None or image_format(image.data) is None:
                missing.add(address)
            else:
                keep.append((address, fingerprint, image))
        # stamping, thumbnails, hashing and fsyncs run in a worker thread: the loop keeps polling
        for staged in await anyio.to_thread.run_sync(self._keep, job_id, keep, limiter=self.disk):
            self.result.images[staged.fingerprint] = staged
            self.result.cost = round(self.result.cost + self.price, 4)
            self._done(staged.address)
        return missing

    def _keep(self, job_id: str, images: list[tuple[str, str, GeneratedImage]]) -> list[StagedImage]:
        """Keep images as the version will hold them: provenance written in, thumbnail made,
        in the image store and its index.

        Done here, while other jobs run, so that assembling the version only links files.
        """
        kept = []
        for _address, fingerprint, image in images:
            spec = self.wanted[fingerprint]
            data = with_provenance(image.data, image.format,
                                   spec.provenance(self.plan.project.name, self.version, job_id))
            entry = IndexEntry(fingerprint, hashlib.sha256(data).hexdigest(), image.format, image.width,
                               image.height, len(data), spec.address, job_id, spec.model, spec.seed,
                               spec.prompt, self.version, now_iso())
            thumbnail = image.thumbnail if image.thumbnail is not None else thumbnail_or_none(data)
            kept.append((entry, data, thumbnail))
        return self.journal.keep_images(kept, stamped=self.version)

    def _done(self, address: str, reused: bool = False) -> None:
        self.result.generated.append(address)
        self.emit(FrameDone(address, reused, self.result.cost, time.time()))
        self._made(address)

    def _fail(self, address: str, reason: str, *, done: bool = True) -> None:
        """`address` is not made by this run; `done=False`: it never got to it (or its job runs on)."""
        self.result.failed[address] = reason
        if not done:
            self.result.not_done.add(address)
        self.emit(FrameFailed(address, reason, not done))
        self._made(address)

    def _made(self, address: str) -> None:
        """Wake the batches waiting for this frame's image (`Batch.after`): it is staged, or failed."""
        event = self.made.get(self.fingerprints.get(address, ""))
        if event is not None:
            event.set()


def _request_json(request: ImageRequest) -> dict[str, Any]:
    return {"prompt": request.prompt, "size": request.size, "seed": request.seed, "model": request.model,
            "captions": list(request.captions), "references": [str(p) for p in request.references],
            "params": dict(request.params)}


def _request_from_journal(job: dict[str, Any]) -> ImageRequest:
    data = job["request"]
    return ImageRequest(prompt=data["prompt"], size=data["size"], seed=data["seed"], model=data["model"],
                        frames=tuple(job["frames"]), fingerprints=tuple(job["fingerprints"]),
                        captions=tuple(data["captions"]),
                        references=tuple(Path(p) for p in data["references"]), params=data["params"])


class _Slot:
    """One place under `parallelism`, which its holder may give back before the block ends."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self.limiter = limiter
        self.held = False

    async def __aenter__(self) -> _Slot:
        await self.limiter.acquire()
        self.held = True
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        if self.held:
            self.held = False
            self.limiter.release()


class Pace:
    """Spaces submits to at most `per_minute` (None: no limit), shared by all tasks.

    `clock` and `sleep` are the monotonic clock and the async sleep (tests give their own).
    """

    def __init__(self, per_minute: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = anyio.sleep) -> None:
        self.gap = 60.0 / per_minute if per_minute else 0.0
        self.next = 0.0
        self.lock = anyio.Lock()
        self.clock = clock
        self.sleep = sleep

    async def wait(self) -> None:
        if not self.gap:
            return
        async with self.lock:
            now = self.clock()
            start = max(now, self.next)
            self.next = start + self.gap
        await self.sleep(start - now)
