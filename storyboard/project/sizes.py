"""Image sizes: parsing `WIDTHxHEIGHT`, aspect ratios, and the sizes Seedream 4.5 takes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

MIN_SIDE = 64
MAX_SIDE = 8192

# Sizes Atlas Cloud's Seedream 4.5 models have been seen to accept (ATLAS_API.md).
SEEDREAM_SIZES: tuple[str, ...] = (
    "2048x2048", "2304x1728", "1728x2304", "2848x1600", "1600x2848", "2496x1664",
    "1664x2496", "3136x1344", "4096x4096", "4704x3520", "3520x4704", "5504x3040",
    "3040x5504", "4992x3328", "3328x4992", "6240x2656",
)


def parse_size(size: str) -> tuple[int, int]:
    width, _, height = size.partition("x")
    return int(width), int(height)


def parse_aspect(aspect: str) -> float:
    width, _, height = aspect.partition(":")
    return float(width) / float(height)


def size_problem(key: str, value: Any) -> str | None:
    """Why a `size` or `aspect` value written by the user cannot be used, or None."""
    if key == "size":
        width, height = parse_size(value)
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            return f"size {value} is out of range: each side must be {MIN_SIDE}–{MAX_SIDE} pixels"
        return None
    width_text, _, height_text = value.partition(":")
    if float(width_text) <= 0 or float(height_text) <= 0:
        return f"aspect {value} must have two positive numbers"
    return None


def nearest_sizes(target: float, sizes: Sequence[str], count: int = 1) -> list[str]:
    """The `count` sizes whose aspect ratio is closest to `target` (ties: smaller area first)."""

    def distance(size: str) -> tuple[float, int]:
        width, height = parse_size(size)
        return round(abs(width / height - target), 9), width * height

    return sorted(sizes, key=distance)[:count]


def nearest_size_for_aspect(aspect: str, sizes: Sequence[str] = SEEDREAM_SIZES) -> str:
    """The supported size matching an aspect ratio best (the smallest of equally close ones)."""
    return _nearest_for_aspect(aspect, tuple(sizes))


@functools.lru_cache(maxsize=256)
def _nearest_for_aspect(aspect: str, sizes: tuple[str, ...]) -> str:  # once per aspect: not per frame
    return nearest_sizes(parse_aspect(aspect), sizes)[0]
