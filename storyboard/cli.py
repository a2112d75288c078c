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

if TYPE_CHECKING:
    from storyboard.model import Project

EXIT_INTERRUPTED = 130


@dataclass
class Settings:
    directory: Path
    color: bool | None
    quiet: bool
    verbose: bool

    def load(self) -> Project:
        from storyboard.project import load_project

        return load_project(self.directory)


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
    from storyboard.fingerprint import frame_specs
    from storyboard.prompts import Renderer, render
    from storyboard.providers.base import capabilities_for

    project = settings.load()
    renderer = Renderer(project)
    frame_specs(project, render(project, renderer=renderer), capabilities_for(project.provider),
                renderer)
    frames = sum(len(scene.frames) for scene in project.scenes)
    click.echo(
        f"OK {project.name}: {len(project.scenes)} scenes, {frames} frames, "
        f"{len(project.characters)} characters, {len(project.templates)} templates"
    )


@cli.command("render")
@click.argument("addresses", nargs=-1, metavar="[ADDR]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--batches", is_flag=True, help="Print the batch prompts sent per request.")
@pass_settings
def render_command(settings: Settings, addresses: tuple[str, ...], as_json: bool,
                   batches: bool) -> None:
    """Print rendered prompts: every frame in story order, or the scenes and frames named."""
    from storyboard.model import select_frames
    from storyboard.prompts import Renderer, render

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
    from storyboard.batch import make_batches
    from storyboard.fingerprint import frame_specs
    from storyboard.providers.base import capabilities_for

    capabilities = capabilities_for(project.provider)
    specs = frame_specs(project, rendered, capabilities, renderer)
    batches = make_batches(project, specs, capabilities, renderer)
    if as_json:
        data = [{"frames": list(b.frames), "size": b.size, "prompt": b.prompt} for b in batches]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for number, batch in enumerate(batches, 1):
        click.echo(f"request {number}: {len(batch.frames)} image(s), {batch.size}")
        click.echo(f"  frames: {', '.join(batch.frames)}")
        click.echo(f"  {batch.prompt}\n")


@cli.command()
@click.argument("name", required=False)
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the schema files into this folder instead of printing them.")
def schema(name: str | None, output_dir: Path | None) -> None:
    """Print the JSON Schemas (for editors: yaml-language-server)."""
    from storyboard.schema import available_schemas, load_schema

    names = available_schemas()
    if name is not None and name not in names:
        raise UserError(f"no schema `{name}`", hint=f"schemas: {', '.join(names)}")
    chosen = [name] if name else names
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for item in chosen:
            (output_dir / f"{item}.schema.json").write_text(
                json.dumps(load_schema(item), indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {len(chosen)} schema(s) to {output_dir}")
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
    from storyboard.scaffold import init_project

    target = folder or settings.directory
    written = init_project(target, name)
    click.echo(f"created a storyboard project in {display_path(target)} ({len(written)} files)")
    click.echo(f"next: storyboard -C {display_path(target)} plan")


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
