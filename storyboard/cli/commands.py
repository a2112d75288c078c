"""The `storyboard` command: each command parses its arguments, makes one call into
storyboard.api, hands the result to one view (storyboard.cli.views) and returns an exit code.

Exit codes are decided in one place, `main`: 0 success, 1 error, 2 changes pending
(`plan --detailed-exitcode`), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from storyboard.errors import ProjectError, UserError
from storyboard.machine import tune_gc

if TYPE_CHECKING:
    from storyboard.api import Plan, Project
    from storyboard.run.apply import ApplyResult

EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130
INTERRUPTED = "interrupted"


@dataclass
class Settings:
    directory: Path
    color: bool | None
    quiet: bool
    verbose: bool
    variables: dict[str, str] = field(default_factory=dict)  # --var, laid over --var-file
    var_files: tuple[Path, ...] = ()

    def load(self, provider: str | None = None) -> Project:
        from storyboard import api

        files = [self.directory / file for file in self.var_files]  # relative to -C, as Terraform's -chdir
        return api.load(self.directory, provider=provider, variables=self.variables, var_files=files)


def _variables(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """--var KEY=VALUE, as Terraform's -var."""
    parsed = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"`{value}` is not KEY=VALUE", ctx, param)
        parsed[key.strip()] = text
    return parsed


pass_settings = click.make_pass_decorator(Settings)


def complete_addresses(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Scene and frame addresses of the project (for --target, --replace, --exclude, approve, …)."""
    from storyboard.project.loader import read_project

    root = ctx.find_root()
    try:
        project = read_project(root.params.get("directory") or ".")
    except Exception:  # completing must never print a traceback into the user's shell
        return []
    addresses = [scene.id for scene in project.scenes] + [frame.address for frame in project.frames]
    return [address for address in addresses if address.startswith(incomplete)]

GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose", "--no-color"})
GLOBAL_WITH_VALUE = frozenset({"-C", "--var", "--var-file"})


class Group(click.Group):
    """Global options are accepted after the command too (`storyboard apply -q`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _globals_first(args))


def _globals_first(args: list[str]) -> list[str]:
    """`args` with the global options that follow the command moved in front of it."""
    front: list[str] = []
    rest: list[str] = []
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--":
            rest += args[position:]
            break
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif arg in GLOBAL_WITH_VALUE and position + 1 < len(args):
            front += args[position:position + 2]
            position += 1
        elif any(arg.startswith(f"{name}=") for name in GLOBAL_WITH_VALUE if name.startswith("--")):
            front.append(arg)
        else:
            rest.append(arg)
        position += 1
    return front + rest


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path), default=".",
              envvar="STORYBOARD_DIR", show_envvar=True,
              help="Run as if started in DIR (the project folder).", metavar="DIR")
@click.option("--no-color", is_flag=True, envvar="STORYBOARD_NO_COLOR", show_envvar=True,
              help="Plain text, no colours (so does NO_COLOR set to anything but an empty string).")
@click.option("-q", "--quiet", is_flag=True, envvar="STORYBOARD_QUIET", show_envvar=True,
              help="Only errors and results.")
@click.option("-v", "--verbose", is_flag=True, envvar="STORYBOARD_VERBOSE", show_envvar=True,
              help="More detail: retries, re-attachments, timings.")
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE", callback=_variables,
              help="Set a variable for this run, over `variables:` and --var-file (repeatable).")
@click.option("--var-file", "var_files", multiple=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="A YAML file of variables for this run, over `variables:` (repeatable, in order).")
@click.version_option(package_name="storyboard-iac", prog_name="storyboard")
@click.pass_context
def cli(ctx: click.Context, directory: Path, no_color: bool, quiet: bool, verbose: bool,
        variables: dict[str, str], var_files: tuple[Path, ...]) -> None:
    """Terraform for storyboards: plan and apply image generation from YAML and Jinja.

    Global options may also follow the command (`storyboard apply -q`).
    """
    no_color = no_color or bool(os.environ.get("NO_COLOR"))  # https://no-color.org
    ctx.obj = Settings(directory, False if no_color else None, quiet, verbose, variables, var_files)
    _logging(verbose, quiet)


def _logging(verbose: bool, quiet: bool) -> None:
    """-v shows storyboard's log (retries, re-attachments) on stderr; -q only errors."""
    import logging  # here, not at the top: `storyboard --help` does without it

    level = logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("storyboard")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


