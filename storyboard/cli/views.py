"""How plans and apply events look: Terraform-style text, plain lines, JSON lines, progress bar.

Only the CLI imports this module (it uses click for colour); the library emits plain data.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from storyboard.actions import Action
from storyboard.plans.planner import Plan
from storyboard.wording import plural

COLORS = {Action.CREATE: "green", Action.REGENERATE: "yellow", Action.REPAIR: "magenta", Action.REMOVE: "red"}


def plan_text(plan: Plan, color: bool | None) -> str:
    lines: list[str] = []

    def style(text: str, action: Action) -> str:
        fg = COLORS.get(action)
        return click.style(text, fg=fg) if fg and color is not False else text

    shown = [c for c in plan.changes if c.action.shown]
    if shown:
        lines.append("storyboard will perform the following actions:\n")
    for change in shown:
        detail = ""
        if change.reasons:
            detail = f"  ({', '.join(change.reasons)})"
        if change.action is Action.MOVE and change.previous:
            detail = f"  ({change.previous.path} -> {change.path})"
        if change.action is Action.REPAIR and change.restore_from is not None:
            detail += "  restored from an older version, no generation"
        head = f"  {change.action.symbol} {change.address:<32} {change.action.value}"
        lines.append(style(head, change.action) + detail)
        for diff_line in change.prompt_diff.splitlines()[2:]:
            if diff_line.startswith("@@"):
                continue
            action = {"+": Action.CREATE, "-": Action.REMOVE}.get(diff_line[:1], Action.KEEP)
            lines.append("      " + style(diff_line, action))
    lines.append("")
    lines.append(summary_line(plan))
    if plan.covered:
        jobs = plan.reattach_jobs
        lines.append(f"{plural(len(plan.covered), 'frame')} an interrupted run paid for "
                     f"({plural(jobs, 'job')} to collect) will be used, not paid again.")
    return "\n".join(lines)


def budget_error(plan: Plan) -> str:
    return (f"error: the plan's estimated cost ${plan.cost:.2f} is above the budget ${plan.max_cost:.2f}\n"
            "    hint: raise budget.max_cost (or --max-cost), or apply fewer frames with --target")


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes. The latest version matches the project."
    s = plan.summary()
    moved = f", {s['moved']} to move" if s["moved"] else ""
    return (f"Plan: {s['create']} to create, {s['regenerate']} to regenerate, {s['repair']} to repair, "
            f"{s['remove']} to remove{moved}, {s['keep']} unchanged. "
            f"{s['requests']} request{'s' if s['requests'] != 1 else ''}, estimated cost ${s['cost']:.2f}.")


def apply_failures(plan: Plan, result: Any) -> list[str]:
    """What an apply did not make, grouped by what it means for the user."""
    had_image = {change.address for change in plan.changes if change.previous is not None}
    groups: dict[str, list[str]] = {"kept": [], "none": [], "not_done": []}
    for address in sorted(result.failed):
        group = "not_done" if address in result.not_done else "kept" if address in had_image else "none"
        groups[group].append(address)
    lines = []
    one = {group: len(addresses) == 1 for group, addresses in groups.items()}
    if groups["kept"]:
        keeps = "keeps its" if one["kept"] else "keep their"
        lines.append(f"error: {plural(len(groups['kept']), 'frame')} failed and {keeps} previous image: "
                     f"{', '.join(groups['kept'])}")
    if groups["none"]:
        has = "has" if one["none"] else "have"
        lines.append(f"error: {plural(len(groups['none']), 'frame')} failed and {has} no image yet: "
                     f"{', '.join(groups['none'])}")
    if groups["not_done"]:
        them = "it" if one["not_done"] else "them"
        lines.append(f"{plural(len(groups['not_done']), 'frame')} not done in this run (the next "
                     f"`storyboard apply` does {them}, paying nothing twice): "
                     f"{', '.join(groups['not_done'])}")
    return lines


def json_lines(event: dict[str, Any]) -> None:
    click.echo(json.dumps(event, ensure_ascii=False, sort_keys=True))


def plain_lines(event: dict[str, Any]) -> None:
    kind = event["event"]
    if kind == "job_submitted":
        click.echo(f"submitted {event['job']} ({plural(len(event['frames']), 'frame')})")
    elif kind == "job_reattached":
        click.echo(f"re-attached to {event['job']} from an interrupted run "
                   f"({plural(len(event['frames']), 'frame')})")
    elif kind == "frame_done":
        click.echo(f"done {event['address']}" + (" (from an interrupted run)" if event["reused"] else ""))
    elif kind == "frame_failed":
        click.echo(f"failed {event['address']}: {event['reason']}", err=True)
    elif kind == "stopping":
        click.echo(f"stopping: {event['reason']}", err=True)
    elif kind == "job_lost":
        click.echo(f"{event['reason']}: submitting its frames again", err=True)
    elif kind == "version_written":
        click.echo(f"wrote {event['path']}")


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
        self.started = time.monotonic()

    def __enter__(self) -> Progress:
        self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind in ("job_submitted", "job_reattached"):
            self.in_flight += 1
        elif kind == "job_finished":
            self.in_flight = max(0, self.in_flight - 1)
        elif kind == "frame_done":
            self.cost = event["cost"]
            self.progress.advance(self.task)
        elif kind == "frame_failed":
            self.failed += 1
            self.progress.advance(self.task)
            self.progress.console.print(f"[red]failed[/red] {event['address']}: {event['reason']}")
        elif kind == "stopping":
            self.progress.console.print(f"[yellow]stopping:[/yellow] {event['reason']}")
        elif kind == "job_lost":
            self.progress.console.print(f"[yellow]{event['reason']}:[/yellow] submitting its frames again")
        status = f"in flight {self.in_flight}  failed {self.failed}  cost ${self.cost:.2f}"
        self.progress.update(self.task, status=status)


def event_sink(as_json: bool, quiet: bool) -> Callable[[dict[str, Any]], None]:
    if as_json:
        return json_lines
    if quiet:
        return lambda event: None
    return plain_lines


def is_terminal() -> bool:
    return sys.stdout.isatty()
