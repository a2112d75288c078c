"""The plan: what apply will do to each frame (an Action, see actions.py), as a plain immutable
value. Planning writes nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from storyboard.actions import Action
from storyboard.errors import Location, PlanError, ProjectError, UserError
from storyboard.fsutil import atomic_write
from storyboard.images import FORMATS
from storyboard.jsonfile import indented_json, key_location, read_json
from storyboard.plans.batch import Batch, make_batches
from storyboard.plans.fingerprint import FrameSpec, SourceHashes, canonical_json, sha256_hex
from storyboard.plans.prepare import prepare
from storyboard.project import model
from storyboard.providers.base import Capabilities
from storyboard.state.lock_reading import LockReading
from storyboard.state.lockfile import Approval, Lock, LockEntry, read_lock
from storyboard.state.manifest import read_manifest
from storyboard.state.store import ImageStore, IndexEntry, StoreView
from storyboard.state.versions import StatCache, frame_paths, latest_version, version_name, versions

if TYPE_CHECKING:
    from storyboard.state.journal import Claim

PLAN_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Change:
    address: str
    action: Action
    spec: FrameSpec | None = None  # None for remove
    previous: LockEntry | None = None
    path: str | None = None  # in the new version, without extension
    reasons: tuple[str, ...] = ()
    prompt_diff: str = ""
    restore_from: Path | None = None  # repair without generating
    stored: IndexEntry | None = None  # restore: the image the store holds for it
    sources: Mapping[str, str] = field(default_factory=dict)  # frames generated: fingerprint.SourceHashes
    approval: Approval | None = None  # an approved frame's (held, or restored to its approved bytes)
    dropped: Approval | None = None  # --replace of an approved frame: the approval it drops
    after: str | None = None  # a variant derived from its master, made in the same run before it

    @property
    def generates(self) -> bool:
        return self.action in (Action.CREATE, Action.REGENERATE) or \
            (self.action is Action.REPAIR and not self.restore_from)


@dataclass(frozen=True, slots=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()  # `--variant AXIS=VALUE`


@dataclass(frozen=True)
class Plan:
    project: model.Project
    changes: tuple[Change, ...]
    batches: tuple[Batch, ...]
    capabilities: Capabilities
    lock: Lock
    options: PlanOptions = field(default_factory=PlanOptions)
    lock_sha256: str = ""
    neighbours: Mapping[str, Path] = field(default_factory=dict)  # unchanged frames' current images
    # fingerprints of every frame whose image is not the locked one, --target or not: what a
    # staged image or a submitted job of an interrupted run may still be wanted for
    outstanding: frozenset[str] = frozenset()
    max_cost: float | None = None  # the budget the estimate is held to (budget.max_cost or --max-cost)
    covered: frozenset[str] = frozenset()  # generated frames an interrupted run already paid for
    reattach_jobs: int = 0  # its jobs the next apply collects instead of paying again
    warnings: tuple[str, ...] = ()  # what the plan could not take into account (an unreachable backend)
    # what the plan knows of the latest version's files: apply carries it to the files it links
    checked: StatCache | None = field(default=None, compare=False, repr=False)

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action is action)

    @property
    def cost(self) -> float:
        return round(sum(len(b.specs) for b in self.batches) * self.capabilities.price_per_image, 4)

    @property
    def over_budget(self) -> bool:
        return self.max_cost is not None and self.cost > self.max_cost

    @property
    def has_changes(self) -> bool:
        return any(change.action.changes_output for change in self.changes)

    @property
    def inputs_sha256(self) -> str:
        """What the plan was made from; a saved plan whose inputs moved on is stale."""
        rows = [[c.address, c.action.value, c.spec.fingerprint if c.spec else None, c.path]
                for c in self.changes]
        config = self.project.provider
        options = [list(self.options.targets), list(self.options.replace)]
        if self.options.excludes:
            options.append(list(self.options.excludes))
        if self.options.variants:
            options.append(["variants", *self.options.variants])
        return sha256_hex(canonical_json({"changes": rows, "provider": [config.name, config.model],
                                          "options": options}))

    def summary(self) -> dict[str, Any]:
        counts = {action.value: self.count(action) for action in Action if action is not Action.MOVE}
        return {**counts, "moved": self.count(Action.MOVE), "requests": len(self.batches), "cost": self.cost}

    def variant_summary(self) -> dict[str, dict[str, Any]]:
        """Per variant (key, "" for frames of none): what changes, and the images paid for."""
        batched = {spec.address for batch in self.batches for spec in batch.specs}
        result: dict[str, dict[str, Any]] = {}
        for change in self.changes:
            key = change.address.partition("@")[2]
            counts = result.setdefault(key, {"create": 0, "regenerate": 0, "restore": 0, "remove": 0,
                                             "keep": 0, "hold": 0, "images": 0, "cost": 0.0})
            kept = change.action in (Action.KEEP, Action.MOVE, Action.REPAIR)
            name = "keep" if kept else change.action.value
            counts[name] = counts.get(name, 0) + 1
            if change.address in batched:
                counts["images"] += 1
                counts["cost"] = round(counts["images"] * self.capabilities.price_per_image, 4)
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "project": self.project.name,
            "inputs_sha256": self.inputs_sha256,
            "lock_sha256": self.lock_sha256,
            "options": {"targets": list(self.options.targets), "replace": list(self.options.replace),
                        "excludes": list(self.options.excludes), "variants": list(self.options.variants),
                        "provider": self.project.provider.name, "max_cost": self.max_cost},
            "changes": [_change_json(c) for c in self.changes if c.action.shown],
            "batches": [{"frames": list(b.frames), "size": b.size} for b in self.batches],
            "summary": self.summary(),
            **({"variants": self.variant_summary()} if self.project.axes else {}),
            "budget": {"max_cost": self.max_cost, "estimate": self.cost, "over": self.over_budget},
            "paid_earlier": {"frames": len(self.covered), "jobs": self.reattach_jobs},
            "held": [c.address for c in self.changes if c.action is Action.HOLD],
            "warnings": list(self.warnings),
        }


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "address": change.address,
        "action": change.action.value,
        "fingerprint": change.spec.fingerprint if change.spec else None,
        "reasons": list(change.reasons),
        "prompt_diff": change.prompt_diff,
        "path": change.path,
        "moved_from": change.previous.path if change.action is Action.MOVE and change.previous else None,
        **({"approval": change.approval.to_json()} if change.approval else {}),
        **({"drops_approval": change.dropped.to_json()} if change.dropped else {}),
        **({"after": change.after} if change.after else {}),
    }


def make_plan(project: model.Project, *, targets: Iterable[str] = (), replace: Iterable[str] = (),
              capabilities: Capabilities | None = None, max_cost: float | None = None,
              store: StoreView | None = None, excludes: Iterable[str] = (),
              variants: Iterable[str] = ()) -> Plan:
    """Diff the project's frames against storyboard.lock and the latest version on disk.

    Work an interrupted run paid for (staged images, jobs to re-attach to, read from the
    journal) is left out of the requests and the cost: the next apply collects it. A frame
    whose image `store` holds (the local image store by default) is restored, not made.
    """
    options = PlanOptions(tuple(targets), tuple(replace), tuple(excludes), tuple(variants))
    # a big lockfile is read by a helper process while the prompts render, a small one before
    # them (see LockReading); a project error is still told before a lockfile one
    reading = LockReading.start(project.lockfile_path)
    try:
        prepared, problems = prepare(project, capabilities)
        if problems:
            raise ProjectError(problems)
        lock = project_lock(project, reading)
    finally:
        reading.stop()
    capabilities, renderer, specs = prepared.capabilities, prepared.renderer, prepared.specs
    targeted = select_addresses(project, lock, options.targets, "--target")
    if options.variants:  # --variant narrows whatever else is targeted
        chosen = {frame.address for frame in select_variants(project, options.variants)}
        targeted = chosen if targeted is None else targeted & chosen
    excluded = select_addresses(project, lock, options.excludes, "--exclude")
    if excluded:  # the opposite of --target: everything (or everything targeted) but these
        everything = {spec.address for spec in specs} | set(lock.frames)
        targeted = (everything if targeted is None else targeted) - excluded
    needed: dict[str, str] = {}  # a master never made, for a variant targeted: made first
    if targeted is not None:
        needed = {spec.master: spec.address for spec in specs if spec.master and spec.address in targeted
                  and spec.master not in targeted and spec.master not in lock.frames}
        targeted |= set(needed)
    forced = select_addresses(project, lock, options.replace, "--replace")
    inspector = _LatestVersion(project)
    store = store or StoreView(ImageStore(project.state_path))
    paths = frame_paths(project)
    outstanding: set[str] = set()

    sources = SourceHashes(project)

    def decide(spec: FrameSpec) -> Change | None:
        previous = lock.frames.get(spec.address)
        if previous is None or previous.fingerprint != spec.fingerprint:
            outstanding.add(spec.fingerprint)
        path = paths[spec.address]
        if targeted is not None and spec.address not in targeted:
            if previous is None:
                return None
            return Change(spec.address, _kept(previous, path), None, previous, path)
        approval = lock.approval(spec.address)
        is_forced = forced is not None and spec.address in forced
        if approval is not None and previous is not None and not is_forced:
            change = _decide_approved(spec, previous, path, inspector, store, approval)
        else:
            change = _decide(spec, previous, path, inspector, store, is_forced)
            if approval is not None and is_forced:
                dropped = f"drops the approval by {approval.by}"
                change = dataclasses.replace(change, dropped=approval, reasons=(*change.reasons, dropped))
        if spec.address in needed:
            why = f"the master of {needed[spec.address]}"
            change = dataclasses.replace(change, reasons=(*change.reasons, why))
        if change.generates:  # only frames to generate pay for naming their sources
            frame = project.frame(spec.address)
            assert frame is not None
            change = _with_sources(change, sources.later(project.scene(frame.scene_id), frame))
        return change

    wanted = {spec.address for spec in specs}
    derived = [spec for spec in specs if spec.master is not None]
    changes = [change for spec in specs if spec.master is None and (change := decide(spec)) is not None]
    changes = _whole_scenes(project, changes, targeted, sources)
    if derived:  # after their masters: a variant's inputs name its master's image
        changes = _in_story_order(project, [*changes, *_derived_changes(derived, changes, decide)])
        changes = _whole_scenes(project, changes, targeted, sources)
    for address, previous in sorted(lock.frames.items()):
        if address not in wanted and (targeted is None or address in targeted or
                                      (not excluded and _in(address, options.targets))):
            changes.append(Change(address, Action.REMOVE, None, previous))
    unique: dict[str, FrameSpec] = {}  # frames with the same inputs are one image, made once
    for change in changes:
        if change.generates and change.spec is not None:
            unique.setdefault(change.spec.fingerprint, change.spec)
    to_generate = list(unique.values())
    paid = _paid_earlier(project, to_generate)
    neighbours = inspector.images(changes) if to_generate else {}
    if derived and to_generate:
        neighbours.update(_restored_images(changes, store.local))
    batches = make_batches(project, [s for s in to_generate if s.fingerprint not in paid.covered],
                           capabilities, renderer, neighbours)
    warnings = tuple(f"{c.address}: {c.reasons[-1]}" for c in changes if _approved_image_lost(c))
    if store.unreachable:
        warnings += (f"planned without the backend's store: {store.unreachable}",)
    return Plan(project, tuple(changes), tuple(batches), capabilities, lock, options, lock.sha256,
                MappingProxyType(neighbours), frozenset(outstanding),
                project.max_cost if max_cost is None else max_cost, paid.covered, len(paid.jobs), warnings,
                inspector.cache)


def _derived_changes(derived: Sequence[FrameSpec], changes: Sequence[Change],
                     decide: Callable[[FrameSpec], Change | None]) -> list[Change]:
    """What to do for variants made from their masters, once the masters are decided: a variant's
    inputs name the image its master will have, and a master made again takes its variants along."""
    masters = {change.address: change for change in changes}
    result = []
    for spec in derived:
        master = masters.get(spec.master or "")
        change = decide(spec.derived(_image_fingerprint(master)))
        if change is None or master is None or not master.generates or change.spec is None:
            pass
        elif change.action in (Action.KEEP, Action.MOVE):  # --replace of the master: same inputs
            change = dataclasses.replace(change, action=Action.REGENERATE, after=master.address,
                                         reasons=(f"its master {master.address} is made again",))
        elif change.generates:
            change = dataclasses.replace(change, after=master.address)
        if change is not None:
            result.append(change)
    return result


def _restored_images(changes: Sequence[Change], local: ImageStore) -> dict[str, Path]:
    """Images that frames restored without generating will have (a master, for its variants)."""
    found: dict[str, Path] = {}
    for change in changes:
        if change.restore_from is not None:
            found[change.address] = change.restore_from
        elif change.stored is not None and local.object_path(change.stored.sha256).is_file():
            found[change.address] = local.object_path(change.stored.sha256)
    return found


def _image_fingerprint(change: Change | None) -> str | None:
    """The fingerprint of the image a frame will have after the apply (None: not planned)."""
    if change is None:
        return None
    if change.spec is not None and change.action in (Action.CREATE, Action.REGENERATE, Action.RESTORE):
        return change.spec.fingerprint
    if change.previous is not None:
        return change.previous.fingerprint
    return change.spec.fingerprint if change.spec is not None else None


def _in_story_order(project: model.Project, changes: Sequence[Change]) -> list[Change]:
    order = {frame.address: number for number, frame in enumerate(project.frames)}
    return sorted(changes, key=lambda change: order.get(change.address, len(order)))


def select_variants(project: model.Project, wanted: Sequence[str]) -> tuple[model.Frame, ...]:
    """The frames `--variant AXIS=VALUE` (repeatable; values of one axis add up) asks for; a frame
    that does not vary over an axis is in every value of it."""
    chosen: dict[str, set[str]] = {}
    axes = {axis.name: axis for axis in project.axes}
    for item in wanted:
        axis_name, _, value = item.partition("=")
        axis = axes.get(axis_name)
        if axis is None:
            close = difflib.get_close_matches(axis_name, list(axes), n=1)
            raise UserError(f"--variant {item}: the project has no variant axis `{axis_name}`",
                            hint=f"did you mean `{close[0]}`?" if close else
                            f"axes: {', '.join(axes) or 'none (no `variants:` in storyboard.yaml)'}; "
                            "write --variant AXIS=VALUE")
        if axis.value(value) is None:
            names = [v.name for v in axis.values]
            close = difflib.get_close_matches(value, names, n=1)
            raise UserError(f"--variant {item}: `{value}` is not a value of axis `{axis_name}`",
                            hint=f"did you mean `{axis_name}={close[0]}`?" if close else
                            f"values of {axis_name}: {', '.join(names)}")
        chosen.setdefault(axis_name, set()).add(value)
    return tuple(frame for frame in project.frames if frame.variant is None or frame.variant.matches(chosen))


def _whole_scenes(project: model.Project, changes: list[Change], targeted: set[str] | None,
                  sources: SourceHashes) -> list[Change]:
    """`regenerate: scene`: in a scene where a frame is made again, its kept frames of the same
    variant are too (the reason names the frame that caused it); approved frames and frames
    outside --target stay."""
    causes: dict[str, str] = {}
    for change in changes:
        scene_id = change.address.split("/")[0]
        scene = project.scene(scene_id) if change.spec is not None else None
        if scene is not None and scene.regenerate == "scene" and change.generates:
            causes.setdefault(_scene_variant(change.address), change.address)
    if not causes:
        return changes
    result = []
    for change in changes:
        cause = causes.get(_scene_variant(change.address))
        if cause and change.action in (Action.KEEP, Action.MOVE) and change.spec is not None \
                and change.approval is None and (targeted is None or change.address in targeted):
            change = dataclasses.replace(change, action=Action.REGENERATE,
                                         reasons=(f"regenerate: scene ({cause} changed)",))
            frame = project.frame(change.address)
            assert frame is not None
            change = _with_sources(change, sources.later(project.scene(frame.scene_id), frame))
        result.append(change)
    return result


def _scene_variant(address: str) -> str:
    """`morning@de-DE,story` for `morning/pour@de-DE,story`: a scene's frames of one variant."""
    base, _, variant = address.partition("@")
    return f"{base.split('/')[0]}@{variant}"


