"""The floor of a no-op plan: parse the project's YAML (C loader), render every prompt, hash it.

    python -m bench.floor DIR

A project with `variants:` (bench.make_project --variants: no narrowing, no opt-outs) renders
every frame once per combination of the axes' values, variables in the same order.

Nothing else: no schema, no checks, no lockfile, no output folder. The garbage collector is set as
storyboard's command line sets it (storyboard.machine.tune_gc), which takes a quarter off this too. A no-op
`storyboard plan` cannot be cheaper than this; bench/plan_noop.py reports the ratio.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
from pathlib import Path
from typing import Any

import jinja2
import yaml

from storyboard.machine import tune_gc


def floor(root: Path) -> int:
    """Parse, render and hash every frame of the project at `root`; returns the frame count."""
    config = _load(root / "storyboard.yaml")
    documents = [_load(file) for pattern in config["include"] for file in sorted(root.glob(pattern))]
    characters = {c["id"]: c for d in documents for c in d.get("characters", ())}
    inline = config.get("templates", {})
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(root / "templates"), autoescape=False)
    compiled: dict[str, jinja2.Template] = {}

    def template(name: str) -> jinja2.Template:
        if name not in compiled:
            source = inline.get(name)
            compiled[name] = (environment.from_string(source) if source
                              else environment.get_template(f"{name}.j2"))
        return compiled[name]

    default = config.get("defaults", {}).get("template", "frame")
    digest = hashlib.sha256()
    count = 0
    for document in documents:
        for scene in document.get("scenes", ()):
            for variant, variant_vars in _variants(config):
                scene_vars = {**config.get("variables", {}), **variant_vars, **scene.get("vars", {})}
                for index, frame in enumerate(scene["frames"], 1):
                    cast = [_character(characters[c]) for c in frame.get("characters", ())]
                    context: dict[str, Any] = {
                        "project": config, "scene": scene, "frame": frame, "characters": cast, "index": index,
                        "vars": {**scene_vars, **frame.get("vars", {})}, "variant": variant,
                    }
                    name = frame.get("template") or scene.get("template") or default
                    prompt = " ".join(template(name).render(context).split())
                    digest.update(hashlib.sha256(prompt.encode()).digest())
                    count += 1
    return count


def _variants(config: dict[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Every combination of the axes' values and its variables (one empty one without variants)."""
    axes = {name: values for name, values in config.get("variants", {}).items()
            if name not in ("master", "derive")}
    combinations = []
    for chosen in itertools.product(*[[(axis, value) for value in values] for axis, values in axes.items()]):
        merged: dict[str, Any] = {}
        for axis, value in chosen:
            merged.update((axes[axis][value] or {}).get("vars", {}))
        combinations.append((dict(chosen), merged))
    return combinations


def _character(data: dict[str, Any]) -> dict[str, Any]:
    return {"name": data.get("name", data["id"]), "vars": {}, **data}


def _load(path: Path) -> Any:
    with path.open("rb") as file:
        return yaml.load(file, Loader=yaml.CSafeLoader)


if __name__ == "__main__":
    tune_gc()  # the collector as storyboard's command line sets it
    print(floor(Path(sys.argv[1])))
