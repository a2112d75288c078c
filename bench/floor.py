"""The floor of a no-op plan: parse the project's YAML (C loader), render every prompt, hash it.

    python -m bench.floor DIR

Nothing else: no schema, no checks, no lockfile, no output folder. A no-op
`storyboard plan` cannot be cheaper than this; bench/plan_noop.py reports the ratio.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import jinja2
import yaml


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
            scene_vars = {**config.get("variables", {}), **scene.get("vars", {})}
            for index, frame in enumerate(scene["frames"], 1):
                cast = [_character(characters[c]) for c in frame.get("characters", ())]
                context: dict[str, Any] = {
                    "project": config, "scene": scene, "frame": frame, "characters": cast, "index": index,
                    "vars": {**scene_vars, **frame.get("vars", {})},
                }
                name = frame.get("template") or scene.get("template") or default
                prompt = " ".join(template(name).render(context).split())
                digest.update(hashlib.sha256(prompt.encode()).digest())
                count += 1
    return count


def _character(data: dict[str, Any]) -> dict[str, Any]:
    return {"name": data.get("name", data["id"]), "vars": {}, **data}


def _load(path: Path) -> Any:
    with path.open("rb") as file:
        return yaml.load(file, Loader=yaml.CSafeLoader)


if __name__ == "__main__":
    print(floor(Path(sys.argv[1])))