def project_lock(project: model.Project, reading: LockReading | None = None) -> Lock:
    """The project's storyboard.lock (as `reading` reads it, if given); one written for another
    project is an error."""
    lock = reading.result() if reading is not None else read_lock(project.lockfile_path)
    if lock.project and lock.project != project.name:
        raise UserError(f"storyboard.lock belongs to project `{lock.project}`, not `{project.name}`",
                        hint="delete the lockfile to start this project from scratch")
    return lock


def _paid_earlier(project: model.Project, to_generate: Sequence[FrameSpec]) -> Claim:
    """What of `to_generate` an interrupted run already paid for (read from its journal)."""
    from storyboard.state.journal import Claim, Journal, claim  # only when there is something to make

    if not to_generate:
        return Claim()
    return claim(Journal(project.state_path).read(), (spec.fingerprint for spec in to_generate))


def _decide(spec: FrameSpec, previous: LockEntry | None, path: str, inspector: _LatestVersion,
            store: StoreView, forced: bool) -> Change:
    """What to do for one frame; the store is asked only about frames the latest version lacks."""
    if previous is None:
        stored = store.find(spec.fingerprint)
        if stored is not None:
            return Change(spec.address, Action.RESTORE, spec, None, path, ("from store",), stored=stored)
        return Change(spec.address, Action.CREATE, spec, None, path)
    if previous.fingerprint != spec.fingerprint or forced:
        reasons = _reasons(spec, previous) or ("replace requested",)
        diff = prompt_diff(previous.prompt, spec.prompt)
        stored = None if forced else store.find(spec.fingerprint)
        if stored is not None:  # made before: a reverted edit, another branch
            return Change(spec.address, Action.RESTORE, spec, previous, path, reasons, diff, stored=stored)
        return Change(spec.address, Action.REGENERATE, spec, previous, path, reasons, diff)
    problem = inspector.problem(previous)
    if problem:
        stored = store.find_locked(spec.fingerprint, previous.image_sha256, _as_stored(spec, previous))
        if stored is not None:
            return Change(spec.address, Action.RESTORE, spec, previous, path, (problem,), stored=stored)
        restore = inspector.older_copy(spec.address, previous)
        return Change(spec.address, Action.REPAIR, spec, previous, path, (problem,), restore_from=restore)
    return Change(spec.address, _kept(previous, path), spec, previous, path)