FORMAT = click.Choice(["text", "json", "github"])


@cli.command()
@click.option("--format", "output_format", type=FORMAT, default="text", show_default=True,
              help="json: the diagnostics as JSON (schemas/diagnostics.schema.json); github: workflow "
                   "annotations (::error file=…,line=…,col=…::message).")
@pass_settings
def validate(settings: Settings, output_format: str) -> int:
    """Check schema, ids, references, templates and sizes; list every error with file:line:col."""
    from storyboard import api
    from storyboard.cli import views

    try:
        project = settings.load()
        problems = api.check(project)
        if problems:
            raise ProjectError(problems)
    except UserError as error:
        if output_format == "text":
            raise
        shown = views.diagnostics_json(error) if output_format == "json" else views.error_annotations(error)
        click.echo(shown)
        return 1
    click.echo(views.validate_ok(project) if output_format != "json" else views.diagnostics_json(None))
    return 0


def variant_option(function: Any) -> Any:
    return click.option("--variant", "variants", multiple=True, metavar="AXIS=VALUE",
                        help="Only the frames of this variant (repeatable: values of one axis add up, "
                             "axes narrow each other).")(function)


@cli.command("render")
@click.argument("addresses", nargs=-1, metavar="[ADDR]...", shell_complete=complete_addresses)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--batches", is_flag=True, help="Print the batch prompts sent per request.")
@variant_option
@pass_settings
def render_command(settings: Settings, addresses: tuple[str, ...], as_json: bool, batches: bool,
                   variants: tuple[str, ...]) -> None:
    """Print rendered prompts: every frame in story order, or the scenes and frames named."""
    from storyboard import api
    from storyboard.cli import views

    project = settings.load()
    if batches:
        requests = api.batches(project, addresses, variants)
        click.echo(views.batches_json(requests) if as_json else views.batches_text(requests))
        return
    rendered = api.render(project, addresses, variants)
    if as_json:
        click.echo(views.render_json(project, rendered))
    else:
        click.echo(views.render_text(rendered, settings.color, project), color=settings.color)


@cli.command()
@click.argument("name", required=False)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the schema files into this folder instead of printing them.")
def schema(name: str | None, output_dir: Path | None) -> None:
    """Print the JSON Schemas (for editors: yaml-language-server)."""
    from storyboard import api
    from storyboard.cli import views

    every = api.schemas()
    if name is not None and name not in every:
        raise UserError(f"no schema `{name}`", hint=f"schemas: {', '.join(every)}")
    chosen = {name: every[name]} if name else every
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for item, document in chosen.items():
            (output_dir / f"{item}.schema.json").write_text(views.as_json(document) + "\n", encoding="utf-8")
        click.echo(views.schemas_written(len(chosen), output_dir))
        return
    click.echo(views.as_json(chosen[name] if name else chosen))


@cli.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="Project name (default: the folder's name).")
@pass_settings
def init(settings: Settings, folder: Path | None, name: str | None) -> None:
    """Write a small working project into FOLDER (default: the -C folder)."""
    from storyboard import api
    from storyboard.cli import views

    target = folder or settings.directory
    click.echo(views.init_done(target, api.init(target, name)))


def _plan_options(function: Any) -> Any:
    def addresses(*names: str, help: str) -> Any:
        return click.option(*names, multiple=True, metavar="ADDR", shell_complete=complete_addresses,
                            help=help)

    function = addresses("--target", "targets", help="Only these scenes or frames (repeatable).")(function)
    function = addresses("--replace", "replace",
                         help="Regenerate these even if unchanged (repeatable).")(function)
    function = addresses("--exclude", "excludes",
                         help="Leave these scenes or frames as they are (repeatable; the opposite of "
                              "--target).")(function)
    function = variant_option(function)
    function = click.option("--provider", help="Use this provider instead of the project's.")(function)
    function = click.option("--max-cost", type=click.FloatRange(0),
                            help="The budget (US$) instead of budget.max_cost.")(function)
    return function


@cli.command()
@_plan_options
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown", "github"]),
              default="text", show_default=True,
              help="json: schemas/plan.schema.json; markdown: for a pull-request comment or job summary; "
                   "github: the text plus workflow annotations for errors and held frames.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 for no changes, 2 for changes, 1 on error.")
