"""The local provider draws a large run in a process per core: the same bytes as one core
draws, Ctrl-C and a kill leave no drawing process behind, and a build script using the library
is never imported again by one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MINIMAL_ROOT, build_tree, run_process, wait_for

POOL_STARTED = "drawing placeholders in"


def many_frames(root: Path, frames: int) -> Path:
    """A project of `frames` frames in scenes of 15 (a request each), local provider."""
    scenes = []
    for scene in range(0, frames, 15):
        shots = "".join(f"\n      - id: f{number:03d}\n        shot: wide\n        action: frame {number}"
                        for number in range(scene, min(scene + 15, frames)))
        scenes.append(f"  - id: s{scene // 15:02d}\n    frames:{shots}")
    scene_file = "scenes:\n" + "\n".join(scenes)
    return build_tree(root, {"storyboard.yaml": MINIMAL_ROOT, "scenes/a.yaml": scene_file})


def version_files(version: Path) -> dict[str, bytes]:
    """Every image and thumbnail of a version, by path."""
    return {str(path.relative_to(version)): path.read_bytes() for path in sorted(version.rglob("*"))
            if path.suffix in (".png", ".jpg")}


def marked_processes(mark: str) -> list[int]:
    """Processes whose environment carries `mark` (an apply and the processes it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"STORYBOARD_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def start(project: Path, mark: str) -> subprocess.Popen[str]:
    """`storyboard -v apply` in a session of its own (a terminal's Ctrl-C reaches the whole group)."""
    return subprocess.Popen([sys.executable, "-m", "storyboard", "-v", "apply", "--auto-approve"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "STORYBOARD_TEST_MARK": mark})


def wait_for_pool(process: subprocess.Popen[str]) -> list[str]:
    """Read the apply's log until it says its drawing processes started; the lines read."""
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if POOL_STARTED in line:
            return lines
    raise AssertionError("the apply ended without starting drawing processes:\n" + "".join(lines))


@pytest.mark.slow
def test_a_large_apply_draws_in_a_process_per_core_the_bytes_one_core_draws(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    pooled = run_process("-v", "apply", "--auto-approve", cwd=many_frames(tmp_path / "pooled", 120),
                         timeout=120)
    assert pooled.returncode == 0, pooled.stderr
    one_core = many_frames(tmp_path / "one-core", 120)
    threaded = subprocess.run([sys.executable, "-m", "storyboard", "-v", "apply", "--auto-approve"],
                              cwd=one_core, capture_output=True, text=True, timeout=120, check=False,
                              preexec_fn=lambda: os.sched_setaffinity(0, {0}))  # a one-core machine
    assert threaded.returncode == 0, threaded.stderr
    if cores > 1:
        assert f"{POOL_STARTED} {cores} processes, one per core" in pooled.stderr
    assert POOL_STARTED not in threaded.stderr
    assert "Traceback" not in pooled.stderr and "resource_tracker" not in pooled.stderr
    drawn = version_files(tmp_path / "pooled/out/v0001")
    assert len(drawn) == 240  # 120 images and their thumbnails
    assert drawn == version_files(one_core / "out/v0001")
    assert (tmp_path / "pooled/storyboard.lock").read_bytes() == (one_core / "storyboard.lock").read_bytes()


def run_build_script(root: Path, source: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a build script applying a 120-frame project (`PROJECT` and `RAN` in `source` name it and
    a file it appends to); the run, and what the file holds."""
    project = many_frames(root / "project", 120)
    ran = root / "ran.txt"
    script = root / "build.py"
    text = textwrap.dedent(source).replace("PROJECT", repr(str(project))).replace("RAN", repr(str(ran)))
    script.write_text(text)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["120"]
    return result, ran.read_text()


@pytest.mark.slow
def test_a_build_script_is_not_run_again_by_drawing_processes(tmp_path: Path) -> None:
    # spawned processes import the program's __main__ again: a script without a main guard would
    # run its top level once more in each, so the library draws in threads unless asked
    _, ran = run_build_script(tmp_path, """
        import storyboard
        with open(RAN, "a") as log:
            log.write("top level\\n")
        result = storyboard.apply(storyboard.plan(storyboard.load(PROJECT)))
        print(len(result.generated))
    """)
    assert ran == "top level\n"


@pytest.mark.slow
def test_a_build_script_under_a_main_guard_may_draw_in_processes(tmp_path: Path) -> None:
    result, ran = run_build_script(tmp_path, """
        import logging
        import storyboard
        from storyboard.providers.placeholders import draw_in_processes

        def main():
            with open(RAN, "a") as log:
                log.write("main\\n")
            logging.basicConfig(level=logging.INFO)
            draw_in_processes()
            result = storyboard.apply(storyboard.plan(storyboard.load(PROJECT)))
            print(len(result.generated))

        if __name__ == "__main__":
            main()
    """)
    assert ran == "main\n"
    if len(os.sched_getaffinity(0)) > 1:
        assert POOL_STARTED in result.stderr


@contextlib.contextmanager
def drawing_in_processes(root: Path) -> Iterator[tuple[Path, subprocess.Popen[str], str]]:
    """(project, process, mark) of a 600-frame `storyboard -v apply` whose drawing processes have
    started; killed at the end if it still runs."""
    project = many_frames(root, 600)
    mark = uuid.uuid4().hex
    process = start(project, mark)
    try:
        wait_for_pool(process)
        yield project, process, mark
    finally:
        process.kill()
        process.communicate(timeout=30)  # its pipes close: no drawing process holds them


@pytest.mark.slow
def test_a_killed_apply_leaves_no_drawing_process_and_the_next_one_finishes(tmp_path: Path) -> None:
    with drawing_in_processes(tmp_path / "project") as (project, _, mark):
        assert len(marked_processes(mark)) > 1  # the apply and its drawing processes
    wait_for(lambda: not marked_processes(mark), timeout=20)  # they notice and leave
    resumed = run_process("apply", "--auto-approve", cwd=project, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list((project / "out/v0001").rglob("*.png"))) == 600


@pytest.mark.slow
def test_a_drawing_process_killed_mid_run_leaves_the_drawing_to_threads(tmp_path: Path) -> None:
    with drawing_in_processes(tmp_path / "project") as (project, process, mark):
        drawing = [pid for pid in marked_processes(mark)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert drawing
        os.kill(drawing[0], signal.SIGKILL)  # what the out-of-memory killer does
        _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "the process pool failed" in err and "Traceback" not in err
    assert len(list((project / "out/v0001").rglob("*.png"))) == 600  # every frame
    assert run_process("plan", "--detailed-exitcode", cwd=project).returncode == 0


@pytest.mark.slow
def test_ctrl_c_stops_an_apply_drawing_in_processes_cleanly(tmp_path: Path) -> None:
    with drawing_in_processes(tmp_path / "project") as (project, process, mark):
        os.killpg(process.pid, signal.SIGINT)  # what a terminal sends: every process of the group
        _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "process pool failed" not in err  # the drawing processes were not interrupted with it
    assert "no new requests" in err
    wait_for(lambda: not marked_processes(mark), timeout=20)
    done = len(list((project / "out/v0001").rglob("*.png")))
    assert 0 < done < 600  # the submitted requests were drawn and kept, nothing new was asked