_NOWHERE = "the approved image is in no version and not in the store"


def _decide_approved(spec: FrameSpec, previous: LockEntry, path: str, inspector: _LatestVersion,
                     store: StoreView, approval: Approval) -> Change:
    """An approved frame keeps its approved bytes: held when its inputs changed, restored (never
    made again) when the latest version lacks them."""
    held = previous if previous.image_sha256 == approval.sha256 else \
        inspector.approved_entry(spec.address, approval, previous, store.local)
    if held is None:
        return Change(spec.address, Action.HOLD, spec, previous, path,
                      (f"{_NOWHERE} (approved in {version_name(approval.version)})",), approval=approval)
    changed = held.fingerprint != spec.fingerprint
    reasons = _reasons(spec, held) or ("inputs",) if changed else ()
    diff = prompt_diff(held.prompt, spec.prompt) if changed else ""
    problem = inspector.problem(held) if held is previous else \
        f"approved image from {version_name(approval.version)}"
    if problem is None:
        if changed:
            return Change(spec.address, Action.HOLD, spec, held, path, reasons, diff, approval=approval)
        return Change(spec.address, _kept(held, path), spec, held, path, approval=approval)
    restore = inspector.older_copy(spec.address, held)
    if restore is not None:
        return Change(spec.address, Action.REPAIR, spec, held, path, (problem, *reasons), diff,
                      restore_from=restore, approval=approval)
    stored = store.find_locked(held.fingerprint, held.image_sha256, _as_stored(spec, held))
    if stored is not None:
        return Change(spec.address, Action.RESTORE, spec, held, path, (problem, *reasons), diff,
                      stored=stored, approval=approval)
    return Change(spec.address, Action.HOLD, spec, held, path, (problem, *reasons, _NOWHERE), diff,
                  approval=approval)


