"""Apply: carry out a plan, under the run lock, in an order that survives a crash at any point.

    preflight   nothing is paid for yet
    lock        one apply at a time
    execute     jobs submitted and collected, every image kept in the store and the journal
    assemble    the version folder, then `latest`
    index       the store learns which images the version made
    lockfile    replaced atomically
    stat cache  for the next plan
    journal     forgets what the version now holds
    gc          keeps output.keep versions

The version number is decided once, here: staged images carry it in their provenance
and assemble writes that version. Until the lockfile is replaced the journal still holds
everything paid for, so an interrupted apply loses nothing and pays nothing twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from storyboard.errors import UserError
from storyboard.plans.planner import Plan
from storyboard.providers.base import Provider
from storyboard.run.assemble import assemble
from storyboard.run.events import ApplyFinished, EventSink, VersionWritten, ignore
from storyboard.run.execute import execute
from storyboard.run.lock import RunLock
from storyboard.run.preflight import check_budget, check_folders
from storyboard.state.journal import Journal
from storyboard.state.lockfile import write_lock
from storyboard.state.store import ImageStore
from storyboard.state.versions import StatCache, collect_garbage, next_version


@dataclass
class ApplyResult:
    """What an apply did."""

    version: int | None = None  # the version written (None: nothing changed)
    generated: list[str] = field(default_factory=list)  # addresses made (or taken from a run before)
    failed: dict[str, str] = field(default_factory=dict)  # address -> why it was not made
    not_done: set[str] = field(default_factory=set)  # of those, never got to (interrupted, stopped, pending)
    interrupted: bool = False
    cost: float = 0.0  # spent in this run (US$)
    lock_written: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted


async def apply(plan: Plan, *, on_event: EventSink = ignore, parallelism: int | None = None,
                stop: threading.Event | None = None, provider: Provider | None = None) -> ApplyResult:
    """Generate what `plan` says, write a new version and the lockfile; safe to interrupt.

    The budget is the plan's (budget.max_cost, or the max_cost it was planned with).
    """
    project = plan.project
    _preflight(plan)
    with RunLock(project.state_path):
        journal = Journal(project.state_path)
        number = next_version(project.output_path)
        execution = await execute(plan, journal, journal.read(), version=number, emit=on_event,
                                  stop=stop or threading.Event(),
                                  parallelism=parallelism or project.provider.parallelism, provider=provider)
        result = ApplyResult(generated=execution.generated, failed=execution.failed,
                             not_done=execution.not_done, interrupted=execution.interrupted,
                             cost=execution.cost)
        try:
            assembled = assemble(plan, execution, number)
        except OSError as error:  # the disk filled up or went read-only while generating
            raise UserError(f"could not write the new version: {error.strerror or error}",
                            hint="every image paid for is kept in .storyboard/ and the journal: fix the "
                                 "cause and run `storyboard apply` again; nothing is paid twice") from None
        if assembled is not None:
            on_event(VersionWritten(assembled.number, str(assembled.folder), assembled.counts))
            store = ImageStore(project.state_path)
            for made in assembled.made:  # found again for any frame whose fingerprint asks for it
                store.record(made)
            result.version = assembled.number
            result.lock_written = write_lock(project.lockfile_path, assembled.lock)
            cache = StatCache(project.root)
            for entry in assembled.lock.frames.values():
                cache.record(assembled.folder / entry.path, entry.image_sha256)
            cache.save(assembled.folder)
        journal.clear(execution.later_jobs, execution.later_images)  # the rest is in the version now
        if assembled is not None and project.keep_versions:
            collect_garbage(project.output_path, project.keep_versions)
    on_event(ApplyFinished(result.version, dict(result.failed), result.interrupted, result.cost))
    return result


def _preflight(plan: Plan) -> None:
    """Everything that would make this apply fail after paying, checked before it pays."""
    project = plan.project
    check_budget(plan.cost, plan.max_cost)
    images = sum(len(batch.specs) for batch in plan.batches)
    per_image = max((plan.capabilities.image_bytes(batch.size) for batch in plan.batches), default=0)
    check_folders(project.root, project.output_path, project.state_path, images, per_image)
