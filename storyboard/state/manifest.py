"""What a version holds, written as one small root manifest and one manifest per scene.

    out/v0002/manifest.json          the version: counts, its scenes, the frames it changed
    out/v0002/01-morning/scene.json  the scene's frames: path, sha256, fingerprint, prompt, …

A scene manifest holds only what stays true of its frames from one version to the
next (no "new in this version"), so the file of a scene a version did not touch is
byte-identical to the previous one and is hard-linked like the images. A version that
changes 1 frame of 10,000 then adds about one image, not a 10 MB manifest.
`read_manifest` merges the parts back into one mapping with every frame and its status,
and still reads the single-file manifests (format 1) of versions written before.
`read_back` reads the latest version for the next one (apply): each file once, unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storyboard.actions import Action
from storyboard.errors import Location, ManifestError
from storyboard.jsonfile import read_json

FORMAT = 2
KEPT = Action.KEEP.status
MANIFEST = "manifest.json"
SCENE_MANIFEST = "scene.json"
# True of a frame in this version only; kept in the root manifest's "changed" list.
VERSION_FIELDS = ("status", "reasons", "prompt_diff", "previous", "before")


def split(root: Mapping[str, Any], frames: Sequence[Mapping[str, Any]],
          titles: Mapping[str, str], descriptions: Mapping[str, str] | None = None,
          encoded: Mapping[str, bytes] | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The root manifest and {scene manifest path: bytes} for a version's frames in story order.

    `root` holds the version's own fields (project, version, created_at, changes). `encoded`:
    scene manifests made before from these very frames (`scene_manifest_of`), by scene folder.
    """
    encoded = encoded or {}
    scenes: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    changed: list[dict[str, Any]] = []
    by_folder: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for frame in frames:
        folder = scene_folder(frame["path"])
        if folder not in counts:
            by_folder[folder], counts[folder] = [], 0
            described = (descriptions or {}).get(frame["scene"])
            scenes.append({"id": frame["scene"], "title": titles.get(frame["scene"], frame["scene"]),
                           **({"description": described} if described else {}),
                           "folder": folder, "manifest": f"{folder}/{SCENE_MANIFEST}"})
        counts[folder] += 1
        if folder not in encoded:
            by_folder[folder].append(_lasting(frame))
        if frame["status"] != KEPT:
            changed.append({"address": frame["address"],
                            **{k: frame[k] for k in VERSION_FIELDS if k in frame}})
    for scene in scenes:
        folder = scene["folder"]
        scene["frames"] = counts[folder]
        files[scene["manifest"]] = encoded[folder] if folder in encoded else \
            scene_manifest(scene["id"], by_folder[folder])
    return {"format": FORMAT, **root, "scenes": scenes, "changed": changed}, files


def scene_manifest_of(frames: Sequence[Mapping[str, Any]]) -> bytes:
    """What `split` makes of one scene's frames (as merged, in story order): its manifest."""
    return scene_manifest(frames[0]["scene"], [_lasting(frame) for frame in frames])


def _lasting(frame: Mapping[str, Any]) -> dict[str, Any]:
    """What stays true of a frame from version to version: its scene manifest entry (a copy with
    the rest popped: a tenth of a comprehension's time, and the same order)."""
    lasting = dict(frame)
    for key in VERSION_FIELDS:
        lasting.pop(key, None)
    return lasting


def says(parsed: Any, frames: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a scene manifest read back says what `scene_manifest_of(frames)` would write: key for
    key in the same order, equal values, each frame's of the same types (a fifth of the time of
    encoding them). What it says is then what the new one would; its bytes may differ in layout
    only where a hand edited them."""
    if not isinstance(parsed, dict) or list(parsed) != ["format", "scene", "frames"] or \
            type(parsed["format"]) is not int or parsed["format"] != FORMAT or \
            parsed["scene"] != frames[0]["scene"]:
        return False
    written = parsed["frames"]
    if not isinstance(written, list) or len(written) != len(frames):
        return False
    for was, frame in zip(written, frames, strict=True):
        now = _lasting(frame)
        if was != now or [*was] != [*now] or [*map(type, was.values())] != [*map(type, now.values())]:
            return False
    return True


def scene_folder(path: str) -> str:
    """The scene folder of a frame's path in a version: `01-morning` for `01-morning/04-pour.png`
    (posixpath.dirname for a path `_safe` lets through: relative, no empty part; a few per frame)."""
    return path.rpartition("/")[0]


def scene_manifest(scene: str, frames: Sequence[Mapping[str, Any]]) -> bytes:
    """A scene's frames, one JSON object per line: deterministic bytes, readable diffs."""
    lines = ",\n".join(json.dumps(frame, ensure_ascii=False) for frame in frames)
    head = json.dumps({"format": FORMAT, "scene": scene}, ensure_ascii=False)[:-1]
    return f'{head}, "frames": [\n{lines}\n]}}\n'.encode()


def read_manifest(output: Path, number: int, *, frames: bool = True) -> dict[str, Any]:
    """Version `number`'s manifest with every frame under "frames" (status "kept" unless changed).

    With frames=False only the root is read (fast: `history` over many large versions).
    """
    from storyboard.state.versions import version_name

    folder = output / version_name(number)

    def load(relative: str) -> Any:
        return _load(folder / relative, f"version {version_name(number)} has no {relative} in {output}")

    return merged_manifest(load, frames=frames, where=lambda relative: Location(folder / relative))


