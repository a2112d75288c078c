"""Before anything is paid for: apply refuses what would make it fail after paying."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_process

from storyboard.testing.fake_atlas import FakeAtlas


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[str]:
    """Make `folder` refuse writes even to root: `chattr +i`, else a read-only bind mount.

    Mode bits are no test: root ignores them. Skips (with the reason) only where this
    machine can make neither.
    """
    folder.mkdir(parents=True, exist_ok=True)
    attempts = [(["chattr", "+i", str(folder)], ["chattr", "-i", str(folder)], "chattr +i"),
                (["sh", "-c", f"mount --bind '{folder}' '{folder}' && mount -o remount,bind,ro '{folder}'"],
                 ["umount", str(folder)], "a read-only bind mount")]
    for make, undo, how in attempts:
        if shutil.which(make[0]) is None:
            continue
        if subprocess.run(make, capture_output=True, check=False).returncode != 0:
            continue
        probe = folder / "probe"
        try:
            probe.write_text("x")
        except OSError:
            try:
                yield how
            finally:
                subprocess.run(undo, capture_output=True, check=False)
            return
        probe.unlink()
        subprocess.run(undo, capture_output=True, check=False)
    pytest.skip("this machine can make no folder that refuses root's writes (no chattr +i, no mount)")


def atlas_project(example: Path, fake: FakeAtlas) -> dict[str, str]:
    root = example / "storyboard.yaml"
    root.write_text(root.read_text().replace("  name: local ", "  name: atlascloud "))
    return {"ATLASCLOUD_BASE_URL": fake.base_url, "ATLASCLOUD_API_KEY": fake.api_key or ""}


@pytest.mark.parametrize("folder, words", [
    ("out", "cannot write to the output folder out"),
    (".storyboard", "cannot write to the run state folder .storyboard"),
])
def test_an_unwritable_folder_fails_before_any_request(example: Path, fake_atlas: FakeAtlas, folder: str,
                                                       words: str) -> None:
    env = atlas_project(example, fake_atlas)
    with unwritable(example / folder):
        completed = run_process("apply", "--auto-approve", cwd=example, env=env, timeout=60)
    assert completed.returncode == 1
    assert words in completed.stderr and "hint:" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert fake_atlas.calls == []  # nothing was submitted, nothing uploaded
    assert not (example / "storyboard.lock").exists()


def test_an_unwritable_project_folder_fails_before_any_request(example: Path, fake_atlas: FakeAtlas) -> None:
    env = atlas_project(example, fake_atlas)
    (example / "out").mkdir()
    (example / ".storyboard").mkdir()
    with unwritable(example):
        completed = run_process("apply", "--auto-approve", cwd=example, env=env, timeout=60)
    assert completed.returncode == 1
    assert "cannot write to the lockfile's folder ." in completed.stderr
    assert fake_atlas.calls == []


def test_an_output_path_that_is_a_file_fails_before_any_request(example: Path, fake_atlas: FakeAtlas) -> None:
    env = atlas_project(example, fake_atlas)
    (example / "out").write_text("not a folder")
    completed = run_process("apply", "--auto-approve", cwd=example, env=env, timeout=60)
    assert completed.returncode == 1
    assert "cannot write to the output folder out: not a folder" in completed.stderr
    assert fake_atlas.calls == []


def test_a_missing_key_fails_before_any_request(example: Path, fake_atlas: FakeAtlas) -> None:
    env = {**atlas_project(example, fake_atlas), "ATLASCLOUD_API_KEY": ""}
    completed = run_process("apply", "--auto-approve", cwd=example, env=env, timeout=60)
    assert completed.returncode == 1 and "ATLASCLOUD_API_KEY is not set" in completed.stderr
    assert fake_atlas.calls == []


def test_too_little_disk_space_fails_before_any_request(example: Path, fake_atlas: FakeAtlas) -> None:
    """Seedream's 2848x1600 PNGs: a tmpfs of 8 MB cannot hold 31 of them."""
    env = atlas_project(example, fake_atlas)
    small = example / ".storyboard"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(small)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"this machine cannot mount a small tmpfs: {mounted.stderr.decode().strip()}")
    try:
        completed = run_process("apply", "--auto-approve", cwd=example, env=env, timeout=60)
    finally:
        subprocess.run(["umount", str(small)], capture_output=True, check=False)
    assert completed.returncode == 1
    assert "not enough free disk space for 31 images in .storyboard" in completed.stderr
    assert fake_atlas.calls == []


def test_a_plan_over_budget_spends_nothing(example: Path, fake_atlas: FakeAtlas) -> None:
    env = atlas_project(example, fake_atlas)
    completed = run_process("apply", "--auto-approve", "--max-cost", "0.5", cwd=example, env=env, timeout=60)
    assert completed.returncode == 1
    assert "estimated cost $1.12 is above the budget $0.50" in completed.stderr
    assert fake_atlas.calls == []
    assert json.loads(run_process("plan", "--json", cwd=example, env=env).stdout)["summary"]["create"] == 31
