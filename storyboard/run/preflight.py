"""Before anything is paid for: everything that would make apply fail after paying.

    budget        the plan's estimate against budget.max_cost or --max-cost
    folders       the output folder, .storyboard/ and the lockfile's folder take a real
                  write (a file created, written, removed: mode bits do not tell, root
                  ignores them, and read-only mounts or immutable folders ignore root)
    disk space    room for the images the plan generates, where they are staged and kept

The provider's settings and credentials are checked when it is created, which is also
before the first request. A failed preflight raises UserError and spends nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from storyboard.errors import UserError, display_path

MARGIN_BYTES = 16 * 1024 * 1024  # for manifests, pages, thumbnails and the lockfile


def check_budget(cost: float, budget: float | None) -> None:
    if budget is not None and cost > budget:
        raise UserError(f"the plan's estimated cost ${cost:.2f} is above the budget ${budget:.2f}",
                        hint="raise budget.max_cost (or --max-cost), or apply fewer frames with --target")


def check_writable(folder: Path, what: str, hint: str) -> None:
    """Create, write and remove a file in `folder` (or the nearest folder that exists)."""
    existing = _nearest_existing(folder)
    probe = existing / f".storyboard-write-test-{os.getpid()}"
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a folder")
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, b"x")
        finally:
            os.close(descriptor)
        probe.unlink()
    except OSError as error:
        where = display_path(folder) + ("" if existing == folder else f" (in {display_path(existing)})")
        raise UserError(f"cannot write to {what} {where}: {error.strerror}", hint=hint) from None


def check_space(folder: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(_nearest_existing(folder)).free
    if free < needed + MARGIN_BYTES:
        raise UserError(
            f"not enough free disk space for {what} in {display_path(folder)}: about "
            f"{_megabytes(needed + MARGIN_BYTES)} needed, {_megabytes(free)} free",
            hint="free some space (`storyboard gc --keep N` removes old versions), or apply fewer "
                 "frames with --target")


def check_folders(root: Path, output: Path, state: Path, images: int, bytes_per_image: int) -> None:
    """The folders apply writes to, and room in them for `images` images."""
    check_writable(output, "the output folder",
                   "make it writable, or set `output.dir` in storyboard.yaml to a folder you can write")
    check_writable(state, "the run state folder",
                   "make it writable: apply keeps its journal and the images it paid for there")
    check_writable(root, "the lockfile's folder", "apply writes storyboard.lock beside storyboard.yaml")
    if images:
        needed = images * bytes_per_image
        check_space(state, needed, f"{images} image{'s' if images != 1 else ''}")
        if not _same_device(state, output):
            check_space(output, needed, "the new version")


def _nearest_existing(folder: Path) -> Path:
    current = folder
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _same_device(first: Path, second: Path) -> bool:
    return _nearest_existing(first).stat().st_dev == _nearest_existing(second).stat().st_dev


def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:,.0f} MB"
