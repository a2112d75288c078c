"""`storyboard init`: a small working project to start from."""

from __future__ import annotations

import shutil
from pathlib import Path

from storyboard.errors import UserError
from storyboard.project.schema import FILE_SCHEMAS, schema_dir

_ROOT = """\
# yaml-language-server: $schema=schemas/storyboard.schema.json
version: 1
project: {name}
provider:
  name: local          # offline placeholders; `atlascloud` for Seedream 4.5 on Atlas Cloud
  parallelism: 4
defaults:
  aspect: "16:9"
  template: frame
variables:
  style: soft pencil storyboard sketch, muted colours
include: [characters/*.yaml, scenes/*.yaml]
output: {{dir: out, keep: 10}}
"""

_CHARACTERS = """\
# yaml-language-server: $schema=../schemas/character.schema.json
characters:
  - id: ada
    name: Ada
    description: a woman in her thirties with short dark hair and a yellow raincoat
    references: [refs/ada.png]
"""

_SCENE_1 = """\
# yaml-language-server: $schema=../schemas/scene.schema.json
scenes:
  - id: arrival
    title: Arrival
    vars: {place: a rainy train platform at dusk}
    frames:
      - id: platform
        shot: wide
        action: Ada steps off the last train onto an empty platform
        characters: [ada]
      - id: clock
        shot: close-up
        action: the station clock shows nine minutes past midnight
"""

_SCENE_2 = """\
# yaml-language-server: $schema=../schemas/scene.schema.json
scenes:
  - id: home
    title: Home
    vars: {place: a small warm kitchen}
    frames:
      - id: kettle
        shot: medium
        action: Ada puts the kettle on and finally smiles
        characters: [ada]
        dialogue: "Made it."
"""

_TEMPLATE = """\
{{ frame.shot }} shot, {{ vars.place }}: {{ frame.action }}.
{% for c in characters %}{{ c.name }} is {{ c.description }}. {% endfor %}
{% if frame.dialogue %}Mood of the line "{{ frame.dialogue }}". {% endif %}
Style: {{ vars.style }}.
"""

_GITIGNORE = ".storyboard/\n"


def init_project(folder: Path, name: str | None = None) -> list[Path]:
    """Write a starter project into `folder`; returns the files written."""
    if (folder / "storyboard.yaml").exists():
        raise UserError(f"{folder / 'storyboard.yaml'} already exists",
                        hint="init writes a new project; pick an empty folder")
    project_name = name or _slug(folder.resolve().name)
    files = {
        "storyboard.yaml": _ROOT.format(name=project_name),
        "characters/cast.yaml": _CHARACTERS,
        "scenes/01-arrival.yaml": _SCENE_1,
        "scenes/02-home.yaml": _SCENE_2,
        "templates/frame.j2": _TEMPLATE,
        ".gitignore": _GITIGNORE,
    }
    written: list[Path] = []
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    written.append(_reference_image(folder / "refs" / "ada.png"))
    for schema in FILE_SCHEMAS:
        target = folder / "schemas" / f"{schema}.schema.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(schema_dir() / f"{schema}.schema.json", target)
        written.append(target)
    return written


def _reference_image(path: Path) -> Path:
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (128, 128), (236, 228, 210))
    draw = ImageDraw.Draw(image)
    draw.ellipse((44, 14, 84, 58), fill=(60, 45, 40))
    draw.rectangle((34, 60, 94, 120), fill=(235, 190, 40))
    image.save(path, format="PNG")
    return path


def _slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return cleaned or "storyboard"
