"""Assemble: turn a carried-out plan into a new version folder and lockfile.

Order matters for crash safety: version folder (temp name, renamed into place),
then `latest`, then the lockfile (atomic replace), then the stat cache. A frame that
failed keeps its previous image and lock entry, so the next plan shows it again.

A version holds the images (new ones carry their provenance in a PNG text chunk),
`thumbs/` (small JPEGs for the pages), `manifest.json` with a `scene.json` per scene
(see manifest.py), `index.html` with a page per scene (the storyboard) and
`changes.html` (what this version changed, for review). Only what changed is written:
images, thumbnails and the files of untouched scenes are hard-linked.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyboard.actions import FAILED, MADE, Action
from storyboard.deliver.pages import SCENE_PAGE, EncodedMembers, render_pages, scene_page_keys
from storyboard.fsutil import regular_file
from storyboard.images import EXTENSIONS, thumbnail, with_provenance
from storyboard.jsonfile import indented_json
from storyboard.plans.planner import Change, Plan, lock_inputs
from storyboard.project import model
from storyboard.run.execute import Execution
from storyboard.state.journal import StagedImage
from storyboard.state.lockfile import LOCK_WRITTEN, Approval, Lock, LockEntry, copyable_entries
from storyboard.state.manifest import (
    KEPT,
    MANIFEST,
    SCENE_MANIFEST,
    ReadBack,
    read_back,
    says,
    scene_folder,
    scene_manifest_of,
    split,
)
from storyboard.state.store import ImageStore, IndexEntry
from storyboard.state.versions import (
    Placement,
    VersionFolder,
    holds,
    latest_version,
    now_iso,
    remove_unfinished,
    version_name,
)

THUMBS = "thumbs"
HELD = Action.HOLD.status  # looked up a few times a frame, as manifest.KEPT


@dataclass
class _Version:
    """What the new version will hold, gathered frame by frame."""

    number: int
    output: Path
    latest: int | None
    store: ImageStore
    frames: dict[str, LockEntry] = field(default_factory=dict)
    made: list[IndexEntry] = field(default_factory=list)  # images new in this version, for the index
    placements: list[Placement] = field(default_factory=list)
    manifest_frames: dict[str, dict[str, Any]] = field(default_factory=dict)  # by address, any order
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        (*(action.value for action in Action if action is not Action.MOVE), "failed", "not_done"), 0))
    changed: bool = False
    latest_folder: str | None = None
    listings: dict[str, frozenset[str]] = field(default_factory=dict)  # see old_existing
    approvals: dict[str, Approval] = field(default_factory=dict)  # kept into the new lockfile
    newly_approved: set[str] = field(default_factory=set)  # approved since the version before
    linked: dict[str, str] = field(default_factory=dict)  # image path -> the older file it is a link of

    def old_file(self, relative: str) -> str | None:
        """`relative` in the latest version, the one this version follows (a string: a few per frame)."""
        if self.latest is None:
            return None
        if self.latest_folder is None:
            self.latest_folder = str(self.output / version_name(self.latest))
        return f"{self.latest_folder}/{relative}"

    def old_existing(self, relative: str) -> str | None:
        """`relative` in the latest version if it is a regular file there (a link is not carried
        over: see fsutil.regular_file): each folder is listed once, not a file stat'ed per frame."""
        file = self.old_file(relative)
        if file is None:
            return None
        folder, _, name = file.rpartition("/")
        names = self.listings.get(folder)
        if names is None:
            try:
                with os.scandir(folder) as entries:
                    names = frozenset(entry.name for entry in entries if entry.is_file(follow_symlinks=False))
            except OSError:
                names = frozenset()
            self.listings[folder] = names
        return file if name in names else None

    def old_text(self, relative: str) -> str:
        """The text of `relative` in the latest version ("" when there is none or it is unreadable)."""
        file = self.old_file(relative)
        if file is None or not regular_file(file):
            return ""
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return ""


