"""storyboard: Terraform for storyboards, as a library.

    import storyboard
    project = storyboard.load("examples/coffee-launch")
    problems = storyboard.check(project)
    plan = storyboard.plan(project)
    result = storyboard.apply(plan, on_event=print)

Everything here is storyboard.api (see its docstring) and the error types. Names are
imported lazily at run time so that `storyboard --help` stays fast; type checkers read
the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storyboard.api import (
        Collected,
        Export,
        Plan,
        Project,
        RenderedFrame,
        VersionSummary,
        VersionView,
        apply,
        apply_async,
        approve,
        backend,
        batches,
        check,
        export_contact_sheet,
        export_pdf,
        force_unlock,
        gc,
        gc_remote,
        history,
        init,
        load,
        load_plan,
        locked,
        plan,
        pull,
        push,
        render,
        save_plan,
        schemas,
        show,
        unapprove,
    )
    from storyboard.errors import Diagnostic, Location, ProjectError, StoryboardError, UserError
    from storyboard.run.apply import ApplyResult

__version__ = "0.1.0"

__all__ = [
    "ApplyResult", "Collected", "Diagnostic", "Export", "Location", "Plan", "Project", "ProjectError",
    "RenderedFrame", "StoryboardError", "UserError", "VersionSummary", "VersionView", "__version__", "apply",
    "apply_async",
    "approve", "backend", "batches", "check", "export_contact_sheet", "export_pdf", "force_unlock", "gc",
    "gc_remote", "history", "init", "load", "load_plan", "locked", "plan", "pull", "push", "render",
    "save_plan", "schemas", "show", "unapprove",
]
_ERRORS = frozenset({"Diagnostic", "Location", "ProjectError", "StoryboardError", "UserError"})
_API = frozenset(__all__) - _ERRORS - {"__version__"}


def __getattr__(name: str) -> Any:
    if name == "ApplyResult":
        module = "storyboard.run.apply"
    elif name in _API:
        module = "storyboard.api"
    elif name in _ERRORS:
        module = "storyboard.errors"
    else:
        raise AttributeError(f"module 'storyboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
