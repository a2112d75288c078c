"""The image store: every image storyboard generated, by the sha256 of its bytes, and an index
from a frame's fingerprint to the image made for it.

    .storyboard/store/objects/ab/ab12…   the image bytes (immutable, verified when used)
    .storyboard/store/thumbs/ab/ab12…    its thumbnail (can always be made again)
    .storyboard/store/index/9f/9f3e….json   fingerprint -> image and provenance

Versions in out/ are hard links to objects here, so a version never needs an older version
to hold a file, and an image made once is found again for any frame whose fingerprint asks
for it: a reverted edit, a branch switch, a deleted out/, a fresh clone with a backend.
Everything read back (an index entry, an object) is checked: a damaged entry is ignored
and an object whose bytes do not hash to its name is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard.errors import UserError, display_path
from storyboard.fsutil import atomic_write, link_or_copy, sync_files, write_beside

if TYPE_CHECKING:
    from storyboard.state.backend import Backend

STORE = "store"
_HEX64 = re.compile("[0-9a-f]{64}")
_FORMATS = frozenset({"png", "jpeg", "webp", "gif"})


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """The image made for a fingerprint, and where it came from."""

    fingerprint: str
    sha256: str
    format: str
    width: int
    height: int
    bytes: int
    address: str  # the frame it was made for (a frame of another address may reuse it)
    job: str
    model: str
    seed: int
    prompt: str
    version: int  # the version it was generated for
    created: str  # ISO 8601, UTC

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _ENTRY_TYPES}  # asdict deep-copies: 20x slower

    def same_image(self, other: IndexEntry) -> bool:
        """The same entry but for the moment it was written down."""
        return replace(other, created=self.created) == self

    @classmethod
    def from_json(cls, data: Any) -> IndexEntry | None:
        """The entry, if `data` is one exactly as storyboard writes it; else None (not trusted)."""
        if not isinstance(data, dict) or data.keys() != _ENTRY_TYPES.keys():
            return None
        for key, kind in _ENTRY_TYPES.items():
            if type(data[key]) is not kind:
                return None
        if not (_HEX64.fullmatch(data["fingerprint"]) and _HEX64.fullmatch(data["sha256"])
                and data["format"] in _FORMATS and data["bytes"] >= 0 and data["version"] >= 0):
            return None
        return cls(**data)


_ENTRY_TYPES: Mapping[str, type] = {"fingerprint": str, "sha256": str, "format": str, "width": int,
                                    "height": int, "bytes": int, "address": str, "job": str, "model": str,
                                    "seed": int, "prompt": str, "version": int, "created": str}


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """An index entry written under a hidden temp name beside its place, not yet in the index."""

    entry: IndexEntry
    file: Path


def _encoded(entry: IndexEntry) -> bytes:
    """An entry's file in the index."""
    return json.dumps(entry.to_json(), sort_keys=True).encode()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def object_key(sha256: str) -> str:
    """`ab/ab12…`: the path of an object below `objects/` (also in a backend)."""
    return f"{sha256[:2]}/{sha256}"


def index_key(fingerprint: str) -> str:
    return f"{fingerprint[:2]}/{fingerprint}.json"