@dataclass(frozen=True)
class Assembled:
    """A version written to disk, and the lockfile that describes it (not written yet)."""

    number: int
    folder: Path
    lock: Lock
    counts: Mapping[str, int]
    made: tuple[IndexEntry, ...] = ()  # the images it holds that no version held before
    linked: Mapping[str, str] = field(default_factory=dict)  # image path -> the older file it links
    lock_copies: Mapping[str, tuple[LockEntry, bytes]] | None = None  # see lockfile.copyable_entries


class Assembly:
    """A new version put together while the run works. A thread of its own decides every frame the
    plan alone decides (kept, moved, held, repaired from an older version, removed), links their
    files into the folder under its temporary name (thousands through a process of their own:
    state/linker.py), makes the manifests of the scenes the run cannot touch, and finds the
    lockfile entries it may copy as they stand; `finish` adds what the run made, restored or
    failed, renders the pages, and renames the folder into place. `discard` removes what was
    placed when the run ends without a version. At 10,000 frames that thread's work is about half
    a second: an apply that changes one frame does it while it waits on the service."""

    def __init__(self, plan: Plan, number: int) -> None:
        self.plan = plan
        project = plan.project
        self._version = _Version(number, project.output_path, None, ImageStore(project.state_path))
        self._previous = ReadBack()  # the latest version's manifest
        self._prepared: set[str] = set()
        self._folder: VersionFolder | None = None
        self._decided_placements: list[Placement] = []
        self._scene_files = _SceneFiles()
        pool = ThreadPoolExecutor(1, thread_name_prefix="storyboard-assemble")
        self._decided = pool.submit(self._decide)
        self._linked = pool.submit(self._link)  # the same thread: after deciding, however that ended
        self._encoded = pool.submit(self._encode)
        self._lock_copies = pool.submit(self._copyable_lock_entries)
        pool.shutdown(wait=False)  # the thread ends once all four are done

    def finish(self, execution: Execution) -> Assembled | None:
        """Write the version if anything changed (None: nothing did, and nothing is left on disk).

        Frames the execution did not make keep their previous image and lock entry, so the next
        plan shows them again."""
        plan, version, project = self.plan, self._version, self.plan.project
        self._decided.result()
        for change in plan.changes:
            if change.address not in self._prepared:
                _add_change(version, project, change, execution.images, execution.failed,
                            self._previous.frames)
        if not version.changed:
            self.discard()
            return None
        failed = execution.failed
        counts = version.counts
        counts["approved"] = sum(1 for frame in version.manifest_frames.values() if "approval" in frame)
        counts["not_done"] = sum(1 for address in failed if address in execution.not_done)
        counts["failed"] = len(failed) - counts["not_done"]
        removed = [change.address for change in plan.changes if change.action is Action.REMOVE]
        old_keys = _page_keys(self._previous.root)
        self._linked.result()  # linked, or handed to the linking process (commit waits for it)
        self._encoded.result()
        _add_manifest_and_pages(version, project, failed, removed, old_keys,
                                [change.address for change in plan.changes], self._scene_files)
        folder = self._folder or VersionFolder(version.output, version.number)
        folder.place(version.placements)
        approvals = {address: approval for address, approval in version.approvals.items()
                     if address in version.frames}
        return Assembled(version.number, folder.commit(),
                         Lock(project.name, version.number, version.frames, approvals=approvals),
                         version.counts, tuple(version.made), version.linked, self._lock_copies.result())

    def discard(self) -> None:
        """Remove what was placed, once the thread is done (the run wrote no version)."""
        jobs: list[futures.Future[Any]] = [self._decided, self._linked, self._encoded, self._lock_copies]
        futures.wait(jobs)
        if self._folder is not None:
            self._folder.discard()

    def _decide(self) -> None:
        """Everything the run cannot change."""
        plan, version = self.plan, self._version
        version.latest = latest_version(version.output)
        if version.latest is not None:
            self._previous = read_back(version.output / version_name(version.latest),
                                       lambda relative: version.old_existing(relative) is not None)
        version.approvals.update(plan.lock.approvals)
        for change in plan.changes:
            if not change.generates and change.action is not Action.RESTORE:
                _add_change(version, plan.project, change, {}, {}, self._previous.frames)
                self._prepared.add(change.address)
        # handed to the linking step; finish gathers its own placements in a new list meanwhile
        self._decided_placements, version.placements = version.placements, []

    def _link(self) -> None:
        """The decided frames' files, placed only when the plan changes the output. An apply killed
        meanwhile leaves them under the temporary name: the next one removes them."""
        if self._decided.exception() is None and self.plan.has_changes and self._decided_placements:
            remove_unfinished(self._version.output)
            self._folder = VersionFolder(self._version.output, self._version.number)
            self._folder.place(self._decided_placements, links_elsewhere=True)

    def _encode(self) -> None:
        """The manifests of the scenes the run cannot touch (none of their frames is made, restored
        or failed by it), and which of them the latest version holds: a scene manifest there that
        says what this one would is taken as it is, not made and compared."""
        if self._decided.exception() is not None or not self.plan.has_changes:
            return
        version, changes = self._version, self.plan.changes
        touched = {scene_folder(change.path) for change in changes
                   if change.address not in self._prepared and change.path is not None}
        # finish may be adding the run's frames to manifest_frames meanwhile: their scenes are touched
        frames = [version.manifest_frames[change.address] for change in changes
                  if change.address in version.manifest_frames]
        untouched: dict[str, list[dict[str, Any]]] = {}
        for frame in frames:
            if (folder := scene_folder(frame["path"])) not in touched:
                untouched.setdefault(folder, []).append(frame)
        made = self._scene_files
        for folder, members in untouched.items():
            data, parsed = self._previous.scenes.get(f"{folder}/{SCENE_MANIFEST}", (b"", None))
            if says(parsed, members):  # read back from a regular file of the latest version
                made.members[folder] = EncodedMembers(members, data)
                made.as_before.add(folder)
                continue
            made.members[folder] = EncodedMembers(members, scene_manifest_of(members))
            if holds(version.old_file(f"{folder}/{SCENE_MANIFEST}"), made.members[folder].manifest):
                made.as_before.add(folder)

    def _copyable_lock_entries(self) -> dict[str, tuple[LockEntry, bytes]] | None:
        """The lockfile's entries apply may copy as they stand (None: none looked for)."""
        if not self.plan.has_changes:
            return None
        project = self.plan.project
        return copyable_entries(project.lockfile_path, self.plan.lock, project.state_path / LOCK_WRITTEN)