def _approved_image_lost(change: Change) -> bool:
    """A held frame whose approved bytes are nowhere to be had (the plan warns; nothing to send)."""
    return change.action is Action.HOLD and bool(change.reasons) and change.reasons[-1].startswith(_NOWHERE)


def _as_stored(spec: FrameSpec, entry: LockEntry) -> IndexEntry:
    """What the lockfile says of a frame's image, as the store describes one."""
    extension = posixpath.splitext(entry.path)[1].lstrip(".")
    return IndexEntry(spec.fingerprint, entry.image_sha256, FORMATS.get(extension, "png"), 0, 0,
                      entry.image_bytes, spec.address, entry.job, spec.model, spec.seed, spec.prompt,
                      entry.version, "")


def _kept(previous: LockEntry, path: str) -> Action:
    """An unchanged frame keeps its place, or moves when frames were reordered."""
    return Action.KEEP if previous.path.startswith(path + ".") else Action.MOVE


def _with_sources(change: Change, sources: Mapping[str, str]) -> Change:
    """The change with its sources, and a prompt change explained by the sources that moved."""
    previous = change.previous
    reasons = change.reasons
    if previous is not None and previous.sources and "prompt" in reasons:
        moved = [name for name in sorted(set(sources) | set(previous.sources))
                 if sources.get(name) != previous.sources.get(name)]
        if moved:
            reasons = tuple(f"prompt ({', '.join(moved)})" if r == "prompt" else r for r in reasons)
    # every field named: dataclasses.replace takes twice as long (0.3 s of a 100,000-frame first
    # plan); a test holds this to replace for a change with every field set
    return Change(address=change.address, action=change.action, spec=change.spec, previous=previous,
                  path=change.path, reasons=reasons, prompt_diff=change.prompt_diff,
                  restore_from=change.restore_from, stored=change.stored, sources=sources,
                  approval=change.approval, dropped=change.dropped, after=change.after)


