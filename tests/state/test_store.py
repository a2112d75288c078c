"""The local image store: what a user gets back without paying again, and what it refuses."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from conftest import edit, images, png_bytes, version_frames

from storyboard.state.journal import Journal
from storyboard.state.store import ImageStore, IndexEntry, index_key, sha256_of


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


def entry_for(frame: str, image: bytes, created: str = "2026-12-03T04:00:00Z") -> IndexEntry:
    return IndexEntry(sha256_of(frame.encode()), sha256_of(image), "png", 8, 8, len(image), frame, "job-1",
                      "m", 7, "a prompt", 3, created)


def hidden(index: Path) -> list[Path]:
    return sorted(index.glob("*/.*"))


def test_an_entry_prepared_while_its_image_is_kept_is_renamed_into_the_index(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    kept = entry_for("morning/pour", b"image")
    prepared = {kept.fingerprint: store.prepare(kept)}
    assert store.lookup(kept.fingerprint) is None and list(store.entries()) == []  # not indexed yet
    inode = prepared[kept.fingerprint].file.stat().st_ino

    store.record([replace(kept, created="2026-12-03T04:05:00Z")], prepared)  # a version holds it now
    assert ImageStore(tmp_path).lookup(kept.fingerprint) == kept  # as prepared: made when it was kept
    assert (store.index / index_key(kept.fingerprint)).stat().st_ino == inode  # renamed, not written again
    assert prepared == {} and hidden(store.index) == []


def test_an_entry_prepared_for_other_bytes_is_not_recorded_and_is_removed_after(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    kept = entry_for("morning/pour", b"image")
    prepared = {kept.fingerprint: store.prepare(kept)}
    made = replace(kept, sha256=sha256_of(b"stamped for another version"), version=4)
    store.record([made], prepared)
    assert ImageStore(tmp_path).lookup(kept.fingerprint) == made
    assert list(prepared) == [kept.fingerprint]  # left to the caller, who discards it
    ImageStore.discard(prepared.values())
    assert hidden(store.index) == [] and len(list(store.index.glob("*/*"))) == 1


def test_images_kept_by_a_run_whose_version_is_not_written_leave_no_index_entry(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    kept = entry_for("morning/pour", png_bytes())
    journal.keep_images([(kept, png_bytes(), None)], stamped=3)
    assert len(hidden(journal.store.index)) == 1  # prepared while the run goes on
    journal.close()  # the run ends without a version
    assert list(journal.store.index.glob("*/*")) == [] and journal.store.lookup(kept.fingerprint) is None
    assert journal.read().images.keys() == {kept.fingerprint}  # the paid-for image is still kept


def test_every_frame_of_a_version_is_indexed_with_nothing_left_beside(applied: Path) -> None:
    store = ImageStore(applied / ".storyboard")
    frames = json.loads((applied / "storyboard.lock").read_text())["frames"].values()
    assert len(frames) == 31
    for frame in frames:
        entry = store.lookup(frame["fingerprint"])
        assert entry is not None and entry.sha256 == frame["image"]["sha256"]
    assert hidden(store.index) == []


def test_index_entries_a_killed_run_prepared_are_removed_by_the_next_apply(run, example: Path) -> None:
    journal = Journal(example / ".storyboard")  # what kill -9 leaves: kept, journaled, prepared
    kept = entry_for("morning/gone", png_bytes())
    journal.keep_images([(kept, png_bytes(), None)], stamped=1)
    journal.prepared.clear()  # the process died: nothing discards what it prepared
    journal.close()
    assert len(hidden(journal.store.index)) == 1
    assert run("-C", example, "apply", "--auto-approve").code == 0
    assert hidden(journal.store.index) == []
    assert journal.store.lookup(kept.fingerprint) is None  # in no version: not indexed
