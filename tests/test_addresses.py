"""Addresses and versions a user types are checked: a typo is an error with a suggestion, never a
silent "No changes"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import edit


@pytest.mark.parametrize("args, typo, suggestion", [
    (["plan", "--target", "morning/pur"], "morning/pur", "morning/pour"),
    (["plan", "--replace", "mornin"], "mornin", "morning"),
    (["apply", "--auto-approve", "--target", "packshot/heroo"], "packshot/heroo", "packshot/hero"),
    (["apply", "--auto-approve", "--replace", "roastery/dor"], "roastery/dor", "roastery/door"),
    (["render", "morning/pur"], "morning/pur", "morning/pour"),
])
def test_an_unknown_address_is_an_error_with_a_suggestion(run, applied: Path, args: list[str], typo: str,
                                                           suggestion: str) -> None:
    result = run("-C", applied, *args)
    assert result.code == 1
    assert f"no scene or frame `{typo}`" in result.err
    assert f"did you mean `{suggestion}`?" in result.err
    assert "No changes" not in result.out
    assert not (applied / "out/v0002").exists()


def test_a_frame_only_the_lockfile_knows_can_still_be_targeted(run, applied: Path) -> None:
    scene = applied / "scenes/04-cafe.yaml"
    text = scene.read_text()
    scene.write_text(text[:text.index("      - id: square")])
    plan = json.loads(run("-C", applied, "plan", "--json", "--target", "packshot/square").out)
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [("packshot/square", "remove")]


@pytest.mark.parametrize("command", [["show"], ["export", "pdf"], ["export", "contact-sheet"]])
def test_an_unknown_version_is_an_error_with_a_suggestion(run, applied: Path, tmp_path: Path,
                                                          command: list[str]) -> None:
    output = ["-o", str(tmp_path / "x")] if command[0] == "export" else []
    result = run("-C", applied, *command, "v0009", *output)
    assert result.code == 1
    assert "no version v0009 in out/" in result.err and "did you mean v0001?" in result.err
    assert not (tmp_path / "x").exists()


def test_a_version_removed_by_gc_is_reported_as_such(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    assert run("-C", applied, "gc", "--keep", "1").code == 0
    result = run("-C", applied, "show", "v0001")
    assert result.code == 1
    assert "version v0001 was removed by `storyboard gc` on 20" in result.err
    assert "versions kept: v0002" in result.err
    assert "manifest.json" not in result.err


def test_show_without_versions_says_to_apply_first(run, example: Path) -> None:
    result = run("-C", example, "show")
    assert result.code == 1 and "no versions yet" in result.err and "storyboard apply" in result.err
