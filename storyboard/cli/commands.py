"""The `storyboard` command: argument parsing and printing only; the work is in the library.

Exit codes are decided in one place, `main`: 0 success, 1 error, 2 changes pending
(`plan --detailed-exitcode`), 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from storyboard.errors import UserError
from storyboard.wording import plural

if TYPE_CHECKING:
    from storyboard.project.model import Project

EXIT_INTERRUPTED = 130


@dataclass
class Settings:
    directory: Path
    color: bool | None
    quiet: bool
    verbose: bool

    def load(self, provider: str | None = None) -> Project:
        import dataclasses

        from storyboard.project.loader import load_project

        project = load_project(self.directory)
        if provider:
            config = dataclasses.replace(project.provider, name=provider)
            project = dataclasses.replace(project, provider=config)
        return project


pass_settings = click.make_pass_decorator(Settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path), default=".",
              help="Run as if started in DIR (the project folder).", metavar="DIR")
@click.option("--no-color", is_flag=True, help="Plain text, no colours.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results.")
@click.option("-v", "--verbose", is_flag=True, help="More detail.")
@click.version_option(package_name="storyboard-iac", prog_name="storyboard")
@click.pass_context
def cli(ctx: click.Context, directory: Path, no_color: bool, quiet: bool, verbose: bool) -> None:
    """Terraform for storyboards: plan and apply image generation from YAML and Jinja."""
    ctx.obj = Settings(directory, False if no_color else None, quiet, verbose)


@cli.command()
@pass_settings
def validate(settings: Settings) -> None:
    """Check schema, ids, references and templates; list every error with file:line:col."""
    from storyboard.plans.fingerprint import frame_specs
    from storyboard.project.prompts import Renderer, render
    from storyboard.providers.base import capabilities_for

    project = settings.load()
    renderer = Renderer(project)
    frame_specs(project, render(project, renderer=renderer), capabilities_for(project.provider),
                renderer)
    frames = sum(len(scene.frames) for scene in project.scenes)
    click.echo(
        f"OK {project.name}: {plural(len(project.scenes), 'scene')}, {plural(frames, 'frame')}, "
        f"{plural(len(project.characters), 'character')}, {plural(len(project.templates), 'template')}"
    )


@cli.command("render")
@click.argument("addresses", nargs=-1, metavar="[ADDR]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--batches", is_flag=True, help="Print the batch prompts sent per request.")
@pass_settings
def render_command(settings: Settings, addresses: tuple[str, ...], as_json: bool,
                   batches: bool) -> None:
    """Print rendered prompts: every frame in story order, or the scenes and frames named."""
    from storyboard.project.model import select_frames
    from storyboard.project.prompts import Renderer, render

    project = settings.load()
    frames = select_frames(project, addresses) if addresses else None
    renderer = Renderer(project)
    rendered = render(project, frames, renderer)
    if batches:
        _print_batches(project, renderer, rendered, as_json)
        return
    if as_json:
        data = [{"address": r.address, "template": renderer.template_name(r.frame),
                 "prompt": r.prompt} for r in rendered]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for item in rendered:
        click.echo(click.style(item.address, bold=True, fg="cyan"), color=settings.color)
        click.echo(f"  {item.prompt}\n")


def _print_batches(project: Project, renderer: Any, rendered: Any, as_json: bool) -> None:
    from storyboard.plans.batch import make_batches
    from storyboard.plans.fingerprint import frame_specs
    from storyboard.providers.base import capabilities_for

    capabilities = capabilities_for(project.provider)
    specs = frame_specs(project, rendered, capabilities, renderer)
    batches = make_batches(project, specs, capabilities, renderer)
    if as_json:
        data = [{"frames": list(b.frames), "size": b.size, "prompt": b.prompt} for b in batches]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for number, batch in enumerate(batches, 1):
        click.echo(f"request {number}: {plural(len(batch.frames), 'image')}, {batch.size}")
        click.echo(f"  frames: {', '.join(batch.frames)}")
        click.echo(f"  {batch.prompt}\n")


@cli.command()
@click.argument("name", required=False)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the schema files into this folder instead of printing them.")
def schema(name: str | None, output_dir: Path | None) -> None:
    """Print the JSON Schemas (for editors: yaml-language-server)."""
    from storyboard.project.schema import available_schemas, load_schema

    names = available_schemas()
    if name is not None and name not in names:
        raise UserError(f"no schema `{name}`", hint=f"schemas: {', '.join(names)}")
    chosen = [name] if name else names
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for item in chosen:
            (output_dir / f"{item}.schema.json").write_text(
                json.dumps(load_schema(item), indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {plural(len(chosen), 'schema')} to {output_dir}")
        return
    document = load_schema(chosen[0]) if name else {n: load_schema(n) for n in chosen}
    click.echo(json.dumps(document, indent=2))


@cli.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: the folder's name).")
@pass_settings
def init(settings: Settings, folder: Path | None, name: str | None) -> None:
    """Write a small working project into FOLDER (default: the -C folder)."""
    from storyboard.errors import display_path
    from storyboard.project.scaffold import init_project

    target = folder or settings.directory
    written = init_project(target, name)
    click.echo(f"created a storyboard project in {display_path(target)} ({len(written)} files)")
    click.echo(f"next: storyboard -C {display_path(target)} plan")


def _plan_options(function: Any) -> Any:
    function = click.option("--target", "targets", multiple=True, metavar="ADDR",
                            help="Only these scenes or frames (repeatable).")(function)
    function = click.option("--replace", "replace", multiple=True, metavar="ADDR",
                            help="Regenerate these even if unchanged (repeatable).")(function)
    function = click.option("--provider", help="Use this provider instead of the project's.")(function)
    return function


@cli.command()
@_plan_options
@click.option("--max-cost", type=click.FloatRange(0), help="The budget (US$) instead of budget.max_cost.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (schemas/plan.schema.json).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 for no changes, 2 for changes, 1 on error.")
@click.option("-o", "--out", "save_to", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan for `storyboard apply FILE`.")
@pass_settings
def plan(settings: Settings, targets: tuple[str, ...], replace: tuple[str, ...], provider: str | None,
         max_cost: float | None, as_json: bool, detailed_exitcode: bool, save_to: Path | None) -> int:
    """Show which frames apply would create, regenerate, repair or remove, and what it costs.

    Exits 1 when the estimate is above the budget (after printing the plan).
    """
    from storyboard.cli.views import budget_error, plan_text
    from storyboard.plans.planner import make_plan, save_plan

    project = settings.load(provider)
    result = make_plan(project, targets=targets, replace=replace, max_cost=max_cost)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    elif not settings.quiet or result.has_changes:
        click.echo(plan_text(result, settings.color))
    if result.over_budget:
        click.echo(budget_error(result), err=True)
        return 1
    if save_to is not None:
        save_plan(result, save_to)
        if not as_json:
            click.echo(f"\nSaved the plan to {save_to}; apply it with: storyboard apply {save_to}")
    return 2 if detailed_exitcode and result.has_changes else 0


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_plan_options
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", type=click.IntRange(1, 256), help="Requests in flight at once.")
@click.option("--max-cost", type=click.FloatRange(0), help="Refuse a plan estimated above this (US$).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line (schemas/events.schema.json).")
@pass_settings
def apply(settings: Settings, plan_file: Path | None, targets: tuple[str, ...], replace: tuple[str, ...],
          provider: str | None, auto_approve: bool, parallelism: int | None, max_cost: float | None,
          as_json: bool) -> int:
    """Generate what the plan says and write a new output version."""
    from storyboard.cli.views import plan_text, summary_line
    from storyboard.plans.planner import load_saved_plan, make_plan

    project = settings.load(provider)
    if plan_file is not None:
        the_plan = load_saved_plan(plan_file, project)
    else:
        the_plan = make_plan(project, targets=targets, replace=replace, max_cost=max_cost)
    if as_json:
        click.echo(json.dumps({"event": "plan", **the_plan.to_json()}, ensure_ascii=False, sort_keys=True))
    elif not settings.quiet:
        click.echo(plan_text(the_plan, settings.color))
    if not the_plan.has_changes:
        return 0
    if not (auto_approve or plan_file is not None):
        if not sys.stdin.isatty():
            raise UserError("apply needs confirmation, and there is no terminal to ask on",
                            hint="review `storyboard plan`, then run `storyboard apply --auto-approve`")
        if not click.confirm("\nApply this plan?", default=False):
            click.echo("Apply cancelled.")
            return 1
    return _run_apply(settings, the_plan, parallelism, max_cost, as_json, summary_line(the_plan))


def _run_apply(settings: Settings, the_plan: Any, parallelism: int | None, max_cost: float | None,
               as_json: bool, summary: str) -> int:
    import contextlib
    import os
    import signal
    import threading

    import anyio

    from storyboard.cli.views import Progress, apply_failures, event_sink, is_terminal
    from storyboard.run.execute import apply as run_plan

    stop = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            click.echo("\nsecond interrupt: leaving now; the journal keeps what was paid for", err=True)
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        click.echo("\ninterrupt: no new requests; finishing the submitted ones (Ctrl-C again to leave now)",
                   err=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    total = sum(len(batch.specs) for batch in the_plan.batches)
    use_bar = is_terminal() and not as_json and not settings.quiet
    bar: Any = Progress(total) if use_bar else contextlib.nullcontext()
    try:
        with bar:
            sink = bar if use_bar else event_sink(as_json, settings.quiet)
            result = anyio.run(lambda: run_plan(the_plan, on_event=sink, parallelism=parallelism,
                                                stop=stop, max_cost=max_cost))
    finally:
        signal.signal(signal.SIGINT, previous)
    if as_json:
        click.echo(json.dumps({"event": "apply_finished", "version": result.version, "failed": result.failed,
                               "interrupted": result.interrupted, "cost": result.cost}, sort_keys=True))
    elif result.version is not None:
        made = len(result.generated)
        failed = len(result.failed) - len(result.not_done)
        not_done = f", {len(result.not_done)} not done" if result.not_done else ""
        click.echo(f"Apply complete: version {result.version:04d}, {plural(made, 'frame')} "
                   f"generated, {failed} failed{not_done}, cost ${result.cost:.2f}.")
    for line in apply_failures(the_plan, result):
        click.echo(line, err=True)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return 1 if result.failed else 0


@cli.command()
@pass_settings
def history(settings: Settings) -> None:
    """List the output versions with their change counts."""
    from storyboard.state.manifest import frame_count, read_manifest
    from storyboard.state.versions import latest_version, version_name, versions

    project = settings.load()
    output = project.output_path
    latest = latest_version(output)
    numbers = versions(output)
    if not numbers:
        click.echo("No versions yet: run `storyboard apply`.")
        return
    for number in numbers:
        manifest = read_manifest(output, number, frames=False)
        counts = manifest.get("changes", {})
        marker = "  (latest)" if number == latest else ""
        not_done = f", {counts['not_done']} not done" if counts.get("not_done") else ""
        click.echo(f"{version_name(number)}  {manifest.get('created_at', '?')}  "
                   f"{plural(frame_count(manifest), 'frame')}: {counts.get('create', 0)} new, "
                   f"{counts.get('regenerate', 0)} regenerated, {counts.get('repair', 0)} repaired, "
                   f"{counts.get('remove', 0)} removed, {counts.get('failed', 0)} failed{not_done}{marker}")


@cli.command()
@click.argument("version", required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print the manifest, every frame in it (merged from the scene manifests).")
@pass_settings
def show(settings: Settings, version: str | None, as_json: bool) -> None:
    """Show a version's frames (default: the latest)."""
    folder, manifest = _version_folder(settings, version)
    if as_json:
        click.echo(json.dumps(manifest, indent=2, ensure_ascii=False))
        return
    click.echo(f"{folder.name} of {manifest['project']}, {manifest['created_at']}")
    for frame in manifest["frames"]:
        click.echo(f"  {frame['address']:<32} {frame['status']:<12} v{frame['generated_in']:04d}  "
                   f"{frame['path']}")


