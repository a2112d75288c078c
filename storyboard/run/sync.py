"""Moving images and versions between this machine and the backend: fetch, publish, push, pull.

Transfers run concurrently, at most `backend.concurrency` at once. An object fetched is
checked against its sha256 before it is kept; one whose bytes do not match is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from storyboard.deliver.pages import render_pages
from storyboard.errors import UserError
from storyboard.images import thumbnail
from storyboard.project.model import Project
from storyboard.state.backend import Backend, BackendError
from storyboard.state.manifest import MANIFEST, merged_manifest
from storyboard.state.store import ImageStore, IndexEntry, sha256_of
from storyboard.state.versions import Placement, build_version, latest_version, version_name, versions
from storyboard.wording import plural


@dataclass
class Transfer:
    """What a transfer moved, and what it could not (sha256 or name -> why)."""

    moved: int = 0
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def _each(items: Iterable[str], work: Callable[[str], int], concurrency: int) -> Transfer:
    """`work` on every item, on `concurrency` threads; what failed (a UserError) is kept with why.
    Interrupted, it waits only for the items in flight."""
    transfer = Transfer()

    def one(item: str) -> tuple[str, int, str | None]:
        try:
            return item, work(item), None
        except UserError as error:
            return item, 0, error.message

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="storyboard-transfer")
    try:
        for item, size, why in pool.map(one, items):
            if why is None:
                transfer.moved += 1
                transfer.bytes += size
            else:
                transfer.failed[item] = why
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return transfer


def fetch(backend: Backend, store: ImageStore, sha256s: Iterable[str]) -> Transfer:
    """Bring the objects this machine lacks, and their thumbnails, from the backend into the
    local store (made durable together at the end)."""

    def get(sha256: str) -> int:
        data = backend.fetch_object(sha256)
        store.add(data, durable=False, sync_folder=False)
        thumb = backend.fetch_thumbnail(sha256)
        if thumb is not None:
            store.add_thumbnail(sha256, thumb)
        return len(data) + len(thumb or b"")

    wanted = sorted({sha for sha in sha256s if not store.has(sha)})
    fetched = _each(wanted, get, backend.config.concurrency)
    store.sync(set(wanted) - set(fetched.failed), files=True)
    return fetched


def send(backend: Backend, store: ImageStore, images: Mapping[str, VersionImage]) -> Transfer:
    """Send the images (and their thumbnails) the backend lacks, one listing deciding which.
    An image the local store lacks (a version made before the store) is adopted into it first."""
    held = backend.object_names()

    def put(sha256: str) -> int:
        path = store.object_path(sha256)
        if not path.exists():
            path = store.adopt(sha256, images[sha256].image)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise UserError(f"{path} cannot be read: {error.strerror}") from None
        backend.send_object(sha256, data)
        thumb = _thumbnail(store, sha256, images[sha256].thumbnail)
        if thumb is not None:
            backend.send_thumbnail(sha256, thumb)
        return len(data) + len(thumb or b"")

    wanted = sorted(set(images) - held)
    return _each(wanted, put, backend.config.concurrency)


def _thumbnail(store: ImageStore, sha256: str, in_version: Path) -> bytes | None:
    """The image's thumbnail from the store, else the version's (kept in the store), else None."""
    for path in (store.thumbnail_path(sha256), in_version):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        store.add_thumbnail(sha256, data)
        return data
    return None


def version_files(folder: Path) -> dict[str, bytes]:
    """The manifests of a version on disk: manifest.json and the scene.json files it names."""
    root = json.loads((folder / MANIFEST).read_bytes())
    files = {MANIFEST: (folder / MANIFEST).read_bytes()}
    for scene in root.get("scenes", []):
        files[scene["manifest"]] = (folder / scene["manifest"]).read_bytes()
    return files


class VersionImage(NamedTuple):
    """Where a version on disk holds an image and its thumbnail."""

    image: Path
    thumbnail: Path


def referenced(folder: Path) -> dict[str, VersionImage]:
    """Every image a version on disk holds, by sha256."""
    manifest = merged_manifest(lambda relative: json.loads((folder / relative).read_bytes()))
    return {str(frame["sha256"]): VersionImage(folder / str(frame["path"]), folder / str(frame["thumbnail"]))
            for frame in manifest.get("frames", [])}


def publish(backend: Backend, store: ImageStore, number: int, folder: Path,
                  made: Iterable[IndexEntry]) -> Transfer:
    """Put a version on the backend: every image it holds that the backend lacks, the index
    entries of the images it made, then its manifests (manifest.json last: a version the
    backend lists is complete). A version whose images did not all arrive is not published;
    one whose manifests could not be written raises BackendError."""
    sent = send(backend, store, referenced(folder))
    if sent.failed:
        return sent
    made = list(made)
    recorded = _each([entry.fingerprint for entry in made], _recorder(backend, made),
                           backend.config.concurrency)
    sent.failed.update(recorded.failed)
    if not sent.failed:
        publish_manifests(backend, number, folder)
    return sent


def publish_manifests(backend: Backend, number: int, folder: Path) -> None:
    """A version's manifests on the backend: the scene manifests it lacks (by sha256, so a scene
    the version did not change costs nothing), their list, then manifest.json."""
    files = version_files(folder)
    top = files.pop(MANIFEST)
    scenes = {relative: sha256_of(data) for relative, data in files.items()}
    blobs = {scenes[relative]: data for relative, data in files.items()}
    held = backend.manifest_names()

    def put(sha256: str) -> int:
        backend.send_manifest(sha256, blobs[sha256])
        return len(blobs[sha256])

    sent = _each(sorted(set(blobs) - held), put, backend.config.concurrency)
    if sent.failed:
        sha, why = next(iter(sent.failed.items()))
        raise BackendError(f"{plural(len(sent.failed), 'scene manifest')} of {version_name(number)} could "
                           f"not be sent ({sha[:12]}…: {why})")
    backend.publish_version(number, top, scenes)


def _recorder(backend: Backend, entries: list[IndexEntry]) -> Callable[[str], int]:
    by_fingerprint = {entry.fingerprint: entry for entry in entries}

    def record(fingerprint: str) -> int:
        backend.record(by_fingerprint[fingerprint])
        return 0

    return record


@dataclass
class Pushed:
    objects: Transfer
    index: Transfer
    versions: list[int]


def push(project: Project, backend: Backend) -> Pushed:
    """Send what only this machine holds: every local version's images and manifests the backend
    lacks, and the index entries it does not have."""
    store = ImageStore(project.state_path)
    output = project.output_path
    local_versions = versions(output)
    wanted: dict[str, VersionImage] = {}
    for number in local_versions:
        wanted |= referenced(output / version_name(number))
    objects = send(backend, store, wanted)
    remote_index = backend.index_names()
    entries = [entry for entry in store.entries() if entry.fingerprint not in remote_index
               and (store.has(entry.sha256) and entry.sha256 in backend.object_names())]
    index = _each([entry.fingerprint for entry in entries], _recorder(backend, entries),
                        backend.config.concurrency)
    published = []
    if not objects.failed:
        remote_versions = set(backend.version_numbers())
        for number in local_versions:
            if number not in remote_versions:
                publish_manifests(backend, number, output / version_name(number))
                published.append(number)
    return Pushed(objects, index, published)


@dataclass
class Pulled:
    number: int
    folder: Path
    fetched: Transfer
    already_here: bool


def pull(project: Project, backend: Backend, version: str | None = None) -> Pulled:
    """Materialise a published version (default: the newest) in out/, from the backend's store."""
    numbers = backend.version_numbers()
    if not numbers:
        raise UserError(f"the backend {backend.url} has no published versions",
                        hint="`storyboard apply` publishes one; `storyboard push` sends local ones")
    number = numbers[-1] if version is None else _named(version, numbers, backend)
    output = project.output_path
    folder = output / version_name(number)
    if number in versions(output):
        return Pulled(number, folder, Transfer(), True)

    published = read_published(backend, [number])[number]
    manifest = published.manifest
    store = ImageStore(project.state_path)
    fetched = fetch(backend, store, (str(frame["sha256"]) for frame in manifest["frames"]))
    if fetched.failed:
        sha, why = next(iter(fetched.failed.items()))
        raise BackendError(f"{len(fetched.failed)} images of {version_name(number)} could not be fetched "
                           f"({sha[:12]}…: {why})")
    _materialise(project, store, number, manifest, published.files)
    return Pulled(number, folder, fetched, False)


