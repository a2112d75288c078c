"""Hard links made by a process of their own, for a version that keeps thousands of files.

A thread linking files waits for the GIL after every link whenever another thread runs Python:
measured on 20,000 links beside a busy thread, the links took as long as the busy thread ran
(3.4 s against 0.4 s alone). apply links a large version's unchanged files while its own threads
decide frames and encode manifests, so a child process makes them: it runs beside them on another
core. It is started with `-I -S` and this process's `sys.path` (no site, no environment: the same
storyboard in ~40 ms), in a session of its own (a Ctrl-C to the terminal's group is apply's to
handle), reads every (source, target) pair before linking, and links each with
`fsutil.link_or_copy` (a copy where links fail: another filesystem). It stops when apply is gone
(killed: its pid is the name of the folder it links into, which the next apply removes once
that pid is dead, and must not find the child still adding to it).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Sequence

LINK_IN_A_PROCESS_ABOVE = 2000  # links; fewer are made in the calling thread

_CHILD = r"""
import os, sys
parent = int(sys.argv[1])
sys.path[:] = sys.argv[2:]  # the parent's: the same storyboard, however it was installed
from storyboard.fsutil import link_or_copy
names = sys.stdin.buffer.read().split(b"\0")
made = set()
for count, (source, target) in enumerate(zip(names[0::2], names[1::2])):
    if count % 256 == 0 and os.getppid() != parent:
        sys.exit("the apply that asked for these links has ended")
    folder = os.path.dirname(target)
    if folder not in made:
        os.makedirs(folder, exist_ok=True)
        made.add(folder)
    link_or_copy(os.fsdecode(source), os.fsdecode(target))
"""


class Linker:
    """A child process linking (source, target) pairs: `send` them once, `wait` before relying
    on them. Starting it raises OSError when no process can be started: nothing was linked."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _CHILD, str(os.getpid()), *sys.path], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    def send(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Every pair to link; it starts once they are all read."""
        assert self._process.stdin is not None
        with self._process.stdin as stdin:
            stdin.write(os.fsencode("\0".join(name for pair in pairs for name in pair) + "\0"))

    def wait(self) -> None:
        """Return once every pair is linked (or copied); OSError with the child's reason if not."""
        assert self._process.stderr is not None
        with self._process.stderr as stderr:
            error = stderr.read().decode(errors="replace").strip()
        if self._process.wait() != 0:
            raise OSError(error.splitlines()[-1] if error else f"the linking process exited with "
                          f"{self._process.returncode}")

    def stop(self) -> None:
        """End the child however far it got (the files it made are about to be removed)."""
        with contextlib.suppress(OSError):
            self._process.kill()
        self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()