@dataclass
class _SceneFiles:
    """What the thread makes of the scenes the run cannot touch: by scene folder, their frames with
    their scene manifest (split and the board's keys take it), and those the latest version holds."""

    members: dict[str, EncodedMembers] = field(default_factory=dict)
    as_before: set[str] = field(default_factory=set)


def _add_change(version: _Version, project: model.Project, change: Change, images: Mapping[str, StagedImage],
                failed: Mapping[str, str], previous_frames: Mapping[Any, dict[str, Any]]) -> None:
    if change.action is Action.REMOVE:
        version.counts["remove"] += 1
        version.changed = True
        version.approvals.pop(change.address, None)
        return
    _add_frame(version, project, change, images, failed, project.frame(change.address),
               previous_frames.get(change.address, {}))


def _add_manifest_and_pages(version: _Version, project: model.Project, failed: Mapping[str, str],
                            removed: list[str], old_keys: Mapping[str, str | None], order: list[str],
                            made: _SceneFiles) -> None:
    """The root manifest, the scene manifests and the pages; an untouched scene's files are linked.

    A scene page is made from its scene manifest and its place among the scenes (`page_key`, kept
    in the root manifest): a page whose key is the latest version's is linked, not rendered again.
    """
    titles = {scene.id: scene.title or scene.id for scene in project.scenes}
    own = {"project": project.name, "version": version.number, "created_at": now_iso(),
           "changes": version.counts}
    descriptions = {scene.id: scene.description for scene in project.scenes if scene.description}
    frames = [version.manifest_frames[address] for address in order if address in version.manifest_frames]
    newly_approved = [address for address in order if address in version.newly_approved]
    root, scene_files = split(own, frames, titles, descriptions,
                              {folder: known.manifest for folder, known in made.members.items()})
    unchanged: set[str] = set()
    keys = scene_page_keys(project.name, root["scenes"], scene_files)
    for scene in root["scenes"]:
        scene["page_key"] = keys[scene["folder"]]
        old_manifest = version.old_file(scene["manifest"])
        as_before = scene["folder"] in made.as_before if scene["folder"] in made.members else \
            holds(old_manifest, scene_files[scene["manifest"]])
        if not as_before:
            version.placements.append(Placement(scene["manifest"], data=scene_files[scene["manifest"]]))
            continue
        assert old_manifest is not None
        version.placements.append(Placement(scene["manifest"], old_manifest))  # its bytes, compared
        old_page = version.old_file(f"{scene['folder']}/{SCENE_PAGE}")
        # the key read back is only a claim: the page is linked when the scene.json beside it holds
        # these very bytes, and the key of the rest of its inputs matches
        page_there = old_page is not None and regular_file(old_page)
        if old_keys.get(scene["folder"]) == scene["page_key"] and page_there:
            unchanged.add(scene["folder"])
            version.placements.append(Placement(f"{scene['folder']}/{SCENE_PAGE}", old_page))
    pages = render_pages({**root, "frames": frames}, root["scenes"], failed, removed, newly_approved,
                         unchanged, version.old_text, made.members)
    for path, page in pages.items():
        version.placements.append(Placement(path, data=page.encode(), same_as=version.old_file(path),
                                            durable=False))
    text = indented_json(root) + "\n"
    version.placements.append(Placement(MANIFEST, data=text.encode()))