@cli.group()
def export() -> None:
    """Deliverables from a version: a printable PDF, a contact sheet."""


def _version_folder(settings: Settings, version: str | None) -> tuple[Path, dict[str, Any]]:
    from storyboard.state.manifest import read_manifest
    from storyboard.state.versions import resolve_version, version_name

    project = settings.load()
    output = project.output_path
    number = resolve_version(output, version)
    return output / version_name(number), read_manifest(output, number)


@export.command("pdf")
@click.argument("version", required=False)
@click.option("-o", "--output", "target", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The PDF file to write.")
@click.option("--per-page", type=click.IntRange(1, 24), default=6, show_default=True,
              help="Panels per page.")
@pass_settings
def export_pdf(settings: Settings, version: str | None, target: Path, per_page: int) -> None:
    """A printable storyboard: panels with shot, action, dialogue and duration."""
    from storyboard.deliver.export import pdf_storyboard

    folder, manifest = _version_folder(settings, version)
    target.write_bytes(pdf_storyboard(folder, manifest, per_page))
    click.echo(f"wrote {target} ({plural(len(manifest['frames']), 'frame')}, {folder.name})")


@export.command("contact-sheet")
@click.argument("version", required=False)
@click.option("-o", "--output", "target", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The PNG file to write.")
@click.option("--columns", type=click.IntRange(1, 40), default=6, show_default=True)
@pass_settings
def export_contact_sheet(settings: Settings, version: str | None, target: Path, columns: int) -> None:
    """One PNG grid of every frame, its address under it."""
    from storyboard.deliver.export import contact_sheet

    folder, manifest = _version_folder(settings, version)
    target.write_bytes(contact_sheet(folder, manifest["frames"], columns))
    click.echo(f"wrote {target} ({plural(len(manifest['frames']), 'frame')}, {folder.name})")


@cli.command()
@click.option("--keep", type=int, required=True, help="How many of the newest versions to keep.")
@pass_settings
def gc(settings: Settings, keep: int) -> None:
    """Remove old versions (never the latest; images still used by kept versions survive)."""
    from storyboard.state.journal import RunLock
    from storyboard.state.versions import collect_garbage, version_name

    project = settings.load()
    with RunLock(project.state_path):
        removed = collect_garbage(project.output_path, keep)
    click.echo(f"removed {plural(len(removed), 'version')}" +
               (f": {', '.join(version_name(n) for n in removed)}" if removed else ""))


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to messages and exit codes."""
    try:
        code = cli.main(args=argv, prog_name="storyboard", standalone_mode=False)
    except UserError as error:
        click.echo(error.format(), err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        error.show()
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
