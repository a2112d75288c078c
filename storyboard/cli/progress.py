"""What apply shows while it runs, drawn from its events: a progress bar on a terminal, plain
lines in a pipeline, JSON lines with --json (schemas/events.schema.json)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from storyboard.run.events import (
    Event,
    EventSink,
    FrameDone,
    FrameFailed,
    JobFinished,
    JobForgotten,
    JobReattached,
    JobSubmitted,
    Stopping,
    VersionWritten,
    ignore,
)
from storyboard.wording import plural

FIRST_INTERRUPT = "\ninterrupt: no new requests; finishing the submitted ones (Ctrl-C again to leave now)"
SECOND_INTERRUPT = "\nsecond interrupt: leaving now; the journal keeps what was paid for"


def json_lines(event: Event) -> None:
    click.echo(json.dumps(event.to_json(), ensure_ascii=False, sort_keys=True))


def plain_lines(event: Event) -> None:
    match event:
        case JobSubmitted(job=job, frames=frames):
            click.echo(f"submitted {job} ({plural(len(frames), 'frame')})")
        case JobReattached(job=job, frames=frames):
            click.echo(f"re-attached to {job} from an interrupted run ({plural(len(frames), 'frame')})")
        case FrameDone(address=address, reused=reused):
            click.echo(f"done {address}" + (" (from an interrupted run)" if reused else ""))
        case FrameFailed(address=address, reason=reason):
            click.echo(f"failed {address}: {reason}", err=True)
        case Stopping(reason=reason):
            click.echo(f"stopping: {reason}", err=True)
        case JobForgotten(reason=reason):
            click.echo(f"{reason}: submitting its frames again", err=True)
        case VersionWritten(path=path):
            click.echo(f"wrote {path}")


class Progress:
    """A live progress bar on a terminal (frames done/failed, jobs in flight, cost, ETA)."""

    def __init__(self, total: int) -> None:
        from rich import progress as bar

        self.progress = bar.Progress(
            bar.TextColumn("[bold]apply"), bar.BarColumn(),
            bar.TextColumn("{task.completed}/{task.total} frames"), bar.TextColumn("{task.fields[status]}"),
            bar.TimeElapsedColumn(), bar.TextColumn("ETA"), bar.TimeRemainingColumn())
        self.task = self.progress.add_task("apply", total=total, status="")
        self.in_flight = 0
        self.failed = 0
        self.cost = 0.0

    def __enter__(self) -> Progress:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def __call__(self, event: Event) -> None:
        match event:
            case JobSubmitted() | JobReattached():
                self.in_flight += 1
            case JobFinished():
                self.in_flight = max(0, self.in_flight - 1)
            case FrameDone(cost=cost):
                self.cost = cost
                self.progress.advance(self.task)
            case FrameFailed(address=address, reason=reason):
                self.failed += 1
                self.progress.advance(self.task)
                self.progress.console.print(f"[red]failed[/red] {address}: {reason}")
            case Stopping(reason=reason):
                self.progress.console.print(f"[yellow]stopping:[/yellow] {reason}")
            case JobForgotten(reason=reason):
                self.progress.console.print(f"[yellow]{reason}:[/yellow] submitting its frames again")
        status = f"in flight {self.in_flight}  failed {self.failed}  cost ${self.cost:.2f}"
        self.progress.update(self.task, status=status)


def event_sink(json_output: bool, quiet: bool) -> EventSink:
    if json_output:
        return json_lines
    if quiet:
        return ignore
    return plain_lines


def is_terminal() -> bool:
    return sys.stdout.isatty()


class FramesBar:
    """A progress bar over the board's frames for exports (a context yielding `report(done, total)`);
    nothing without a terminal or with -q."""

    def __init__(self, label: str, shown: bool) -> None:
        self.label = label
        self.shown = shown
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        if self.shown:
            from rich import progress as bar

            self.progress = bar.Progress(bar.TextColumn(f"[bold]{self.label}"), bar.BarColumn(),
                                         bar.TextColumn("{task.completed}/{task.total} frames"),
                                         bar.TimeElapsedColumn(), bar.TextColumn("ETA"),
                                         bar.TimeRemainingColumn())
            self.progress.start()
        return self.report

    def report(self, done: int, total: int) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def frames_bar(quiet: bool, label: str = "animatic") -> FramesBar:
    return FramesBar(label, is_terminal() and not quiet)
