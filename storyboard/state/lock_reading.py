"""storyboard.lock read on a second core while the plan renders its prompts.

    python -m storyboard.state.lock_reading PATH     (the helper; `LockReading` starts it)

At 100,000 frames the lockfile is 124 MB: parsing and checking it takes a plan's one core
1.8 s. A helper process reads it instead and hands it back as marshal, which this process
loads in a quarter of that. The helper parses the frames one entry at a time and writes them
in batches as it goes, so it never holds the whole parsed document: its peak is the text and
one batch, not the 400 MB a whole parse takes beside the plan's own memory.

The helper only reads a lockfile as storyboard writes it. Anything else (damage, a newer
format, a key given twice) makes its answer end in None, and `read_lock` reads the file here:
every error is still reported by one code path, with its line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import marshal
import operator
import re
import struct
import sys
from collections.abc import Callable, Iterator
from json.scanner import make_scanner
from pathlib import Path
from typing import IO, Any

from storyboard.errors import UserError
from storyboard.fsutil import read_regular
from storyboard.machine import HelperProcess, tune_gc, usable_cores
from storyboard.state.lockfile import (
    FORMAT_VERSION,
    Approval,
    Lock,
    LockEntry,
    plain_entry,
    plainly_valid,
    read_lock,
)

HELPER_MIN_BYTES = 8 * 1024 * 1024  # ~7,000 frames: below this the helper costs more than it saves
BATCH = 5_000  # entries per marshal blob: shared strings (models, sizes, hashes) stay shared within one
_LENGTH = struct.Struct("<Q")
# a LockEntry's or an Approval's fields in order, as their constructors take them back
_ENTRY_VALUES = operator.attrgetter(*(field.name for field in dataclasses.fields(LockEntry)))
_APPROVAL_VALUES = operator.attrgetter(*(field.name for field in dataclasses.fields(Approval)))


class LockReading:
    """storyboard.lock being read. A big one is read by a helper process on a second core while this
    process renders the prompts; any other is read at once, before the prompts, so its parse never
    adds to theirs in memory. `result()` gives the Lock read_lock gives, and raises its errors; a
    helper that fails only means reading the file here.
    """

    def __init__(self, path: Path, helper: HelperProcess | None, read: Lock | UserError | None) -> None:
        self.path = path
        self.helper = helper
        self.read = read

    @classmethod
    def start(cls, path: Path) -> LockReading:
        try:
            big = path.stat().st_size >= HELPER_MIN_BYTES and usable_cores() >= 2
        except OSError:
            big = False
        if big:
            return cls(path, HelperProcess.start(__name__, [str(path)]), None)
        try:
            return cls(path, None, read_lock(path))
        except UserError as error:
            return cls(path, None, error)

    def result(self) -> Lock:
        read, self.read = self.read, None
        if read is None and self.helper is not None:
            try:
                answer = self.helper.answer()
                read = None if answer is None else from_answer(answer)
            finally:
                self.helper.stop()
        if isinstance(read, UserError):
            raise read
        return read if read is not None else read_lock(self.path)

    def stop(self) -> None:
        """Stop the helper, if any (the lock is not wanted after all: the project has errors)."""
        if self.helper is not None:
            self.helper.stop()


# --- the helper's answer: marshal blobs, each after its length ---------------------------------
#   a batch of frames:  ("frames", addresses, [a LockEntry's fields, …])
#   then, last:         ("lock", project, version, sha256 of the file, addresses, [an Approval's
#                        fields, …]) for the approvals, or None: read it here


def from_answer(answer: IO[bytes]) -> Lock | None:
    """The Lock the helper's `answer` describes, read one blob at a time; None unless it ended well."""
    frames: dict[str, LockEntry] = {}
    try:
        while True:
            header = answer.read(_LENGTH.size)
            (length,) = _LENGTH.unpack(header)
            blob = answer.read(length)
            if len(blob) != length:
                return None
            part = marshal.loads(blob)
            if part is None or part[0] == "lock":
                return None if part is None else _whole(part[1:], frames)
            addresses, rows = part[1:]
            frames.update(zip(addresses, itertools.starmap(LockEntry, rows), strict=True))
    except (OSError, struct.error, ValueError, EOFError, TypeError, IndexError):
        return None


