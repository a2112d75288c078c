"""End to end through the CLI on copies of the example: what a user sees on disk and on screen."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import (
    REPO,
    edit,
    images,
    png_bytes,
    provider_options,
    run_process,
    start_apply,
    submitted,
    version_frames,
    wait_for,
)

from storyboard.images import read_provenance
from storyboard.project.schema import validator
from storyboard.state.lockfile import read_lock

FRAMES = 31


def schema(name: str) -> dict:
    return json.loads((REPO / "schemas" / f"{name}.schema.json").read_text())



def set_provider(project: Path, extra: str) -> None:
    root = project / "storyboard.yaml"
    root.write_text(root.read_text().replace("  parallelism: 4\n", f"  parallelism: 4\n{extra}"))




def test_first_apply_writes_a_complete_version_manifest_and_lock(run, example: Path) -> None:
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 0, result.err
    out = example / "out"
    assert os.readlink(out / "latest") == "v0001"
    assert len(images(out / "v0001")) == FRAMES
    assert sorted(p.name for p in (out / "v0001").iterdir()) == [
        "01-morning", "02-roastery", "03-commute", "04-first-sip", "05-packshot", "board.html",
        "changes.html",
        "index.html", "manifest.json", "thumbs"]
    manifest = json.loads((out / "v0001" / "manifest.json").read_text())
    jsonschema.validate(manifest, schema("manifest"))
    assert [scene["frames"] for scene in manifest["scenes"]] == [4, 16, 5, 4, 2]
    first = json.loads((out / "v0001" / manifest["scenes"][0]["manifest"]).read_text())
    jsonschema.validate(first, schema("scene-manifest"))
    assert [f["address"] for f in first["frames"]][:2] == ["morning/skyline", "morning/shutter"]
    lock = json.loads((example / "storyboard.lock").read_text())
    jsonschema.validate(lock, schema("lockfile"))
    assert len(lock["frames"]) == FRAMES
    assert "Apply complete: version 0001, 31 frames generated, 0 failed" in result.out


def test_second_apply_changes_nothing_and_writes_nothing(run, applied: Path) -> None:
    lock_before = (applied / "storyboard.lock").stat().st_mtime_ns
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0
    assert "No changes." in result.out
    assert not (applied / "out" / "v0002").exists()
    assert (applied / "storyboard.lock").stat().st_mtime_ns == lock_before
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0


def test_one_edited_frame_regenerates_exactly_that_image(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    plan = run("--no-color", "-C", applied, "plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "~ morning/pour" in plan.out
    assert "-Mara pours a slow spiral of milk into the first cup of the day." in plan.out
    assert "+Mara pours a slow heart of milk into the first cup of the day." in plan.out
    assert "Plan: 0 to create, 1 to regenerate, 0 to repair, 0 to remove, 30 unchanged. 1 request" in plan.out
    applied_once = run("-C", applied, "apply", "--auto-approve")
    assert applied_once.code == 0
    assert "Apply complete: version 0002, 1 frame generated, 0 failed" in applied_once.out
    old, new = images(applied / "out/v0001"), images(applied / "out/v0002")
    assert old.keys() == new.keys()
    changed = [path for path in new if new[path] != old[path]]
    assert changed == ["01-morning/04-pour.png"]


def test_lockfiles_written_from_the_entries_of_the_one_before_are_the_bytes_encoding_gives(
        run, applied: Path) -> None:
    """The second apply copies its unchanged entries from the lockfile the first one wrote."""
    lockfile = applied / "storyboard.lock"
    for before, after in (("slow spiral", "slow heart"), ("slow heart", "slow star")):
        edit(applied / "scenes/01-morning.yaml", before, after)
        assert run("-C", applied, "apply", "--auto-approve").code == 0
        data = lockfile.read_bytes()
        encoded = json.dumps(json.loads(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert data == encoded.encode()
        record = (applied / ".storyboard/lockfile-written").read_text()
        assert record == f"lockfile format 2 sha256 {hashlib.sha256(data).hexdigest()}\n"
    assert "slow star of milk" in read_lock(lockfile).frames["morning/pour"].prompt


def test_template_caches_that_take_no_files_only_mean_compiling_again(example: Path, tmp_path: Path) -> None:
    """Prompt and page templates compiled with a cache folder nothing can be written to (not even by
    root: it leads into /proc)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("jinja-bounded", "jinja-pages"):
        (cache / name).symlink_to("/proc/self")
    result = run_process("apply", "--auto-approve", cwd=example, env={"STORYBOARD_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Mara" in (example / "out/v0001/board.html").read_text()


def test_the_stat_cache_describes_the_latest_version_only_with_true_hashes(run, applied: Path) -> None:
    """What lets the next plan stat the images instead of hashing them: after a second version,
    every image of it and nothing of the first, each with its file's real size, inode and sha256."""
    import hashlib

    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    cache = json.loads((applied / ".storyboard/stat-cache.json").read_text())
    latest = sorted(path.relative_to(applied).as_posix() for path in (applied / "out/v0002").rglob("*.png")
                    if path.parent.name != "thumbs")
    assert sorted(cache) == latest and len(latest) == FRAMES
    for key, (size, mtime, inode, sha256) in cache.items():
        file = applied / key  # most are carried from what the plan knew of v0001's: the same inodes
        assert (size, mtime, inode) == (file.stat().st_size, file.stat().st_mtime_ns, file.stat().st_ino)
        assert sha256 == hashlib.sha256(file.read_bytes()).hexdigest()


DAMAGED_STAT_ENTRIES = {  # what a hand-edited or damaged cache may hold, from the entry's stat
    "a number": lambda stat: 5, "no hash": lambda stat: stat, "null": lambda stat: None,
    "text": lambda stat: "x", "the right stat, a number for a hash": lambda stat: [*stat, 7],
    "nulls": lambda stat: [None, None, None, "ab"],
}


@pytest.mark.parametrize("damage", DAMAGED_STAT_ENTRIES.values(), ids=DAMAGED_STAT_ENTRIES.keys())
def test_a_damaged_stat_cache_entry_is_hashed_again_not_a_traceback(run, applied: Path, damage) -> None:
    path = applied / ".storyboard/stat-cache.json"
    cache = json.loads(path.read_text())
    first = sorted(cache)[0]
    cache[first] = damage(cache[first][:3])
    path.write_text(json.dumps(cache))
    plan = run("--no-color", "-C", applied, "plan", "--detailed-exitcode")
    assert plan.code == 0 and "No changes" in plan.out and "Traceback" not in plan.err
    (applied / first).write_bytes(png_bytes())  # the file it names, changed, is still noticed
    plan = run("--no-color", "-C", applied, "plan", "--detailed-exitcode")
    assert plan.code == 2 and "Traceback" not in plan.err


def test_character_edit_regenerates_exactly_their_frames(run, applied: Path) -> None:
    edit(applied / "characters/cast.yaml", "copper-red hair", "jet-black hair")
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    jsonschema.validate(plan, schema("plan"))
    regenerated = sorted(c["address"] for c in plan["changes"] if c["action"] == "regenerate")
    # Theo's frames, except first-sip/hand-off: its close-up template shows only his hands,
    # so its prompt (and image) does not depend on his hair.
    assert regenerated == ["commute/bike", "commute/ride", "commute/scent", "commute/window",
                           "first-sip/order", "first-sip/sip", "first-sip/smile"]


def test_template_edit_names_the_template_as_the_cause(run, applied: Path) -> None:
    edit(applied / "templates/closeup.j2", "Extreme close-up, shallow", "Extreme close-up, very shallow")
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    reasons = {c["address"]: c["reasons"] for c in plan["changes"] if c["action"] == "regenerate"}
    assert sorted(reasons) == ["first-sip/hand-off", "morning/grinder", "roastery/crack", "roastery/flame",
                               "roastery/scoop", "roastery/stir", "roastery/trier"]
    assert all(why == ["prompt (template closeup)"] for why in reasons.values())


def test_reordering_frames_generates_nothing_and_moves_files(run, applied: Path) -> None:
    scene = applied / "scenes/03-commute.yaml"
    text = scene.read_text()
    alarm = text[text.index("      - id: alarm"):text.index("      - id: bike")]
    scene.write_text(text.replace(alarm, "") + alarm)
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    assert plan["summary"]["requests"] == 0
    assert plan["summary"]["moved"] == 5
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0
    old, new = images(applied / "out/v0001"), images(applied / "out/v0002")
    assert sorted(old.values()) == sorted(new.values())  # the same files, linked under new names
    assert new["03-commute/05-alarm.png"] == old["03-commute/01-alarm.png"]


def test_removed_frame_leaves_the_next_version_and_the_lock(run, applied: Path) -> None:
    scene = applied / "scenes/04-cafe.yaml"
    text = scene.read_text()
    scene.write_text(text[:text.index("      - id: square")])
    plan = run("--no-color", "-C", applied, "plan")
    assert "- packshot/square" in plan.out
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    assert "05-packshot/02-square.png" not in images(applied / "out/v0002")
    assert "packshot/square" not in json.loads((applied / "storyboard.lock").read_text())["frames"]


def test_a_deleted_output_file_is_restored_from_the_store(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    run("-C", applied, "apply", "--auto-approve")
    (applied / "out/latest/02-roastery/01-door.png").unlink()
    plan = run("--no-color", "-C", applied, "plan")
    assert "< roastery/door                    restore  (from store: v0002/02-roastery/01-door.png " \
        "is missing)" in plan.out
    assert "1 to restore" in plan.out and "0 requests, estimated cost $0.00" in plan.out
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0
    assert "0 frames generated" in result.out
    assert images(applied / "out/v0003")["02-roastery/01-door.png"] == \
        images(applied / "out/v0001")["02-roastery/01-door.png"]  # the same file, linked from the store
    assert version_frames(applied / "out/v0003")[4]["status"] == "restored"


def test_a_deleted_file_the_store_lacks_is_repaired_from_an_older_version(run, applied: Path) -> None:
    """A project from before the image store: an older version still holds the bytes."""
    import shutil

    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    run("-C", applied, "apply", "--auto-approve")
    shutil.rmtree(applied / ".storyboard/store")
    (applied / "out/latest/02-roastery/01-door.png").unlink()
    plan = run("--no-color", "-C", applied, "plan")
    assert "! roastery/door" in plan.out
    assert "restored from an older version, no generation" in plan.out
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 0 and "0 frames generated" in result.out
    assert images(applied / "out/v0003")["02-roastery/01-door.png"] == \
        images(applied / "out/v0001")["02-roastery/01-door.png"]


def test_changed_output_bytes_with_no_older_copy_are_regenerated(run, applied: Path) -> None:
    target = applied / "out/latest/01-morning/01-skyline.png"
    good = target.read_bytes()
    target.write_bytes(good[:-10] + b"0123456789")
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [("morning/skyline", "repair")]
    assert plan["summary"]["requests"] == 1
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    again = applied / "out/v0002/01-morning/01-skyline.png"
    assert pixels(again) == pixels_of(good)  # the same picture; its provenance names version 2
    assert read_provenance(again)["version"] == 2


def pixels(path: Path) -> bytes:
    from PIL import Image

    with Image.open(path) as image:
        return image.tobytes()


def pixels_of(data: bytes) -> bytes:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.tobytes()


def test_target_and_replace(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    edit(applied / "scenes/03-commute.yaml", "a phone alarm", "an old alarm clock")
    plan = json.loads(run("-C", applied, "plan", "--json", "--target", "commute").out)
    assert [c["address"] for c in plan["changes"]] == ["commute/alarm"]
    plan = json.loads(run("-C", applied, "plan", "--json", "--target", "packshot/hero",
                          "--replace", "packshot/hero").out)
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [("packshot/hero", "regenerate")]
    assert run("-C", applied, "apply", "--auto-approve", "--target", "commute/alarm").code == 0
    lock = json.loads((applied / "storyboard.lock").read_text())
    assert lock["frames"]["commute/alarm"]["generated_in"] == 2
    assert lock["frames"]["morning/pour"]["generated_in"] == 1  # not targeted: still the old one
    assert "~ morning/pour" in run("--no-color", "-C", applied, "plan").out


def test_saved_plan_applies_and_a_stale_one_is_refused(run, applied: Path, tmp_path: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    plan_file = tmp_path / "change.plan"
    assert run("-C", applied, "plan", "-o", plan_file).code == 0
    jsonschema.validate(json.loads(plan_file.read_text()), schema("plan"))
    edit(applied / "scenes/01-morning.yaml", "slow heart of milk", "slow tulip of milk")
    result = run("-C", applied, "apply", plan_file)
    assert result.code == 1
    assert "is stale: the project's frames changed since it was planned" in result.err
    assert not (applied / "out/v0002").exists()
    assert run("-C", applied, "plan", "-o", plan_file).code == 0
    assert run("-C", applied, "apply", plan_file).code == 0
    assert (applied / "out/v0002").is_dir()
    result = run("-C", applied, "apply", plan_file)
    assert result.code == 1
    assert "storyboard.lock changed since it was planned" in result.err


def test_budget_guard_refuses_an_expensive_plan(run, example: Path) -> None:
    set_provider(example, "  price_per_image: 0.5\n")
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 1
    assert "estimated cost $15.50 is above the budget $5.00" in result.err
    assert not (example / "out").exists()
    assert run("-C", example, "apply", "--auto-approve", "--max-cost", "20").code == 0


def test_apply_without_terminal_or_auto_approve_is_an_error_not_a_hang(example: Path) -> None:
    completed = subprocess.run([sys.executable, "-m", "storyboard", "apply"], cwd=example,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 1
    assert "no terminal to ask on" in completed.stderr
    assert not (example / "out").exists()


def test_partial_failure_keeps_previous_images_and_shows_them_again(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    edit(applied / "scenes/04-cafe.yaml", "the bag standing upright", "the bag standing tall")
    provider_options(applied, "fail_frames: [morning/pour]")
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 1
    assert "error: 1 frame failed and keeps its previous image: morning/pour" in result.err
    old, new = images(applied / "out/v0001"), images(applied / "out/v0002")
    assert new["01-morning/04-pour.png"] == old["01-morning/04-pour.png"]
    assert new["05-packshot/01-hero.png"] != old["05-packshot/01-hero.png"]
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    assert [(c["address"], c["action"]) for c in plan["changes"]] == [("morning/pour", "regenerate")]


def test_a_run_whose_every_new_frame_fails_writes_no_version_and_leaves_nothing(run, applied: Path) -> None:
    """The unchanged frames are linked into the next version while the service works: when nothing
    comes of the run, none of that may stay behind."""
    lock = (applied / "storyboard.lock").read_bytes()
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    provider_options(applied, "fail_frames: [morning/pour]")
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 1
    assert "1 frame failed and keeps its previous image: morning/pour" in result.err
    assert sorted(p.name for p in (applied / "out").iterdir()) == ["latest", "v0001"]
    assert (applied / "storyboard.lock").read_bytes() == lock


def test_frames_that_fail_on_a_first_run_are_said_to_have_no_image_yet(run, example: Path) -> None:
    provider_options(example, "fail_frames: [morning/pour, packshot/hero]")
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 1
    assert "error: 2 frames failed and have no image yet: morning/pour, packshot/hero" in result.err
    assert "previous image" not in result.err
    assert "29 frames generated, 2 failed" in result.out
    assert "31 frames" not in run("-C", example, "history").out
    assert "29 frames: 29 new, 0 regenerated, 0 repaired, 0 removed, 2 failed" in run("-C", example,
                                                                                       "history").out


def test_json_events_are_one_object_per_line(run, example: Path) -> None:
    result = run("-C", example, "apply", "--auto-approve", "--json")
    events = [json.loads(line) for line in result.out.splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds[0] == "plan" and kinds[-1] == "apply_finished"
    assert kinds.count("frame_done") == FRAMES
    events_schema = validator("events")  # resolves its $ref to plan.schema.json
    for event in events:
        events_schema.validate(event)


def test_history_show_and_gc_keep_what_is_still_used(run, applied: Path) -> None:
    for word in ("heart", "tulip", "swan"):
        edit(applied / "scenes/01-morning.yaml", "slow spiral of milk" if word == "heart" else
             {"tulip": "slow heart", "swan": "slow tulip"}[word] + " of milk", f"slow {word} of milk")
        assert run("-C", applied, "apply", "--auto-approve").code == 0
    history = run("-C", applied, "history").out.splitlines()
    assert len(history) == 4 and history[-1].endswith("(latest)")
    assert "0 new, 1 regenerated" in history[-1]
    assert "morning/pour" in run("-C", applied, "show", "v0002").out
    skyline = (applied / "out/v0001/01-morning/01-skyline.png").read_bytes()
    result = run("-C", applied, "gc", "--keep", "1")
    assert "removed 3 versions: v0001, v0002, v0003" in result.out
    assert sorted(p.name for p in (applied / "out").iterdir()) == [".removed.jsonl", "latest", "v0004"]
    assert (applied / "out/latest/01-morning/01-skyline.png").read_bytes() == skyline
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0


def slow_project(example: Path, latency: float) -> None:
    provider_options(example, f"latency: {latency}")
    edit(example / "storyboard.yaml", "  parallelism: 4\n", "  parallelism: 2\n")





@pytest.mark.slow
def test_second_apply_while_one_runs_is_refused_with_its_pid(example: Path) -> None:
    slow_project(example, 3)
    first = start_apply(example)
    try:
        wait_for(lambda: submitted(example) >= 1)
        second = run_process("apply", "--auto-approve", cwd=example)
        assert second.returncode == 1
        assert f"another storyboard apply (pid {first.pid}) is running on this project" in second.stderr
    finally:
        first.kill()
        first.communicate()


@pytest.mark.slow
def test_gc_takes_the_run_lock_while_an_apply_runs(example: Path) -> None:
    slow_project(example, 3)
    first = start_apply(example)
    try:
        wait_for(lambda: submitted(example) >= 1)
        refused = run_process("gc", "--keep", "1", cwd=example)
        assert refused.returncode == 1
        assert f"another storyboard apply (pid {first.pid}) is running on this project" in refused.stderr
    finally:
        first.kill()
        first.communicate()


@pytest.mark.slow
def test_first_ctrl_c_finishes_submitted_jobs_commits_and_exits_130(example: Path) -> None:
    slow_project(example, 2)
    process = start_apply(example)
    wait_for(lambda: submitted(example) >= 2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "no new requests" in err
    jobs = list((example / ".storyboard/local-jobs").iterdir())
    assert len(jobs) == 2  # nothing was submitted after the interrupt
    assert len(version_frames(example / "out/v0001")) == 4 + 8  # the 2 submitted batches, paid for, kept
    plan = json.loads(run_process("plan", "--json", cwd=example).stdout)
    assert plan["summary"]["create"] == FRAMES - 12
    assert f"{FRAMES - 12} frames not done in this run" in err
    history = run_process("history", cwd=example).stdout
    assert f"12 frames: 12 new, 0 regenerated, 0 repaired, 0 removed, 0 failed, {FRAMES - 12} not done" \
        in history


@pytest.mark.slow
def test_second_ctrl_c_leaves_at_once_with_the_journal_intact(example: Path) -> None:
    slow_project(example, 30)  # the jobs would run for half a minute
    process = start_apply(example)
    wait_for(lambda: submitted(example) >= 2)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)  # the first press is being handled: no new submissions
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    jobs = [json.loads(p.read_text()) for p in (example / ".storyboard/local-jobs").iterdir()]
    assert time.time() < min(job["submitted_at"] for job in jobs) + 30  # it left before the jobs ended
    assert not (example / "out").exists()  # nothing half-written
    assert submitted(example) == 2  # the journal still knows both paid-for jobs
    edit(example / "storyboard.yaml", "    latency: 30\n", "    latency: 0\n")
    resumed = run_process("apply", "--auto-approve", cwd=example, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("re-attached to local-") == 2
    assert len(list((example / ".storyboard/local-jobs").iterdir())) == 7  # nothing paid twice


def stage(project: Path, images: list[tuple[str, str, bytes]], stamped: int | None = None) -> None:
    """What an interrupted run leaves: (address, fingerprint, PNG bytes) kept and journaled."""
    from PIL import Image

    from storyboard.state.journal import Journal
    from storyboard.state.store import IndexEntry, sha256_of

    kept = []
    for address, fingerprint, data in images:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        entry = IndexEntry(fingerprint, sha256_of(data), "png", width, height, len(data), address,
                           "earlier-job", "m", 0, "p", stamped or 0, "2026-01-01T00:00:00Z")
        kept.append((entry, data, None))
    journal = Journal(project / ".storyboard")
    journal.keep_images(kept, stamped=stamped)
    journal.close()


def killed_after_two_submits(example: Path) -> set[str]:
    """kill -9 an apply of 3 s jobs once it has journaled two submits; the jobs it left."""
    slow_project(example, 3)
    process = start_apply(example)
    wait_for(lambda: submitted(example) >= 2)
    process.kill()
    process.communicate()
    killed_jobs = {p.name for p in (example / ".storyboard/local-jobs").iterdir()}
    assert len(killed_jobs) == 2
    return killed_jobs


@pytest.mark.slow
def test_sigkill_then_resume_reattaches_instead_of_resubmitting(example: Path) -> None:
    killed_jobs = killed_after_two_submits(example)
    jobs_dir = example / ".storyboard/local-jobs"
    assert not (example / "out").exists()
    resumed = run_process("apply", "--auto-approve", cwd=example, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("re-attached to local-") == 2
    all_jobs = {p.name for p in jobs_dir.iterdir()}
    assert killed_jobs <= all_jobs
    assert len(all_jobs) == 7  # what one uninterrupted run submits: nothing was paid twice
    assert len(images(example / "out/v0001")) == FRAMES
    assert not (example / ".storyboard/journal.jsonl").exists()


@pytest.mark.slow
def test_an_apply_killed_while_linking_its_version_leaves_none_and_the_next_cleans_up(applied: Path) -> None:
    """kill -9 while the unchanged frames are being linked into the new version: nothing appears
    under a version's name, `latest` stays, and the next apply removes what was left (gc would too:
    there is none here)."""
    edit(applied / "storyboard.yaml", "  keep: 20\n", "")
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    slow_project(applied, 30)
    process = start_apply(applied)
    wait_for(lambda: any((applied / "out").glob(".v0002.tmp-*/*")))
    process.kill()
    process.communicate()
    names = sorted(p.name for p in (applied / "out").iterdir())
    assert names[1:] == ["latest", "v0001"] and names[0].startswith(".v0002.tmp-"), names
    assert (applied / "out/latest").readlink() == Path("v0001")
    edit(applied / "storyboard.yaml", "    latency: 30\n", "    latency: 0\n")
    resumed = run_process("apply", "--auto-approve", cwd=applied, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in (applied / "out").iterdir()) == ["latest", "v0001", "v0002"]
    assert images(applied / "out/v0002").keys() == images(applied / "out/v0001").keys()
    assert run_process("plan", "--detailed-exitcode", cwd=applied).returncode == 0


def test_a_version_a_live_process_is_writing_is_left_alone(run, applied: Path) -> None:
    """A `pull` takes no run lock: its version in the making must survive an apply next to it."""
    in_the_making = applied / f"out/.v0009.tmp-{os.getpid()}"
    (in_the_making / "01-morning").mkdir(parents=True)
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    assert (in_the_making / "01-morning").is_dir() and (applied / "out/v0002").is_dir()


def test_an_image_staged_for_another_version_is_stamped_again_once(run, example: Path) -> None:
    """A journaled image whose provenance names a version never committed (a run killed
    after staging, or a journal from before stamping) gets this version's, in one chunk."""
    import hashlib
    import io

    from PIL import Image

    from storyboard import load, plan
    from storyboard.images import with_provenance

    change = next(c for c in plan(load(example)).changes if c.address == "morning/pour")
    assert change.spec is not None
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 40, 40)).save(buffer, format="PNG")
    old = with_provenance(buffer.getvalue(), "png", {"version": 7, "address": "morning/pour"})
    stage(example, [("morning/pour", change.spec.fingerprint, old)], stamped=7)

    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 0, result.err
    pour = next(p for p in (example / "out/v0001").rglob("*.png") if "pour" in p.name)
    data = pour.read_bytes()
    assert data.count(b"iTXtstoryboard\0") == 1
    assert read_provenance(pour) == {"project": "coffee-launch", "address": "morning/pour", "version": 1,
                                     "fingerprint": change.spec.fingerprint, "prompt": change.spec.prompt,
                                     "model": change.spec.model, "seed": change.spec.seed,
                                     "job": "earlier-job"}
    with Image.open(pour) as image:
        assert image.getpixel((3, 3)) == (200, 40, 40)  # the paid-for picture, not a new one
    lock = json.loads((example / "storyboard.lock").read_text())
    assert lock["frames"]["morning/pour"]["image"]["sha256"] == hashlib.sha256(data).hexdigest()
    thumb = example / "out/v0001/thumbs" / pour.relative_to(example / "out/v0001").with_suffix(".jpg")
    with Image.open(thumb) as small:
        assert small.format == "JPEG" and small.size == (64, 36)
    assert run("-C", example, "plan", "--detailed-exitcode").code == 0


def test_a_staged_image_outside_the_target_is_kept_for_the_apply_that_wants_it(run, example: Path) -> None:
    """An interrupted run left a paid-for image of morning/pour; an apply of other frames must
    not throw it away, and the next apply uses it instead of paying again."""
    from PIL import Image

    from storyboard import load, plan

    change = next(c for c in plan(load(example)).changes if c.address == "morning/pour")
    assert change.spec is not None
    red, black = png_bytes((200, 40, 40)), png_bytes((0, 0, 0))
    stage(example, [("morning/pour", change.spec.fingerprint, red),
                    ("morning/gone", "0" * 64, black)])  # wanted by nothing
    targeted = run("-C", example, "apply", "--auto-approve", "--target", "packshot")
    assert targeted.code == 0, targeted.err
    assert "morning/pour" not in targeted.out
    assert "morning/pour" in (example / ".storyboard/journal.jsonl").read_text()
    full = run("-C", example, "apply", "--auto-approve")
    assert full.code == 0, full.err
    assert "done morning/pour (from an interrupted run)" in full.out
    assert len(list((example / ".storyboard/local-jobs").iterdir())) == 7  # 1 for packshot, 6 more
    with Image.open(example / "out/v0002/01-morning/04-pour.png") as image:
        assert image.getpixel((3, 3)) == (200, 40, 40)  # the paid-for picture
    assert not (example / ".storyboard/journal.jsonl").exists()


@pytest.mark.slow
def test_jobs_of_a_killed_run_survive_an_apply_of_other_frames(example: Path) -> None:
    killed_after_two_submits(example)
    jobs_dir = example / ".storyboard/local-jobs"
    edit(example / "storyboard.yaml", "    latency: 3\n", "    latency: 0\n")
    targeted = run_process("apply", "--auto-approve", "--target", "packshot", cwd=example, timeout=120)
    assert targeted.returncode == 0, targeted.stderr
    assert "re-attached" not in targeted.stdout
    assert submitted(example) == 2  # the journal still holds both paid-for jobs
    resumed = run_process("apply", "--auto-approve", cwd=example, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("re-attached to local-") == 2
    assert len(list(jobs_dir.iterdir())) == 7  # what one uninterrupted run submits: nothing paid twice
    assert len(images(example / "out/v0002")) == FRAMES


def test_two_clones_of_a_commit_apply_to_byte_identical_images_and_lockfiles(run, tmp_path: Path) -> None:
    import shutil

    clones = []
    for name in ("clone-a", "somewhere/else/clone-b"):
        target = tmp_path / name
        shutil.copytree(REPO / "examples/coffee-launch", target,
                        ignore=shutil.ignore_patterns("out", "storyboard.lock", ".storyboard"))
        assert run("-C", target, "apply", "--auto-approve").code == 0
        clones.append(target)
    first, second = clones
    assert (first / "storyboard.lock").read_bytes() == (second / "storyboard.lock").read_bytes()
    files = sorted(p.relative_to(first / "out/v0001") for p in (first / "out/v0001").rglob("*")
                   if p.suffix in (".png", ".jpg"))
    assert len(files) == 2 * FRAMES  # every image and its thumbnail
    for relative in files:
        assert (first / "out/v0001" / relative).read_bytes() == (second / "out/v0001" / relative).read_bytes()


def test_plan_over_budget_prints_the_plan_then_the_verdict_and_exits_1(run, example: Path) -> None:
    set_provider(example, "  price_per_image: 0.5\n")
    result = run("--no-color", "-C", example, "plan")
    assert result.code == 1
    assert "Plan: 31 to create" in result.out and "estimated cost $15.50" in result.out
    assert "error: the plan's estimated cost $15.50 is above the budget $5.00" in result.err
    as_json = run("-C", example, "plan", "--json")
    assert as_json.code == 1
    plan = json.loads(as_json.out)
    jsonschema.validate(plan, schema("plan"))
    assert plan["budget"] == {"max_cost": 5.0, "estimate": 15.5, "over": True}
    within = json.loads(run("-C", example, "plan", "--json", "--max-cost", "20").out)
    assert within["budget"] == {"max_cost": 20.0, "estimate": 15.5, "over": False}


@pytest.mark.slow
def test_plan_leaves_out_what_an_interrupted_run_paid_for(example: Path) -> None:
    set_provider(example, "  price_per_image: 0.1\n")
    killed_after_two_submits(example)
    plan = json.loads(run_process("plan", "--json", cwd=example).stdout)
    assert plan["paid_earlier"] == {"frames": 12, "jobs": 2}  # 4 + 8 frames in the two sets
    assert plan["summary"]["requests"] == 5 and plan["summary"]["create"] == FRAMES
    assert plan["budget"]["estimate"] == pytest.approx((FRAMES - 12) * 0.1)
    text = run_process("--no-color", "plan", cwd=example).stdout
    assert "12 frames an interrupted run paid for (2 jobs to collect) will be used, not paid again." in text
