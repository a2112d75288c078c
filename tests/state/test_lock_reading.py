"""A big storyboard.lock is read by a helper process: the same Lock, the same errors, and a helper
that fails or is not wanted costs only time."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import starts_of

from storyboard.errors import LockfileError
from storyboard.state import lock_reading
from storyboard.state.lock_reading import LockReading, from_answer
from storyboard.state.lockfile import Approval, Lock, LockEntry, read_lock, write_lock


@pytest.fixture
def helper_for_any_lock(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Use the helper for a lockfile of any size; returns its recorded starts."""
    monkeypatch.setattr(lock_reading, "HELPER_MIN_BYTES", 0)
    monkeypatch.setattr(lock_reading, "usable_cores", lambda: 2)  # the machine's, not ours: CI has two
    return starts_of("storyboard.state.lock_reading")


def many_frames(count: int = 300) -> Lock:
    """A lock whose entries repeat the model, size and reference hash, as a project's do."""
    frames = {}
    for number in range(count):
        frames[f"scene-{number // 10}/frame-{number}"] = LockEntry(
            fingerprint=f"{number:064x}", prompt=f"Frame {number}: a café at dawn, “First Light”.",
            inputs={"model": "bytedance/seedream-v4.5/sequential", "size": "2848x1600", "seed": number,
                    "params": {"strength": 0.5}, "references": ["c" * 64]},
            image_sha256=f"{number + 1:064x}", image_bytes=1000 + number, path=f"scene/{number:03d}.png",
            version=1 + number % 3, job=f"job-{number // 15}", sources={"template": "d" * 64})
    approvals = {"scene-0/frame-1": Approval("e" * 64, "f" * 64, "Ana <ana@example.com>",
                                             "2026-12-02T09:30:00Z", 2)}
    return Lock("launch", 3, frames, approvals=approvals)


