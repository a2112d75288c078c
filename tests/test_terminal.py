"""What a person sees: a live progress display and colours on a terminal, plain text without one."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_process

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
FRAMES = 31


def in_terminal(*args: str, cwd: Path, typed: bytes = b"", **extra_env: str) -> tuple[int, str]:
    """Run storyboard with a pseudo-terminal as stdin, stdout and stderr (`typed` waiting on stdin);
    returns (exit code, raw output)."""
    leader, follower = pty.openpty()
    if typed:
        os.write(leader, typed)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"}
    env.pop("NO_COLOR", None)
    env.update(extra_env)
    process = subprocess.Popen([sys.executable, "-m", "storyboard", *args], cwd=cwd, stdin=follower,
                               stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(timeout=30), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_apply_in_a_terminal_ends_on_a_full_progress_line(example: Path) -> None:
    config = example / "storyboard.yaml"
    config.write_text(config.read_text().replace("  parallelism: 4\n",
                                                 "  parallelism: 4\n  options: {latency: 0.2}\n"))
    code, raw = in_terminal("apply", "--auto-approve", cwd=example)
    assert code == 0, raw
    assert "\x1b[" in raw  # drawn live, with colours and cursor moves
    screen = ANSI.sub("", raw).replace("\r", "\n")
    last = [line for line in screen.splitlines() if "frames" in line and "apply" in line][-1]
    assert f"{FRAMES}/{FRAMES} frames" in last and "in flight 0" in last and "failed 0" in last
    assert "ETA" in last and re.search(r"\d:\d\d:\d\d", last)
    assert "Apply complete: version 0001" in screen


def test_plan_in_a_terminal_is_coloured(example: Path) -> None:
    code, raw = in_terminal("plan", cwd=example)
    assert code == 0
    assert re.search(r"\x1b\[32m\s*\+ morning/skyline", raw)  # creates are drawn green, like Terraform
    assert "31 to create" in ANSI.sub("", raw)


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"NO_COLOR": "please"}, {"STORYBOARD_NO_COLOR": "1"}])
def test_no_color_is_honoured_on_a_terminal(example: Path, env: dict[str, str]) -> None:
    code, raw = in_terminal("plan", cwd=example, **env)
    assert code == 0 and "31 to create" in raw
    assert "\x1b[" not in raw


def test_global_options_after_the_command(example: Path) -> None:
    code, raw = in_terminal("plan", "--no-color", cwd=example)
    assert code == 0 and "31 to create" in raw and "\x1b[" not in raw


def test_gc_on_a_terminal_asks_before_deleting(example: Path) -> None:
    scene = example / "scenes/01-morning.yaml"
    assert run_process("apply", "--auto-approve", cwd=example).returncode == 0
    for old, new in (("slow spiral", "slow heart"), ("slow heart", "slow wave")):
        scene.write_text(scene.read_text().replace(old, new))
        assert run_process("apply", "--auto-approve", cwd=example).returncode == 0
    code, raw = in_terminal("gc", "--keep", "1", cwd=example, typed=b"n\n")
    screen = ANSI.sub("", raw)
    assert code == 1 and "would remove 2 versions: v0001, v0002" in screen and "Remove them?" in screen
    assert "gc cancelled" in screen and (example / "out/v0001").is_dir()
    code, raw = in_terminal("gc", "--keep", "1", cwd=example, typed=b"y\n")
    assert code == 0 and "removed 2 versions" in ANSI.sub("", raw) and not (example / "out/v0001").exists()


def test_without_a_terminal_output_has_no_control_characters(example: Path) -> None:
    for args in (("plan",), ("apply", "--auto-approve"), ("history",), ("show",)):
        result = run_process(*args, cwd=example)
        assert result.returncode == 0, result.stderr
        output = result.stdout + result.stderr
        assert output.strip()
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", output), (args, output[:300])


@pytest.mark.slow
def test_the_animatic_shows_a_progress_bar_on_a_terminal(example: Path) -> None:
    pytest.importorskip("av", reason="the video extra is part of the test extra")
    assert run_process("apply", "--auto-approve", cwd=example).returncode == 0
    code, raw = in_terminal("export", "animatic", "-o", "board.mp4", "--size", "160x90", "--fps", "4",
                            cwd=example)
    screen = ANSI.sub("", raw).replace("\r", "\n")
    assert code == 0, screen
    assert any("animatic" in line and f"{FRAMES}/{FRAMES} frames" in line for line in screen.splitlines())
    assert "wrote board.mp4" in screen
    plain = run_process("export", "animatic", "-o", "plain.mp4", "--size", "160x90", "--fps", "4",
                        cwd=example)
    assert plain.returncode == 0 and plain.stderr == ""  # no bar without a terminal
    assert plain.stdout == "wrote plain.mp4 (31 frames, v0001)\n"
