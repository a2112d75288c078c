"""storyboard.lock: golden bytes, round trip, and a clear error for every kind of damage."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest

from storyboard.errors import LockfileError
from storyboard.state.lockfile import Approval, Lock, LockEntry, copyable_entries, read_lock, write_lock

GOLDEN = Path(__file__).parent.parent / "golden" / "storyboard.lock"
GOLDEN_V1 = Path(__file__).parent.parent / "golden" / "storyboard.v1.lock"  # written before approvals
SHA = "a" * 64


def sample() -> Lock:
    entry = LockEntry(fingerprint="b" * 64, prompt="Wide shot: a café at dawn, “First Light”.",
                      inputs={"seed": 7, "size": "2848x1600", "model": "m", "provider": "local",
                              "params": {}, "references": [SHA]},
                      image_sha256=SHA, image_bytes=1234, path="01-morning/01-skyline.png", version=3,
                      job="local-1")
    approval = Approval(SHA, "b" * 64, "Ana Director <ana@example.com>", "2026-12-02T09:30:00Z", 3)
    return Lock("coffee-launch", 3, {"morning/skyline": entry, "commute/alarm": entry},
                approvals={"morning/skyline": approval})


def test_golden_bytes(tmp_path: Path) -> None:
    path = tmp_path / "storyboard.lock"
    assert write_lock(path, sample())
    assert path.read_bytes() == GOLDEN.read_bytes()


ESCAPED = Lock("p", 1, {"a/\u00e9t\u00e9@\"q\"": sample().frames["morning/skyline"]})


@pytest.mark.parametrize("lock", [Lock("no-frames-yet", 0, {}), sample(), ESCAPED],
                         ids=["no frames", "sample", "an address json escapes"])
def test_the_bytes_are_what_json_indents(lock: Lock) -> None:
    assert lock.to_bytes() == canonical(lock.to_bytes())


def test_approvals_are_in_the_bytes_with_who_and_when(tmp_path: Path) -> None:
    text = GOLDEN.read_text()
    document = json.loads(text)
    assert document["format"] == 2
    assert document["approvals"] == {"morning/skyline": {
        "sha256": SHA, "fingerprint": "b" * 64, "by": "Ana Director <ana@example.com>",
        "at": "2026-12-02T09:30:00Z", "version": 3}}


def test_a_format_1_lockfile_is_read_with_no_approvals(tmp_path: Path) -> None:
    lock = read_lock(GOLDEN_V1)
    assert lock.approvals == {} and set(lock.frames) == {"morning/skyline", "commute/alarm"}
    assert lock.frames["morning/skyline"] == sample().frames["morning/skyline"]


def test_a_damaged_approval_names_its_line(tmp_path: Path) -> None:
    text = GOLDEN.read_text().replace('"by": "Ana Director <ana@example.com>"', '"by": 7', 1)
    error = damaged(tmp_path, text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"by": 7' in row)
    assert error.location is not None and error.location.line == line
    assert "approvals.morning/skyline.by" in error.message


def test_the_lockfile_gets_the_permissions_of_any_new_file(tmp_path: Path) -> None:
    """Not mkstemp's 0600: teammates and CI users reading the checkout must be able to read it."""
    write_lock(tmp_path / "storyboard.lock", sample())
    (tmp_path / "plain").write_text("x")
    assert (tmp_path / "storyboard.lock").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_round_trip_and_not_rewritten_when_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "storyboard.lock"
    write_lock(path, sample())
    before = path.stat().st_mtime_ns
    assert read_lock(path) == sample()
    assert write_lock(path, read_lock(path)) is False
    assert path.stat().st_mtime_ns == before


