"""What this machine offers the run: the cores this process may use, and a second process on one."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class HelperProcess:
    """`python -m MODULE ARGUMENTS…`: work done on a second core, handed back as one marshal blob.

    A thread reads the blob as it is written, so the helper never waits on a full pipe and the
    caller works meanwhile. Any failure (no Python to start, a crash, a timeout, output marshal
    cannot read) only makes `result()` None: the caller then does the work itself.
    """

    def __init__(self, process: subprocess.Popen[bytes] | None) -> None:
        self.process = process
        self._output = b""
        self._reader: threading.Thread | None = None
        if process is not None:
            self._reader = threading.Thread(target=self._read, daemon=True, name="helper-output")
            self._reader.start()

    @classmethod
    def start(cls, module: str, arguments: Sequence[str]) -> HelperProcess:
        if not sys.executable:  # an embedded interpreter: no Python to start
            return cls(None)
        package_parent = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
        try:
            process = subprocess.Popen([sys.executable, "-m", module, *arguments], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError:
            return cls(None)
        return cls(process)

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.process.stdout:
            self._output = self.process.stdout.read()

    def result(self, timeout: float = 120) -> Any:
        """What the helper wrote, unmarshalled; None if it failed or took longer than `timeout`."""
        if self.process is None or self._reader is None:
            return None
        self._reader.join(timeout)
        if self._reader.is_alive():
            self.stop()
            return None
        output, self._output = self._output, b""
        try:
            return marshal.loads(output) if self.process.wait() == 0 else None
        except (ValueError, EOFError, TypeError):
            return None

    def stop(self) -> None:
        """End the helper now (its work is not wanted); safe to call at any time."""
        if self.process is None or self._reader is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join()
        self._output = b""
