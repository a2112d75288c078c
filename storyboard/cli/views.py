"""Everything the command line prints but apply's live output (progress.py): Terraform-style
text and JSON. Only the CLI imports this module (it uses click); the library returns values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from storyboard.actions import Action
from storyboard.errors import Diagnostic, Location, display_path
from storyboard.state.versions import version_name
from storyboard.wording import plural

if TYPE_CHECKING:
    from storyboard.api import (
        Collected,
        Export,
        Plan,
        Project,
        RenderedFrame,
        ShotlistImport,
        VersionSummary,
        VersionView,
    )
    from storyboard.errors import UserError
    from storyboard.plans.batch import Batch
    from storyboard.project.fmt import Formatted
    from storyboard.run.apply import ApplyResult
    from storyboard.run.sync import Pulled, Pushed, RemoteGc
    from storyboard.state.lockfile import Approval

COLORS = {Action.CREATE: "green", Action.REGENERATE: "yellow", Action.REPAIR: "magenta",
          Action.RESTORE: "cyan", Action.HOLD: "blue", Action.REMOVE: "red"}


def as_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False)


# --- validate, render, schema, init ---------------------------------------------------------


def validate_ok(project: Project) -> str:
    frames = sum(len(scene.frames) for scene in project.scenes)
    return (f"OK {project.name}: {plural(len(project.scenes), 'scene')}, {plural(frames, 'frame')}, "
            f"{plural(len(project.characters), 'character')}, {plural(len(project.templates), 'template')}")


def render_text(rendered: Sequence[RenderedFrame], color: bool | None, project: Project | None = None) -> str:
    """Each frame's address, then its prompt indented, a blank line between (no final newline);
    first, the variables set for this run and where each came from."""
    def address(item: RenderedFrame) -> str:
        return click.style(item.address, bold=True, fg="cyan") if color is not False else item.address

    head = ""
    if project is not None and project.axes:
        head = ("variables: `variables:` < the variant's values < the scene < the frame "
                "(`render --json` names where each one came from)\n\n")
    if project is not None and project.variable_sources:
        head += "variables for this run (over `variables:`):\n" + "".join(
            f"  {name} = {project.variables[name]!r}  (from {source})\n"
            for name, source in sorted(project.variable_sources.items())) + "\n"
    return head + "\n".join(f"{address(item)}\n  {item.prompt}\n" for item in rendered)


def render_json(project: Project, rendered: Sequence[RenderedFrame]) -> str:
    from storyboard.project.variants import variable_sources

    def described(item: RenderedFrame) -> dict[str, Any]:
        frame = item.frame
        shown: dict[str, Any] = {"address": item.address,
                                 "template": project.template_for(project.scene(frame.scene_id), frame),
                                 "prompt": item.prompt}
        if frame.variant is not None:  # campaign variants: which one, and where each variable came from
            shown.update(variant=frame.variant.as_dict(), master=frame.master,
                         variables=variable_sources(project, frame))
        return shown

    return as_json([described(item) for item in rendered])


def batches_text(batches: Sequence[Batch]) -> str:
    blocks = [f"request {number}: {plural(len(batch.frames), 'image')}, {batch.size}\n"
              f"  frames: {', '.join(batch.frames)}\n  {batch.prompt}\n"
              for number, batch in enumerate(batches, 1)]
    return "\n".join(blocks)


def batches_json(batches: Sequence[Batch]) -> str:
    return as_json([{"frames": list(b.frames), "size": b.size, "prompt": b.prompt} for b in batches])


def schemas_written(count: int, folder: Path) -> str:
    return f"wrote {plural(count, 'schema')} to {folder}"


def init_done(folder: Path, written: Sequence[Path]) -> str:
    where = display_path(folder)
    return (f"created a storyboard project in {where} ({plural(len(written), 'file')})\n"
            f"next: storyboard -C {where} plan")


# --- plan ----------------------------------------------------------------------------------------


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
        if change.action is Action.RESTORE:
            why = [reason for reason in change.reasons if reason != "from store"]
            detail = f"  (from store{': ' + ', '.join(why) if why else ''})"
        if change.approval is not None and change.action is not Action.HOLD:
            detail += f"  (approved by {change.approval.by}: its approved image)"
        if change.after:
            detail += f"  after {change.after}"
        head = f"  {change.action.symbol} {change.address:<32} {change.action.value}"
        if change.action is Action.HOLD and change.approval is not None:
            head = f"  {change.action.symbol} {change.address:<32} held"
            detail = (f": approved by {change.approval.by} on {change.approval.day}; "
                      f"{', '.join(change.reasons)} changed")
        lines.append(style(head, change.action) + detail)
        for diff_line in change.prompt_diff.splitlines()[2:]:
            if diff_line.startswith("@@"):
                continue
            action = {"+": Action.CREATE, "-": Action.REMOVE}.get(diff_line[:1], Action.KEEP)
            lines.append("      " + style(diff_line, action))
    lines.append("")
    lines.append(summary_line(plan))
    if plan.project.axes and plan.has_changes:
        lines.extend(variant_lines(plan))
    if plan.covered:
        jobs = plan.reattach_jobs
        lines.append(f"{plural(len(plan.covered), 'frame')} an interrupted run paid for "
                     f"({plural(jobs, 'job')} to collect) will be used, not paid again.")
    return "\n".join(lines)


def variant_lines(plan: Plan) -> list[str]:
    """Per variant, what the plan does to it and what that costs."""
    lines = []
    for key, counts in plan.variant_summary().items():
        done = ", ".join(f"{counts[name]} to {name}" for name in ("create", "regenerate", "restore", "remove")
                         if counts[name])
        held = f", {counts['hold']} held" if counts["hold"] else ""
        lines.append(f"  {key or '(no variant)':<24} {done or 'no changes'}{held}; "
                     f"{plural(counts['images'], 'image')}, ${counts['cost']:.2f}")
    return lines


def plan_json(plan: Plan) -> str:
    return as_json(plan.to_json())


def plan_event(plan: Plan) -> str:
    """The plan as the first line of `apply --json`."""
    return json.dumps({"event": "plan", **plan.to_json()}, ensure_ascii=False, sort_keys=True)


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        held = plan.count(Action.HOLD)
        if held:
            return (f"No changes. {plural(held, 'approved frame')} whose inputs changed "
                    f"{'is' if held == 1 else 'are'} held: `storyboard apply --replace ADDR` or "
                    "`storyboard unapprove ADDR` to make new art.")
        return "No changes. The latest version matches the project."
    s = plan.summary()
    moved = f", {s['moved']} to move" if s["moved"] else ""
    restore = f", {s['restore']} to restore" if s["restore"] else ""
    holds = f", {s['hold']} held (approved)" if s["hold"] else ""
    return (f"Plan: {s['create']} to create, {s['regenerate']} to regenerate, {s['repair']} to repair"
            f"{restore}, {s['remove']} to remove{moved}, {s['keep']} unchanged{holds}. "
            f"{plural(s['requests'], 'request')}, estimated cost ${s['cost']:.2f}.")


def budget_error(plan: Plan) -> str:
    return (f"error: the plan's estimated cost ${plan.cost:.2f} is above the budget ${plan.max_cost:.2f}\n"
            "    hint: raise budget.max_cost (or --max-cost), or apply fewer frames with --target")


def plan_saved(path: Path) -> str:
    return f"\nSaved the plan to {path}; apply it with: storyboard apply {path}"


# --- apply ---------------------------------------------------------------------------------------

APPLY_CANCELLED = "Apply cancelled."


def apply_complete(result: ApplyResult) -> str:
    failed = len(result.failed) - len(result.not_done)
    not_done = f", {len(result.not_done)} not done" if result.not_done else ""
    return (f"Apply complete: version {result.version:04d}, {plural(len(result.generated), 'frame')} "
            f"generated, {failed} failed{not_done}, cost ${result.cost:.2f}.")


def apply_failures(plan: Plan, result: ApplyResult) -> list[str]:
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


# --- versions ------------------------------------------------------------------------------------


def history_lines(summaries: Iterable[VersionSummary]) -> str:
    lines = []
    for summary in summaries:
        counts = summary.changes
        not_done = f", {counts['not_done']} not done" if counts.get("not_done") else ""
        marker = "  (latest)" if summary.latest else ""
        if not summary.here:
            marker += "  (on the backend: `storyboard pull` brings it)"
        held = f", {counts['hold']} held" if counts.get("hold") else ""
        approved = f", {summary.approved} approved" if summary.approved else ""
        lines.append(f"{summary.name}  {summary.created_at}  {plural(summary.frames, 'frame')}: "
                     f"{counts.get('create', 0)} new, {counts.get('regenerate', 0)} regenerated, "
                     f"{counts.get('repair', 0)} repaired, {counts.get('remove', 0)} removed, "
                     f"{counts.get('failed', 0)} failed{not_done}{held}{approved}{marker}")
    return "\n".join(lines) if lines else "No versions yet: run `storyboard apply`."


def show_text(view: VersionView) -> str:
    manifest = view.manifest
    lines = [f"{view.folder.name} of {manifest['project']}, {manifest['created_at']}"]
    lines += [f"  {frame['address']:<32} {frame['status']:<12} v{frame['generated_in']:04d}  {frame['path']}"
              + (f"  approved by {frame['approval']['by']} on {frame['approval']['at'][:10]}"
                 if "approval" in frame else "")
              for frame in view.frames]
    return "\n".join(lines)


def approved(given: Mapping[str, Approval]) -> str:
    if not given:
        return "nothing to approve"
    first = next(iter(given.values()))
    lines = [f"approved {plural(len(given), 'frame')} (by {first.by}); storyboard.lock records it: commit it"]
    lines += [f"  {address:<32} {approval.sha256[:12]}  {version_name(approval.version)}"
              for address, approval in given.items()]
    return "\n".join(lines)


def unapproved(addresses: Sequence[str]) -> str:
    if not addresses:
        return "none of those frames was approved"
    return "\n".join([f"unapproved {plural(len(addresses), 'frame')}; storyboard.lock records it: commit it",
                      *(f"  {address}" for address in addresses)])


def show_json(view: VersionView) -> str:
    return as_json(dict(view.manifest))


def exported(export: Export) -> str:
    return f"wrote {export.path} ({plural(export.frames, 'frame')}, v{export.version:04d})"


def warning(text: str) -> str:
    return f"warning: {text}"


def remote_gc_done(report: RemoteGc) -> str:
    verb = "would remove" if report.dry_run else "removed"
    entries = plural(report.index_entries, "index entry", "index entries")
    manifests = plural(report.manifests, "scene manifest")
    lines = [f"{verb} {plural(len(report.objects), 'image')} ({report.bytes / 1_000_000:,.1f} MB), "
             f"{plural(len(report.versions), 'version')}, {entries} and {manifests} from the backend; "
             f"{plural(report.kept_objects, 'image')} kept"]
    lines += [f"  {sha}" for sha in report.objects[:20]]
    if len(report.objects) > 20:
        lines.append(f"  … and {len(report.objects) - 20} more")
    if report.dry_run and (report.objects or report.versions or report.manifests or report.index_entries):
        lines.append("a dry run: `storyboard gc --remote --force` deletes them")
    return "\n".join(lines)


def pulled(result: Pulled) -> str:
    if result.already_here:
        return f"{result.folder.name} is already in {result.folder.parent.name}/"
    return (f"pulled {result.folder.name} into {result.folder.parent.name}/ "
            f"({plural(result.fetched.moved, 'image')} fetched, {result.fetched.bytes / 1_000_000:,.1f} MB)")


def pushed(result: Pushed) -> str:
    lines = [f"pushed {plural(result.objects.moved, 'image')} ({result.objects.bytes / 1_000_000:,.1f} MB), "
             f"{plural(result.index.moved, 'index entry', 'index entries')} and "
             f"{plural(len(result.versions), 'version')}"]
    failed = {**result.objects.failed, **result.index.failed}
    if failed:
        name, why = next(iter(failed.items()))
        lines.append(f"error: {plural(len(failed), 'item')} could not be sent ({name[:12]}…: {why}); "
                     "run `storyboard push` again")
    return "\n".join(lines)


def unlocked(data: dict[str, Any]) -> str:
    return (f"removed the run lock {data.get('id')} of {data.get('who', '?')} on {data.get('host', '?')} "
            f"({data.get('operation', '?')} since {data.get('created', '?')})")


GC_CANCELLED = "gc cancelled: nothing was removed"


def gc_json(collected: Collected) -> str:
    return as_json({"dry_run": collected.dry_run, "versions": [version_name(n) for n in collected.versions],
                    "bytes": collected.bytes})


def history_json(summaries: Iterable[VersionSummary]) -> str:
    return as_json([{"version": summary.name, "created_at": summary.created_at, "frames": summary.frames,
                     "changes": dict(summary.changes), "latest": summary.latest, "here": summary.here,
                     "published": summary.published, "approved": summary.approved} for summary in summaries])


def gc_done(collected: Collected) -> str:
    names = ", ".join(f"v{number:04d}" for number in collected.versions)
    verb = "would remove" if collected.dry_run else "removed"
    freed = f" ({collected.bytes / 1_000_000:,.1f} MB {'to free' if collected.dry_run else 'freed'})" \
        if collected.versions else ""
    return f"{verb} {plural(len(collected.versions), 'version')}" + (f": {names}" if names else "") + freed


# --- for pipelines: annotations, diagnostics as JSON, the plan as Markdown ------------------


def _diagnostics(error: UserError) -> list[Diagnostic]:
    from storyboard.errors import ProjectError

    if isinstance(error, ProjectError):
        return list(error.diagnostics)
    return [Diagnostic(error.message, error.location, hint=error.hint)]


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, location: Location | None = None, title: str = "") -> str:
    """A GitHub Actions workflow command: `::error file=F,line=L,col=C,title=T::message`."""
    properties = []
    if location is not None:
        properties.append(f"file={_escape_property(display_path(location.file))}")
        if location.line > 0:
            properties += [f"line={location.line}", f"col={max(1, location.col)}"]
    if title:
        properties.append(f"title={_escape_property(title)}")
    head = f"::{level} {','.join(properties)}" if properties else f"::{level}"
    return f"{head}::{_escape_data(message)}"


def error_annotations(error: UserError) -> str:
    """Every diagnostic of `error` as a workflow annotation, then the summary as plain text."""
    lines = []
    for diagnostic in _diagnostics(error):
        message = f"{diagnostic.crumb}: {diagnostic.message}" if diagnostic.crumb else diagnostic.message
        if diagnostic.hint:
            message += f"\nhint: {diagnostic.hint}"
        lines.append(annotation("error", message, diagnostic.location, "storyboard"))
    lines.append(error.message)
    return "\n".join(lines)


def diagnostics_json(error: UserError | None) -> str:
    """`validate --format json`: {"ok", "errors": [{file, line, col, crumb, message, hint}]}."""
    errors = [{"file": display_path(d.location.file) if d.location else None,
               "line": d.location.line if d.location else None,
               "col": d.location.col if d.location else None,
               "crumb": d.crumb, "message": d.message, "hint": d.hint}
              for d in (_diagnostics(error) if error is not None else [])]
    return as_json({"ok": not errors, "errors": errors})


def plan_annotations(plan: Plan) -> str:
    """Workflow annotations for what a reviewer should see in the checks tab: held frames, budget."""
    lines = [annotation("notice", f"{change.address} held: approved by {change.approval.by}; "
                                  f"{', '.join(change.reasons)} changed", title="storyboard")
             for change in plan.changes if change.action is Action.HOLD and change.approval]
    lines += [annotation("warning", warning, title="storyboard") for warning in plan.warnings]
    if plan.over_budget:
        lines.append(annotation("error", f"estimated cost ${plan.cost:.2f} is above the budget "
                                         f"${plan.max_cost:.2f}", title="storyboard"))
    return "\n".join(lines)


def _md(text: str) -> str:
    """User text made safe in a Markdown table cell: no HTML, no table breaks, no code spans."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("`", "\\`").replace("\r", " ").replace("\n", " "))


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def plan_markdown(plan: Plan) -> str:
    """The plan as GitHub-flavoured Markdown, for a pull-request comment or a job summary."""
    lines = [f"### storyboard plan: {_md(plan.project.name)}", "", summary_line(plan)]
    if plan.max_cost is not None:
        verdict = "**over the budget**" if plan.over_budget else "within the budget"
        lines.append(f"Estimated cost ${plan.cost:.2f}, {verdict} of ${plan.max_cost:.2f}.")
    shown = [change for change in plan.changes if change.action.shown]
    by_scene: dict[str, list[Any]] = {}
    for change in shown:
        by_scene.setdefault(change.address.split("/")[0], []).append(change)
    for scene, changes in by_scene.items():
        lines += ["", f"#### {_md(scene)}", "", "| | frame | action | why |", "|---|---|---|---|"]
        for change in changes:
            action, why = change.action.value, ", ".join((*change.reasons, *(
                [f"after {change.after}"] if change.after else [])))
            if change.action is Action.HOLD and change.approval is not None:
                action = "held (approved)"
                why = f"approved by {change.approval.by} on {change.approval.day}; {why} changed"
            lines.append(f"| {change.action.symbol} | `{_md(change.address)}` | {action} | {_md(why)} |")
        for change in changes:
            if change.prompt_diff:
                fence = _fence(change.prompt_diff)
                lines += ["", f"<details><summary>prompt diff: {_md(change.address)}</summary>", "",
                          f"{fence}diff", change.prompt_diff, fence, "", "</details>"]
    for warning in plan.warnings:
        lines += ["", f"> warning: {_md(warning)}"]
    return "\n".join(lines)


def formatted(files: Sequence[Formatted], show_diff: bool) -> str:
    """`fmt`: the files (to be) changed, one per line, or their diffs."""
    changed = [item for item in files if item.changed]
    if show_diff:
        return "".join(item.diff(display_path(item.path)) for item in changed)
    return "".join(f"{display_path(item.path)}\n" for item in changed)


def shotlist_imported(result: ShotlistImport) -> str:
    counts = f"{plural(result.scenes, 'scene')}, {plural(result.frames, 'frame')}"
    return f"wrote {display_path(result.path)}: {counts}\nnext: storyboard validate, then storyboard plan"


def shotlist_warnings(result: ShotlistImport) -> list[str]:
    lines = [f"warning: {problem.format()}" for problem in result.problems]
    if result.unknown_characters:
        names = ", ".join(result.unknown_characters)
        lines.append(f"warning: characters the project does not define yet: {names} "
                     "(add them under characters/, or validate will name each use)")
    if not result.included:
        where = display_path(result.path)
        lines.append(f"warning: storyboard.yaml's `include:` does not read {where}; add it")
    return lines
