"""Version folders on disk: naming, finding, assembling, the manifest, and gc.

    out/v0001/01-morning/04-pour.png   one image per frame, scene folders in story order
    out/v0001/de-DE/story/01-morning/04-pour.png   a variant's (a folder per value, axes in order)
    out/v0001/manifest.json            the version; 01-morning/scene.json its frames (see manifest.py)
    out/latest -> v0001

A version is built under a temporary name, unchanged frames hard-linked (copied
where links fail), then renamed into place; `latest` moves only after that. Any other
file identical to the previous version's (an untouched scene's manifest and page) is
hard-linked too.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard.errors import UserError
from storyboard.fsutil import atomic_write, fsync_dir, link_or_copy, sync_files
from storyboard.project import model

if TYPE_CHECKING:
    from storyboard.state.linker import Linker

VERSION_PATTERN = re.compile(r"^v(\d{4,})$")
LATEST = "latest"
REMOVED_LOG = ".removed.jsonl"  # in the output folder: the versions gc removed, and when


def version_name(number: int) -> str:
    return f"v{number:04d}"


def versions(output: Path) -> list[int]:
    """Numbers of the complete versions in `output`, oldest first."""
    if not output.is_dir():
        return []
    found = (VERSION_PATTERN.match(entry.name) for entry in output.iterdir() if entry.is_dir())
    return sorted(int(match.group(1)) for match in found if match)


def next_version(output: Path, published: Iterable[int] = ()) -> int:
    """The number the next version written to `output` gets (after any a backend has published)."""
    return max([*versions(output), *published], default=0) + 1


def latest_version(output: Path) -> int | None:
    link = output / LATEST
    with contextlib.suppress(OSError):
        match = VERSION_PATTERN.match(str(link.readlink()))
        if match:
            return int(match.group(1))
    numbers = versions(output)
    return numbers[-1] if numbers else None


def frame_paths(project: model.Project) -> dict[str, str]:
    """Each frame's path inside a version: `01-morning/04-pour` (no extension); a variant's
    under a folder per value, `de-DE/story/01-morning/04-pour`."""
    width = max(2, len(str(len(project.scenes))))
    paths: dict[str, str] = {}
    for number, scene in enumerate(project.scenes, 1):
        frame_width = max(2, len(str(max((frame.index for frame in scene.frames), default=0))))
        for frame in scene.frames:
            path = f"{number:0{width}d}-{scene.id}/{frame.index:0{frame_width}d}-{frame.id}"
            paths[frame.address] = f"{frame.variant.folder}/{path}" if frame.variant else path
    return paths




@dataclass(frozen=True, slots=True)
class Placement:
    """One file of a new version: where it goes and where its bytes come from."""

    path: str  # relative to the version folder, with extension
    source: str | Path | None = None  # a file to hard-link (or copy) …
    data: bytes | None = None  # … or bytes to write,
    same_as: str | Path | None = None  # … linked from this file instead when it holds the same bytes
    durable: bool = True  # fsync written bytes (thumbnails can be made again)


class VersionFolder:
    """Version `number` being written under a temporary name: files placed as they are known (an
    apply links its unchanged frames while the service works), then committed (synced, renamed into
    place, `latest` moved) or discarded. Nothing under the final name exists until `commit`."""

    def __init__(self, output: Path, number: int) -> None:
        output.mkdir(parents=True, exist_ok=True)
        self.output, self.number = output, number
        self.final = output / version_name(number)
        if self.final.exists():
            raise UserError(f"{self.final} already exists",
                            hint="another apply may have written it; plan again")
        self.temp = output / f".{version_name(number)}.tmp-{os.getpid()}"
        shutil.rmtree(self.temp, ignore_errors=True)
        self.temp.mkdir()
        self._folders = {str(self.temp)}  # made here
        self._elsewhere: set[str] = set()  # made by a linking process
        self._linkers: list[Linker] = []
        self._durable: list[str] = []

    def place(self, placements: Iterable[Placement], *, links_elsewhere: bool = False) -> None:
        """Link or write each file under the temporary name. `links_elsewhere`: more links than
        LINK_IN_A_PROCESS_ABOVE are made by a process of their own (see linker.py), beside the
        calling process's threads; `commit` waits for them."""
        try:
            placements = list(placements)
            links = [placement for placement in placements if placement.data is None]
            if links_elsewhere and self._link_elsewhere(links):
                placements = [placement for placement in placements if placement.data is not None]
            for placement in placements:
                self._place(placement)
        except BaseException:
            self.discard()
            raise

    def commit(self, *, move_latest: bool = True) -> Path:
        """Make every file durable, rename the folder into place, move `latest` (when asked)."""
        try:
            for process in self._linkers:
                process.wait()
            sync_files(self._durable, self._folders | self._elsewhere)
            self.temp.rename(self.final)
        except BaseException:
            self.discard()
            raise
        fsync_dir(self.output)
        if move_latest:
            point_latest(self.output, self.number)
        return self.final

    def discard(self) -> None:
        for process in self._linkers:
            process.stop()
        shutil.rmtree(self.temp, ignore_errors=True)

    def _link_elsewhere(self, links: list[Placement]) -> bool:
        """Hand `links` to a linking process; False if they are too few for one, or none could be
        started (they are made here then). One that starts and fails fails the version: it may
        have linked some already."""
        from storyboard.state import linker  # subprocess: not for a plan

        if len(links) <= linker.LINK_IN_A_PROCESS_ABOVE:
            return False
        try:
            process = linker.Linker()
        except OSError:
            return False
        self._linkers.append(process)
        pairs = []
        for placement in links:
            target = f"{self.temp}/{placement.path}"
            self._elsewhere.add(target.rpartition("/")[0])  # a path placements name: never "a//b"
            pairs.append((str(placement.source), target))
        process.send(pairs)
        return True

    def _place(self, placement: Placement) -> None:
        target = f"{self.temp}/{placement.path}"  # strings, not Paths: two files per frame
        parent = posixpath.dirname(target)
        if parent not in self._folders:
            os.makedirs(parent, exist_ok=True)  # noqa: PTH103 - a string path, on purpose
            self._folders.add(parent)
        if placement.data is not None and holds(placement.same_as, placement.data):
            assert placement.same_as is not None
            link_or_copy(placement.same_as, target)
        elif placement.data is not None:
            with open(target, "wb") as file:  # noqa: PTH123 - a string path, on purpose
                file.write(placement.data)
            if placement.durable:
                self._durable.append(target)
        else:
            assert placement.source is not None
            link_or_copy(placement.source, target)


