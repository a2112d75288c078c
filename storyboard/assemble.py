"""Assemble: turn a carried-out plan into a new version folder and lockfile.

Order matters for crash safety: version folder (temp name, renamed into place),
then `latest`, then the lockfile (atomic replace), then the stat cache. A frame that
failed keeps its previous image and lock entry, so the next plan shows it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from storyboard.images import EXTENSIONS
from storyboard.journal import StagedImage
from storyboard.lockfile import Lock, LockEntry, write_lock
from storyboard.outputs import (
    Placement,
    StatCache,
    build_version,
    collect_garbage,
    latest_version,
    now_iso,
    read_manifest,
    version_name,
    versions,
)
from storyboard.planner import Change, Plan, lock_inputs

STATUS = {"create": "new", "regenerate": "regenerated", "repair": "repaired", "keep": "kept"}


def assemble(plan: Plan, images: Mapping[str, StagedImage], failed: Mapping[str, str],
             emit: Callable[[dict[str, Any]], None]) -> tuple[int | None, bool]:
    """Write the next version if anything changed; returns (version number, lockfile written)."""
    project = plan.project
    output = project.output_path
    latest = latest_version(output)
    previous_manifest = _frames_by_address(output, latest)
    number = (max(versions(output), default=0)) + 1
    frames: dict[str, LockEntry] = {}
    placements: list[Placement] = []
    manifest_frames: list[dict[str, Any]] = []
    counts = dict.fromkeys(("create", "regenerate", "repair", "remove", "keep", "failed"), 0)
    changed = False
    for change in plan.changes:
        if change.action == "remove":
            counts["remove"] += 1
            changed = True
            continue
        outcome = _place(change, images, failed, output, latest, number)
        if outcome is None:
            continue
        entry, source, status = outcome
        frames[change.address] = entry
        placements.append(Placement(entry.path, source))
        manifest_frames.append(_manifest_frame(change, entry, status, images, previous_manifest))
        key = "failed" if status == "failed" else change.action
        counts[key] += 1
        changed = changed or status not in ("kept", "failed") or change.moved
    if not changed:
        return None, False
    manifest = {"format": 1, "project": project.name, "version": number, "created_at": now_iso(),
                "changes": counts, "frames": manifest_frames}
    folder = build_version(output, number, placements, manifest)
    emit({"event": "version_written", "version": number, "path": str(folder), "changes": counts})
    lock_written = write_lock(project.lockfile_path, Lock(project.name, number, frames))
    cache = StatCache(project.root)
    for entry in frames.values():
        cache.record(folder / entry.path, entry.image_sha256)
    cache.save(folder)
    if project.keep_versions:
        collect_garbage(output, project.keep_versions)
    return number, lock_written


def _place(change: Change, images: Mapping[str, StagedImage], failed: Mapping[str, str], output: Path,
           latest: int | None, number: int) -> tuple[LockEntry, Path, str] | None:
    """The lock entry, the source file and the status of one frame in the new version."""
    previous = change.previous
    old_file = output / version_name(latest) / previous.path if previous and latest else None
    spec = change.spec
    staged = images.get(spec.fingerprint) if spec and change.generates else None
    if staged is not None and spec is not None and change.path is not None:
        path = change.path + EXTENSIONS.get(staged.format, ".png")
        entry = LockEntry(spec.fingerprint, spec.prompt, lock_inputs(spec), staged.sha256,
                          staged.file.stat().st_size, path, number, staged.job)
        return entry, staged.file, STATUS[change.action]
    if previous is None or change.path is None:
        return None  # a new frame that failed, or a frame outside --target never made
    path = change.path + Path(previous.path).suffix
    moved = LockEntry(previous.fingerprint, previous.prompt, previous.inputs, previous.image_sha256,
                      previous.image_bytes, path, previous.version, previous.job)
    if change.action == "repair" and change.restore_from is not None:
        return moved, change.restore_from, "repaired"
    if old_file is None or not old_file.exists():
        return None  # nothing left to keep: the next plan will create it
    status = "failed" if change.address in failed else "kept"
    return moved, old_file, status


def _manifest_frame(change: Change, entry: LockEntry, status: str, images: Mapping[str, StagedImage],
                    previous: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    staged = images.get(entry.fingerprint)
    old = previous.get(change.address, {})
    frame = {
        "address": change.address,
        "scene": change.address.split("/")[0],
        "path": entry.path,
        "sha256": entry.image_sha256,
        "fingerprint": entry.fingerprint,
        "prompt": entry.prompt,
        "seed": entry.inputs.get("seed", 0),
        "model": entry.inputs.get("model", ""),
        "size": entry.inputs.get("size", ""),
        "width": staged.width if staged and status != "kept" else old.get("width", 0),
        "height": staged.height if staged and status != "kept" else old.get("height", 0),
        "job": entry.job,
        "generated_in": entry.version,
        "status": status,
    }
    return frame


def _frames_by_address(output: Path, number: int | None) -> dict[str, dict[str, Any]]:
    if number is None:
        return {}
    try:
        return {f["address"]: f for f in read_manifest(output, number).get("frames", [])}
    except Exception:
        return {}
