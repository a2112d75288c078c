"""The local image store: what a user gets back without paying again, and what it refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import edit, images, version_frames


def test_a_reverted_edit_is_restored_not_paid_for_again(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    jobs = len(list((applied / ".storyboard/local-jobs").iterdir()))
    edit(applied / "scenes/01-morning.yaml", "slow heart of milk", "slow spiral of milk")
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [("morning/pour", "restore")]
    assert plan["summary"]["requests"] == 0 and plan["summary"]["cost"] == 0
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0 and "0 frames generated" in result.out
    assert len(list((applied / ".storyboard/local-jobs").iterdir())) == jobs  # nothing submitted
    assert images(applied / "out/v0003")["01-morning/04-pour.png"] == \
        images(applied / "out/v0001")["01-morning/04-pour.png"]  # the very bytes of v0001
    lock = json.loads((applied / "storyboard.lock").read_text())["frames"]["morning/pour"]
    assert lock["generated_in"] == 1  # made for v0001, restored into v0003


def test_a_deleted_output_folder_is_restored_from_the_store(run, applied: Path) -> None:
    before = {frame["address"]: frame["sha256"] for frame in version_frames(applied / "out/v0001")}
    shutil.rmtree(applied / "out")
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    assert plan["summary"]["restore"] == 31 and plan["summary"]["requests"] == 0
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    after = {frame["address"]: frame["sha256"] for frame in version_frames(applied / "out/v0001")}
    assert after == before
    assert {frame["status"] for frame in version_frames(applied / "out/v0001")} == {"restored"}
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0


def test_a_corrupt_store_object_is_not_used(run, applied: Path) -> None:
    lock = json.loads((applied / "storyboard.lock").read_text())["frames"]["morning/pour"]
    sha = lock["image"]["sha256"]
    store_object = applied / ".storyboard/store/objects" / sha[:2] / sha
    (applied / "out/v0001" / lock["image"]["path"]).unlink()
    store_object.unlink()  # a hard link: the version's file was the same inode
    store_object.write_bytes(b"\x89PNG\r\n\x1a\n not the image that was paid for")
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [("morning/pour", "repair")]
    assert plan["summary"]["requests"] == 1  # generated again: the damaged bytes are never restored


def test_an_index_entry_that_is_not_storyboards_is_ignored(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    index = applied / ".storyboard/store/index"
    for entry in index.glob("*/*.json"):  # hostile: a path in place of the sha256
        data = json.loads(entry.read_text())
        entry.write_text(json.dumps({**data, "sha256": "../../../../etc/passwd"}))
    edit(applied / "scenes/01-morning.yaml", "slow heart of milk", "slow spiral of milk")
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [("morning/pour", "regenerate")]