def build_version(output: Path, number: int, placements: Iterable[Placement], *,
                  move_latest: bool = True) -> Path:
    """Write version `number` under a temporary name, rename it into place, move `latest`."""
    folder = VersionFolder(output, number)
    folder.place(placements)
    return folder.commit(move_latest=move_latest)


def holds(file: str | Path | None, data: bytes) -> bool:
    """Whether `file` is a regular file (not a link) with exactly `data` in it (compared, not
    trusted from a record)."""
    if file is None:
        return False
    try:
        info = os.lstat(file)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(data):
            return False
        return Path(file).read_bytes() == data
    except OSError:
        return False


def point_latest(output: Path, number: int) -> None:
    """Atomically point out/latest at a version (a relative symlink)."""
    temp = output / f".{LATEST}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    temp.symlink_to(version_name(number))
    temp.replace(output / LATEST)
    fsync_dir(output)


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def collect_garbage(output: Path, keep: int) -> list[int]:
    """Remove all but the `keep` newest versions, never the latest; returns the removed numbers.

    Removing a folder only unlinks its names: a hard-linked image still used by a kept
    version keeps its bytes.
    """
    doomed = garbage(output, keep)
    if doomed:
        with (output / REMOVED_LOG).open("a", encoding="utf-8") as log:
            log.writelines(json.dumps({"version": n, "removed_at": now_iso()}) + "\n" for n in doomed)
    for number in doomed:
        shutil.rmtree(output / version_name(number))
    remove_unfinished(output)
    return doomed


def remove_unfinished(output: Path) -> None:
    """Remove the version folders runs that died left under their temporary names. The name ends
    with the pid that was writing it: a live one's (a `pull` takes no run lock) is left alone."""
    for leftover in output.glob(".v*.tmp-*") if output.is_dir() else []:
        pid = leftover.name.rpartition("-")[2]
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; no pid that large
        return False
    except OSError:  # someone else's: alive
        return True
    return True


def garbage(output: Path, keep: int) -> list[int]:
    """The versions `collect_garbage(output, keep)` would remove."""
    if keep < 1:
        raise UserError("--keep must be at least 1")
    numbers = versions(output)
    latest = latest_version(output)
    return [n for n in numbers[: max(0, len(numbers) - keep)] if n != latest]


def reclaimable_bytes(output: Path, numbers: Iterable[int]) -> int:
    """The bytes removing these versions frees: files with no hard link outside them (an image a
    kept version or the image store also holds frees nothing)."""
    inodes: dict[tuple[int, int], list[int]] = {}  # (device, inode) -> [size, links, links here]
    for number in numbers:
        for path in (output / version_name(number)).rglob("*"):
            info = path.lstat()
            if path.is_symlink() or not path.is_file():
                continue
            seen = inodes.setdefault((info.st_dev, info.st_ino), [info.st_size, info.st_nlink, 0])
            seen[2] += 1
    return sum(size for size, links, here in inodes.values() if here >= links)


