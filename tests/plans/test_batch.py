"""The batcher: which frames share a request."""

from __future__ import annotations

from pathlib import Path

from conftest import build_tree, png_bytes

import storyboard
from storyboard.plans.batch import Batch


def project_with(tmp_path: Path, frames: str, *, scene: str = "", extra: str = "") -> Path:
    return build_tree(tmp_path / "p", {
        "storyboard.yaml": f"""
            version: 1
            project: p
            templates: {{frame: "{{{{ frame.action }}}}"}}
            characters:
              - {{id: ada, description: a pilot, references: [refs/ada.png]}}
            {extra}
            scenes:
              - id: s
                {scene}
                frames:\n""" + frames,
        "refs/ada.png": png_bytes(),
    })


def frames(count: int, **fields: str) -> str:
    extra = "".join(f", {key}: {value}" for key, value in fields.items())
    return "".join(f"                  - {{id: f{n:02d}, action: frame {n}{extra}}}\n" for n in range(count))


def batches(project_dir: Path) -> list[Batch]:
    return storyboard.batches(storyboard.load(project_dir))


def test_a_sequential_scene_goes_out_in_sets_within_the_model_limit(tmp_path: Path) -> None:
    requests = batches(project_with(tmp_path, frames(20)))
    assert [len(batch.frames) for batch in requests] == [10, 10]  # as few as the limit of 15 allows, even
    assert requests[0].frames[0] == "s/f00" and requests[1].frames[-1] == "s/f19"  # story order
    assert [frame for batch in requests for frame in batch.frames] == [f"s/f{n:02d}" for n in range(20)]


def test_a_long_scene_is_split_evenly_never_with_a_lone_frame(tmp_path: Path) -> None:
    assert [len(b.frames) for b in batches(project_with(tmp_path, frames(31)))] == [11, 10, 10]
    assert [len(b.frames) for b in batches(project_with(tmp_path / "b", frames(16)))] == [8, 8]
    assert [len(b.frames) for b in batches(project_with(tmp_path / "c", frames(15)))] == [15]


def test_frames_of_another_size_or_seed_go_in_a_request_of_their_own(tmp_path: Path) -> None:
    text = frames(3) + "                  - {id: wide, action: wide, size: 2848x1600}\n" \
                       "                  - {id: seeded, action: seeded, seed: 42}\n"
    requests = batches(project_with(tmp_path, text))
    assert [batch.frames for batch in requests] == [("s/f00", "s/f01", "s/f02"), ("s/wide",), ("s/seeded",)]
    assert {batch.request().seed for batch in requests[:1]} != {42} and requests[2].request().seed == 42


def test_references_count_against_the_images_of_a_request(tmp_path: Path) -> None:
    requests = batches(project_with(tmp_path, frames(29, characters="[ada]")))
    assert [len(batch.frames) for batch in requests] == [10, 10, 9]  # 3 requests: 14 + 1 reference fit in one
    assert all(len(batch.frames) + len(batch.references) <= 15 for batch in requests)
    assert all(len(batch.references) == 1 for batch in requests)


def test_a_scene_that_is_not_sequential_is_one_request_per_frame(tmp_path: Path) -> None:
    requests = batches(project_with(tmp_path, frames(3), scene="sequential: false"))
    assert [batch.frames for batch in requests] == [("s/f00",), ("s/f01",), ("s/f02",)]
    assert requests[0].prompt == "frame 0"  # a single frame's own prompt, no sequence wrapper


def test_regenerate_scene_makes_the_whole_scene_again_on_one_edit(run, example: Path) -> None:
    import json

    scene = example / "scenes/01-morning.yaml"
    scene.write_text(scene.read_text().replace("    title: Before the City Wakes\n",
                                               "    title: Before the City Wakes\n    regenerate: scene\n"))
    assert run("-C", example, "apply", "--auto-approve").code == 0
    assert run("-C", example, "approve", "morning/skyline", "--by", "Ana").code == 0
    scene.write_text(scene.read_text().replace("slow spiral of milk", "slow heart of milk"))
    plan = json.loads(run("-C", example, "plan", "--json").out)
    actions = {c["address"]: (c["action"], c["reasons"]) for c in plan["changes"]}
    assert actions == {
        "morning/shutter": ("regenerate", ["regenerate: scene (morning/pour changed)"]),
        "morning/grinder": ("regenerate", ["regenerate: scene (morning/pour changed)"]),
        "morning/pour": ("regenerate", ["prompt (frame text)"]),
    }  # morning/skyline is approved: it stays, and goes along as a reference
    assert [b["frames"] for b in plan["batches"]] == [["morning/shutter", "morning/grinder", "morning/pour"]]
    other = scene.read_text().replace("slow heart of milk", "slow wave of milk")
    scene.write_text(other)
    targeted = json.loads(run("-C", example, "plan", "--json", "--target", "morning/pour").out)
    assert [c["address"] for c in targeted["changes"]] == ["morning/pour"]  # --target still narrows
