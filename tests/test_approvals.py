"""Approvals: approved art never changes silently. Through the CLI on copies of the example."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import edit, run_process

import storyboard
from storyboard.actions import Action

POUR = "morning/pour"
SCENE = "examples/coffee-launch/scenes/01-morning.yaml"
OLD_ACTION = "Mara pours a slow spiral of milk into the first cup of the day"
NEW_ACTION = "Mara pours a slow heart of milk into the first cup of the day"



def lock(project: Path) -> dict:
    return json.loads((project / "storyboard.lock").read_text())


def scene_file(project: Path) -> Path:
    return project / "scenes" / "01-morning.yaml"


def image(project: Path, version: str, address: str) -> Path:
    return project / "out" / version / lock(project)["frames"][address]["image"]["path"]


def test_approve_records_the_image_who_and_when_in_the_lockfile(run, applied: Path) -> None:
    result = run("-C", applied, "approve", POUR, "--by", "Ana Director")
    assert result.code == 0, result.err
    assert "approved 1 frame (by Ana Director)" in result.out and "commit it" in result.out
    written = lock(applied)
    assert written["format"] == 2
    approval = written["approvals"][POUR]
    entry = written["frames"][POUR]
    assert approval["sha256"] == entry["image"]["sha256"] and approval["fingerprint"] == entry["fingerprint"]
    assert approval["by"] == "Ana Director" and approval["version"] == 1
    assert approval["at"].endswith("Z") and approval["at"][:4].isdigit()


def test_an_edit_holds_an_approved_frame_and_apply_keeps_its_bytes(run, applied: Path) -> None:
    assert run("-C", applied, "approve", POUR, "--by", "Ana Director").code == 0
    before = image(applied, "v0001", POUR)
    edit(scene_file(applied), OLD_ACTION, NEW_ACTION)

    plan = run("-C", applied, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out  # held frames alone are not changes
    held_line = next(line for line in plan.out.splitlines() if POUR in line)
    assert held_line.lstrip().startswith(f"= {POUR}")
    assert "held: approved by Ana Director on 20" in held_line and "prompt" in held_line
    under = [line.strip() for line in plan.out.split(held_line, 1)[1].splitlines()]  # the diff
    assert any(line.startswith("-") and "spiral" in line for line in under)
    assert any(line.startswith("+") and "heart" in line for line in under)
    assert "1 approved frame whose inputs changed is held" in plan.out

    as_json = json.loads(run("-C", applied, "plan", "--json").out)
    assert as_json["held"] == [POUR] and as_json["summary"]["hold"] == 1
    change = next(c for c in as_json["changes"] if c["address"] == POUR)
    assert change["action"] == "hold" and change["approval"]["by"] == "Ana Director"
    assert "heart" in change["prompt_diff"]

    nothing = run("-C", applied, "apply", "--auto-approve")
    assert nothing.code == 0 and not (applied / "out" / "v0002").exists()

    edit(scene_file(applied), "breath visible in the cold air", "breath hanging in the cold air")
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0, result.err
    after = image(applied, "v0002", POUR)
    assert after.stat().st_ino == before.stat().st_ino  # the approved bytes, linked
    frames = {f["address"]: f for f in storyboard.show(storyboard.load(applied)).frames}
    assert frames[POUR]["status"] == "held" and frames[POUR]["approval"]["by"] == "Ana Director"
    assert frames["morning/shutter"]["status"] == "regenerated"
    written = lock(applied)
    assert written["approvals"][POUR]["sha256"] == written["frames"][POUR]["image"]["sha256"]
    assert OLD_ACTION in written["frames"][POUR]["prompt"]  # the lock still describes the approved image
    manifest = json.loads((applied / "out/v0002/manifest.json").read_text())
    assert manifest["changes"]["hold"] == 1 and manifest["changes"]["approved"] == 1
    held = next(c for c in manifest["changed"] if c["address"] == POUR)
    assert held["status"] == "held" and "heart" in held["prompt_diff"]


def test_replace_regenerates_an_approved_frame_and_drops_its_approval(run, applied: Path) -> None:
    assert run("-C", applied, "approve", POUR, "--by", "Ana").code == 0
    edit(scene_file(applied), OLD_ACTION, NEW_ACTION)
    plan = run("-C", applied, "plan", "--replace", POUR)
    line = next(line for line in plan.out.splitlines() if POUR in line)
    assert "~" in line and "regenerate" in line and "drops the approval by Ana" in line
    result = run("-C", applied, "apply", "--auto-approve", "--replace", POUR)
    assert result.code == 0, result.err
    written = lock(applied)
    assert POUR not in written["approvals"]
    assert NEW_ACTION in written["frames"][POUR]["prompt"]
    first = {f["address"]: f["sha256"] for f in storyboard.show(storyboard.load(applied), "v0001").frames}
    assert written["frames"][POUR]["image"]["sha256"] != first[POUR]  # new art
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0


def test_unapprove_lets_the_next_plan_regenerate(run, applied: Path) -> None:
    assert run("-C", applied, "approve", "morning", "--by", "Ana").code == 0
    assert sorted(lock(applied)["approvals"]) == ["morning/grinder", POUR, "morning/shutter",
                                                 "morning/skyline"]
    edit(scene_file(applied), OLD_ACTION, NEW_ACTION)
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0
    result = run("-C", applied, "unapprove", POUR)
    assert result.code == 0 and "unapproved 1 frame" in result.out
    assert POUR not in lock(applied)["approvals"] and len(lock(applied)["approvals"]) == 3
    plan = run("-C", applied, "plan", "--detailed-exitcode")
    assert plan.code == 2 and f"~ {POUR}" in plan.out
    assert run("-C", applied, "unapprove", "--all").code == 0
    assert lock(applied)["approvals"] == {}


def test_approvals_survive_a_no_op_apply_byte_for_byte(run, applied: Path) -> None:
    assert run("-C", applied, "approve", "--all", "--by", "Ana").code == 0
    before = (applied / "storyboard.lock").read_bytes()
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    assert (applied / "storyboard.lock").read_bytes() == before
    history = run("-C", applied, "history")
    assert "31 approved" in history.out


def test_unknown_address_and_frame_without_image_are_errors(run, example: Path, applied: Path) -> None:
    wrong = run("-C", applied, "approve", "morning/pur")
    assert wrong.code == 1 and "no scene or frame `morning/pur`" in wrong.err
    assert "did you mean `morning/pour`?" in wrong.err and "Traceback" not in wrong.err
    neither = run("-C", applied, "approve")
    assert neither.code == 1 and "--all" in neither.err
    edit(scene_file(applied), "      - id: pour\n", "      - id: latte\n        action: a latte\n"
         "      - id: pour\n")
    missing = run("-C", applied, "approve", "morning/latte")
    assert missing.code == 1 and "cannot approve morning/latte: the latest version has no image of it" \
        in missing.err
    assert "approvals" not in lock(applied) or "morning/latte" not in lock(applied)["approvals"]
    bad_version = run("-C", applied, "approve", POUR, "--version", "v7")
    assert bad_version.code == 1 and "no version v0007" in bad_version.err


def test_reviewer_comes_from_git_then_the_os_user(applied: Path, tmp_path: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": str(tmp_path / "none"), "GIT_CONFIG_NOSYSTEM": "1"}
    for command in (["init", "-q"], ["config", "user.name", "Priya Art"],
                    ["config", "user.email", "priya@example.com"]):
        subprocess.run(["git", "-C", str(applied), *command], check=True, env=env)
    result = run_process("-C", applied, "approve", POUR, cwd=applied, env=env)
    assert result.returncode == 0, result.stderr
    assert lock(applied)["approvals"][POUR]["by"] == "Priya Art <priya@example.com>"
    (applied / ".git").rename(applied / "not-git")
    os_user = {**env, "USER": "ci-runner", "LOGNAME": "ci-runner"}
    result = run_process("-C", applied, "approve", "morning/skyline", cwd=applied, env=os_user)
    assert result.returncode == 0, result.stderr
    assert lock(applied)["approvals"]["morning/skyline"]["by"] == "ci-runner"


def test_approving_an_older_version_restores_its_bytes(run, applied: Path) -> None:
    first = image(applied, "v0001", POUR).read_bytes()
    edit(scene_file(applied), OLD_ACTION, NEW_ACTION)
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    assert image(applied, "v0002", POUR).read_bytes() != first
    assert run("-C", applied, "approve", POUR, "--version", "v0001", "--by", "Ana").code == 0
    plan = run("-C", applied, "plan")
    line = next(line for line in plan.out.splitlines() if POUR in line)
    assert "repair" in line and "approved image from v0001" in line and "no generation" in line
    assert "estimated cost $0.00" in plan.out
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert image(applied, "v0003", POUR).read_bytes() == first
    written = lock(applied)
    assert written["frames"][POUR]["image"]["sha256"] == written["approvals"][POUR]["sha256"]
    assert OLD_ACTION in written["frames"][POUR]["prompt"]
    again = run("-C", applied, "plan", "--json")
    assert json.loads(again.out)["held"] == [POUR]  # the project still says "heart": held


def test_a_missing_approved_image_is_restored_never_regenerated(run, applied: Path) -> None:
    assert run("-C", applied, "approve", POUR, "--by", "Ana").code == 0
    approved = image(applied, "v0001", POUR).read_bytes()
    edit(scene_file(applied), OLD_ACTION, NEW_ACTION)
    edit(scene_file(applied), "breath visible in the cold air", "breath hanging in the cold air")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    image(applied, "v0002", POUR).unlink()
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    change = next(c for c in plan["changes"] if c["address"] == POUR)
    assert change["action"] in ("repair", "restore") and plan["summary"]["requests"] == 0
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    assert image(applied, "v0003", POUR).read_bytes() == approved


def test_new_frames_of_a_sequential_scene_take_held_images_as_references(applied: Path) -> None:
    project = storyboard.load(applied)
    assert storyboard.approve(project, ["morning/shutter"], by="Ana")
    edit(scene_file(applied), "breath visible in the cold air", "breath hanging in the cold air")
    edit(scene_file(applied), OLD_ACTION, NEW_ACTION)
    plan = storyboard.plan(storyboard.load(applied))
    assert plan.count(Action.HOLD) == 1 and plan.count(Action.REGENERATE) == 1
    held_image = applied / "out/v0001" / lock(applied)["frames"]["morning/shutter"]["image"]["path"]
    (batch,) = plan.batches
    assert batch.frames == (POUR,)
    assert held_image in batch.references


def test_pages_show_held_frames_and_approvals_given(run, applied: Path) -> None:
    assert run("-C", applied, "approve", POUR, "--by", "Ana <ana@example.com>").code == 0
    edit(scene_file(applied), OLD_ACTION, NEW_ACTION)
    edit(scene_file(applied), "breath visible in the cold air", "breath hanging in the cold air")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    changes = (applied / "out/v0002/changes.html").read_text()
    held = changes.split(f'data-address="{POUR}" data-status="held"', 1)[1].split("</section>", 1)[0]
    assert "approved by Ana &lt;ana@example.com&gt; on 20" in held
    assert '<span class="del">-' in held and "spiral" in held and "heart" in held
    given = changes.split("Approved since the version before", 1)[1]
    assert f'data-address="{POUR}"' in given and "morning/shutter" not in given
    board = (applied / "out/v0002/board.html").read_text()
    panel = board.split(f'data-address="{POUR}" data-status="held"', 1)[1].split("</li>", 1)[0]
    assert "Approved" in panel and "approved by Ana &lt;ana@example.com&gt;" in panel
    scene_page = (applied / "out/v0002/01-morning/index.html").read_text()
    assert "Approved" in scene_page.split(f'data-address="{POUR}"', 1)[1].split("</li>", 1)[0]


@pytest.mark.parametrize("by", ["Ana\x1b[31m", "", "   "])
def test_a_reviewer_name_with_control_characters_is_refused(run, applied: Path, by: str) -> None:
    before = (applied / "storyboard.lock").read_bytes()
    result = run("-C", applied, "approve", POUR, "--by", by)
    assert result.code == 1 and "--by" in result.err and "control characters" in result.err
    assert (applied / "storyboard.lock").read_bytes() == before