def _named(version: str, numbers: list[int], backend: Backend) -> int:
    digits = version.lower().removeprefix("v")
    if digits.isdigit() and int(digits) in numbers:
        return int(digits)
    listed = ", ".join(version_name(n) for n in numbers[-10:])
    raise UserError(f"the backend {backend.url} has no version `{version}`", hint=f"it has: {listed}")


def _materialise(project: Project, store: ImageStore, number: int, manifest: dict[str, Any],
                 files: dict[str, bytes]) -> None:
    """The version folder, its images linked from the store, its manifests as published, its
    pages and thumbnails made again."""
    placements = [Placement(relative, data=data) for relative, data in files.items()]
    for frame in manifest["frames"]:
        source = store.object_path(str(frame["sha256"]))
        placements.append(Placement(str(frame["path"]), source))
        thumb = store.thumbnail_path(str(frame["sha256"]))
        if thumb.is_file():
            placements.append(Placement(str(frame["thumbnail"]), thumb))
        else:  # the backend had none: made again from the image
            placements.append(Placement(str(frame["thumbnail"]), data=thumbnail(source), durable=False))
    for path, page in render_pages(manifest, manifest.get("scenes", []), {}).items():
        placements.append(Placement(path, data=page.encode(), durable=False))
    output = project.output_path
    newest = latest_version(output)
    build_version(output, number, placements, move_latest=newest is None or number > newest)


@dataclass
class RemoteGc:
    """What `gc --remote` removed (or, in a dry run, would remove)."""

    versions: list[int]
    objects: list[str]
    bytes: int
    index_entries: int
    manifests: int
    kept_objects: int
    dry_run: bool


