"""Placeholder frames drawn with Pillow: the `local` provider's images, and where they are drawn.

Pillow holds the GIL for much of drawing a placeholder, so threads draw on about one core
(two threads: 1.26 × one; two processes: 1.87 ×, bench/RESULTS.md). `Drawing` draws in the
calling thread, or, when the command line allows it (`draw_in_processes`) and a run has asked
for more than PROCESSES_AFTER frames, in a pool of processes, one per core. The bytes are the
same either way: a placeholder is a function of its address, fingerprint, caption and size.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import signal
import textwrap
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from storyboard.machine import usable_cores
from storyboard.project.sizes import parse_size
from storyboard.providers.base import GeneratedImage

DRAW_WIDTH = 480  # placeholders are drawn downscaled; the manifest records the real size
# zlib's fastest level: a placeholder encodes in 3.3 ms instead of 5.4-6.0 (Pillow's default, 6), a
# third of drawing one, for 15 KB instead of 12 (bench/RESULTS.md). The bytes are as deterministic.
PNG_LEVEL = 1
# frames a run draws in threads before it starts processes: below ~100 (0.6 s of drawing on one
# core) starting them (~0.15 s) would not pay for itself
PROCESSES_AFTER = 96

log = logging.getLogger("storyboard.local")
_processes_allowed = False  # see draw_in_processes


def draw_in_processes(allowed: bool = True) -> None:
    """Let the local applies of this process draw in a pool of processes (`storyboard apply` does).

    Off unless asked: a spawned process imports the program's `__main__` again, which runs a
    build script's top level unless it is guarded by `if __name__ == "__main__":`.
    """
    global _processes_allowed
    _processes_allowed = allowed


@dataclass(frozen=True, slots=True)
class Placeholder:
    """What a placeholder is drawn from (sent to a drawing process as it is)."""

    address: str
    fingerprint: str
    caption: str
    size: str


class Drawing:
    """Draws placeholders in the calling (worker) thread, or, once a run has asked for more than
    PROCESSES_AFTER frames, if processes are allowed and there is more than one core, in a pool
    of processes, one per core. A pool that cannot start or breaks (a worker killed) leaves the
    drawing to threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked = 0
        self._pool: Executor | None = None
        self._pool_failed = False

    def draw(self, frames: Sequence[Placeholder]) -> list[GeneratedImage]:
        pool = self._pool_for(len(frames))
        if pool is not None:
            try:
                return list(pool.map(_draw, frames))
            except Exception as error:  # a broken pool; a fault of drawing itself raises below
                log.info("drawing placeholders in threads: the process pool failed (%s)", error)
                self._pool_failed = True
        return [_draw(frame) for frame in frames]

    def _pool_for(self, count: int) -> Executor | None:
        with self._lock:
            self._asked += count
            if self._pool is None and not self._pool_failed and self._asked > PROCESSES_AFTER \
                    and _processes_allowed:
                self._pool = self._start()
            return None if self._pool_failed else self._pool

    def _start(self) -> Executor | None:
        cores = usable_cores()
        if cores < 2:
            self._pool_failed = True
            return None
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = None
        try:  # spawned, not forked: a child of this threaded process inherits no lock and no file
            pool = ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_drawing_process)
            with _no_ctrl_c():  # started now, with Ctrl-C blocked for their lives: apply handles it
                for ready in [pool.submit(_ready) for _ in range(cores)]:
                    ready.result()
        except Exception as error:  # no semaphores (some sandboxes), no processes
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            log.info("drawing placeholders in threads: no process pool (%s)", error)
            self._pool_failed = True
            return None
        log.info("drawing placeholders in %d processes, one per core", cores)
        return pool

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _no_ctrl_c() -> Iterator[None]:
    """SIGINT blocked in this thread, so processes started here begin with it blocked (the mask is
    kept across exec): a Ctrl-C while one is starting cannot kill it."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _ready() -> bool:
    return True


def _drawing_process() -> None:
    """Set up a drawing process: it leaves Ctrl-C to apply (which stops the run and closes the
    pool), holds none of apply's terminal or pipes (an error in drawing is raised in apply, where
    it is reported), and ends when apply ends however it ends (a killed apply cannot tell it)."""
    import multiprocessing

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    nothing = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(nothing, descriptor)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), daemon=True).start()


def _end_with(sentinel: int) -> None:
    from multiprocessing.connection import wait

    wait([sentinel])  # readable once the process that started this one has ended
    os._exit(0)


def _draw(frame: Placeholder) -> GeneratedImage:
    return draw_placeholder(frame.address, frame.fingerprint, frame.caption, frame.size)


def draw_placeholder(address: str, fingerprint: str, caption: str, size: str) -> GeneratedImage:
    """A frame drawn from its fingerprint: colour, address, caption. Same inputs, same bytes."""
    from PIL import Image, ImageDraw

    from storyboard.fonts import pillow_font
    from storyboard.images import jpeg_thumbnail

    width, height = parse_size(size)
    draw_height = max(1, round(DRAW_WIDTH * height / width))
    seed = hashlib.sha256(fingerprint.encode()).digest()
    background = (64 + seed[0] // 2, 64 + seed[1] // 2, 64 + seed[2] // 2)
    image = Image.new("RGB", (DRAW_WIDTH, draw_height), background)
    draw = ImageDraw.Draw(image)
    font = pillow_font(14)
    title = pillow_font(22, bold=True)
    draw.rectangle((8, 8, DRAW_WIDTH - 9, draw_height - 9), outline=(255, 255, 255), width=2)
    draw.text((20, 16), address, fill=(255, 255, 255), font=title)
    lines = textwrap.wrap(caption, width=58)
    max_lines = max(1, (draw_height - 90) // 18)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][:54] + " …"]
    for number, line in enumerate(lines):
        draw.text((20, 50 + number * 18), line, fill=(245, 245, 240), font=font)
    draw.text((20, draw_height - 30), f"{size}  {fingerprint[:12]}", fill=(230, 230, 230), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return GeneratedImage(buffer.getvalue(), "png", DRAW_WIDTH, draw_height, jpeg_thumbnail(image))
