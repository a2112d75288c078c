"""The front door: everything the command line does, as typed functions for build scripts.

    import storyboard
    project = storyboard.load("campaign/")                  # or load(path, provider=..., variables=...)
    problems = storyboard.check(project)                     # every diagnostic of every stage
    plan = storyboard.plan(project, targets=[...], replace=[...])
    result = storyboard.apply(plan, on_event=print)          # apply_async for async callers
    storyboard.history(project); storyboard.show(project, "v0003"); storyboard.gc(project, keep=5)
    storyboard.export_pdf(project, version=None, path="board.pdf")

User mistakes raise storyboard.UserError (ProjectError carries every Diagnostic); the
command line prints them. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from storyboard.errors import Diagnostic, ProjectError, UserError
from storyboard.plans.batch import Batch, make_batches
from storyboard.plans.planner import (
    Plan,
    load_saved_plan,
    make_plan,
    project_lock,
    save_plan,
    select_variants,
)
from storyboard.plans.prepare import prepare
from storyboard.project.loader import read_project
from storyboard.project.model import Frame, Project, select_frames
from storyboard.project.prompts import RenderedFrame, Renderer, render_all
from storyboard.state.lockfile import read_lock
from storyboard.state.versions import version_name

if TYPE_CHECKING:  # what only apply needs is imported when it runs: `plan` starts faster
    from storyboard.project.fmt import Formatted
    from storyboard.providers.base import Provider
    from storyboard.run.apply import ApplyResult
    from storyboard.run.events import EventSink
    from storyboard.run.sync import Pulled, Pushed, RemoteGc
    from storyboard.state.backend import Backend
    from storyboard.state.lockfile import Approval

__all__ = [
    "Collected",
    "Export",
    "Plan",
    "Project",
    "RenderedFrame",
    "VersionSummary",
    "VersionView",
    "apply",
    "apply_async",
    "approve",
    "backend",
    "batches",
    "check",
    "export_animatic",
    "export_contact_sheet",
    "export_pdf",
    "export_timeline",
    "fmt",
    "force_unlock",
    "gc",
    "gc_remote",
    "history",
    "import_shotlist",
    "init",
    "load",
    "load_plan",
    "locked",
    "plan",
    "pull",
    "push",
    "render",
    "save_plan",
    "schemas",
    "show",
    "unapprove",
]


# --- the project -----------------------------------------------------------------------------


def load(path: str | Path = ".", *, provider: str | None = None,
         variables: Mapping[str, Any] | None = None, var_files: Iterable[str | Path] = ()) -> Project:
    """The project at `path` (a folder, or its storyboard.yaml).

    Problems in its files do not raise: they are in `check(project)` (and `plan` refuses
    a project that has any). Only a storyboard.yaml that cannot be read raises.
    `provider` replaces the project's provider (its `options` go with it only when the
    name stays the same); `var_files` (YAML mappings, in order) then `variables` are laid over
    the project's `variables:`, as Terraform's -var-file and -var.
    """
    project = read_project(path)
    overlay: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for file in var_files:
        from storyboard.errors import display_path
        from storyboard.project.loader import read_var_file

        values = read_var_file(Path(file))
        overlay.update(values)
        sources.update(dict.fromkeys(values, f"--var-file {display_path(Path(file))}"))
    sources.update(dict.fromkeys(variables or {}, "--var"))
    variables = {**overlay, **(variables or {})}
    if provider and provider != project.provider.name:
        config = dataclasses.replace(project.provider, name=provider, options=MappingProxyType({}))
        project = dataclasses.replace(project, provider=config)
    if variables:
        project = dataclasses.replace(project, variables=MappingProxyType({**project.variables, **variables}),
                                      variable_sources=MappingProxyType(sources))
    return project


def check(project: Project) -> list[Diagnostic]:
    """Every problem of every stage (files, schema, names, templates, provider, sizes), in file order."""
    return prepare(project)[1]


def render(project: Project, addresses: Iterable[str] = (),
           variants: Iterable[str] = ()) -> list[RenderedFrame]:
    """The prompts of every frame, or of the scenes and frames named (and the `AXIS=VALUE`
    variants asked for), in story order."""
    frames = _chosen(project, tuple(addresses), tuple(variants))
    rendered, problems = render_all(project, frames, Renderer(project))
    if project.diagnostics or problems:
        raise ProjectError([*project.diagnostics, *problems])
    return rendered


def _chosen(project: Project, addresses: tuple[str, ...],
            variants: tuple[str, ...]) -> tuple[Frame, ...] | None:
    """The frames that addresses and `--variant AXIS=VALUE` choose (None: all of them)."""
    if not addresses and not variants:
        return None
    frames = select_frames(project, addresses) if addresses else project.frames
    if variants:
        chosen = {frame.address for frame in select_variants(project, variants)}
        frames = tuple(frame for frame in frames if frame.address in chosen)
    return frames


def batches(project: Project, addresses: Iterable[str] = (), variants: Iterable[str] = ()) -> list[Batch]:
    """The requests generating every frame (or those chosen) would make, with their prompts."""
    chosen = _chosen(project, tuple(addresses), tuple(variants))
    wanted = None if chosen is None else {frame.address for frame in chosen}
    prepared, problems = prepare(project)
    if problems:
        raise ProjectError(problems)
    specs = [spec for spec in prepared.specs if wanted is None or spec.address in wanted]
    return make_batches(project, specs, prepared.capabilities, prepared.renderer)


# --- plan and apply --------------------------------------------------------------------------


def plan(project: Project, *, targets: Iterable[str] = (), replace: Iterable[str] = (),
         max_cost: float | None = None, excludes: Iterable[str] = (), variants: Iterable[str] = ()) -> Plan:
    """What apply would do, diffed against storyboard.lock; raises ProjectError if the project has problems.

    `excludes` leaves those scenes and frames as they are (the opposite of `targets`);
    `variants` (`locale=de-DE`, repeatable) plans only those variants' frames.
    `max_cost` replaces budget.max_cost; `Plan.over_budget` says whether the estimate is above it.
    A frame whose image the image store (or the backend's) holds is restored, not made; a
    backend that cannot be read leaves that to the local store (`Plan.warnings` says so).
    """
    from storyboard.state.store import ImageStore, StoreView

    store = StoreView(ImageStore(project.state_path), backend(project))
    return make_plan(project, targets=targets, replace=replace, max_cost=max_cost, store=store,
                     excludes=excludes, variants=variants)


def backend(project: Project) -> Backend | None:
    """The project's backend, opened (None when it has none)."""
    if project.backend is None:
        return None
    from storyboard.state.backend import open_backend

    return open_backend(project.backend)


@contextlib.contextmanager
def locked(project: Project, *, timeout: float = 0.0, operation: str = "apply") -> Iterator[None]:
    """Hold this machine's run lock and the backend's (waiting up to `timeout` seconds for it).

    `apply` takes them itself; a caller that plans and then applies holds them around both,
    so that no other apply publishes in between (re-entrant: the apply inside does not wait).
    """
    from storyboard.run.lock import locked as run_locked

    with run_locked(project.state_path, backend(project), operation, timeout):
        yield


def load_plan(project: Project, path: str | Path) -> Plan:
    """A plan saved with `save_plan`, planned again and refused (PlanError) if it is stale."""
    return load_saved_plan(Path(path), project)


async def apply_async(plan: Plan, *, on_event: EventSink | None = None, parallelism: int | None = None,
                      stop: threading.Event | None = None, provider: Provider | None = None,
                      lock_timeout: float = 0.0) -> ApplyResult:
    """Carry out `plan`: generate, write a new version and the lockfile. Safe to interrupt.

    `on_event` gets every event (storyboard.run.events) as it happens. `stop`, once set,
    stops new submissions; jobs already paid for are still collected. `provider`: a
    provider object to use instead of the one the project names (tests). With a backend,
    its run lock is waited for up to `lock_timeout` seconds (0: refused at once if held).
    """
    from storyboard.run.apply import apply as apply_plan
    from storyboard.run.events import ignore

    return await apply_plan(plan, on_event=on_event or ignore, parallelism=parallelism, stop=stop,
                            provider=provider, lock_timeout=lock_timeout)


def apply(plan: Plan, *, on_event: EventSink | None = None, parallelism: int | None = None,
          stop: threading.Event | None = None, lock_timeout: float = 0.0) -> ApplyResult:
    """`apply_async` for synchronous callers (it runs its own event loop)."""
    import anyio

    async def run() -> ApplyResult:
        return await apply_async(plan, on_event=on_event, parallelism=parallelism, stop=stop,
                                 lock_timeout=lock_timeout)

    return anyio.run(run)


# --- versions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionSummary:
    """One version in `history`: when it was made and what it changed."""

    number: int
    created_at: str
    frames: int
    changes: Mapping[str, int]
    latest: bool
    here: bool = True  # in out/ on this machine
    published: bool = False  # on the backend
    approved: int = 0  # frames approved in it (the latest: as storyboard.lock says now)

    @property
    def name(self) -> str:
        return version_name(self.number)


@dataclass(frozen=True)
class VersionView:
    """One version as `show` sees it: its folder and its manifest with every frame merged in."""

    number: int
    folder: Path
    manifest: Mapping[str, Any]

    @property
    def frames(self) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = self.manifest.get("frames", [])
        return frames


def history(project: Project) -> list[VersionSummary]:
    """Every version on disk and, with a backend, every version published there; oldest first."""
    from storyboard.state.manifest import frame_count, read_manifest
    from storyboard.state.versions import latest_version, versions

    output = project.output_path
    latest = latest_version(output)
    local = versions(output)
    shared = backend(project)
    published = shared.version_numbers() if shared else []
    approvals = read_lock(project.lockfile_path).approvals
    summaries = []
    for number in sorted({*local, *published}):
        if number in local:
            manifest = read_manifest(output, number, frames=False)
        else:
            from storyboard.run.sync import published_manifest

            assert shared is not None
            manifest = published_manifest(shared, number, frames=False)
        changes = MappingProxyType(dict(manifest.get("changes", {})))
        approved = len(approvals) if number == latest else int(changes.get("approved", 0))
        summaries.append(VersionSummary(number, str(manifest.get("created_at", "?")), frame_count(manifest),
                                        changes, number == latest, number in local, number in published,
                                        approved))
    return summaries


def show(project: Project, version: str | int | None = None) -> VersionView:
    """A version (`v0003`, 3, `latest`; None: the latest), every frame with its status."""
    from storyboard.state.manifest import read_manifest
    from storyboard.state.versions import resolve_version, versions

    output = project.output_path
    shared = backend(project)
    if shared is not None and version is not None:  # a version published from another machine
        digits = str(version).lower().removeprefix("v")
        wanted = int(digits) if digits.isdigit() else -1
        if wanted not in versions(output) and wanted in shared.version_numbers():
            from storyboard.run.sync import published_manifest

            number = wanted
            return _approved_now(project, VersionView(number, output / version_name(number),
                                                      published_manifest(shared, number)))
    number = resolve_version(output, None if version is None else str(version))
    view = VersionView(number, output / version_name(number), read_manifest(output, number))
    return _approved_now(project, view)


def _approved_now(project: Project, view: VersionView) -> VersionView:
    """The version with each frame's approval as storyboard.lock says now (approve and unapprove
    change the lockfile, not versions already written)."""
    approvals = read_lock(project.lockfile_path).approvals
    frames = []
    for frame in view.frames:
        approval = approvals.get(str(frame.get("address")))
        frame = {key: value for key, value in frame.items() if key != "approval"}
        if approval is not None and approval.sha256 == frame.get("sha256"):
            frame["approval"] = {"by": approval.by, "at": approval.at, "version": approval.version}
        frames.append(frame)
    return VersionView(view.number, view.folder, MappingProxyType({**view.manifest, "frames": frames}))


@dataclass(frozen=True)
class Collected:
    """What `gc` removed (or, with dry_run, would remove) from out/."""

    versions: tuple[int, ...]
    bytes: int  # freed: files no kept version and not the image store links to
    dry_run: bool = False


def gc(project: Project, keep: int, *, dry_run: bool = False) -> Collected:
    """Remove all but the `keep` newest versions in out/ (never the latest), under the run lock."""
    from storyboard.state.versions import collect_garbage, garbage, reclaimable_bytes

    output = project.output_path
    with locked(project, operation="gc"):
        doomed = garbage(output, keep)
        freed = reclaimable_bytes(output, doomed)
        if not dry_run:
            collect_garbage(output, keep)
    return Collected(tuple(doomed), freed, dry_run)


def gc_remote(project: Project, *, keep: int | None = None, keep_days: float = 30.0,
              force: bool = False) -> RemoteGc:
    """What the backend holds that nothing needs (a dry run unless `force`): versions past the
    `keep` newest, objects no kept version, young index entry or the lockfile references."""
    import time

    from storyboard.run.sync import gc_remote as collect

    shared = _required_backend(project)
    with locked(project, operation="gc"):
        return collect(project, shared, keep=keep, keep_days=keep_days, force=force, now=time.time())


def pull(project: Project, version: str | None = None) -> Pulled:
    """A version published on the backend (default: the newest), materialised in out/."""
    from storyboard.run.sync import pull as fetch_version

    return fetch_version(project, _required_backend(project), version)


def push(project: Project) -> Pushed:
    """Send the backend what only this machine holds (after an apply that could not publish)."""
    from storyboard.run.sync import push as send_all

    shared = _required_backend(project)
    with locked(project, operation="push"):
        return send_all(project, shared)


def force_unlock(project: Project, lock_id: str) -> dict[str, Any]:
    """Remove the backend's run lock `lock_id` (left by a run that died); what it said."""
    from storyboard.run.lock import force_unlock as unlock

    return unlock(_required_backend(project), lock_id)


def _required_backend(project: Project) -> Backend:
    shared = backend(project)
    if shared is None:
        raise UserError("this project has no backend", hint="add `backend: {url: s3://bucket/prefix}` "
                                                            "(or file:///folder) to storyboard.yaml")
    return shared


# --- shot lists in --------------------------------------------------------------------------


@dataclass(frozen=True)
class ShotlistImport:
    """A scene file written from a shot list, and what the sheet held that could not be taken."""

    path: Path
    scenes: int
    frames: int
    problems: tuple[Diagnostic, ...]  # rows left out, each at its line
    unknown_characters: tuple[str, ...]  # to add under characters/
    included: bool  # whether the project's `include:` reads the file


def import_shotlist(project: Project, sheet: str | Path, *, scene_file: str | Path | None = None,
                    mapping: Mapping[str, str] | None = None, force: bool = False) -> ShotlistImport:
    """Turn a shot list exported as CSV into a scene file of the project (default:
    scenes/<sheet name>.yaml); an existing file is replaced only with `force`."""
    from storyboard.fsutil import atomic_write
    from storyboard.project.shotlist import import_shotlist as convert

    source = Path(sheet)
    target = project.root / (scene_file or f"scenes/{source.stem.lower().replace(' ', '-')}.yaml")
    if not target.resolve().is_relative_to(project.root):
        raise UserError(f"{target} is outside the project folder",
                        hint="name a file under the project's scenes/")
    if target.exists() and not force:
        raise UserError(f"{target} already exists",
                        hint="name another --scene-file, or --force to replace it")
    imported = convert(source, list(project.characters), mapping)
    atomic_write(target, imported.text.encode("utf-8"))
    included = target.resolve() in {path.resolve() for path in read_project(project.root).files}
    return ShotlistImport(target, imported.scenes, imported.frames, tuple(imported.problems),
                          tuple(imported.unknown_characters), included)


# --- formatting ------------------------------------------------------------------------------


def fmt(project: Project, *, check: bool = False) -> list[Formatted]:
    """Every YAML file of the project in the canonical layout (storyboard.project.fmt), written
    unless `check`; each with its text before and after. Refused (ProjectError, each problem at
    its line) when a file cannot be read; other problems of the project do not stop it."""
    from storyboard.fsutil import atomic_write
    from storyboard.project.fmt import format_files

    unread = {d.location.file for d in project.diagnostics if d.location is not None
              and d.location.file.suffix in (".yaml", ".yml") and d.location.file not in project.files}
    try:
        formatted = format_files([*project.files, *sorted(unread)])  # those that failed fail again, located
    except ValueError as error:
        raise UserError(f"cannot format the project: {error}", hint="please report it") from None
    if not check:
        for item in formatted:
            if item.changed:
                atomic_write(item.path, item.after.encode("utf-8"))
    return formatted


# --- review --------------------------------------------------------------------------------


def approve(project: Project, addresses: Iterable[str] = (), *, every: bool = False,
            version: str | int | None = None, by: str | None = None) -> dict[str, Approval]:
    """Approve the images of the frames (or scenes) named, or of `every` frame, as the lockfile
    names them or as `version` holds them; recorded in storyboard.lock. A plan then holds an
    approved frame whose inputs change. `by`: who (default: git's user.name and user.email,
    else the OS user). Returns the approvals given."""
    from storyboard.run import approvals

    who = approvals.reviewer(project, by)
    with locked(project, operation="approve"):
        lock = project_lock(project)
        held = None
        if version is not None:
            shown = show(project, version)
            held = (shown.number, shown.frames)
        given = approvals.approve(project, lock, tuple(addresses), every=every, by=who, version=held)
        approvals.save(project, lock, {**lock.approvals, **given})
    return given


def unapprove(project: Project, addresses: Iterable[str] = (), *, every: bool = False) -> list[str]:
    """Remove the approvals of the frames (or scenes) named, or all; the addresses unapproved."""
    from storyboard.run import approvals

    with locked(project, operation="approve"):
        lock = project_lock(project)
        removed = approvals.unapprove(project, lock, tuple(addresses), every=every)
        approvals.save(project, lock, {a: v for a, v in lock.approvals.items() if a not in removed})
    return removed


# --- deliverables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """A deliverable written from a version."""

    path: Path
    version: int
    frames: int
    warnings: tuple[str, ...] = ()  # what it could not show (text no font can draw)


def _of_variants(project: Project, shown: VersionView, variants: Iterable[str]) -> VersionView:
    """The version with only the frames of the `AXIS=VALUE` variants asked for (all when none), a
    variant's frames in story order (one that does not vary over an axis sits in its own folder)."""
    wanted = tuple(variants)
    if not wanted:
        return shown
    chosen = {frame.address for frame in select_variants(project, wanted)}
    scenes = {scene.id: number for number, scene in enumerate(project.scenes)}

    def story_order(frame: Mapping[str, Any]) -> tuple[int, int]:
        return scenes.get(frame.get("scene", ""), len(scenes)), frame.get("index") or 0

    frames = sorted((frame for frame in shown.frames if frame["address"] in chosen), key=story_order)
    if not frames:
        raise UserError(f"version {shown.number:04d} has no frame of {' '.join(wanted)}",
                        hint="`storyboard show` lists the version's frames")
    return VersionView(shown.number, shown.folder, {**shown.manifest, "frames": frames})


def export_pdf(project: Project, version: str | int | None = None, *, path: str | Path,
               per_page: int = 6, variants: Iterable[str] = ()) -> Export:
    """A printable storyboard PDF of a version (default: the latest): a cover, each scene from a
    new page with a bookmark, `per_page` captioned panels per page. Text the bundled font and the
    project's `fonts:` cannot draw is left out and named in `Export.warnings`. `variants`
    (`locale=de-DE`, …) keeps one variant's frames."""
    from storyboard.deliver.pdf import pdf_storyboard
    from storyboard.fsutil import atomic_write

    shown = _of_variants(project, show(project, version), variants)
    target = Path(path)
    board = pdf_storyboard(shown.folder, shown.manifest, per_page, project.fonts)
    atomic_write(target, board.data)
    return Export(target, shown.number, len(shown.frames), tuple(board.warnings))


def export_animatic(project: Project, version: str | int | None = None, *, path: str | Path,
                     size: tuple[int, int] | None = None, fps: int = 24, default_duration: float = 2.0,
                     captions: bool = False, titles: bool = False, scenes: Iterable[str] = (),
                     on_frame: Callable[[int, int], None] | None = None,
                     variants: Iterable[str] = ()) -> Export:
    """An H.264 MP4 of a version (default: the latest): each frame held for its duration, in
    story order; `captions` burns in dialogue, `titles` adds a card before each scene. Needs
    the `video` extra (PyAV). `variants` (`locale=de-DE`, …): one variant's cut."""
    from storyboard.deliver.animatic import AnimaticOptions, write_animatic
    from storyboard.fsutil import temporary_sibling

    shown = _of_variants(project, show(project, version), variants)
    wanted = tuple(scenes)
    unknown = sorted(set(wanted) - {scene.id for scene in project.scenes})
    if unknown:
        raise UserError(f"--scenes {unknown[0]}: no such scene",
                        hint=f"scenes: {', '.join(s.id for s in project.scenes)}")
    target = Path(path)
    options = AnimaticOptions(size, fps, default_duration, captions, titles, wanted)
    with temporary_sibling(target) as partial:
        written = write_animatic(shown.folder, shown.manifest, partial, options, on_frame)
    return Export(target, shown.number, written.board_frames)


def export_timeline(project: Project, version: str | int | None = None, *, path: str | Path,
                    file_format: str = "otio", rate: float = 24.0, default_duration: float = 2.0,
                    absolute: bool = False, variants: Iterable[str] = ()) -> Export:
    """An OpenTimelineIO timeline of a version (`otio`, or `fcp7xml`, `fcpxml`, `edl` through
    OpenTimelineIO's adapters; the `timeline` extra): a clip per frame, markers at scenes;
    `variants` (`locale=de-DE`, …): one variant's cut."""
    from storyboard.deliver.timeline import write_timeline
    from storyboard.fsutil import temporary_sibling

    shown = _of_variants(project, show(project, version), variants)
    target = Path(path)
    with temporary_sibling(target) as partial:
        clips = write_timeline(shown.folder, shown.manifest, partial, file_format=file_format, rate=rate,
                               default_duration=default_duration, absolute=absolute, relative_to=target)
    return Export(target, shown.number, clips)


def export_contact_sheet(project: Project, version: str | int | None = None, *, path: str | Path,
                         columns: int = 6, variants: Iterable[str] = ()) -> Export:
    """One PNG grid of every frame of a version (default: the latest), or of the variants asked for."""
    from storyboard.deliver.export import contact_sheet
    from storyboard.fsutil import atomic_write

    shown = _of_variants(project, show(project, version), variants)
    target = Path(path)
    atomic_write(target, contact_sheet(shown.folder, shown.frames, columns))
    return Export(target, shown.number, len(shown.frames))


# --- new projects --------------------------------------------------------------------------


def init(folder: str | Path, name: str | None = None) -> list[Path]:
    """Write a small working project into `folder`; the files written."""
    from storyboard.project.scaffold import init_project

    return init_project(Path(folder), name)


def schemas() -> dict[str, dict[str, Any]]:
    """Every JSON Schema storyboard reads or writes, by name."""
    from storyboard.project.schema import available_schemas, load_schema

    return {name: load_schema(name) for name in available_schemas()}
