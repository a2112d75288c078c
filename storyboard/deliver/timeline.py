"""`storyboard export timeline`: an OpenTimelineIO timeline editors can open.

One video track, one clip per frame in story order, each as long as the frame's duration
(the default for frames without one) at the timeline's rate, its media reference the
frame's image (relative to the written file, or absolute), a marker at each scene's first
clip named by the scene's title, and per clip the frame's address, shot, action,
dialogue, prompt, version, fingerprint and approval in its metadata. Other formats go
through OpenTimelineIO's maintained adapters (the `timeline` extra).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from storyboard.errors import UserError

INSTALL_HINT = "pip install 'storyboard-iac[timeline]' (OpenTimelineIO and its adapters)"
ADAPTERS = {"otio": ("otio_json", ""), "fcp7xml": ("fcp_xml", "otio-fcp-adapter"),
            "fcpxml": ("fcpx_xml", "otio-fcpx-xml-adapter"), "edl": ("cmx_3600", "otio-cmx3600-adapter")}


def write_timeline(version: Path, manifest: Mapping[str, Any], target: Path, *, file_format: str = "otio",
                   rate: float = 24.0, default_duration: float = 2.0, absolute: bool = False,
                   relative_to: Path | None = None) -> int:
    """Write the timeline of a version to `target`; returns the number of clips. Media references
    are relative to the folder of `relative_to` (default: `target`)."""
    try:
        import opentimelineio as otio
    except ImportError:
        raise UserError("the timeline needs OpenTimelineIO, which is not installed",
                        hint=INSTALL_HINT) from None
    adapter, package = ADAPTERS[file_format]
    if adapter not in otio.adapters.available_adapter_names():
        raise UserError(f"the {file_format} adapter of OpenTimelineIO is not installed",
                        hint=f"pip install {package} (or: pip install 'storyboard-iac[timeline]')")
    timeline = build_timeline(otio, version, manifest, relative_to or target, rate, default_duration,
                              absolute)
    target.parent.mkdir(parents=True, exist_ok=True)
    otio.adapters.write_to_file(timeline, str(target), adapter_name=adapter)
    return len(timeline.tracks[0])


def build_timeline(otio: Any, version: Path, manifest: Mapping[str, Any], target: Path, rate: float,
                   default_duration: float, absolute: bool) -> Any:
    titles = {str(s["id"]): str(s.get("title") or s["id"]) for s in manifest.get("scenes", [])}
    name = f"{manifest['project']} v{int(manifest['version']):04d}"
    timeline = otio.schema.Timeline(name=name, global_start_time=otio.opentime.RationalTime(0, rate))
    track = otio.schema.Track(name="storyboard", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    scene = None
    for frame in manifest.get("frames", []):
        seconds = float(frame["duration"]) if frame.get("duration") is not None else default_duration
        duration = otio.opentime.RationalTime(round(seconds * rate), rate)
        whole = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), duration)
        image = (version / str(frame["path"])).resolve()
        url = image.as_uri() if absolute else Path(os.path.relpath(image, target.resolve().parent)).as_posix()
        reference = otio.schema.ExternalReference(target_url=url, available_range=whole)
        clip = otio.schema.Clip(name=str(frame["address"]), media_reference=reference, source_range=whole)
        clip.metadata["storyboard"] = {
            key: frame.get(key) for key in ("address", "shot", "action", "dialogue", "prompt", "fingerprint",
                                            "generated_in", "sha256") if frame.get(key) is not None}
        clip.metadata["storyboard"]["version"] = int(manifest["version"])
        if frame.get("approval"):
            clip.metadata["storyboard"]["approval"] = dict(frame["approval"])
        if frame.get("scene") != scene:
            scene = frame.get("scene")
            clip.markers.append(otio.schema.Marker(
                name=titles.get(str(scene), str(scene)),
                marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                     otio.opentime.RationalTime(0, rate)),
                metadata={"storyboard": {"scene": scene}}))
        track.append(clip)
    return timeline
