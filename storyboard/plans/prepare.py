"""Every problem of every stage, in one pass: what `check` reports and what plan needs.

    loading      schema, ids, references, templates, sizes (Project.diagnostics)
    provider     the provider named exists, its `options` are valid
    rendering    every usable frame's prompt (undefined variables, limits, …)
    specs        sizes the provider takes

A stage that fails for a frame leaves it out of the next, so one mistake is reported once.
"""

from __future__ import annotations

from dataclasses import dataclass

from storyboard.errors import Diagnostic, UserError
from storyboard.plans.fingerprint import FrameSpec, specs_and_problems
from storyboard.project import model
from storyboard.project.prompts import RenderedFrame, Renderer, render_all
from storyboard.providers.base import Capabilities, capabilities_for, option_problems


@dataclass(frozen=True)
class Prepared:
    """What planning is made from: each frame's rendered prompt and spec."""

    renderer: Renderer
    rendered: list[RenderedFrame]
    specs: list[FrameSpec]
    capabilities: Capabilities


def prepare(project: model.Project,
            capabilities: Capabilities | None = None) -> tuple[Prepared, list[Diagnostic]]:
    """Render and specify every usable frame; every problem found on the way, in file order."""
    problems = list(project.diagnostics)
    provider_problems = [] if capabilities is not None else _provider_problems(project)
    problems += provider_problems
    renderer = Renderer(project)
    rendered, render_problems = render_all(project, renderer=renderer)
    problems += render_problems
    specs: list[FrameSpec] = []
    if capabilities is None and not provider_problems:
        capabilities = capabilities_for(project.provider)
    if capabilities is not None:
        specs, size_problems = specs_and_problems(project, rendered, capabilities, renderer)
        problems += size_problems
    return Prepared(renderer, rendered, specs, capabilities or Capabilities()), _in_file_order(problems)


def _provider_problems(project: model.Project) -> list[Diagnostic]:
    try:
        return option_problems(project.provider)
    except UserError as error:  # an unknown provider, or one that speaks a newer protocol
        where = project.origin.at("provider", "name") if project.origin else None
        return [Diagnostic(error.message, where, "provider.name", error.hint)]


def _in_file_order(problems: list[Diagnostic]) -> list[Diagnostic]:
    def position(diagnostic: Diagnostic) -> tuple[str, int, int]:
        where = diagnostic.location
        return (str(where.file), where.line, where.col) if where else ("", 0, 0)

    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=position)
