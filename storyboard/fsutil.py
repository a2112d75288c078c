"""Durable file writes: the one place storyboard writes files that must be whole or absent.

    atomic_write   temp file in the same folder, fsync, rename over the target, fsync the
                   folder: readers see the old bytes or the new, never half of them
    write_beside   the first half of atomic_write: a hidden temp file beside the target, to
                   rename over it later (a rename costs the kernel far less than a new file)
    link_or_copy   a hard link where the filesystem allows it, else a copy
    sync_files     make many written files (and folders) durable (one sync(2) past a few dozen)
    temporary_sibling  a temp path beside a target that a writer fills, renamed over the
                   target when it succeeds (exports written by libraries that take a path)
    fsync_dir      make a folder's entries (a rename, a new file) durable
    regular_file   whether a path is a file itself, not a link to one (what a version may carry over)
    read_regular   a file's bytes, if (links followed) it is a regular file: never a FIFO or a device

Caches use atomic_write(durable=False): whole or absent, but not worth an fsync.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

SYNC_ALL_ABOVE = 16  # files; past this one sync(2) beats an fsync per file


def atomic_write(path: Path, data: bytes, *, durable: bool = True, sync_folder: bool = True) -> None:
    """Replace `path` with `data` whole or not at all.

    `durable`: fsync the file and, unless `sync_folder` is False (the caller syncs a folder of
    many files once), its folder.
    """
    temp = write_beside(path, data, durable=durable)
    try:
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if durable and sync_folder:
        fsync_dir(path.parent)


def write_beside(path: Path, data: bytes, *, durable: bool = False) -> Path:
    """A new hidden temp file in `path`'s folder holding `data`, to be renamed over `path`.

    It is made like any new file (0666 less the umask, not mkstemp's 0600): the lockfile and
    manifests are read by teammates and CI users too. `durable`: fsync it.
    """
    temp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


@contextlib.contextmanager
def temporary_sibling(target: Path) -> Iterator[Path]:
    """A temp path beside `target` (same suffix) to write into; renamed over `target` when the
    block succeeds, removed when it fails, so `target` is whole or untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.stem}.{os.urandom(6).hex()}.tmp{target.suffix}")
    try:
        yield temp
        temp.replace(target)
    finally:
        temp.unlink(missing_ok=True)


def fsync_dir(folder: str | Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def regular_file(path: str | Path) -> bool:
    """Whether `path` is a regular file itself. A link in an output folder (put there by hand, or
    by a commit) may name any file on the machine: a version never carries one over."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


_READ_FLAGS = os.O_RDONLY | sum(getattr(os, flag, 0) for flag in ("O_BINARY", "O_NONBLOCK", "O_CLOEXEC"))


def read_regular(path: str | Path) -> bytes | None:
    """The bytes of the file at `path`, or None when, links followed, it is not a regular file.

    A committed link to /dev/zero would never end, and a FIFO would block: the file is opened
    without blocking and checked before a byte is read. OSError (missing, not allowed) is raised.
    """
    descriptor = os.open(path, _READ_FLAGS)
    with open(descriptor, "rb") as file:  # noqa: PTH123 - a descriptor, not a path
        return file.read() if stat.S_ISREG(os.fstat(descriptor).st_mode) else None


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """Hard-link `source` as `target`; copy it (durably) where links fail (another filesystem).
    A `target` already there is an error: copying onto a link of `source` would empty both."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        shutil.copy2(source, target)
        sync_files([target])


def sync_files(files: Sequence[str | Path], folders: Collection[str | Path] = ()) -> None:
    """Make written files, and the entries of `folders` (new files, renames), durable: one fsync
    each, or one sync(2) for many (far cheaper: a version of 10,000 frames has ~1,000 folders)."""
    if len(files) + len(folders) > SYNC_ALL_ABOVE:
        os.sync()
        return
    for folder in folders:
        fsync_dir(folder)
    for file in files:
        descriptor = os.open(file, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