@click.option("-o", "--out", "save_to", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan for `storyboard apply FILE`.")
@pass_settings
def plan(settings: Settings, targets: tuple[str, ...], replace: tuple[str, ...], excludes: tuple[str, ...],
         variants: tuple[str, ...], provider: str | None, max_cost: float | None, output_format: str,
         as_json: bool, detailed_exitcode: bool, save_to: Path | None) -> int:
    """Show which frames apply would create, regenerate, repair or remove, and what it costs.

    Exits 1 when the estimate is above the budget (after printing the plan).
    """
    from storyboard import api
    from storyboard.cli import views

    output_format = "json" if as_json else output_format
    try:
        result = api.plan(settings.load(provider), targets=targets, replace=replace, excludes=excludes,
                          max_cost=max_cost, variants=variants)
    except UserError as error:
        if output_format != "github":
            raise
        click.echo(views.error_annotations(error))
        return 1
    if output_format == "json":
        click.echo(views.plan_json(result))
    elif output_format == "markdown":
        click.echo(views.plan_markdown(result))
    elif not settings.quiet or result.has_changes:
        click.echo(views.plan_text(result, settings.color))
        if output_format == "github":
            click.echo(views.plan_annotations(result))
    for warning in result.warnings:
        click.echo(views.warning(warning), err=True)
    if result.over_budget:
        click.echo(views.budget_error(result), err=True)
        return 1
    if save_to is not None:
        api.save_plan(result, save_to)
        if output_format == "text":
            click.echo(views.plan_saved(save_to))
    return EXIT_CHANGES if detailed_exitcode and result.has_changes else 0


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_plan_options
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", type=click.IntRange(1, 256), envvar="STORYBOARD_PARALLELISM", show_envvar=True,
              help="Requests in flight at once.")
@click.option("--lock-timeout", default="0", metavar="DURATION", envvar="STORYBOARD_LOCK_TIMEOUT",
              show_envvar=True,
              help="With a backend: wait this long for its run lock (90, 30s, 5m); default: refuse at once.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line (schemas/events.schema.json).")
@pass_settings
def apply(settings: Settings, plan_file: Path | None, targets: tuple[str, ...], replace: tuple[str, ...],
          excludes: tuple[str, ...], variants: tuple[str, ...], provider: str | None, max_cost: float | None,
          auto_approve: bool,
          parallelism: int | None, lock_timeout: str, as_json: bool) -> int:
    """Generate what the plan says and write a new output version.

    With a backend, the run lock is held from planning to the end, so no other apply
    publishes in between.
    """
    from storyboard import api
    from storyboard.cli import views
    from storyboard.run.lock import parse_duration

    project = settings.load(provider)
    with api.locked(project, timeout=parse_duration(lock_timeout)):
        if plan_file is not None:
            the_plan = api.load_plan(project, plan_file)
        else:
            the_plan = api.plan(project, targets=targets, replace=replace, excludes=excludes,
                                max_cost=max_cost, variants=variants)
        if as_json:
            click.echo(views.plan_event(the_plan))
        elif not settings.quiet:
            click.echo(views.plan_text(the_plan, settings.color))
        if not the_plan.has_changes:
            return 0
        if not (auto_approve or plan_file is not None) and not _confirmed():
            click.echo(views.APPLY_CANCELLED)
            return 1
        result = _run_apply(settings, the_plan, parallelism, as_json)
    if result.version is not None and not as_json:
        click.echo(views.apply_complete(result))
    for line in views.apply_failures(the_plan, result):
        click.echo(line, err=True)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return 1 if result.failed else 0


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        raise UserError("apply needs confirmation, and there is no terminal to ask on",
                        hint="review `storyboard plan`, then run `storyboard apply --auto-approve`")
    return click.confirm("\nApply this plan?", default=False)