def lock_inputs(spec: FrameSpec) -> dict[str, Any]:
    """The deciding inputs as the lockfile keeps them (the prompt is kept beside them)."""
    inputs = spec.deciding_inputs()
    inputs.pop("prompt")
    return inputs


def _reasons(spec: FrameSpec, previous: LockEntry) -> tuple[str, ...]:
    reasons = ["prompt"] if spec.prompt != previous.prompt else []
    now = lock_inputs(spec)
    for key in sorted(set(now) | set(previous.inputs)):
        if now.get(key) != previous.inputs.get(key):
            reasons.append(f"master {spec.master}" if key == "derived_from" and spec.master else
                           key.replace("_", " "))
    return tuple(reasons)


def prompt_diff(old: str, new: str) -> str:
    """A unified diff of two prompts, one sentence per line."""
    if old == new:
        return ""
    lines = difflib.unified_diff(_sentences(old), _sentences(new), "before", "after", n=1, lineterm="")
    return "\n".join(lines)


def _sentences(text: str) -> list[str]:
    return [part for part in re.split(r"(?<=[.!?;])\s+", text) if part]


def select_addresses(project: model.Project, lock: Lock, addresses: Sequence[str],
                     flag: str) -> set[str] | None:
    """The frame addresses that scene or frame `addresses` name; an unknown one is an error.

    Frames that only the lockfile still knows (removed from the project) can be named too.
    """
    if not addresses:
        return None
    from storyboard.project.model import select_frames

    known = {frame.address for frame in project.frames} | {s.id for s in project.scenes} | \
        {frame.base_address for frame in project.frames}
    locked = set(lock.frames) | {address.split("/")[0] for address in lock.frames} | \
        {address.split("@")[0] for address in lock.frames}
    unknown = [a for a in addresses if a not in known and a not in locked]
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known | locked), n=1)
        raise UserError(f"{flag} {unknown[0]}: no scene or frame `{unknown[0]}` in project {project.name}",
                        hint=f"did you mean `{close[0]}`?" if close else
                        "addresses are SCENE, SCENE/FRAME or SCENE/FRAME@VARIANT "
                        "(`storyboard render` lists them)")
    selected = {frame.address for frame in select_frames(project, [a for a in addresses if a in known])}
    return selected | {a for a in lock.frames if _in(a, addresses)}