def canonical(data: bytes) -> bytes:
    """The bytes storyboard writes for what `data` holds."""
    return (json.dumps(json.loads(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def edited(lock: Lock, address: str, prompt: str) -> Lock:
    frames = {**lock.frames, address: dataclasses.replace(lock.frames[address], prompt=prompt)}
    return Lock(lock.project, lock.version + 1, frames, approvals=lock.approvals)


def entry_text(text: str, address: str) -> str:
    """The text of `address`'s entry in a lockfile's frames."""
    opening = f'    "{address}": {{\n'
    start = text.index(opening, text.index('\n  "frames": {')) + len(opening)
    return text[start:text.index("\n    }", start)]


def reorder_keys_of_one_entry(path: Path) -> None:
    """Same data, another layout: `job` moved first in morning/skyline's entry, as a hand or a
    merge tool might."""
    text = path.read_text()
    entry = entry_text(text, "morning/skyline")
    job = '      "job": "local-1",\n'
    text = text.replace(entry, job + entry.replace(job, ""))
    path.write_text(text)
    assert json.loads(text) == json.loads(canonical(text.encode()))


def test_the_entries_of_the_file_apply_wrote_are_taken_as_they_stand(tmp_path: Path) -> None:
    """What the record vouches for is copied, not encoded again: shown by planting a layout only a
    copy could keep (the record is apply's own, in the state folder)."""
    path, record = tmp_path / "storyboard.lock", tmp_path / "lockfile-written"
    write_lock(path, sample(), record=record)
    read = read_lock(path)  # the plan's: the entries of unchanged frames are its very objects
    assert write_lock(path, edited(read, "commute/alarm", "one"), read=read, record=record)
    assert path.read_bytes() == canonical(path.read_bytes())  # spliced entries: the same bytes
    reorder_keys_of_one_entry(path)
    record.write_text(f"lockfile format 2 sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    read = read_lock(path)
    write_lock(path, edited(read, "commute/alarm", "two"), read=read, record=record)
    skyline = entry_text(path.read_text(), "morning/skyline")
    assert skyline.index('"job"') < skyline.index('"fingerprint"')  # copied as it stood


def test_a_lockfile_apply_did_not_write_is_encoded_whole(tmp_path: Path) -> None:
    """A lockfile from a merge, another machine or a hand: its layout is not carried over."""
    path, record = tmp_path / "storyboard.lock", tmp_path / "lockfile-written"
    write_lock(path, sample(), record=record)
    reorder_keys_of_one_entry(path)
    read = read_lock(path)
    write_lock(path, edited(read, "commute/alarm", "two"), read=read, record=record)
    assert path.read_bytes() == canonical(path.read_bytes())
    assert read_lock(path).frames["commute/alarm"].prompt == "two"


def test_entries_found_before_the_file_changed_are_still_the_new_locks(tmp_path: Path) -> None:
    """apply looks for the entries it may copy while the service works; the file may change before
    the lockfile is written (a checkout): the new lock is still written whole and canonical, and
    "unchanged" is judged against the file as it is then."""
    path, record = tmp_path / "storyboard.lock", tmp_path / "lockfile-written"
    write_lock(path, sample(), record=record)
    read = read_lock(path)
    copies = copyable_entries(path, read, record)
    assert sorted(copies) == sorted(read.frames)
    path.write_text("changed meanwhile")
    new = edited(read, "commute/alarm", "one")
    assert write_lock(path, new, read=read, record=record, copies=copies)
    assert path.read_bytes() == canonical(path.read_bytes()) and read_lock(path).frames == new.frames
    assert write_lock(path, new, read=read, record=record, copies=copies) is False
    record.write_text("lockfile format 2 sha256 0\n")
    assert copyable_entries(path, read_lock(path), record) == {}


def test_missing_lockfile_is_an_empty_lock(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "storyboard.lock") == Lock()


def damaged(tmp_path: Path, text: str) -> LockfileError:
    path = tmp_path / "storyboard.lock"
    path.write_text(text)
    with pytest.raises(LockfileError) as caught:
        read_lock(path)
    return caught.value


def test_corrupt_json_names_line_and_column(tmp_path: Path) -> None:
    text = GOLDEN.read_text().replace('"version": 3', '"version": 3,,', 1)
    error = damaged(tmp_path, text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"version": 3,,' in row)
    assert error.location is not None and error.location.line == line and error.location.col > 1
    assert error.message.startswith("corrupt lockfile: ")
    assert error.format().startswith(f"{error.location}: corrupt lockfile")
    assert "git checkout -- storyboard.lock" in error.hint


def test_a_lockfile_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "storyboard.lock"
    text = GOLDEN.read_bytes()
    third_line = text.index(b"\n", text.index(b"\n") + 1) + 1
    path.write_bytes(text[:third_line] + b"\xff\xfe" + text[third_line:])
    with pytest.raises(LockfileError) as caught:
        read_lock(path)
    assert caught.value.location is not None and caught.value.location.line == 3
    assert "not UTF-8 text" in caught.value.message


def test_a_lockfile_saved_with_a_byte_order_mark_reads_as_without(tmp_path: Path) -> None:
    path = tmp_path / "storyboard.lock"
    path.write_bytes(b"\xef\xbb\xbf" + GOLDEN.read_bytes())  # an editor on Windows
    assert read_lock(path).frames == read_lock(GOLDEN).frames


def test_merge_conflict_markers_are_a_clear_error(tmp_path: Path) -> None:
    text = GOLDEN.read_text()
    error = damaged(tmp_path, "<<<<<<< HEAD\n" + text + "=======\n" + text + ">>>>>>> branch\n")
    assert "storyboard.lock:1:1: corrupt lockfile" in error.format()


def test_newer_format_asks_for_an_upgrade(tmp_path: Path) -> None:
    document = json.loads(GOLDEN.read_text())
    document["format"] = 3
    error = damaged(tmp_path, json.dumps(document))
    assert "written by a newer storyboard (lockfile format 3" in error.message
    assert "upgrade" in error.hint


def test_hand_mangled_entry_names_its_line(tmp_path: Path) -> None:
    text = GOLDEN.read_text().replace('"bytes": 1234', '"bytes": "many"', 1)
    error = damaged(tmp_path, text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"many"' in row)
    assert error.location is not None and (error.location.line, error.location.col) == (line, 9)
    assert error.message == "frames.commute/alarm.image.bytes: expected an integer, got str 'many'"


def test_not_a_lockfile(tmp_path: Path) -> None:
    assert "not a storyboard lockfile" in damaged(tmp_path, "[1, 2]").message


def test_cli_reports_a_corrupt_lockfile_without_traceback(run, applied_example: Path) -> None:
    (applied_example / "storyboard.lock").write_text("{broken")
    result = run("-C", applied_example, "plan")
    assert result.code == 1
    assert "storyboard.lock:1:2: corrupt lockfile" in result.err
    assert "Traceback" not in result.err


def test_a_project_error_is_told_before_a_corrupt_lockfile(run, applied_example: Path) -> None:
    # plan reads the lockfile before rendering (memory), but the project's own mistake comes first
    (applied_example / "storyboard.lock").write_text("{broken")
    scene = applied_example / "scenes/01-morning.yaml"
    scene.write_text(scene.read_text().replace("shot: ", "shoot: ", 1))
    result = run("-C", applied_example, "plan")
    assert result.code == 1 and "Traceback" not in result.err
    assert "scenes/01-morning.yaml:" in result.err and "corrupt lockfile" not in result.err


@pytest.fixture
def applied_example(run, example: Path) -> Path:
    assert run("-C", example, "apply", "--auto-approve").code == 0
    return example


def test_a_damaged_saved_plan_is_located_not_followed(run, applied_example: Path, tmp_path: Path) -> None:
    plan_file = tmp_path / "change.plan"
    assert run("-C", applied_example, "plan", "-o", plan_file).code == 0
    saved = json.loads(plan_file.read_text())
    saved["options"]["targets"] = "morning"  # a string where a list belongs
    plan_file.write_text(json.dumps(saved, indent=2))
    result = run("-C", applied_example, "apply", plan_file)
    assert result.code == 1 and "Traceback" not in result.err
    line = next(n for n, row in enumerate(plan_file.read_text().splitlines(), 1) if '"targets"' in row)
    assert f"change.plan:{line}:" in result.err
    assert "not a storyboard plan: options.targets: expected an array, got str 'morning'" in result.err
    plan_file.write_text("{\n  \"format\": 1,\n  oops\n}")
    result = run("-C", applied_example, "apply", plan_file)
    assert result.code == 1 and "change.plan:3:3: corrupt saved plan" in result.err


@pytest.mark.parametrize("by", ["\\u001b[2J\\u001b[31mDirector", "", "Ana\\nDirector"])
def test_an_approval_by_with_control_characters_is_refused_at_its_line(tmp_path: Path, by: str) -> None:
    """`by` is printed on terminals and pages: a lockfile from a pull request cannot smuggle escapes."""
    text = GOLDEN.read_text().replace('"by": "Ana Director <ana@example.com>"', f'"by": "{by}"', 1)
    error = damaged(tmp_path, text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if f'"by": "{by}"' in row)
    assert error.location is not None and error.location.line == line
    assert "approvals.morning/skyline.by" in error.message


def test_writing_over_a_lockfile_that_became_a_pipe_replaces_it_without_waiting(tmp_path: Path) -> None:
    """apply compares the file with what it writes, and looks for entries to copy: a FIFO put there
    after its plan would have made it wait for a writer forever."""
    path = tmp_path / "storyboard.lock"
    record = tmp_path / "lockfile-written"
    os.mkfifo(path)
    assert copyable_entries(path, sample(), record) == {}
    assert write_lock(path, sample(), read=sample(), record=record)
    assert path.read_bytes() == GOLDEN.read_bytes()
