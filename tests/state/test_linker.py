"""The linking process, run for real: links, copies across filesystems, failures, a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import edit, images

from storyboard.state import linker
from storyboard.state.linker import Linker
from storyboard.state.versions import Placement, VersionFolder


def test_it_links_every_pair_into_folders_it_makes(tmp_path: Path) -> None:
    sources = []
    for name in ("a.png", "b é.png", "c\nd.png"):  # any name a filesystem takes
        (tmp_path / name).write_bytes(name.encode())
        sources.append(tmp_path / name)
    targets = [tmp_path / "v/01-scene" / "a.png", tmp_path / "v/02 deux" / "b é.png", tmp_path / "v/c\nd.png"]
    process = Linker()
    process.send([(str(s), str(t)) for s, t in zip(sources, targets, strict=True)])
    process.wait()
    for source, target in zip(sources, targets, strict=True):
        assert target.stat().st_ino == source.stat().st_ino


def test_across_filesystems_it_copies(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    source = shm / f"storyboard-test-{os.getpid()}.png"
    source.write_bytes(b"pixels")
    try:
        process = Linker()
        process.send([(str(source), str(tmp_path / "v/a.png"))])
        process.wait()
        copied = tmp_path / "v/a.png"
        assert copied.read_bytes() == b"pixels" and copied.stat().st_dev != source.stat().st_dev
    finally:
        source.unlink()


def test_a_source_that_is_gone_is_an_error_naming_it(tmp_path: Path) -> None:
    process = Linker()
    process.send([(str(tmp_path / "gone.png"), str(tmp_path / "v/gone.png"))])
    with pytest.raises(OSError, match=r"gone\.png"):
        process.wait()


def test_a_target_already_there_is_an_error_not_a_copy_onto_it(tmp_path: Path) -> None:
    """Copying onto a hard link of the source would empty both: never fall back to it."""
    (tmp_path / "a.png").write_bytes(b"pixels")
    os.link(tmp_path / "a.png", tmp_path / "b.png")
    process = Linker()
    process.send([(str(tmp_path / "a.png"), str(tmp_path / "b.png"))])
    with pytest.raises(OSError, match="exists"):
        process.wait()
    assert (tmp_path / "a.png").read_bytes() == b"pixels"


def test_a_version_discarded_while_its_links_are_made_leaves_nothing(tmp_path: Path) -> None:
    """discard stops the linking process before removing the folder: one left running would make
    its folders again, and go on linking into them."""
    (tmp_path / "a.png").write_bytes(b"x")
    folder = VersionFolder(tmp_path / "out", 2)
    folder.place([Placement(f"{n // 100:03d}/{n}.png", tmp_path / "a.png") for n in range(40000)],
                 links_elsewhere=True)
    folder.discard()
    time.sleep(1)  # what a child left running would link meanwhile (40,000 links take ~1 s)
    assert list((tmp_path / "out").iterdir()) == []
    assert (tmp_path / "a.png").stat().st_nlink == 1


def test_an_apply_links_its_unchanged_frames_through_it(run, applied: Path, monkeypatch) -> None:
    """A version made with the linking process (every version above 2,000 links): the same files."""
    started = []
    monkeypatch.setattr(linker, "LINK_IN_A_PROCESS_ABOVE", 0)
    monkeypatch.setattr(linker.Linker, "send", record(linker.Linker.send, started))
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    assert len(started) == 1 and len(started[0]) == 2 * 30  # 30 kept frames: image and thumbnail
    old, new = images(applied / "out/v0001"), images(applied / "out/v0002")
    assert old.keys() == new.keys()
    assert [path for path in new if new[path] != old[path]] == ["01-morning/04-pour.png"]
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0


def record(send, calls: list):  # type: ignore[no-untyped-def]
    def recording(self, pairs) -> None:  # type: ignore[no-untyped-def]
        calls.append(list(pairs))
        send(self, pairs)
    return recording


def test_a_killed_linking_process_fails_the_version_leaving_nothing(run, applied: Path, monkeypatch) -> None:
    """As the OOM killer would: the version is not written, nothing is left under a temporary
    name, and the next apply writes it from what the first one paid for."""
    monkeypatch.setattr(linker, "LINK_IN_A_PROCESS_ABOVE", 0)
    send = linker.Linker.send

    def killed_first(self, pairs) -> None:  # type: ignore[no-untyped-def]
        self._process.kill()
        self._process.wait()
        send(self, pairs)

    monkeypatch.setattr(linker.Linker, "send", killed_first)
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    result = run("-C", applied, "apply", "--auto-approve")
    assert result.code == 1 and "could not write the new version" in result.err, result.err
    assert "Traceback" not in result.err
    assert sorted(p.name for p in (applied / "out").iterdir()) == ["latest", "v0001"]
    monkeypatch.setattr(linker.Linker, "send", send)
    again = run("-C", applied, "apply", "--auto-approve")
    assert again.code == 0 and "1 frame generated" in again.out, again.out
    assert len(list((applied / ".storyboard/local-jobs").iterdir())) == 8  # 7 first, 1 now: not twice


PARENT = """
import os, sys, time
from storyboard.state.linker import Linker
source, folder, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
process = Linker()
process.send([(source, f"{folder}/{n % 100:02d}/{n}.png") for n in range(count)])
print(process._process.pid, flush=True)
time.sleep(60)
"""


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie nobody reaps counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_linking_process_whose_apply_was_killed_stops(tmp_path: Path) -> None:
    """An apply killed while its child links: the child stops instead of filling the unfinished folder
    the next apply removes (it would race that removal)."""
    (tmp_path / "a.png").write_bytes(b"pixels")
    count = 100_000
    with subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "a.png"), str(tmp_path / "v"),
                           str(count)], stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 120
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child)
    folders = list((tmp_path / "v").iterdir()) if (tmp_path / "v").exists() else []
    assert sum(len(os.listdir(folder)) for folder in folders) < count / 2  # none, or the first few