def _in(address: str, addresses: Sequence[str]) -> bool:
    """Whether `address` is one of `addresses`, or in a scene or frame they name."""
    return address in addresses or address.split("/")[0] in addresses or address.split("@")[0] in addresses


class _LatestVersion:
    """Checks the latest version's files against the lockfile (stat cache first, then bytes)."""

    def __init__(self, project: model.Project) -> None:
        self.output = project.output_path
        self.number = latest_version(self.output)
        self.cache = StatCache(project.root)
        self.folder = str(self.output / version_name(self.number)) if self.number is not None else ""

    def problem(self, entry: LockEntry) -> str | None:
        if self.number is None:
            return "no output version on disk"
        digest = self.cache.sha256(f"{self.folder}/{entry.path}")  # str: cheap per frame
        if digest is None:
            return f"{version_name(self.number)}/{entry.path} is missing"
        if digest != entry.image_sha256:
            return f"{version_name(self.number)}/{entry.path} was changed"
        return None

    def images(self, changes: Sequence[Change]) -> dict[str, Path]:
        """The latest version's images of frames kept as they are (checked by `problem`); held
        frames' too, so that new frames of a sequential scene match the approved ones."""
        if self.number is None:
            return {}
        folder = self.output / version_name(self.number)
        return {c.address: folder / c.previous.path for c in changes
                if (c.action in (Action.KEEP, Action.MOVE) or
                    (c.action is Action.HOLD and not _approved_image_lost(c)))
                and c.spec is not None and c.previous is not None}

    def approved_entry(self, address: str, approval: Approval, latest: LockEntry,
                       store: ImageStore) -> LockEntry | None:
        """The lock entry of an image approved in an older version than the latest one holds:
        from that version's manifest, else from the image store's index."""
        frame = self._manifest_frame(approval.version, address, approval.sha256)
        inputs = dict(latest.inputs)
        if frame is not None:
            inputs.update({key: frame[key] for key in ("seed", "model", "size") if key in frame})
            file = self.output / version_name(approval.version) / str(frame["path"])
            size = file.stat().st_size if file.is_file() else 0
            return LockEntry(approval.fingerprint, str(frame.get("prompt", "")), inputs, approval.sha256,
                             size, str(frame["path"]), int(frame.get("generated_in", approval.version)),
                             str(frame.get("job", "")), latest.sources)
        stored = store.lookup(approval.fingerprint)
        if stored is None or stored.sha256 != approval.sha256:
            return None
        extension = next((ext for ext, name in FORMATS.items() if name == stored.format), "png")
        inputs.update(seed=stored.seed, model=stored.model)
        return LockEntry(approval.fingerprint, stored.prompt, inputs, approval.sha256, stored.bytes,
                         posixpath.splitext(latest.path)[0] + "." + extension, stored.version, stored.job,
                         latest.sources)

    def _manifest_frame(self, number: int, address: str, sha256: str) -> dict[str, Any] | None:
        if number not in versions(self.output):
            return None
        try:
            frames = read_manifest(self.output, number).get("frames", [])
        except UserError:
            return None
        return next((f for f in frames if f.get("address") == address and f.get("sha256") == sha256), None)

    def older_copy(self, address: str, entry: LockEntry) -> Path | None:
        """A file with the locked bytes in an older version, if one survives."""
        for number in reversed(versions(self.output)):
            if number == self.number:
                continue
            try:
                frames = read_manifest(self.output, number).get("frames", [])
            except UserError:
                continue
            for frame in frames:
                if frame.get("address") == address and frame.get("sha256") == entry.image_sha256:
                    file = self.output / version_name(number) / str(frame["path"])
                    if self.cache.sha256(file) == entry.image_sha256:
                        return file
        return None


