"""The run journal and the run lock, under .storyboard/.

Every submitted job and every downloaded image is appended to journal.jsonl and
fsynced before anything else happens, so a run killed at any point can be resumed:
the next apply re-attaches to submitted jobs and reuses downloaded images.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from storyboard.fsutil import atomic_write, fsync_dir
from storyboard.images import EXTENSIONS
from storyboard.providers.base import GeneratedImage


@dataclass(frozen=True, slots=True)
class StagedImage:
    """An image already paid for and safely on disk under .storyboard/images/."""

    address: str
    fingerprint: str
    file: Path
    sha256: str
    format: str
    width: int
    height: int
    job: str
    stamped: int | None = None  # the version number its provenance chunk names, if any

    @property
    def thumbnail(self) -> Path:
        """Where its thumbnail was made while staging (it may be missing: then make it again)."""
        return thumbnail_beside(self.file)


def thumbnail_beside(file: Path) -> Path:
    return file.with_name(f"{file.name.split('.')[0]}.thumb.jpg")


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

    def __init__(self, state: Path) -> None:
        self.path = state / "journal.jsonl"
        self.images_dir = state / "images"
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    def append(self, *records: dict[str, Any]) -> None:
        """Write records as lines and fsync once: they are durable when this returns."""
        text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)
        with self._lock:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())

    def keep_images(self, job: str, images: list[tuple[str, str, GeneratedImage, bytes | None]],
                    stamped: int | None = None) -> list[StagedImage]:
        """Stage (address, fingerprint, image, thumbnail) of one job durably, then journal them.

        `stamped`: the version number the images' provenance names. Thumbnails are kept
        beside their image but not fsynced: they can always be made again.
        """
        self.images_dir.mkdir(parents=True, exist_ok=True)
        staged = []
        for address, fingerprint, image, thumbnail in images:
            digest = hashlib.sha256(image.data).hexdigest()
            name = f"{digest}{EXTENSIONS.get(image.format, '.bin')}"
            file = self.images_dir / name
            if not file.exists():  # content-addressed: an image staged before is the same bytes
                atomic_write(file, image.data, sync_folder=False)
            if thumbnail is not None and not thumbnail_beside(file).exists():
                atomic_write(thumbnail_beside(file), thumbnail, durable=False)
            staged.append(StagedImage(address, fingerprint, file, digest, image.format, image.width,
                                      image.height, job, stamped))
        if staged:
            fsync_dir(self.images_dir)
            self.append(*(_image_record(image) for image in staged))
        return staged

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def read(self) -> Recovered:
        """Images and pending jobs from an interrupted run (a torn last line is ignored)."""
        recovered = Recovered()
        submitted: list[dict[str, Any]] = []
        finished_jobs: set[str] = set()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return recovered
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the run died while writing this line
            kind = record.get("event")
            if kind == "submitted":
                submitted.append(record)
            elif kind == "image":
                image = _staged(self.images_dir, record)
                if image is not None:
                    recovered.images[image.fingerprint] = image
            elif kind == "job_done":
                finished_jobs.add(record["job"])
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
        files = {name for image in kept for name in (image.file.name, image.thumbnail.name)}
        if self.images_dir.is_dir():
            for file in self.images_dir.iterdir():
                if file.name not in files:
                    file.unlink()


def _image_record(image: StagedImage) -> dict[str, Any]:
    return {"event": "image", "address": image.address, "fingerprint": image.fingerprint,
            "file": image.file.name, "sha256": image.sha256, "format": image.format, "width": image.width,
            "height": image.height, "job": image.job, "stamped": image.stamped}


def _staged(images_dir: Path, record: dict[str, Any]) -> StagedImage | None:
    file = images_dir / Path(record["file"]).name
    if not file.is_file():
        return None
    return StagedImage(record["address"], record["fingerprint"], file, record["sha256"],
                       record["format"], record["width"], record["height"], record["job"],
                       record.get("stamped"))
