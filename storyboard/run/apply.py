"""Apply: carry out a plan, under the run lock, in an order that survives a crash at any point.

    preflight   nothing is paid for yet
    lock        one apply at a time
    execute     jobs submitted and collected, every image kept in the store and the journal;
                meanwhile, in a thread, the frames the plan alone decides are linked into the
                version folder under its temporary name (see Assembly)
    assemble    the rest of the version folder, then its rename into place, then `latest`
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

import contextlib
import os
import threading
from dataclasses import dataclass, field

import anyio

from storyboard.actions import Action
from storyboard.errors import UserError
from storyboard.plans.planner import Plan
from storyboard.providers.base import Provider
from storyboard.run.assemble import Assembled, Assembly
from storyboard.run.events import ApplyFinished, EventSink, VersionWritten, ignore
from storyboard.run.execute import Execution, execute
from storyboard.run.lock import locked, still_held
from storyboard.run.preflight import check_budget, check_folders
from storyboard.run.sync import fetch, publish
from storyboard.state.backend import Backend, BackendError, open_backend
from storyboard.state.journal import Journal
from storyboard.state.lockfile import LOCK_WRITTEN, write_lock
from storyboard.state.store import ImageStore
from storyboard.state.versions import StatCache, collect_garbage, next_version, version_name
from storyboard.wording import plural

_NOT_WRITTEN_HINT = ("every image paid for is kept in .storyboard/ and the journal: fix the cause and run "
                     "`storyboard apply` again; nothing is paid twice")


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
                stop: threading.Event | None = None, provider: Provider | None = None,
                lock_timeout: float = 0.0) -> ApplyResult:
    """Generate what `plan` says, write a new version and the lockfile; safe to interrupt.

    The budget is the plan's (budget.max_cost, or the max_cost it was planned with). With a
    backend, the backend's run lock is held (waiting up to `lock_timeout` seconds for it),
    restores come from its store, and the version is published there before the lockfile
    is written.
    """
    project = plan.project
    backend = open_backend(project.backend) if project.backend else None
    _preflight(plan, backend)
    with locked(project.state_path, backend, "apply", lock_timeout), \
            contextlib.closing(Journal(project.state_path, backend)) as journal:
        number = next_version(project.output_path, backend.version_numbers() if backend else ())
        assembly = Assembly(plan, number)  # deciding and linking the unchanged frames meanwhile
        try:
            recovered = journal.read()
            if recovered.images or recovered.jobs:  # a run died: it may have left prepared index entries
                journal.store.remove_leftovers()
            execution = await execute(plan, journal, recovered, version=number, emit=on_event,
                                      stop=stop or threading.Event(),
                                      parallelism=parallelism or project.provider.parallelism,
                                      provider=provider)
            store = ImageStore(project.state_path)
            if backend is not None:
                await _fetch_restores(plan, backend, store, execution)
            result = ApplyResult(generated=execution.generated, failed=execution.failed,
                                 not_done=execution.not_done, interrupted=execution.interrupted,
                                 cost=execution.cost)
            try:
                assembled = assembly.finish(execution)
            except OSError as error:  # the disk filled up or went read-only while generating
                raise UserError(f"could not write the new version: {error.strerror or error}",
                                hint=_NOT_WRITTEN_HINT) from None
        except BaseException:
            assembly.discard()
            raise
        if assembled is not None:
            on_event(VersionWritten(assembled.number, str(assembled.folder), assembled.counts))
            store.record(assembled.made, journal.prepared)  # found again by any frame whose fingerprint asks
            if backend is not None:
                await _publish(backend, store, assembled, journal, execution)
            result.version = assembled.number
            result.lock_written = write_lock(project.lockfile_path, assembled.lock, read=plan.lock,
                                             record=project.state_path / LOCK_WRITTEN,
                                             copies=assembled.lock_copies)
            _save_stat_cache(plan, assembled)
        journal.clear(execution.later_jobs, execution.later_images)  # the rest is in the version now
        if assembled is not None and project.keep_versions:
            collect_garbage(project.output_path, project.keep_versions)
    on_event(ApplyFinished(result.version, dict(result.failed), result.interrupted, result.cost))
    return result


def _save_stat_cache(plan: Plan, assembled: Assembled) -> None:
    """The stat cache of the new version only; a file linked from the version before takes the
    plan's knowledge of that one."""
    cache = StatCache(plan.project.root, load=False)
    for entry in assembled.lock.frames.values():
        file, old_file = f"{assembled.folder}/{entry.path}", assembled.linked.get(entry.path)
        if old_file is not None and plan.checked is not None:
            cache.carry(plan.checked, old_file, file, entry.image_sha256)
        else:
            cache.record(file, entry.image_sha256)
    cache.save(assembled.folder)


def _preflight(plan: Plan, backend: Backend | None) -> None:
    """Everything that would make this apply fail after paying, checked before it pays."""
    project = plan.project
    check_budget(plan.cost, plan.max_cost)
    images = sum(len(batch.specs) for batch in plan.batches)
    per_image = max((plan.capabilities.image_bytes(batch.size) for batch in plan.batches), default=0)
    check_folders(project.root, project.output_path, project.state_path, images, per_image)
    if backend is not None and plan.has_changes:
        backend.check_writable(f"apply-{os.getpid()}")


async def _fetch_restores(plan: Plan, backend: Backend, store: ImageStore, execution: Execution) -> None:
    """Bring what the plan restores from the backend's store; a frame whose image cannot come fails."""
    wanted = {change.stored.sha256: change.address for change in plan.changes
              if change.action is Action.RESTORE and change.stored is not None}
    fetched = await anyio.to_thread.run_sync(fetch, backend, store, wanted)
    for sha256, why in fetched.failed.items():
        execution.failed[wanted[sha256]] = f"its stored image could not be fetched: {why}"


async def _publish(backend: Backend, store: ImageStore, assembled: Assembled, journal: Journal,
                   execution: Execution) -> None:
    """Put the version on the backend; on failure nothing is lost: the images stay in the local
    store, the journal keeps what was paid for, `storyboard push` (or the next apply) sends them."""
    still_held(backend)
    try:
        sent = await anyio.to_thread.run_sync(publish, backend, store, assembled.number, assembled.folder,
                                              assembled.made)
    except BackendError as error:
        raise NotPublished(
            f"{version_name(assembled.number)} could not be published on the backend: {error.message}",
            hint="`storyboard push` publishes it when the backend is back (the next apply does too); "
                 "nothing was lost and nothing will be paid again") from None
    if sent.failed:
        name, why = next(iter(sent.failed.items()))
        raise NotPublished(
            f"{plural(len(sent.failed), 'image')} of {version_name(assembled.number)} could not be sent to "
            f"the backend {backend.url} ({name[:12]}…: {why}); they are only in the local store",
            hint="`storyboard push` sends them when the backend is back (the next apply does too); "
                 "nothing was lost and nothing will be paid again")
    journal.forget_remote(execution.collected)


class NotPublished(UserError):
    """A version was written here but not (all) sent to the backend."""
