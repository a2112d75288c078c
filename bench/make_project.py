"""Write a synthetic storyboard project shaped like a large real campaign.

    python -m bench.make_project DIR --frames 10000 [--seed 1] [--provider local] [--variants]

N frames over scenes of 1–40 frames (scene files of up to 25 scenes), 20 characters
with reference images, 5 templates with loops and conditionals, and variables at the
project, scene and frame level. With --variants, 2 locales × 3 formats (a master, derive:
master), which every template shows: 6 expanded frames per frame. The same arguments always
write the same bytes.
"""

from __future__ import annotations

import argparse
import io
import random
from pathlib import Path

import yaml

CHARACTERS = 20
SCENES_PER_FILE = 25
SHOTS = ("extreme wide", "wide", "medium", "medium close-up", "close-up", "insert", "over-the-shoulder")
PLACES = ("harbour café", "roastery floor", "tram stop", "rooftop garden", "night market", "studio")
VERBS = ("pours", "looks up at", "walks past", "laughs with", "hands over", "studies", "waits for")
THINGS = ("a steaming cup", "the morning light", "a paper bag of beans", "the espresso machine",
          "a rain-streaked window", "a hand-written menu", "the city skyline")
MOODS = ("hushed", "bustling", "tender", "electric", "sleepy", "bright")

TEMPLATES = {
    "frame": """{#- house style: shot, place, action, cast, look -#}
{{ frame.shot | default("medium", true) | capitalize }} shot{% if vars.location is defined %} in the {{ vars.location }}{% endif %}.
{{ frame.action }}.
{% for c in characters %}{{ c.name }} is {{ c.description }}{% if c.vars.wardrobe is defined %}, wearing {{ c.vars.wardrobe }}{% endif %}. {% endfor %}
{% if frame.dialogue %}The line "{{ frame.dialogue }}"{% if characters | length == 1 %} is spoken by {{ characters[0].name }}{% endif %}.{% endif %}
{% if vars.mood is defined %}Mood: {{ vars.mood }}.{% endif %} Palette of {{ vars.palette }}; {{ vars.style | join(", ") }}.
""",
    "closeup": """Close-up, shallow depth of field: {{ frame.action }}.
{% if vars.texture is defined %}Texture: {{ vars.texture }}.{% endif %}
{% for c in characters %}{{ c.name }}'s hands and face in sharp focus. {% endfor %}
Palette of {{ vars.palette }}.
""",
    "wide": """Establishing {{ frame.shot }} of the {{ vars.location | default("city") }} at {{ vars.time_of_day | default("dawn") }}.
{{ frame.action }}. {% if characters %}In the distance: {{ characters | map(attribute="name") | join(" and ") }}.{% endif %}
{% for note in vars.style %}{{ note }}{% if not loop.last %}, {% endif %}{% endfor %}.
""",
    "dialogue": """Two-shot for dialogue, frame {{ index }} of scene {{ scene.id }}.
{% for c in characters %}{{ c.name }} ({{ c.description }}){% if not loop.last %} facing {% endif %}{% endfor %}.
{% if frame.dialogue %}Line: "{{ frame.dialogue }}".{% else %}A silent beat.{% endif %} {{ frame.action }}.
Mood: {{ vars.mood | default("calm") }}.
""",
    "product": """Product photograph of the {{ vars.product }} by {{ vars.brand }}, {{ frame.action }}.
{% if vars.surface is defined %}{{ vars.surface | capitalize }}{% else %}On a linen surface{% endif %}, palette of {{ vars.palette }}.
""",
}


VARIANTS = {
    "locale": {"en-US": {"vars": {"tagline": "The first sip counts"}},
               "de-DE": {"vars": {"tagline": "Der erste Schluck zählt"}}},
    "format": {"landscape": {"aspect": "16:9", "vars": {"framing": "wide 16:9"}},
               "story": {"aspect": "9:16", "vars": {"framing": "tall 9:16"}},
               "square": {"size": "2048x2048", "vars": {"framing": "square"}}},
    "master": {"locale": "en-US", "format": "landscape"},
}
VARIANT_LINE = '\n{% if variant %}For {{ variant.locale }}, {{ vars.framing }}: "{{ vars.tagline }}".{% endif %}\n'


