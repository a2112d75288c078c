"""The version manifest on disk: a root manifest.json plus one scene.json per scene, merged
back for `show`, `history` and `export`; versions written before the split still read."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import edit, images, version_frames
from hypothesis import given, settings
from hypothesis import strategies as st

from storyboard.state.manifest import says, scene_manifest_of

FRAMES = 31


def to_single_file_manifest(version: Path) -> None:
    """Rewrite a version as storyboard wrote them before scene manifests (format 1)."""
    root = json.loads((version / "manifest.json").read_text())
    frames = version_frames(version)
    for scene in root["scenes"]:
        (version / scene["manifest"]).unlink()
    old = {key: root[key] for key in ("project", "version", "created_at", "changes")}
    (version / "manifest.json").write_text(json.dumps({"format": 1, **old, "frames": frames}, indent=2))


def test_show_json_prints_every_frame_merged_with_its_status(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    shown = json.loads(run("-C", applied, "show", "--json").out)
    statuses = {frame["address"]: frame["status"] for frame in shown["frames"]}
    assert len(statuses) == FRAMES and statuses.pop("morning/pour") == "regenerated"
    assert set(statuses.values()) == {"kept"}
    pour = next(frame for frame in shown["frames"] if frame["address"] == "morning/pour")
    assert "heart" in pour["prompt"] and pour["previous"]["version"] == 1
    assert pour["reasons"] == ["prompt (frame text)"]
    history = run("-C", applied, "history").out
    assert "v0001" in history and "v0002  " in history and history.count(f"{FRAMES} frames") == 2


def test_versions_written_before_scene_manifests_still_read(run, applied: Path) -> None:
    to_single_file_manifest(applied / "out/v0001")
    assert len(json.loads(run("-C", applied, "show", "--json").out)["frames"]) == FRAMES
    assert f"{FRAMES} frames: {FRAMES} new" in run("-C", applied, "history").out
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0, result.err
    version = applied / "out/v0002"
    assert json.loads((version / "manifest.json").read_text())["format"] == 2
    assert len(version_frames(version)) == FRAMES
    old, new = images(applied / "out/v0001"), images(version)
    assert [path for path in new if new[path] != old.get(path)] == ["01-morning/04-pour.png"]
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0


def test_a_corrupt_scene_manifest_is_named_with_line_and_column(run, applied: Path) -> None:
    scene = applied / "out/v0001/02-roastery/scene.json"
    lines = scene.read_text().splitlines()
    lines[2] = lines[2][:40]  # a frame cut short on the third line
    scene.write_text("\n".join(lines))
    result = run("-C", applied, "show")
    assert result.code == 1
    assert "out/v0001/02-roastery/scene.json:3:" in result.err and "corrupt manifest" in result.err
    assert "Traceback" not in result.err


def test_a_missing_scene_manifest_is_named(run, applied: Path) -> None:
    (applied / "out/v0001/03-commute/scene.json").unlink()
    result = run("-C", applied, "export", "pdf", "-o", applied / "board.pdf")
    assert result.code == 1 and not (applied / "board.pdf").exists()
    assert "v0001 has no 03-commute/scene.json" in result.err and "Traceback" not in result.err


def test_an_apply_after_a_version_with_damaged_scene_manifests_writes_whole_ones(run, applied: Path) -> None:
    # apply reads the version before only for sizes and approval dates, unchecked: what it takes
    # is held to sizes, and a file it cannot read costs the sizes, never a traceback
    scene = applied / "out/v0001/02-roastery/scene.json"
    part = json.loads(scene.read_text())
    part["frames"][0]["width"] = "wide"
    part["frames"][1]["approval"] = "yes"
    scene.unlink()  # a file of its own, not the image store's hard link
    scene.write_text(json.dumps(part))
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0 and "Traceback" not in result.err
    new = json.loads((applied / "out/v0002/02-roastery/scene.json").read_text())
    assert new["frames"][0]["width"] == 0 and new["frames"][1]["width"] > 0  # a size, or nothing
    assert "approval" not in new["frames"][1]
    commute = applied / "out/v0002/03-commute/scene.json"
    commute.unlink()
    commute.write_text('{"format": 2, "frames": [7]}')
    edit(applied / "scenes/01-morning.yaml", "slow heart of milk", "slow tulip of milk")
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0 and "Traceback" not in result.err
    assert run("-C", applied, "show", "--json").code == 0  # the new version reads back whole


# --- a scene manifest read back, and what the next version would write -------------------------------

SCALARS = st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False).filter(lambda x: str(x) != "-0.0"),
                    st.booleans(), st.none(), st.text(max_size=3), st.lists(st.integers(0, 2), max_size=2))
FIELDS = ["address", "path", "width", "duration", "seed"]


@st.composite
def frame_lists(draw: st.DrawFn) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """A scene's frames (status "kept", as apply has them) and another take of them: the same, or
    one value changed (to an equal one of another type: 1, 1.0, True), a key moved or dropped."""
    count = draw(st.integers(1, 3))
    frames = [{"scene": "intro", **{name: draw(SCALARS) for name in FIELDS}, "status": "kept"}
              for _ in range(count)]
    other = [dict(frame) for frame in frames]
    victim = other[draw(st.integers(0, count - 1))]
    change = draw(st.sampled_from(["none", "value", "retype", "move", "drop", "version field"]))
    name = draw(st.sampled_from(FIELDS))
    if change == "value":
        victim[name] = draw(SCALARS)
    elif change == "retype" and isinstance(victim[name], (int, float)):
        victim[name] = draw(st.sampled_from([int(victim[name]), float(victim[name]), bool(victim[name])]))
    elif change == "move":
        victim[name] = victim.pop(name)
    elif change == "drop":
        del victim[name]
    elif change == "version field":
        victim["reasons"] = ["prompt (frame text)"]  # true of this version only: not in scene.json
    return frames, other


@settings(max_examples=400, deadline=None)
@given(frame_lists())
def test_a_scene_manifest_says_what_the_next_would_exactly_when_its_bytes_would_be_the_same(
        frames: tuple[list[dict[str, object]], list[dict[str, object]]]) -> None:
    """apply links an untouched scene's scene.json when what it says is what the new version would
    write, instead of encoding and comparing bytes: for every file storyboard wrote, the two agree."""
    before, after = frames
    written = scene_manifest_of(before)
    assert says(json.loads(written), after) == (written == scene_manifest_of(after))


def test_a_scene_manifest_that_says_something_else_is_not_taken() -> None:
    frames = [{"scene": "intro", "address": "intro/a", "width": 8, "status": "kept"}]
    parsed = json.loads(scene_manifest_of(frames))
    assert says(parsed, frames)
    assert not says({**parsed, "scene": "outro"}, frames)
    assert not says({**parsed, "format": 2.0}, frames)
    assert not says({**parsed, "extra": 1}, frames)
    assert not says({**parsed, "frames": parsed["frames"] * 2}, frames)
    assert not says({**parsed, "frames": {"0": parsed["frames"][0]}}, frames)
    assert not says([parsed], frames) and not says(None, frames)


def test_an_untouched_scene_keeps_its_scene_manifest_file(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    edit(applied / "scenes/01-morning.yaml", "slow heart of milk", "slow tulip of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    v2, v3 = applied / "out/v0002", applied / "out/v0003"
    assert (v2 / "03-commute/scene.json").samefile(v3 / "03-commute/scene.json")
    assert not (v2 / "01-morning/scene.json").samefile(v3 / "01-morning/scene.json")
    assert (v3 / "03-commute/scene.json").read_bytes() == scene_manifest_of(
        [frame for frame in version_frames(v3) if frame["scene"] == "commute"])