class ImageStore:
    """The local store under .storyboard/store/ (always there; nothing to configure)."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / STORE
        self.objects = self.root / "objects"
        self.thumbs = self.root / "thumbs"
        self.index = self.root / "index"
        self._folders: set[Path] = set()  # made already by this process (a mkdir costs a syscall)
        self._indexed: dict[str, set[str]] = {}  # index folder -> its entries' names, listed once

    def _folder(self, path: Path) -> None:
        """Make the folder `path` goes in, once per process."""
        if path.parent not in self._folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(path.parent)

    def object_path(self, sha256: str) -> Path:
        return self.objects / object_key(sha256)

    def thumbnail_path(self, sha256: str) -> Path:
        return self.thumbs / object_key(sha256)

    def add(self, data: bytes, *, durable: bool = True, sync_folder: bool = True) -> tuple[str, Path]:
        """Keep `data` under its sha256; (sha256, the object's path). Not `durable`: the caller
        syncs many at once (`sync`)."""
        digest = sha256_of(data)
        path = self.object_path(digest)
        if not path.exists():  # content-addressed: the same name always holds the same bytes
            self._folder(path)
            atomic_write(path, data, durable=durable, sync_folder=sync_folder)
        return digest, path

    def adopt(self, sha256: str, image: Path) -> Path:
        """Keep an image a version holds (one made before the store existed): linked in when its
        bytes hash to `sha256`; the object's path. UserError when it cannot be read or does not."""
        path = self.object_path(sha256)
        if path.exists():
            return path
        try:
            data = image.read_bytes()
        except OSError as error:
            raise UserError(f"{display_path(image)} cannot be read: {error.strerror}") from None
        if sha256_of(data) != sha256:
            raise UserError(f"{display_path(image)} is not the image its manifest names "
                            f"({sha256[:12]}…): it was changed after it was written",
                            hint="`storyboard apply` repairs it")
        self._folder(path)
        with contextlib.suppress(FileExistsError):
            link_or_copy(image, path)
        return path

    def add_thumbnail(self, sha256: str, data: bytes) -> Path:
        path = self.thumbnail_path(sha256)
        if not path.exists():
            self._folder(path)
            atomic_write(path, data, durable=False)
        return path

    def sync(self, sha256s: Iterable[str], *, files: bool = False) -> None:
        """Make objects added with sync_folder=False durable: their folders (once each) and,
        with `files`, the objects themselves (added with durable=False)."""
        paths = [self.object_path(sha) for sha in sha256s]
        sync_files(paths if files else [], {path.parent for path in paths})

    def verified(self, sha256: str) -> Path | None:
        """The object's path when it exists and its bytes hash to its name."""
        path = self.object_path(sha256)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return path if sha256_of(data) == sha256 else None

    def has(self, sha256: str) -> bool:
        return self.object_path(sha256).is_file()

    def prepare(self, entry: IndexEntry) -> PreparedEntry:
        """Write `entry` beside its place in the index, where no lookup sees it, for `record` to
        rename into place. Creating a file costs the kernel far more than renaming one (0.1 to
        1 ms on a busy disk, measured): apply prepares the entries of the images it keeps while
        they are made, so the end of the run, which the user waits for, only renames them."""
        path = self.index / index_key(entry.fingerprint)
        self._folder(path)
        return PreparedEntry(entry, write_beside(path, _encoded(entry)))

    def record(self, entries: Iterable[IndexEntry], prepared: dict[str, PreparedEntry] | None = None) -> None:
        """Index the images made for the entries' fingerprints (the newest entry wins), durably:
        written whole, then made durable together (one sync(2) for a version's many).

        An entry found in `prepared` (by fingerprint) for the same image is renamed into place
        and taken out of it; the rest of `prepared` is left to the caller (`discard`)."""
        paths = []
        for entry in entries:
            path = self.index / index_key(entry.fingerprint)
            ready = prepared.get(entry.fingerprint) if prepared is not None else None
            if prepared is not None and ready is not None and ready.entry.same_image(entry):
                ready.file.replace(path)
                del prepared[entry.fingerprint]
            else:
                self._folder(path)
                atomic_write(path, _encoded(entry), durable=False)
            self._indexed.get(path.parent.name, set()).add(path.name)
            paths.append(path)
        sync_files(paths, {path.parent for path in paths})

    @staticmethod
    def discard(prepared: Iterable[PreparedEntry]) -> None:
        """Remove prepared entries that were not recorded (their images are in no version)."""
        for ready in prepared:
            ready.file.unlink(missing_ok=True)

    def remove_leftovers(self) -> None:
        """Remove what runs that died left prepared in the index (call under the run lock, so no
        run is preparing any)."""
        for path in self.index.glob("*/.*.json.*.tmp") if self.index.is_dir() else []:
            path.unlink(missing_ok=True)

    def lookup(self, fingerprint: str) -> IndexEntry | None:
        folder, _, name = index_key(fingerprint).partition("/")
        if name not in self._index_listing(folder):
            return None  # a first plan asks for every frame: a listing per folder, not a failed open each
        try:
            raw = (self.index / folder / name).read_bytes()
        except OSError:
            return None
        with contextlib.suppress(ValueError):
            entry = IndexEntry.from_json(json.loads(raw))
            if entry is not None and entry.fingerprint == fingerprint:
                return entry
        return None

    def _index_listing(self, folder: str) -> set[str]:
        """The names in one folder of the index, listed when first asked (this process's own
        entries are added as it records them)."""
        names = self._indexed.get(folder)
        if names is None:
            try:
                with os.scandir(self.index / folder) as entries:
                    names = {entry.name for entry in entries}
            except OSError:
                names = set()
            self._indexed[folder] = names
        return names

    def entries(self) -> Iterator[IndexEntry]:
        """Every readable index entry (for gc and push)."""
        if not self.index.is_dir():
            return
        for path in sorted(self.index.glob("*/*.json")):
            entry = self.lookup(path.name.removesuffix(".json"))
            if entry is not None:
                yield entry

    def object_names(self) -> Iterator[str]:
        """The sha256 of every object held."""
        if not self.objects.is_dir():
            return
        for path in self.objects.glob("*/*"):
            if _HEX64.fullmatch(path.name):
                yield path.name

    def remove(self, sha256: str) -> int:
        """Delete an object (and its thumbnail); the bytes freed."""
        path = self.object_path(sha256)
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError:
            return 0
        self.thumbnail_path(sha256).unlink(missing_ok=True)
        return size

    def forget(self, fingerprint: str) -> None:
        folder, _, name = index_key(fingerprint).partition("/")
        (self.index / folder / name).unlink(missing_ok=True)
        self._indexed.get(folder, set()).discard(name)


class StoreView:
    """What planning asks of the stores: is the image a fingerprint (or a locked sha256) wants
    held somewhere it can be restored from? The local store first, then the backend, if there
    is one. Reads only; local objects are verified here, a backend's when they are fetched.

    A backend that cannot be read leaves planning to the local store: `unreachable` says why.
    """

    def __init__(self, local: ImageStore, remote: Backend | None = None) -> None:
        self.local = local
        self.remote = remote
        self.unreachable: str | None = None

    def find(self, fingerprint: str) -> IndexEntry | None:
        """The stored image made for `fingerprint`, if one can be restored."""
        entry = self.local.lookup(fingerprint)
        if entry is not None and self.local.verified(entry.sha256) is not None:
            return entry
        return self._remote(lambda remote: self._in_remote(remote, remote.lookup(fingerprint)))

    def find_locked(self, fingerprint: str, sha256: str, known: IndexEntry) -> IndexEntry | None:
        """The stored image with exactly the locked bytes `sha256` (a repair restores those).

        `known`: what the lockfile says of it, for a backend object the index does not describe.
        """
        entry = self.local.lookup(fingerprint)
        if entry is not None and entry.sha256 == sha256 and self.local.verified(sha256) is not None:
            return entry
        if self.local.verified(sha256) is not None:
            return known
        return self._remote(lambda remote: known if sha256 in remote.object_names() else None)

    @staticmethod
    def _in_remote(remote: Backend, entry: IndexEntry | None) -> IndexEntry | None:
        return entry if entry is not None and entry.sha256 in remote.object_names() else None

    def _remote(self, ask: Callable[[Backend], IndexEntry | None]) -> IndexEntry | None:
        if self.remote is None or self.unreachable is not None:
            return None
        try:
            return ask(self.remote)
        except UserError as error:  # BackendError: plan on without it, and say so
            self.unreachable = error.message
            return None