def _add_frame(version: _Version, project: model.Project, change: Change, images: Mapping[str, StagedImage],
               failed: Mapping[str, str], frame: model.Frame | None, old: dict[str, Any]) -> None:
    spec = change.spec
    staged = images.get(spec.fingerprint) if spec and change.generates else None
    restored = _add_restored(version, change) if change.action is Action.RESTORE else None
    if restored is not None:
        entry, status = restored
        old = {**old, "width": change.stored.width, "height": change.stored.height} if change.stored else old
    elif staged is not None and spec is not None and change.path is not None:
        entry, status = _add_new_image(version, project, change, staged)
    else:
        kept = _keep_previous(version, change, failed)
        if kept is None:
            return
        entry, status = kept
    version.frames[change.address] = entry
    if change.dropped is not None and status in MADE:
        version.approvals.pop(change.address, None)  # --replace made new art: the approval goes
    manifest_frame = _manifest_frame(change, entry, status, staged, old, frame)
    approval = version.approvals.get(change.address)
    if approval is not None and approval.sha256 == entry.image_sha256:
        manifest_frame["approval"] = {"by": approval.by, "at": approval.at, "version": approval.version}
        old_approval = old.get("approval")
        if not isinstance(old_approval, dict) or old_approval.get("at") != approval.at:
            version.newly_approved.add(change.address)
    if status in MADE:
        before = _add_before_thumb(version, change, entry)
        if before is not None:
            manifest_frame["before"] = before
    version.manifest_frames[change.address] = manifest_frame
    if status != FAILED:
        version.counts[Action.KEEP.value if change.action is Action.MOVE else change.action.value] += 1
    version.changed = version.changed or status not in (KEPT, HELD, FAILED) or \
        change.action is Action.MOVE