def _run_apply(settings: Settings, the_plan: Plan, parallelism: int | None, as_json: bool) -> ApplyResult:
    """api.apply with the first Ctrl-C stopping new submits and the second leaving at once."""
    import contextlib
    import os
    import signal
    import threading

    from storyboard import api
    from storyboard.cli import progress
    from storyboard.providers.placeholders import draw_in_processes

    draw_in_processes()  # this is storyboard's own __main__: safe for spawned processes to import
    stop = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            click.echo(progress.SECOND_INTERRUPT, err=True)
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        click.echo(progress.FIRST_INTERRUPT, err=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    total = sum(len(batch.specs) for batch in the_plan.batches)
    use_bar = progress.is_terminal() and not as_json and not settings.quiet
    bar: Any = progress.Progress(total) if use_bar else contextlib.nullcontext()
    try:
        with bar:
            sink = bar if use_bar else progress.event_sink(as_json, settings.quiet)
            return api.apply(the_plan, on_event=sink, parallelism=parallelism, stop=stop)  # lock held
    finally:
        signal.signal(signal.SIGINT, previous)


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: schemas/history.schema.json.")
@pass_settings
def history(settings: Settings, output_format: str) -> None:
    """List the output versions with their change counts."""
    from storyboard import api
    from storyboard.cli import views

    summaries = api.history(settings.load())
    click.echo(views.history_json(summaries) if output_format == "json" else views.history_lines(summaries))


@cli.command()
@click.argument("version", required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print the manifest, every frame in it (merged from the scene manifests).")
@pass_settings
def show(settings: Settings, version: str | None, as_json: bool) -> None:
    """Show a version's frames (default: the latest)."""
    from storyboard import api
    from storyboard.cli import views

    view = api.show(settings.load(), version)
    click.echo(views.show_json(view) if as_json else views.show_text(view))


@cli.group("import")
def import_group() -> None:
    """Bring work from elsewhere into the project: a shot list."""


@import_group.command("shotlist")
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scene-file", metavar="PATH", help="The scene file to write, in the project "
              "(default: scenes/<sheet name>.yaml).")
@click.option("--map", "mapping", multiple=True, metavar="COLUMN=FIELD",
              help="Which field a column is (scene, shot_number, shot, action, dialogue, duration, "
                   "characters, notes), where the header's name is not recognised (repeatable).")
@click.option("--force", is_flag=True, help="Replace the scene file if it exists.")
@pass_settings
def import_shotlist(settings: Settings, sheet: Path, scene_file: str | None, mapping: tuple[str, ...],
                    force: bool) -> int:
    """Turn a shot list exported from a spreadsheet as CSV into a scene file that validates."""
    from storyboard import api
    from storyboard.cli import views

    fields = {}
    for item in mapping:
        column, sep, name = item.rpartition("=")
        if not sep or not column:
            raise UserError(f"--map {item}: not COLUMN=FIELD", hint="for example --map 'What we see=action'")
        fields[column] = name.strip()
    result = api.import_shotlist(settings.load(), sheet, scene_file=scene_file, mapping=fields, force=force)
    click.echo(views.shotlist_imported(result))
    for line in views.shotlist_warnings(result):
        click.echo(line, err=True)
    return 0


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: `eval "$(storyboard completion bash)"` in ~/.bashrc
    (zsh: ~/.zshrc; fish: `storyboard completion fish | source`). Addresses complete from the project."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None
    click.echo(completer(cli, {}, "storyboard", "_STORYBOARD_COMPLETE").source())


@cli.command()
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file is not formatted (for CI).")
@click.option("--diff", "show_diff", is_flag=True, help="Print what would change as a unified diff.")
@pass_settings
def fmt(settings: Settings, check: bool, show_diff: bool) -> int:
    """Rewrite the project's YAML in one canonical layout, keeping comments; prints the files changed."""
    from storyboard import api
    from storyboard.cli import views

    formatted = api.fmt(settings.load(), check=check or show_diff)
    click.echo(views.formatted(formatted, show_diff), nl=False)
    return 1 if check and any(item.changed for item in formatted) else 0


@cli.command()
@click.argument("addresses", nargs=-1, metavar="[ADDR]...", shell_complete=complete_addresses)
@click.option("--all", "every", is_flag=True, help="Every frame.")
@click.option("--version", "version", metavar="V", help="Approve the images this version holds (v0003, 3).")
@click.option("--by", help="Who approves (default: git's user.name <user.email>, else the OS user).")
@pass_settings
def approve(settings: Settings, addresses: tuple[str, ...], every: bool, version: str | None,
            by: str | None) -> None:
    """Approve frames or whole scenes: their images are held, never regenerated by an edit,
    until unapproved or replaced with --replace. Recorded in storyboard.lock: commit it."""
    from storyboard import api
    from storyboard.cli import views

    click.echo(views.approved(api.approve(settings.load(), addresses, every=every, version=version, by=by)))


@cli.command()
@click.argument("addresses", nargs=-1, metavar="[ADDR]...", shell_complete=complete_addresses)
@click.option("--all", "every", is_flag=True, help="Every approved frame.")
@pass_settings
def unapprove(settings: Settings, addresses: tuple[str, ...], every: bool) -> None:
    """Remove approvals: the next plan regenerates those frames if their inputs changed."""
    from storyboard import api
    from storyboard.cli import views

    click.echo(views.unapproved(api.unapprove(settings.load(), addresses, every=every)))


@cli.group()
def export() -> None:
    """Deliverables from a version: a PDF, a contact sheet, an animatic, a timeline."""


def _deliverable(output_help: str) -> Callable[[Any], Any]:
    """What every export takes: a VERSION (default: the latest), -o FILE and --variant."""
    def decorate(function: Any) -> Any:
        function = variant_option(function)
        function = click.option("-o", "--output", "target", required=True, help=output_help,
                                type=click.Path(dir_okay=False, path_type=Path))(function)
        return click.argument("version", required=False)(function)
    return decorate


@export.command("pdf")
@_deliverable("The PDF file to write.")
@click.option("--per-page", type=click.IntRange(1, 24), default=6, show_default=True,
              help="Panels per page.")
@pass_settings
def export_pdf(settings: Settings, version: str | None, target: Path, per_page: int,
               variants: tuple[str, ...]) -> None:
    """A printable storyboard: panels with shot, action, dialogue and duration."""
    from storyboard import api
    from storyboard.cli import views

    written = api.export_pdf(settings.load(), version, path=target, per_page=per_page, variants=variants)
    for text in written.warnings:
        click.echo(views.warning(text), err=True)
    click.echo(views.exported(written))


DEFAULT_DURATION = click.option("--default-duration", type=click.FloatRange(0.04, 3600), default=2.0,
                                show_default=True, help="Seconds for frames without a duration.")


@export.command("animatic")
@_deliverable("The MP4 file to write.")
@click.option("--size", metavar="WxH", help="Video size (default: 1920 wide at the board's most common "
              "aspect; frames of another aspect are letterboxed).")
@click.option("--fps", type=click.IntRange(1, 120), default=24, show_default=True)
@DEFAULT_DURATION
@click.option("--captions", is_flag=True, help="Burn in each frame's dialogue.")
@click.option("--titles", is_flag=True, help="A title card before each scene.")
@click.option("--scenes", "scenes", multiple=True, metavar="SCENE", help="Only these scenes (repeatable).")
@pass_settings
def export_animatic(settings: Settings, version: str | None, target: Path, size: str | None, fps: int,
                    default_duration: float, captions: bool, titles: bool, scenes: tuple[str, ...],
                    variants: tuple[str, ...]) -> None:
    """An H.264 MP4: each frame held for its duration, in story order (needs the `video` extra)."""
    from storyboard import api
    from storyboard.cli import progress, views
    from storyboard.deliver.animatic import parse_size

    dimensions = parse_size(size) if size else None
    bar = progress.frames_bar(settings.quiet)
    with bar as report:
        written = api.export_animatic(settings.load(), version, path=target, size=dimensions, fps=fps,
                                      default_duration=default_duration, captions=captions, titles=titles,
                                      scenes=scenes, on_frame=report, variants=variants)
    click.echo(views.exported(written))


@export.command("timeline")
@_deliverable("The file to write (board.otio, board.xml, board.fcpxml, board.edl).")
@click.option("--format", "file_format", type=click.Choice(["otio", "fcp7xml", "fcpxml", "edl"]),
              default="otio", show_default=True,
              help="otio; fcp7xml (Premiere, Resolve); fcpxml (Final Cut Pro); edl (CMX 3600).")
@click.option("--rate", type=click.FloatRange(1, 120), default=24.0, show_default=True,
              help="Frames per second.")
@DEFAULT_DURATION
@click.option("--absolute", is_flag=True, help="Media references as absolute file URLs (default: relative to "
              "the written file).")
@pass_settings
def export_timeline(settings: Settings, version: str | None, target: Path, file_format: str, rate: float,
                    default_duration: float, absolute: bool, variants: tuple[str, ...]) -> None:
    """A timeline editors open: a clip per frame, markers at scenes (needs the `timeline` extra)."""
    from storyboard import api
    from storyboard.cli import views

    written = api.export_timeline(settings.load(), version, path=target, file_format=file_format, rate=rate,
                                  default_duration=default_duration, absolute=absolute, variants=variants)
    click.echo(views.exported(written))


@export.command("contact-sheet")
@_deliverable("The PNG file to write.")
@click.option("--columns", type=click.IntRange(1, 40), default=6, show_default=True)
@pass_settings
def export_contact_sheet(settings: Settings, version: str | None, target: Path, columns: int,
                         variants: tuple[str, ...]) -> None:
    """One PNG grid of every frame, its address under it."""
    from storyboard import api
    from storyboard.cli import views

    click.echo(views.exported(api.export_contact_sheet(settings.load(), version, path=target,
                                                       columns=columns, variants=variants)))


@cli.command()
@click.option("--keep", type=click.IntRange(1), help="How many of the newest versions to keep.")
@click.option("--remote", is_flag=True, help="Collect the backend's store instead of out/ (a dry run "
              "unless --force).")
@click.option("--keep-days", type=click.FloatRange(0), default=30.0, show_default=True,
              help="With --remote: keep images indexed more recently than this.")
@click.option("--force", is_flag=True, help="Delete without asking (with --remote: delete at all; without "
              "it, only say what would go).")
@click.option("--auto-approve", is_flag=True, help="Do not ask before deleting (on a terminal, gc asks).")
@click.option("--dry-run", is_flag=True,
              help="List what would be removed and the bytes freed; remove nothing.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: schemas/gc.schema.json (out/ only).")
@pass_settings
def gc(settings: Settings, keep: int | None, remote: bool, keep_days: float, force: bool, auto_approve: bool,
       dry_run: bool, output_format: str) -> int:
    """Remove old versions (never the latest; images still used by kept versions survive).

    With --remote, remove from the backend what no kept version, no recent index entry and
    not the lockfile references.
    """
    from storyboard import api
    from storyboard.cli import views

    project = settings.load()
    if remote:
        click.echo(views.remote_gc_done(api.gc_remote(project, keep=keep, keep_days=keep_days,
                                                      force=force and not dry_run)))
        return 0
    if keep is None:
        raise UserError("gc needs --keep N (how many of the newest versions to keep)")
    if output_format == "json":
        click.echo(views.gc_json(api.gc(project, keep, dry_run=dry_run)))
        return 0
    if not (dry_run or force or auto_approve) and sys.stdin.isatty():
        planned = api.gc(project, keep, dry_run=True)
        if not planned.versions:
            click.echo(views.gc_done(planned))
            return 0
        click.echo(views.gc_done(planned))
        if not click.confirm("Remove them?", default=False):
            click.echo(views.GC_CANCELLED)
            return 1
    click.echo(views.gc_done(api.gc(project, keep, dry_run=dry_run)))
    return 0


@cli.command()
@click.argument("version", required=False)
@pass_settings
def pull(settings: Settings, version: str | None) -> None:
    """Materialise a version published on the backend in out/ (default: the newest)."""
    from storyboard import api
    from storyboard.cli import views

    click.echo(views.pulled(api.pull(settings.load(), version)))


@cli.command()
@pass_settings
def push(settings: Settings) -> int:
    """Send the backend the images and versions only this machine holds."""
    from storyboard import api
    from storyboard.cli import views

    pushed = api.push(settings.load())
    click.echo(views.pushed(pushed))
    return 1 if pushed.objects.failed or pushed.index.failed else 0


@cli.command("force-unlock")
@click.argument("lock_id")
@pass_settings
def force_unlock(settings: Settings, lock_id: str) -> None:
    """Remove the backend's run lock LOCK_ID, left by a run that died (the ID is in the message of
    the apply it refused)."""
    from storyboard import api
    from storyboard.cli import views

    click.echo(views.unlocked(api.force_unlock(settings.load(), lock_id)))


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps errors to messages and exit codes."""
    tune_gc()
    try:
        code = cli.main(args=argv, prog_name="storyboard", standalone_mode=False)
    except UserError as error:
        click.echo(error.format(), err=True)
        sys.exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo(INTERRUPTED, err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        error.show()
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
