"""storyboard: Terraform for storyboards.

    project = storyboard.load_project("examples/coffee-launch")
    for item in storyboard.render(project):
        print(item.address, item.prompt)
    plan = storyboard.plan(project)
    result = await storyboard.apply(plan, on_event=print)

Names are imported lazily so that `storyboard --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_project": "storyboard.project.loader",
    "render": "storyboard.project.prompts",
    "Renderer": "storyboard.project.prompts",
    "RenderedFrame": "storyboard.project.prompts",
    "frame_specs": "storyboard.plans.fingerprint",
    "fingerprints": "storyboard.plans.fingerprint",
    "FrameSpec": "storyboard.plans.fingerprint",
    "plan": "storyboard.plans.planner",
    "Plan": "storyboard.plans.planner",
    "apply": "storyboard.run.execute",
    "StoryboardError": "storyboard.errors",
    "UserError": "storyboard.errors",
    "ProjectError": "storyboard.errors",
    "Diagnostic": "storyboard.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'storyboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), "make_plan" if name == "plan" else name)
    globals()[name] = value
    return value
