"""One apply at a time per project: an flock on .storyboard/run.lock holding the pid.

The kernel drops the lock when the process dies, even by SIGKILL, so a killed run never
blocks the next one. `apply` and `gc` take it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from storyboard.errors import RunLockedError


class RunLock:
    """One apply at a time per project: an flock on .storyboard/run.lock holding the pid.

    The kernel drops the lock when the process dies, even by SIGKILL, so a killed run
    never blocks the next one.
    """

    def __init__(self, state: Path) -> None:
        self.path = state / "run.lock"
        self._file: Any = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise RunLockedError(
                f"another storyboard apply (pid {holder}) is running on this project",
                hint="wait for it to finish; a killed run releases the lock by itself",
            ) from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        self._file = file
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