def make_project(root: Path, frames: int, seed: int = 1, provider: str = "local",
                 all_sequential: bool = False, variants: bool = False) -> Path:
    """Write the project under `root` and return it."""
    rng = random.Random(seed)
    for folder in ("characters", "scenes", "templates", "refs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    _write_yaml(root / "storyboard.yaml", {**_root(provider), **({"variants": VARIANTS} if variants else {})})
    for name, source in TEMPLATES.items():
        text = source.rstrip("\n") + VARIANT_LINE if variants else source
        (root / "templates" / f"{name}.j2").write_text(text, encoding="utf-8")
    for number in range(1, CHARACTERS + 1):
        (root / "refs" / f"c{number:02}.png").write_bytes(_png(number))
    _write_yaml(root / "characters" / "cast.yaml", {"characters": [_character(n, rng) for n in
                                                                   range(1, CHARACTERS + 1)]})
    scenes = _scenes(frames, rng, all_sequential)
    for start in range(0, len(scenes), SCENES_PER_FILE):
        chunk = scenes[start:start + SCENES_PER_FILE]
        _write_yaml(root / "scenes" / f"{start // SCENES_PER_FILE + 1:04}.yaml", {"scenes": chunk})
    return root


def _root(provider: str) -> dict[str, object]:
    return {
        "version": 1,
        "project": "bench",
        "provider": {"name": provider, "model": "bytedance/seedream-v4.5/sequential", "parallelism": 8},
        "defaults": {"size": "2848x1600", "template": "frame"},
        "variables": {"brand": "Aurora Coffee", "product": "First Light roast",
                      "palette": "warm amber, cream and deep teal", "time_of_day": "blue hour",
                      "style": ["35mm film grain", "natural light only", "no logos"]},
        "include": ["characters/*.yaml", "scenes/*.yaml"],
        "output": {"dir": "out"},
    }


def _character(number: int, rng: random.Random) -> dict[str, object]:
    character: dict[str, object] = {
        "id": f"c{number:02}", "name": f"Person {number}",
        "description": f"a {rng.choice(('young', 'tall', 'elderly', 'cheerful'))} "
                       f"{rng.choice(('barista', 'courier', 'roaster', 'student', 'painter'))} "
                       f"with {rng.choice(('curly', 'short', 'silver', 'braided'))} hair",
        "references": [f"refs/c{number:02}.png"],
    }
    if number % 2:
        character["vars"] = {"wardrobe": rng.choice(("a teal scarf", "a canvas apron", "an orange jacket"))}
    return character


def _scenes(frames: int, rng: random.Random, all_sequential: bool) -> list[dict[str, object]]:
    scenes: list[dict[str, object]] = []
    left = frames
    while left:
        size = min(left, rng.randint(1, 40))
        left -= size
        number = len(scenes) + 1
        scene: dict[str, object] = {
            "id": f"s{number:04}", "title": f"Scene {number}",
            "vars": {"location": rng.choice(PLACES), "mood": rng.choice(MOODS)},
            "frames": [_frame(n, rng) for n in range(1, size + 1)],
        }
        if number % 7 == 0 and not all_sequential:
            scene["sequential"] = False
            scene["template"] = "product"
        scenes.append(scene)
    return scenes


def _frame(number: int, rng: random.Random) -> dict[str, object]:
    cast = rng.sample(range(1, CHARACTERS + 1), rng.randint(0, 3))
    frame: dict[str, object] = {
        "id": f"f{number:02}", "shot": rng.choice(SHOTS),
        "action": f"{'someone' if not cast else f'Person {cast[0]}'} {rng.choice(VERBS)} {rng.choice(THINGS)}",
        "duration": rng.choice((1, 1.5, 2, 3)),
    }
    if cast:
        frame["characters"] = [f"c{c:02}" for c in cast]
    roll = rng.random()
    if roll < 0.15:
        frame["template"] = "closeup"
        frame["vars"] = {"texture": rng.choice(("oily beans", "wet stone", "linen"))}
    elif roll < 0.25:
        frame["template"] = "wide"
    elif roll < 0.35 and cast:
        frame["template"] = "dialogue"
    if rng.random() < 0.2:
        frame["dialogue"] = rng.choice(("Morning!", "Same as always?", "It smells like home.", "Let's go."))
    return frame


def _png(number: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (number * 12 % 256, 80, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_yaml(path: Path, data: object) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--provider", default="local")
    parser.add_argument("--all-sequential", action="store_true", help="no single-frame scenes")
    parser.add_argument("--variants", action="store_true", help="2 locales × 3 formats, a master")
    args = parser.parse_args()
    make_project(args.dir, args.frames, args.seed, args.provider, args.all_sequential, args.variants)
    print(f"wrote {args.frames} frames to {args.dir}")


if __name__ == "__main__":
    main()