def save_plan(plan: Plan, path: Path) -> None:
    atomic_write(path, (indented_json(plan.to_json()) + "\n").encode())


def load_saved_plan(path: Path, project: model.Project) -> Plan:
    """Plan again from the same options; refuse if the result or the lockfile differ from the file."""
    hint = "make a new one with `storyboard plan -o FILE`"
    try:
        saved = read_json(path, "saved plan", PlanError, hint)
    except FileNotFoundError:
        raise PlanError(f"no saved plan at {path}", hint=hint) from None
    from storyboard.project.schema import describe_error, schema_errors

    if not isinstance(saved, dict) or saved.get("format") != PLAN_FORMAT:
        raise PlanError(f"not a storyboard plan (format {PLAN_FORMAT})", hint=hint, location=Location(path))
    errors = schema_errors("plan", saved)
    if errors:
        where = ".".join(str(part) for part in errors[0].absolute_path) or "(top level)"
        raise PlanError(f"not a storyboard plan: {where}: {describe_error(errors[0])}", hint=hint,
                        location=key_location(path, list(errors[0].absolute_path)))
    if saved.get("project") != project.name:
        raise PlanError(f"a plan for project `{saved.get('project')}`, not `{project.name}`",
                        location=key_location(path, ["project"]))
    options: Mapping[str, Any] = saved.get("options", {})
    plan = make_plan(project, targets=options.get("targets", ()), replace=options.get("replace", ()),
                     excludes=options.get("excludes", ()), max_cost=options.get("max_cost"),
                     variants=options.get("variants", ()))
    stale = []
    if plan.lock_sha256 != saved.get("lock_sha256"):
        stale.append("storyboard.lock changed since it was planned")
    if plan.inputs_sha256 != saved.get("inputs_sha256"):
        stale.append("the project's frames changed since it was planned")
    if stale:
        raise PlanError(f"saved plan {path} is stale: {'; '.join(stale)}",
                        hint="run `storyboard plan -o FILE` again and review it")
    return plan