def merged_manifest(load: Callable[[str], Any], *, frames: bool = True,
                    where: Callable[[str], Location | None] = lambda relative: None) -> dict[str, Any]:
    """A version's manifest from its files, each checked against its schema before it is used.

    `load(relative)` gives a file of the version parsed (from out/, or from a backend, where
    what comes back is hostile input: a path in it that would leave the version is refused).
    """
    data = load(MANIFEST)
    if isinstance(data, dict) and data.get("format") == 1:  # one file, written before scene manifests
        for frame in data.get("frames", []):
            _safe(str(frame.get("path", "")) if isinstance(frame, dict) else "", where(MANIFEST))
        legacy: dict[str, Any] = data
        return legacy
    root = _checked(data, "manifest", where(MANIFEST))
    if not frames:
        return root
    changed = {entry["address"]: entry for entry in root.get("changed", [])}
    merged: list[dict[str, Any]] = []
    for scene in root.get("scenes", []):
        relative = _safe(scene["manifest"], where(MANIFEST))
        location = where(relative)  # once a scene, not a frame: a Path each
        part = _checked(load(relative), "scene-manifest", location)
        for frame in part.get("frames", []):
            _safe(frame["path"], location)
            merged.append({**frame, "status": KEPT, **changed.get(frame["address"], {})})
    return {**root, "frames": merged}


@dataclass
class ReadBack:
    """A version's manifest as the next version reads it: unchecked, a part that cannot be read
    left out. The next version takes sizes, approval dates and page keys from it, each held to its
    type, and links a scene manifest that `says` what its own would."""

    root: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, dict[str, Any]] = field(default_factory=dict)  # by address, as the files have them
    scenes: dict[str, tuple[bytes, Any]] = field(default_factory=dict)  # scene manifest path: bytes, parsed


def read_back(folder: Path, regular: Callable[[str], bool]) -> ReadBack:
    """The version in `folder` for the one after it: its root manifest and each scene manifest that
    is a regular file (`regular(path in the version)`) inside it, read once, frames not copied."""
    found = ReadBack()
    root = _read(folder, MANIFEST, regular)
    if not isinstance(root[1], dict):
        return found
    found.root = root[1]
    if found.root.get("format") == 1:  # one file, written before scene manifests
        _by_address(found.frames, found.root.get("frames"))
        return found
    scenes = found.root.get("scenes")
    for scene in scenes if isinstance(scenes, list) else ():
        relative = scene.get("manifest") if isinstance(scene, dict) else None
        if isinstance(relative, str) and _inside(relative):
            data, parsed = _read(folder, relative, regular)
            if isinstance(parsed, dict):
                _by_address(found.frames, parsed.get("frames"))
                found.scenes[relative] = (data, parsed)
    return found


def _read(folder: Path, relative: str, regular: Callable[[str], bool]) -> tuple[bytes, Any]:
    """A file of a version and what it parses to; (b"", None) when it is not a regular file or
    cannot be read or parsed (as deep as it likes: hostile input)."""
    if not regular(relative):
        return b"", None
    try:
        data = (folder / relative).read_bytes()
        return data, json.loads(data)
    except (OSError, ValueError, RecursionError):
        return b"", None


def _by_address(frames: dict[str, dict[str, Any]], written: Any) -> None:
    for frame in written if isinstance(written, list) else ():
        if isinstance(frame, dict) and isinstance(address := frame.get("address"), str):
            frames[address] = frame


def _checked(data: Any, schema: str, location: Location | None) -> dict[str, Any]:
    from storyboard.project.schema import describe_error, schema_errors

    errors = schema_errors(schema, data)
    if errors:
        path = ".".join(str(part) for part in errors[0].absolute_path) or "(top level)"
        raise ManifestError(f"not a storyboard {schema}: {path}: {describe_error(errors[0])}",
                            hint=_MANIFEST_HINT, location=location)
    checked: dict[str, Any] = data
    return checked


def _safe(relative: str, location: Location | None) -> str:
    """A path inside a version folder; one that would leave it is refused, never followed."""
    if not _inside(relative):
        raise ManifestError(f"names the path `{relative[:120]}`, which would leave the version folder",
                            hint=_MANIFEST_HINT, location=location)
    return relative


def _inside(relative: str) -> bool:
    parts = relative.split("/")
    return bool(relative) and not relative.startswith("/") and "\\" not in relative and \
        not {"", ".", ".."} & set(parts)


def frame_count(manifest: Mapping[str, Any]) -> int:
    """How many frames a version holds, from its root manifest alone."""
    if "frames" in manifest:
        return len(manifest["frames"])
    return sum(int(scene.get("frames", 0)) for scene in manifest.get("scenes", []))


def _load(path: Path, missing: str) -> dict[str, Any]:
    try:
        data = read_json(path, "manifest", ManifestError, _MANIFEST_HINT)
    except FileNotFoundError:
        raise ManifestError(missing, hint=_MANIFEST_HINT) from None
    if not isinstance(data, dict):
        raise ManifestError("not a storyboard manifest (not a JSON object)", hint=_MANIFEST_HINT,
                            location=Location(path))
    return data


_MANIFEST_HINT = "a version's files are written by apply; remove the version (or restore it) and apply again"
