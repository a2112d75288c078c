"""The run journal, .storyboard/journal.jsonl: what a run paid for and has not put in a version yet.

Every submitted job and every downloaded image is appended and fsynced before anything
else happens, so a run killed at any point can be resumed: the next apply re-attaches to
submitted jobs and reuses downloaded images. The images themselves are kept in the image
store (store.py), where they stay after the journal forgets them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from storyboard.errors import UserError
from storyboard.fsutil import atomic_write
from storyboard.state.store import ImageStore, IndexEntry, PreparedEntry

if TYPE_CHECKING:
    from storyboard.state.backend import Backend

log = logging.getLogger("storyboard.journal")


@dataclass(frozen=True, slots=True)
class StagedImage:
    """An image already paid for and safely on disk in the image store."""

    address: str
    fingerprint: str
    file: Path
    sha256: str
    format: str
    width: int
    height: int
    job: str
    stamped: int | None = None  # the version number its provenance chunk names, if any

    thumbnail: Path | None = None  # made while staging (it may be missing: then make it again)


@dataclass
class Recovered:
    """What an earlier, interrupted run left: images and jobs still pending."""

    images: dict[str, StagedImage] = field(default_factory=dict)  # by fingerprint
    jobs: list[dict[str, Any]] = field(default_factory=list)  # submitted, not all images back


@dataclass
class Claim:
    """What an earlier run left that this plan wants, and what it sets aside for a later one."""

    images: dict[str, StagedImage] = field(default_factory=dict)  # by fingerprint: used as they are
    jobs: list[dict[str, Any]] = field(default_factory=list)  # re-attached to, not submitted again
    set_aside: Recovered = field(default_factory=Recovered)

    @property
    def covered(self) -> frozenset[str]:
        """Fingerprints that need no new request: staged, or in a job to re-attach to."""
        return frozenset(self.images.keys() | {fp for job in self.jobs for fp in job["fingerprints"]})


def claim(recovered: Recovered, wanted: Iterable[str]) -> Claim:
    """Split an earlier run's work by the fingerprints a plan generates (`wanted`).

    A job is re-attached to when every frame of it still missing is wanted; partly wanted
    jobs and unwanted images are set aside for a later apply (see Journal.clear).
    """
    wanted = set(wanted)
    result = Claim()
    for fingerprint, image in recovered.images.items():
        if fingerprint in wanted:
            result.images[fingerprint] = image
        else:
            result.set_aside.images[fingerprint] = image
    for job in recovered.jobs:
        if all(fp in wanted for fp in job["fingerprints"] if fp not in result.images):
            result.jobs.append(job)
        else:
            result.set_aside.jobs.append(job)
    return result


class Journal:
    """Appends are thread-safe: images are staged in worker threads while the loop polls."""

    def __init__(self, state: Path, remote: Backend | None = None) -> None:
        self.path = state / "journal.jsonl"
        self.remote = remote  # submits are recorded there too: any machine can collect them
        self.store = ImageStore(state)
        self.legacy_images = state / "images"  # where staged images were kept before the store
        self._file: TextIO | None = None
        self._lock = threading.Lock()
        self.prepared: dict[str, PreparedEntry] = {}  # index entries of the images kept, by fingerprint

    def append(self, *records: dict[str, Any]) -> None:
        """Write records as lines and fsync once: they are durable when this returns (and a
        submit is on the backend too, when there is one)."""
        text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)
        with self._lock:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())
        if self.remote is not None:
            for record in records:
                if record.get("event") == "submitted":
                    self._mirror(record)

    def _mirror(self, record: dict[str, Any]) -> None:
        """A submit on the backend's journal too; if the backend cannot take it, this machine's
        journal still has it (only another machine would not re-attach to it)."""
        assert self.remote is not None
        try:
            self.remote.journal_submitted(record)
        except UserError as error:
            log.warning("job %s is in the local journal only: %s", record["job"], error.message)

    def forget_remote(self, jobs: Iterable[str]) -> None:
        """Remove jobs from the backend's journal: what they made is published."""
        if self.remote is not None:
            for job in jobs:
                try:
                    self.remote.journal_done(job)
                except UserError as error:  # harmless: a later apply finds the job collected
                    log.warning("job %s stays on the backend's journal: %s", job, error.message)

    def keep_images(self, images: list[tuple[IndexEntry, bytes, bytes | None]],
                    stamped: int | None = None) -> list[StagedImage]:
        """Keep (entry, image bytes, thumbnail) of one job in the store durably, then journal them.

        `entry.sha256` is the bytes' hash; `stamped`: the version number their provenance
        names. The store's index learns of them when a version holds them (apply); their entries
        are prepared here for it (`prepared`; those not recorded are removed on close).
        Thumbnails are not fsynced: they can always be made again.
        """
        staged = []
        for entry, data, thumbnail in images:
            _, file = self.store.add(data, sync_folder=False)
            thumb = self.store.add_thumbnail(entry.sha256, thumbnail) if thumbnail is not None else None
            staged.append(StagedImage(entry.address, entry.fingerprint, file, entry.sha256, entry.format,
                                      entry.width, entry.height, entry.job, stamped, thumb))
        if staged:
            self.store.sync([image.sha256 for image in staged])
            self.append(*(_image_record(image) for image in staged))
        for entry, _, _ in images:
            previous = self.prepared.get(entry.fingerprint)  # the same frame kept again (a retry)
            self.prepared[entry.fingerprint] = self.store.prepare(entry)
            if previous is not None:
                ImageStore.discard([previous])
        return staged

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        ImageStore.discard(self.prepared.values())
        self.prepared.clear()

    def read(self) -> Recovered:
        """Images and pending jobs from an interrupted run (a torn last line is ignored)."""
        recovered = Recovered()
        submitted: list[dict[str, Any]] = []
        finished_jobs: set[str] = set()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the run died while writing this line
            kind = record.get("event")
            if kind == "submitted":
                submitted.append(record)
            elif kind == "image":
                image = self._staged(record)
                if image is not None:
                    recovered.images[image.fingerprint] = image
            elif kind == "job_done":
                finished_jobs.add(record["job"])
        known = {job["job"] for job in submitted}
        if self.remote is not None:  # what runs on other machines (or killed ones) paid for
            submitted += [record for record in self.remote.journal_records() if record["job"] not in known]
        for job in submitted:
            missing = [fp for fp in job["fingerprints"] if fp not in recovered.images]
            if missing and job["job"] not in finished_jobs:
                recovered.jobs.append(job)
        return recovered

    def clear(self, jobs: Iterable[dict[str, Any]] = (), images: Iterable[StagedImage] = ()) -> None:
        """Forget what a version now holds; the journal is rewritten to hold only what is left.

        `jobs`: submitted-job records still to be collected by a later run (a poll that
        timed out, a refused key, a job for frames outside `--target`). `images`: staged
        images paid for that a later run still wants. Every other staged file is removed.
        """
        self.close()
        kept = list(images)
        records = [*jobs, *(_image_record(image) for image in kept)]
        if records:
            text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)
            atomic_write(self.path, text.encode())
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        files = {image.file for image in kept}
        if self.legacy_images.is_dir():  # staged before the store: nothing else keeps them
            for file in self.legacy_images.iterdir():
                if file not in files and file.name.removesuffix(".thumb.jpg") not in {f.stem for f in files}:
                    file.unlink()

    def _staged(self, record: dict[str, Any]) -> StagedImage | None:
        """A journaled image, if its file is still there (in the store, or where staging kept it before)."""
        sha256 = str(record.get("sha256", ""))
        file = self.store.object_path(sha256)
        thumbnail: Path | None = self.store.thumbnail_path(sha256)
        if not file.is_file():
            file = self.legacy_images / Path(str(record.get("file", ""))).name
            thumbnail = file.with_name(f"{file.name.split('.')[0]}.thumb.jpg")
            if not file.is_file():
                return None
        return StagedImage(record["address"], record["fingerprint"], file, sha256, record["format"],
                           record["width"], record["height"], record["job"], record.get("stamped"),
                           thumbnail if thumbnail and thumbnail.is_file() else None)


def _image_record(image: StagedImage) -> dict[str, Any]:
    return {"event": "image", "address": image.address, "fingerprint": image.fingerprint,
            "file": image.file.name, "sha256": image.sha256, "format": image.format, "width": image.width,
            "height": image.height, "job": image.job, "stamped": image.stamped}