def _whole(last: tuple[Any, ...], frames: dict[str, LockEntry]) -> Lock:
    project, version, sha256, approved, approvals = last
    return Lock(project, version, frames, sha256,
                dict(zip(approved, itertools.starmap(Approval, approvals), strict=True)))


def answer(path: Path) -> Iterator[bytes]:
    """The helper's answer for the lockfile at `path`, blob by blob (each with its length)."""
    try:
        raw = read_regular(path)
        if raw is None:
            raise _NotPlain
        sha256 = hashlib.sha256(raw).hexdigest()
        text = raw.decode("utf-8-sig")
        del raw
        top: dict[str, Any] = {}
        for blob in _frames(_Cursor(text), top):
            yield _framed(blob)
        plain = plainly_valid({**top, "frames": {}}) if "frames" in top else None
        if plain is None or top["format"] > FORMAT_VERSION:
            raise _NotPlain
        approvals = plain[1]
        rows = [_APPROVAL_VALUES(approval) for approval in approvals.values()]
        yield _framed(marshal.dumps(("lock", top["project"], top["version"], sha256, list(approvals), rows)))
    except (_NotPlain, OSError, UnicodeDecodeError, RecursionError, ValueError):
        yield _framed(marshal.dumps(None))


def _framed(blob: bytes) -> bytes:
    return _LENGTH.pack(len(blob)) + blob


def _frames(cursor: _Cursor, top: dict[str, Any]) -> Iterator[bytes]:
    """Batches of the frames, as marshal blobs; the other top-level members go into `top`."""
    shared: dict[str, str] = {}
    for key in cursor.members():
        if key in top:
            raise _NotPlain  # json.loads keeps the last: read_lock decides
        if key != "frames":
            top[key] = cursor.value()
            continue
        top[key] = {}
        addresses: list[str] = []
        rows: list[tuple[Any, ...]] = []
        for address in cursor.members():
            entry = plain_entry(cursor.value(), shared)
            if entry is None:
                raise _NotPlain
            addresses.append(address)
            rows.append(_ENTRY_VALUES(entry))
            if len(rows) == BATCH:
                yield marshal.dumps(("frames", addresses, rows))
                addresses, rows = [], []
        if rows:
            yield marshal.dumps(("frames", addresses, rows))
    if not cursor.at_end():
        raise _NotPlain


class _NotPlain(Exception):
    """Not a lockfile as storyboard writes it: read_lock reads it, and explains what is wrong."""


_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace
# json.loads's own (C) scanner, one value at a time (typeshed takes the decoder for the scanner class)
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


class _Cursor:
    """A place in JSON text, read one member of an object at a time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def _skip_space(self) -> None:
        match = _SPACE.match(self.text, self.at)
        self.at = match.end() if match else self.at

    def _take(self, mark: str) -> bool:
        self._skip_space()
        if self.text.startswith(mark, self.at):
            self.at += 1
            return True
        return False

    def value(self) -> Any:
        self._skip_space()
        try:
            value, self.at = _SCAN(self.text, self.at)
        except StopIteration:
            raise _NotPlain from None
        return value

    def members(self) -> Iterator[str]:
        """The keys of the object here; the caller reads each one's value before the next key."""
        if not self._take("{"):
            raise _NotPlain
        if self._take("}"):
            return
        while True:
            key = self.value()
            if type(key) is not str or not self._take(":"):
                raise _NotPlain
            yield key
            if self._take("}"):
                return
            if not self._take(","):
                raise _NotPlain

    def at_end(self) -> bool:
        self._skip_space()
        return self.at == len(self.text)


if __name__ == "__main__":
    tune_gc()
    for part in answer(Path(sys.argv[1])):
        sys.stdout.buffer.write(part)
