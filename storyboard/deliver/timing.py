"""Running times of frames and scenes, as every deliverable shows them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def running_time(frames: Iterable[Mapping[str, Any]]) -> float:
    """The sum of the frames' durations in seconds (frames without one count 0)."""
    return round(sum(float(frame.get("duration") or 0) for frame in frames), 3)


def clock(seconds: float) -> str:
    """`0:02.5`, `1:05`, `1:02:03`: minutes and seconds, tenths only when there are some."""
    tenths = round(seconds * 10)
    whole, tenth = divmod(tenths, 10)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{text}.{tenth}" if tenth else text