def gc_remote(project: Project, backend: Backend, *, keep: int | None, keep_days: float,
              force: bool, now: float) -> RemoteGc:
    """Remove from the backend what nothing needs: versions past the `keep` newest (if given),
    then every object no kept version, no index entry younger than `keep_days` and not the
    current lockfile references, and the scene manifests no kept version lists. A dry run
    unless `force`."""
    from storyboard.state.lockfile import read_lock

    numbers = backend.version_numbers()
    doomed_versions = numbers[:max(0, len(numbers) - keep)] if keep else []
    kept = read_published(backend, [n for n in numbers if n not in doomed_versions])
    needed = {entry.image_sha256 for entry in read_lock(project.lockfile_path).frames.values()}
    for version in kept.values():
        needed |= {str(frame["sha256"]) for frame in version.manifest.get("frames", [])}
    entries = _index_entries(backend)
    young = {entry.sha256 for entry in entries.values()
             if entry is not None and _age_days(entry.created, now) < keep_days}
    held = backend.object_names(refresh=True)
    doomed = sorted(held - needed - young)
    forgotten = [fingerprint for fingerprint, entry in entries.items()
                 if entry is None or entry.sha256 in doomed]
    manifests = sorted(backend.manifest_names() - {sha for version in kept.values()
                                                   for sha in version.scenes.values()})
    sizes = _sizes(backend, doomed)
    if force:
        for number in doomed_versions:
            backend.remove_version(number)
        for sha in doomed:
            backend.delete_object(sha)
        for fingerprint in forgotten:
            backend.forget(fingerprint)
        for sha in manifests:
            backend.delete_manifest(sha)
    return RemoteGc(doomed_versions, doomed, sizes, len(forgotten), len(manifests),
                    len(held) - len(doomed), not force)


def _index_entries(backend: Backend) -> dict[str, IndexEntry | None]:
    """Every index entry (None for one that does not read), read concurrently."""
    entries: dict[str, IndexEntry | None] = {}

    def read(fingerprint: str) -> int:
        entries[fingerprint] = backend.index_entry(fingerprint)
        return 0

    failed = (_each(sorted(backend.index_names()), read, backend.config.concurrency)).failed
    if failed:
        fingerprint, why = next(iter(failed.items()))
        raise BackendError(f"the backend's index could not be read ({fingerprint[:12]}…: {why})")
    return entries


@dataclass
class Published:
    """A version as the backend holds it."""

    manifest: dict[str, Any]  # merged with its scenes' frames, checked like one on disk
    files: dict[str, bytes]  # manifest.json and its scene manifests, by path in the version
    scenes: dict[str, str]  # the scene manifests' sha256, by path in the version


def read_published(backend: Backend, numbers: Iterable[int], *,
                         frames: bool = True) -> dict[int, Published]:
    """Published versions, read concurrently; a scene manifest several of them share is read once."""
    numbers = list(numbers)
    tops: dict[int, bytes] = {}
    listings: dict[int, dict[str, str]] = {}

    def read(name: str) -> int:
        number = int(name)
        tops[number] = backend.version_manifest(number)
        listings[number] = backend.version_scenes(number) if frames else {}
        return len(tops[number])

    failed = (_each(map(str, numbers), read, backend.config.concurrency)).failed
    if failed:
        raise BackendError(next(iter(failed.values())))
    blobs: dict[str, bytes] = {}

    def get(sha256: str) -> int:
        blobs[sha256] = backend.fetch_manifest(sha256)
        return len(blobs[sha256])

    wanted = sorted({sha for listing in listings.values() for sha in listing.values()})
    failed = (_each(wanted, get, backend.config.concurrency)).failed
    if failed:
        sha, why = next(iter(failed.items()))
        raise BackendError(f"{plural(len(failed), 'scene manifest')} could not be read ({sha[:12]}…: {why})")
    published = {}
    for number in numbers:
        scenes = {relative: blobs[sha] for relative, sha in listings[number].items()}
        files = {MANIFEST: tops[number], **scenes}
        manifest = merged_manifest(_loader(number, files), frames=frames)
        published[number] = Published(manifest, files, listings[number])
    return published


def _loader(number: int, files: dict[str, bytes]) -> Callable[[str], Any]:
    def load(relative: str) -> Any:
        if relative not in files:
            raise BackendError(f"{version_name(number)}/{MANIFEST} in the backend names {relative}, "
                               "which the version does not list: not used")
        try:
            return json.loads(files[relative])
        except ValueError:
            raise BackendError(f"{version_name(number)}/{relative} in the backend is not JSON") from None

    return load


def published_manifest(backend: Backend, number: int, *, frames: bool = True) -> dict[str, Any]:
    """A version's manifest as the backend holds it, checked like one on disk."""
    return read_published(backend, [number], frames=frames)[number].manifest


def _sizes(backend: Backend, sha256s: list[str]) -> int:
    return sum(backend.object_size(sha) for sha in sha256s)


def _age_days(created: str, now: float) -> float:
    from datetime import datetime

    try:
        return (now - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()) / 86400
    except ValueError:
        return float("inf")  # no date to trust: old