def removed_by_gc(output: Path) -> dict[int, str]:
    """Version number -> when `storyboard gc` removed it (lines that do not parse are skipped)."""
    removed: dict[int, str] = {}
    try:
        lines = (output / REMOVED_LOG).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return removed
    for line in lines:
        try:
            record = json.loads(line)
            removed[int(record["version"])] = str(record["removed_at"])
        except (ValueError, TypeError, KeyError):
            continue
    return removed


def resolve_version(output: Path, text: str | None) -> int:
    """The number of an existing version named `v0003`, `3` or `latest` (None: the latest)."""
    numbers = versions(output)
    if text is None or text == LATEST:
        latest = latest_version(output)
        if latest is None:
            raise UserError("no versions yet", hint="run `storyboard apply` first")
        return latest
    digits = text.lower().removeprefix("v")
    if not digits.isdigit():
        raise UserError(f"`{text}` is not a version", hint="versions look like v0003, 3 or latest")
    number = int(digits)
    if number in numbers:
        return number
    listed = _version_range(numbers)
    removed = removed_by_gc(output).get(number)
    if removed is not None:
        raise UserError(f"version {version_name(number)} was removed by `storyboard gc` on {removed}",
                        hint=f"versions kept: {listed}")
    closest = min(numbers, key=lambda n: (abs(n - number), -n), default=None)
    hint = f"did you mean {version_name(closest)}? versions: {listed}" if closest is not None else \
        "there are no versions yet: run `storyboard apply` first"
    raise UserError(f"no version {version_name(number)} in {output.name}/", hint=hint)


def _version_range(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{version_name(numbers[0])} to {version_name(numbers[-1])}"
    return ", ".join(version_name(n) for n in numbers)


class StatCache:
    """Known sha256 of output files by (size, mtime, inode), like git's index.

    A no-op plan checks every image of the latest version; with this cache it stats
    them instead of hashing them. `plan` only reads it; `apply` writes it. Keys are
    paths relative to the project, so a moved or copied project keeps its cache.
    """

    def __init__(self, root: Path, *, load: bool = True) -> None:
        """`load=False`: start empty, for a cache about to describe a new version's files only
        (`save` keeps nothing else, so reading the old one would be wasted: 0.1 s at 10,000 frames)."""
        self.root = root
        self._prefix = str(root) + os.sep
        self.path = root / ".storyboard" / "stat-cache.json"
        self.entries: dict[str, list[Any]] = {}
        if load:
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.entries = loaded

    def sha256(self, file: Path | str) -> str | None:
        """The file's sha256, from the cache when its stat is unchanged; None if it is missing or
        not a regular file (a link is never taken for a version's image).

        Plain strings are accepted because a no-op plan asks this for every frame.
        """
        try:
            info = os.lstat(file)  # a link is not the version's image, whatever it names
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        key = self._key(file)
        cached = self.entries.get(key)
        signature = [info.st_size, info.st_mtime_ns, info.st_ino]
        if type(cached) is list and len(cached) == 4 and cached[:3] == signature and type(cached[3]) is str:
            return cached[3]  # anything else (a damaged or hand-edited cache) is hashed again
        import hashlib

        digest = hashlib.sha256(Path(file).read_bytes()).hexdigest()
        self.entries[key] = [*signature, digest]
        return digest

    def record(self, file: Path | str, sha256: str) -> None:
        info = os.stat(file)  # noqa: PTH116 - a str path: no Path object per frame
        self.entries[self._key(file)] = [info.st_size, info.st_mtime_ns, info.st_ino, sha256]

    def carry(self, known: StatCache, old_file: str, new_file: str, sha256: str) -> None:
        """Record `new_file`, a hard link of `old_file`, from what `known` holds of that one (no
        stat: 10,000 a version). Were it a copy after all, its inode tells the next plan to hash it."""
        entry = known.entries.get(known._key(old_file))
        if type(entry) is list and len(entry) == 4 and entry[3] == sha256:
            self.entries[self._key(new_file)] = entry
        else:
            self.record(new_file, sha256)

    def save(self, keep_under: Path) -> None:
        """Write the cache, forgetting files outside `keep_under` (a file gone is noticed by stat)."""
        prefix = self._key(keep_under) + "/"
        kept = {k: v for k, v in self.entries.items() if k.startswith(prefix)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(kept, sort_keys=True).encode())

    def _key(self, file: Path | str) -> str:
        text = str(file)
        key = text[len(self._prefix):] if text.startswith(self._prefix) else text
        return key if os.sep == "/" else key.replace(os.sep, "/")