def test_a_lock_read_by_the_helper_is_the_lock_read_here(tmp_path: Path, helper_for_any_lock: list[list[str]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "storyboard.lock"
    write_lock(path, many_frames())
    reading = LockReading.start(path)
    with monkeypatch.context() as patched:  # the helper's answer is used, not read again here

        def not_here(path: Path) -> Lock:
            raise AssertionError(f"{path} read again")

        patched.setattr(lock_reading, "read_lock", not_here)
        read = reading.result()
    assert helper_for_any_lock == [[sys.executable, "-m", "storyboard.state.lock_reading", str(path)]]
    here = read_lock(path)
    assert read == here and read.sha256 == here.sha256 != ""
    assert read.approvals == here.approvals and list(read.frames) == list(here.frames)
    first, second = (read.frames[f"scene-0/frame-{n}"] for n in (0, 1))
    assert type(first) is LockEntry and dataclasses.astuple(first) == dataclasses.astuple(here.frames[
        "scene-0/frame-0"])
    # the strings many entries repeat come back as one object each (at 100,000 frames: ~70 MB)
    assert first.inputs["model"] is second.inputs["model"]
    assert first.inputs["references"][0] is second.inputs["references"][0]


def test_a_damaged_lock_gives_the_same_error_through_the_helper(tmp_path: Path,
                                                                helper_for_any_lock: list[list[str]]) -> None:
    path = tmp_path / "storyboard.lock"
    write_lock(path, many_frames())
    text = path.read_text()
    path.write_text(text.replace('"bytes": 1007', '"bytes": "many"', 1))
    with pytest.raises(LockfileError) as here:
        read_lock(path)
    with pytest.raises(LockfileError) as through_helper:
        LockReading.start(path).result()
    assert len(helper_for_any_lock) == 1
    assert through_helper.value.format() == here.value.format()
    line = next(n for n, row in enumerate(path.read_text().splitlines(), 1) if '"many"' in row)
    assert f"storyboard.lock:{line}:9: frames.scene-0/frame-7.image.bytes" in here.value.format()


def helper_answer(path: Path) -> bytes:
    return subprocess.run([sys.executable, "-m", "storyboard.state.lock_reading", str(path)],
                          capture_output=True, check=True, timeout=60).stdout


def read_answer(answer: bytes) -> Lock | None:
    return from_answer(io.BytesIO(answer))


def test_the_helpers_answer_is_the_lock_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "storyboard.lock"
    write_lock(path, many_frames())
    assert read_answer(helper_answer(path)) == read_lock(path)
    monkeypatch.setattr(lock_reading, "BATCH", 7)  # 300 frames: 43 batches, the last one short
    answer = b"".join(lock_reading.answer(path))
    assert answer.count(b"frame-") >= 300 and read_answer(answer) == read_lock(path)
    assert read_answer(answer[:-1]) is None and read_answer(b"") is None  # cut short: not a lock


def reformatted(text: str, how: str) -> str:
    document = json.loads(text)
    if how == "compact":
        return json.dumps(document, separators=(",", ":"))
    if how == "indented by 4, keys unsorted, CRLF":
        return json.dumps(dict(reversed(document.items())), indent=4).replace("\n", "\r\n")
    if how == "a byte order mark":
        return "\ufeff" + text
    if how == "a frame twice":  # json keeps the last value, at the first place
        return text.replace('"scene-0/frame-2": {', '"scene-0/frame-1": {', 1)
    if how == "a top-level key twice":
        return text.replace('"version": 3', '"version": 3, "version": 4', 1)
    if how == "no frames":
        del document["frames"]
    elif how == "a newer format":
        document["format"] = 3
    elif how == "an integer written as a float":
        document["version"] = 3.0
    elif how == "an entry key unknown":
        document["frames"]["scene-0/frame-5"]["colour"] = "red"
    elif how == "data after the end":
        return text + "{}"
    elif how == "not JSON":
        return text[:5000]
    return json.dumps(document, indent=2)


HOW = ["compact", "indented by 4, keys unsorted, CRLF", "a byte order mark", "a frame twice",
       "a top-level key twice", "no frames", "a newer format", "an integer written as a float",
       "an entry key unknown", "data after the end", "not JSON"]


@pytest.mark.parametrize("how", HOW)
def test_the_helper_reads_what_read_lock_reads_or_leaves_it_to_read_lock(tmp_path: Path, how: str) -> None:
    """The helper's answer is read_lock's Lock, or None (read_lock then reads it, and explains)."""
    path = tmp_path / "storyboard.lock"
    write_lock(path, many_frames())
    path.write_bytes(reformatted(path.read_text(), how).encode())
    helped = read_answer(b"".join(lock_reading.answer(path)))
    try:
        here: Lock | LockfileError = read_lock(path)
    except LockfileError as error:
        here = error
    if how in ("compact", "indented by 4, keys unsorted, CRLF", "a byte order mark", "a frame twice"):
        assert isinstance(here, Lock) and helped == here and helped.sha256 == here.sha256
        assert list(helped.frames) == list(here.frames)  # the same order, too
        assert len(here.frames) == (299 if how == "a frame twice" else 300)
    else:
        assert helped is None


@pytest.mark.parametrize("kind", ["a link to /dev/zero", "a FIFO", "nested 200,000 deep"])
def test_the_helper_leaves_a_lockfile_that_would_hang_or_crash_it_to_read_lock(tmp_path: Path,
                                                                               kind: str) -> None:
    """Run as the plan runs it, with a timeout: its answer ends in None, and read_lock explains."""
    path = tmp_path / "storyboard.lock"
    if kind == "a link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "a FIFO":
        os.mkfifo(path)
    else:
        path.write_text('{"frames": {"a/b": ' + "[" * 200_000)  # json's scanner recurses into it
    assert read_answer(helper_answer(path)) is None
    with pytest.raises(LockfileError):
        read_lock(path)


def test_a_helper_that_fails_only_costs_time(tmp_path: Path, helper_for_any_lock: list[list[str]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "storyboard.lock"
    write_lock(path, many_frames())
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the helper starts and exits 1
    assert LockReading.start(path).result() == read_lock(path)
    assert len(helper_for_any_lock) == 1


def test_a_small_lock_is_read_at_once_without_a_helper(tmp_path: Path) -> None:
    starts = starts_of("storyboard.state.lock_reading")
    path = tmp_path / "storyboard.lock"
    write_lock(path, many_frames(3))
    reading = LockReading.start(path)
    path.unlink()  # read already: what the plan began with
    assert reading.result() == many_frames(3) and starts == []
    assert LockReading.start(path).result() == Lock()


def test_a_helper_not_wanted_is_stopped(tmp_path: Path, helper_for_any_lock: list[list[str]]) -> None:
    path = tmp_path / "storyboard.lock"
    write_lock(path, many_frames())
    reading = LockReading.start(path)
    reading.stop()  # at once: the helper's interpreter has not even started
    helper = reading.helper
    assert helper is not None and helper.process is not None and helper.answer_file is not None
    assert helper.process.returncode == -signal.SIGKILL  # killed, and reaped
    assert helper.answer_file.closed
    assert reading.result() == read_lock(path)  # wanted after all: read here


def test_a_project_error_stops_the_helper_and_comes_first(run, example: Path,
                                                           helper_for_any_lock: list[list[str]]) -> None:
    assert run("-C", example, "apply", "--auto-approve").code == 0
    helper_for_any_lock.clear()
    result = run("-C", example, "--no-color", "plan", "--detailed-exitcode")
    assert result.code == 0 and "No changes" in result.out and len(helper_for_any_lock) == 1
    helper_for_any_lock.clear()
    (example / "storyboard.lock").write_text("{broken")
    scene = example / "scenes/01-morning.yaml"
    scene.write_text(scene.read_text().replace("shot: ", "shoot: ", 1))
    result = run("-C", example, "plan")
    assert result.code == 1 and "scenes/01-morning.yaml:" in result.err
    assert "corrupt lockfile" not in result.err and len(helper_for_any_lock) == 1
    scene.write_text(scene.read_text().replace("shoot: ", "shot: ", 1))
    result = run("-C", example, "plan")
    assert result.code == 1 and "storyboard.lock:1:2: corrupt lockfile" in result.err
