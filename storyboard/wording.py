"""Small pieces of wording shared by every place that prints counts: `1 frame`, `2 frames`."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`count` and the noun in the right number: plural(1, "frame") == "1 frame"."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"
