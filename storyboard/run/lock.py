"""One apply at a time: per machine (RunLock), and across machines with a backend (RemoteLock).

RunLock is a file lock (filelock: flock on POSIX, LockFileEx on Windows) on
.storyboard/run.lock, with the holder's pid in run.pid: the operating system drops it
when the process dies, even by SIGKILL, so a killed run never blocks the next one.

RemoteLock is the object `lock.json` on the backend, created only if absent (a conditional
write, so two machines never both hold it). It says who holds it, on which host, for what,
since when; the holder renews it every `expiry / 10` seconds (conditional on its etag).
A lock not renewed for `expiry` seconds is stale: the next apply takes it over (again with
a conditional write, so only one does). `storyboard force-unlock ID` removes one at once.
`apply`, `gc` and `push` take both.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import filelock

from storyboard.errors import RunLockedError, UserError, display_path
from storyboard.state.backend import Backend, LockTaken
from storyboard.state.versions import now_iso

log = logging.getLogger("storyboard.lock")


_HELD: dict[Path, int] = {}  # run locks this process holds, and how deeply


class RunLock:
    """One apply at a time per project: a file lock on .storyboard/run.lock (the holder's pid in
    run.pid).

    The operating system drops the lock when the process dies, even by SIGKILL, so a killed
    run never blocks the next one.
    """

    def __init__(self, state: Path) -> None:
        self.path = state / "run.lock"
        self.pid_file = state / "run.pid"
        self._lock: filelock.BaseFileLock | None = None
        self._nested = False

    def __enter__(self) -> RunLock:
        if self.path in _HELD:  # this process holds it already (plan and apply under one lock)
            _HELD[self.path] += 1
            self._nested = True
            return self
        lock = filelock.FileLock(self.path, timeout=0, thread_local=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
            self.pid_file.write_text(str(os.getpid()), encoding="utf-8")
        except filelock.Timeout:
            try:
                holder = self.pid_file.read_text(encoding="utf-8").strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise RunLockedError(
                f"another storyboard apply (pid {holder}) is running on this project",
                hint="wait for it to finish; a killed run releases the lock by itself",
            ) from None
        except OSError as error:
            lock.release()
            raise UserError(f"cannot write to the run state folder {display_path(self.path.parent)}: "
                            f"{error.strerror}", hint="make it writable: apply keeps its journal, its "
                            "lock and the images it paid for there") from None
        self._lock = lock
        _HELD[self.path] = 1
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._nested:
            _HELD[self.path] -= 1
            return
        _HELD.pop(self.path, None)
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self.pid_file.write_text("", encoding="utf-8")
            self._lock.release()
            self._lock = None


def parse_duration(text: str) -> float:
    """Seconds from `90`, `30s`, `5m` or `1h`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise UserError(f"`{text}` is not a duration", hint="write seconds (90), or 30s, 5m, 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


class RemoteLock:
    """The backend's run lock, held while the block runs and renewed in a background thread."""

    def __init__(self, backend: Backend, operation: str, *, timeout: float = 0.0,
                 expiry: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.operation = operation
        self.timeout = timeout
        self.expiry = expiry or backend.config.lock_expiry
        self.clock = clock
        self.id = uuid.uuid4().hex[:16]
        self.etag = ""
        self.lost: str | None = None  # why the lock is no longer ours, if it was taken away
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> RemoteLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()

    def content(self) -> dict[str, Any]:
        return {"id": self.id, "who": _who(), "host": socket.gethostname(), "pid": os.getpid(),
                "operation": self.operation, "created": now_iso(), "renewed_at": self.clock(),
                "expiry": self.expiry}

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.etag = self.backend.create_lock(self.content())
                break
            except LockTaken:
                holder = self.backend.read_lock()
                if holder is None:
                    continue  # released meanwhile: try again at once
                data, etag = holder
                if data.get("id") == self.id:  # ours: the answer to our write was lost, its retry refused
                    self.etag = etag
                    break
                if self._stale(data) and self._take_over(etag):
                    log.warning("took over a stale run lock %s of %s", data.get("id"), _describe(data))
                    break
                if time.monotonic() >= deadline:
                    raise RunLockedError(
                        f"the backend's run lock is held: {_describe(data)}",
                        hint=f"wait for it with --lock-timeout (e.g. 5m); if that run died, `storyboard "
                             f"force-unlock {data.get('id')}` frees it now (it also goes stale by itself "
                             f"{self.expiry:g} s after its last renewal)") from None
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        self._renewer = threading.Thread(target=self._renew_until_released, daemon=True,
                                         name="storyboard-lock-renewal")
        self._renewer.start()

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        try:
            current = self.backend.read_lock()
            if current is not None and current[0].get("id") == self.id:
                self.backend.delete_lock()
        except UserError as error:  # unreachable now: the lock goes stale by itself
            log.warning("could not release the run lock %s (%s); it goes stale %g s after its last "
                        "renewal, or `storyboard force-unlock %s` frees it", self.id, error.message,
                        self.expiry, self.id)

    def _stale(self, data: dict[str, Any]) -> bool:
        renewed = data.get("renewed_at")
        expiry = data.get("expiry", self.expiry)
        if not isinstance(renewed, (int, float)) or not isinstance(expiry, (int, float)):
            return False  # not ours to judge: force-unlock it
        return self.clock() - renewed > expiry

    def _take_over(self, etag: str) -> bool:
        try:
            self.etag = self.backend.replace_lock(self.content(), etag)
        except LockTaken:
            return False  # someone else took it over, or it was renewed meanwhile
        return True

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self.expiry / 10):
            try:
                self.etag = self.backend.replace_lock(self.content(), self.etag)
            except LockTaken:
                self.lost = "the run lock was taken away (force-unlock, or it went stale)"
                log.error("%s: this apply no longer holds it", self.lost)
                return
            except UserError as error:  # the backend is unreachable: try again at the next tick
                log.warning("could not renew the run lock: %s", error.message)


_HELD_REMOTE: dict[str, RemoteLock] = {}


@contextlib.contextmanager
def locked(state: Path, backend: Backend | None, operation: str, timeout: float = 0.0) -> Iterator[None]:
    """This machine's run lock and, with a backend, the backend's, held while the block runs.

    Re-entrant within a process: `storyboard apply` holds them from its plan to its end,
    and the apply inside takes them again without waiting on itself.
    """
    with RunLock(state):
        if backend is None or backend.url in _HELD_REMOTE:
            yield
            return
        remote = RemoteLock(backend, operation, timeout=timeout)
        with remote:
            _HELD_REMOTE[backend.url] = remote
            try:
                yield
            finally:
                _HELD_REMOTE.pop(backend.url, None)


def still_held(backend: Backend) -> None:
    """Refuse to publish when the backend's lock was taken away while this run worked."""
    remote = _HELD_REMOTE.get(backend.url)
    if remote is not None and remote.lost:
        raise RunLockedError(f"not published: {remote.lost}",
                             hint="another apply may be running; what this one paid for is kept in "
                                  ".storyboard/: run `storyboard apply` again when it is done")


def force_unlock(backend: Backend, lock_id: str) -> dict[str, Any]:
    """Remove the backend's run lock if it is the one named; what it said."""
    current = backend.read_lock()
    if current is None:
        raise UserError("no run lock is held on the backend", hint="nothing to unlock")
    data, _ = current
    if data.get("id") != lock_id:
        raise UserError(f"the backend's run lock is {data.get('id')}, not {lock_id}: {_describe(data)}",
                        hint="copy the ID from the message of the apply that was refused")
    backend.delete_lock()
    return data


def _describe(data: dict[str, Any]) -> str:
    return (f"lock {data.get('id')} by {data.get('who', '?')} on {data.get('host', '?')} "
            f"(pid {data.get('pid', '?')}), {data.get('operation', '?')} since {data.get('created', '?')}")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name on this machine (some containers)
        return f"uid {os.getuid()}"