def _add_before_thumb(version: _Version, change: Change, entry: LockEntry) -> str | None:
    """A thumbnail of the image this frame replaces, for changes.html; its path if there is one."""
    if change.previous is None:
        return None
    old_thumb = version.old_existing(_thumb_path(change.previous.path))
    source = old_thumb or version.old_existing(change.previous.path)
    if source is None:
        return None
    path = f"{THUMBS}/before/{Path(entry.path).with_suffix('.jpg').as_posix()}"
    return path if _add_thumb(version, path, source) else None


def _add_new_image(version: _Version, project: model.Project, change: Change,
                   staged: StagedImage) -> tuple[LockEntry, str]:
    """A generated image with its provenance, linked as staged when that names this version."""
    spec = change.spec
    assert spec is not None and change.path is not None
    path = change.path + EXTENSIONS.get(staged.format, ".png")
    if staged.stamped == version.number:  # the usual case: linked, not written again
        sha256, size = staged.sha256, staged.file.stat().st_size
        version.placements.append(Placement(path, staged.file))
    else:  # staged by a run whose version was never committed, or before stamping existed
        data = with_provenance(staged.file.read_bytes(), staged.format,
                               spec.provenance(project.name, version.number, staged.job))
        sha256, stamped = version.store.add(data)
        size = len(data)
        version.placements.append(Placement(path, stamped))
    entry = LockEntry(spec.fingerprint, spec.prompt, lock_inputs(spec), sha256, size, path, version.number,
                      staged.job, change.sources)
    version.made.append(IndexEntry(spec.fingerprint, sha256, staged.format, staged.width, staged.height,
                                   size, spec.address, staged.job, spec.model, spec.seed, spec.prompt,
                                   version.number, now_iso()))
    if staged.thumbnail is not None and staged.thumbnail.is_file():
        version.placements.append(Placement(_thumb_path(path), staged.thumbnail))
    else:
        _add_thumb(version, _thumb_path(path), staged.file)
    return entry, change.action.status


def _add_restored(version: _Version, change: Change) -> tuple[LockEntry, str] | None:
    """A frame's image taken from the image store as it is (its provenance names the version that
    made it); None when the object is not in the local store (it failed to come from a backend)."""
    stored, spec = change.stored, change.spec
    assert stored is not None and spec is not None and change.path is not None
    source = version.store.object_path(stored.sha256)
    if not source.is_file():
        return None
    path = change.path + EXTENSIONS.get(stored.format, ".png")
    version.placements.append(Placement(path, source))
    thumb = version.store.thumbnail_path(stored.sha256)
    if thumb.is_file():
        version.placements.append(Placement(_thumb_path(path), thumb))
    else:
        _add_thumb(version, _thumb_path(path), source)
    if change.approval is not None and change.previous is not None:  # the approved image, as approved
        entry = _moved(change.previous, path)
    else:
        entry = LockEntry(spec.fingerprint, spec.prompt, lock_inputs(spec), stored.sha256, stored.bytes, path,
                          stored.version, stored.job, change.previous.sources if change.previous else {})
    return entry, change.action.status


def _keep_previous(version: _Version, change: Change,
                   failed: Mapping[str, str]) -> tuple[LockEntry, str] | None:
    """The frame's current image carried over (or restored), if there is one."""
    previous = change.previous
    if previous is None or change.path is None:
        return None  # a new frame that failed, or a frame outside --target never made
    moved = _moved(previous, change.path + _split_extension(previous.path)[1])
    path = moved.path
    old_file = version.old_existing(previous.path)
    source: str | Path
    if change.action is Action.REPAIR and change.restore_from is not None:
        source, status = change.restore_from, "repaired"
    elif old_file is None:
        return None  # nothing left to keep: the next plan will create it
    elif change.address in failed:
        source, status = old_file, FAILED
    else:
        source, status = old_file, HELD if change.action is Action.HOLD else KEPT
    version.placements.append(Placement(path, source))
    version.linked[path] = str(source)
    old_thumb = version.old_existing(_thumb_path(previous.path))
    if status in (KEPT, HELD) and old_thumb is not None:
        version.placements.append(Placement(_thumb_path(path), old_thumb))
    else:
        _add_thumb(version, _thumb_path(path), source)
    return moved, status


