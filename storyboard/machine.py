"""What this machine offers the run: the cores this process may use, a second process on one, and
the interpreter's garbage collector set for programs that build large data and keep it."""

from __future__ import annotations

import gc
import marshal
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


GC_THRESHOLDS = (200_000, 30, 30)  # mypy's; CPython's own are (700, 10, 10)


def tune_gc() -> None:
    """Collect cycles less often: for storyboard's command line and its helper processes, never for
    a program that imports storyboard as a library.

    A plan builds hundreds of thousands of objects it keeps to the end (frames, prompts, lockfile
    entries) and makes almost no cyclic garbage (about 1,000 objects at 100,000 frames). With
    CPython's thresholds every 25 % of growth costs a full collection that walks all of them: 12
    full collections, 3.2 s of an 11.6 s no-op plan at 100,000 frames. With these there is none,
    and 9 young collections take 0.55 s. Peak memory is the same. Cycles are still collected.
    """
    gc.set_threshold(*GC_THRESHOLDS)


class HelperProcess:
    """`python -m MODULE ARGUMENTS…`: work done on a second core, its answer written to a file.

    The answer goes to an unlinked temporary file, not a pipe: the helper never waits for this
    process to read, and this one reads it whole when it wants it, without a thread taking the
    lock of the interpreter from the work it does meanwhile. Any failure (no Python to start, a
    crash, a timeout) only makes `answer()` None: the caller then does the work itself.
    """

    def __init__(self, process: subprocess.Popen[bytes] | None, answer_file: IO[bytes] | None) -> None:
        self.process = process
        self.answer_file = answer_file

    @classmethod
    def start(cls, module: str, arguments: Sequence[str]) -> HelperProcess:
        import subprocess  # not for `storyboard --help`, which sets the collector here
        import tempfile

        if not sys.executable:  # an embedded interpreter: no Python to start
            return cls(None, None)
        package_parent = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
        try:
            answer = tempfile.TemporaryFile()  # noqa: SIM115 - open until stop(): the helper writes it
        except OSError:
            return cls(None, None)
        try:
            process = subprocess.Popen([sys.executable, "-m", module, *arguments], stdin=subprocess.DEVNULL,
                                       stdout=answer, stderr=subprocess.DEVNULL, env=env)
        except OSError:
            answer.close()
            return cls(None, None)
        return cls(process, answer)

    def answer(self, timeout: float = 120) -> IO[bytes] | None:
        """The file the helper wrote, from its start, once the helper has ended well; None if it
        failed or took longer than `timeout`. It stays open until `stop()`."""
        import subprocess

        if self.process is None or self.answer_file is None:
            return None
        try:
            if self.process.wait(timeout) != 0:
                return None
            self.answer_file.seek(0)
        except (subprocess.TimeoutExpired, OSError):
            return None
        return self.answer_file

    def result(self, timeout: float = 120) -> Any:
        """The helper's answer as one marshal blob, loaded; None if it failed."""
        try:
            answer = self.answer(timeout)
            return None if answer is None else marshal.loads(answer.read())
        except (OSError, ValueError, EOFError, TypeError):
            return None
        finally:
            self.stop()

    def stop(self) -> None:
        """End the helper now if it still runs (its work is not wanted) and drop its answer; safe
        to call at any time, and again."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
        if self.answer_file is not None:
            self.answer_file.close()
