"""Measuring a command: wall time, CPU time (its own and its helper processes'), and peak memory:
the most its processes held at once, as a memory limit on a CI runner sees it."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work"  # generated projects, kept between runs (git-ignored)


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and the children it waited for
    peak_mb: float  # resident memory of the process and its children together, at its highest
    output: str


class _TreeMemory:
    """The highest resident memory of a process and its descendants together (a plan's helper
    processes run beside it), sampled every 20 ms from /proc in a thread. os.wait4's maximum is
    one process's, so the largest of the two is the peak: a sample can miss a short one."""

    PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self._resident(self.pid))

    def _resident(self, root: int) -> int:
        total, pending = 0, [root]
        while pending:
            pid = pending.pop()
            process = Path(f"/proc/{pid}")
            try:
                total += int((process / "statm").read_text().split()[1]) * self.PAGE
                for task in (process / "task").iterdir():
                    pending.extend(int(child) for child in (task / "children").read_text().split())
            except (OSError, ValueError):  # ended meanwhile, or no /proc (then wait4's maximum)
                continue
        return total

    def stop(self) -> float:
        """The peak in MB."""
        self._done.set()
        self._thread.join()
        return self.peak / 2**20


def run(args: Sequence[str | Path], cwd: Path | None = None, env: Mapping[str, str] | None = None,
        check: bool = True) -> Sample:
    """Run a command to its end and measure it (with Python's bytecode cache, as users run it)."""
    started = time.perf_counter()
    process = subprocess.Popen([str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=measured_env(env))
    assert process.stdout is not None
    memory = _TreeMemory(process.pid)
    output = process.stdout.read().decode(errors="replace")
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    sampled = memory.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    if check and process.returncode not in (0, 2):
        raise RuntimeError(f"{' '.join(map(str, args))} exited {process.returncode}:\n{output}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, max(usage.ru_maxrss / 1024, sampled), output)


def measured_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment commands are measured in: a shell that sets PYTHONDONTWRITEBYTECODE
    (this development machine does) makes every start compile storyboard's modules from source,
    which no installed copy does; compiled once, they are loaded as users load them."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


def best(samples: Sequence[Sample]) -> Sample:
    """The fastest sample (noise on a shared machine only ever adds time)."""
    return min(samples, key=lambda s: s.wall)


def storyboard(*args: str | Path) -> list[str | Path]:
    return [sys.executable, "-m", "storyboard", *args]


def python(*args: str | Path) -> list[str | Path]:
    return [sys.executable, *args]


def fresh_copy(source: Path, target: Path) -> Path:
    """A copy of a project whose images are hard links (apply never writes an image in place)."""

    def link_images(src: str, dst: str) -> object:
        if src.endswith((".png", ".jpg", ".webp")):
            os.link(src, dst)
            return dst
        return shutil.copy2(src, dst)

    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True, copy_function=link_images)
    return target


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pasted as is into bench/RESULTS.md)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# the functions that write a version, for timed_parts: apply's assembly runs them in a thread of
# its own (and links through a process of its own, whose CPU no thread here has)
ASSEMBLY = [("storyboard.run.assemble:Assembly", name) for name in ("_decide", "_link", "_encode", "finish")]


@contextmanager
def timed_parts(parts: Mapping[str, Sequence[tuple[str, str]]]) -> Iterator[Callable[[], dict[str, float]]]:
    """Thread CPU seconds spent inside each part's functions while the block runs, in this process.

    `parts`: label -> ("module" or "module:Class", function name); each function is wrapped for
    the block (a caller must look it up through that module or class, as storyboard's code does).
    Yields a function reading the totals so far. Parts must not call each other.
    """
    totals = dict.fromkeys(parts, 0.0)
    lock = threading.Lock()
    originals: list[tuple[Any, str, Callable[..., Any]]] = []

    def timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                with lock:
                    totals[label] += time.thread_time() - start
        return wrapper

    for label, functions in parts.items():
        for where, name in functions:
            module, _, cls = where.partition(":")
            owner = getattr(importlib.import_module(module), cls) if cls else importlib.import_module(module)
            originals.append((owner, name, getattr(owner, name)))
            setattr(owner, name, timed(label, getattr(owner, name)))
    try:
        yield lambda: dict(totals)
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)