def _moved(entry: LockEntry, path: str) -> LockEntry:
    """`entry` at `path` in the new version (frames may have been reordered)."""
    return entry if entry.path == path else dataclasses.replace(entry, path=path)


def _add_thumb(version: _Version, path: str, source: str | Path) -> bool:
    """Add a thumbnail of `source`; False when it cannot be read (pages then show the alt text)."""
    try:
        version.placements.append(Placement(path, data=thumbnail(source), durable=False))
    except OSError:
        return False
    return True


def _thumb_path(image_path: str) -> str:
    """`thumbs/01-morning/04-pour.jpg` for `01-morning/04-pour.png` (3 per frame: string methods)."""
    stem, dot, extension = image_path.rpartition(".")
    if not dot or "/" in extension or stem[-1:] in ("", "/", "."):  # not the plain case: splitext's rules
        stem = _split_extension(image_path)[0]
    return f"{THUMBS}/{stem}.jpg"


def _split_extension(path: str) -> tuple[str, str]:
    """`posixpath.splitext`, as string methods (a fifth of a 10,000-frame assembly's string work
    went to it)."""
    dot = path.rfind(".")
    name = path.rfind("/") + 1
    if dot <= name or not path[name:dot].strip("."):  # no dot in the name, or only leading ones
        return path, ""
    return path[:dot], path[dot:]


def _manifest_frame(change: Change, entry: LockEntry, status: str, staged: StagedImage | None,
                    old: Mapping[str, Any], frame: model.Frame | None) -> dict[str, Any]:
    fresh = staged is not None and status != KEPT
    result: dict[str, Any] = {
        "address": change.address,
        "scene": change.address.split("/")[0],
        "path": entry.path,
        "thumbnail": _thumb_path(entry.path),
        "sha256": entry.image_sha256,
        "fingerprint": entry.fingerprint,
        "prompt": entry.prompt,
        "seed": entry.inputs.get("seed", 0),
        "model": entry.inputs.get("model", ""),
        "size": entry.inputs.get("size", ""),
        "width": staged.width if fresh and staged else _size(old.get("width")),
        "height": staged.height if fresh and staged else _size(old.get("height")),
        "job": entry.job,
        "generated_in": entry.version,
        "status": status,
    }
    if frame is not None:
        result.update(index=frame.index, shot=frame.shot, action=frame.action, dialogue=frame.dialogue,
                      duration=frame.duration, notes=frame.notes, characters=list(frame.characters))
        if frame.variant is not None:
            result["variant"] = frame.variant.as_dict()
        if change.spec is not None and change.spec.master is not None:
            result["master"] = change.spec.master
    if status in MADE or status == HELD:
        result["reasons"] = list(change.reasons)
        result["prompt_diff"] = change.prompt_diff
        if change.previous is not None:
            result["previous"] = {"path": change.previous.path, "version": change.previous.version,
                                  "sha256": change.previous.image_sha256, "prompt": change.previous.prompt}
    return result


def _page_keys(root: Mapping[str, Any]) -> dict[str, Any]:
    """The page key of each scene folder in a root manifest read back (held to strings by the
    comparison that uses them)."""
    scenes = root.get("scenes")
    return {scene["folder"]: scene.get("page_key") for scene in scenes if isinstance(scene, dict) and
            isinstance(scene.get("folder"), str)} if isinstance(scenes, list) else {}


def _size(value: Any) -> int:
    """A width or height read back from the version before (0 when it is not a size)."""
    return value if type(value) is int and 0 <= value <= 100_000 else 0
