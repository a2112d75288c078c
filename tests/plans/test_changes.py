"""A planned change given its sources keeps everything else it says."""

from __future__ import annotations

import dataclasses

from storyboard.plans.planner import Change, _with_sources


def test_a_change_with_its_sources_keeps_every_other_field() -> None:
    """_with_sources names each field (for speed): a field added to Change and not named there
    would silently fall back to its default. Every field gets an object of its own here."""
    own = {field.name: object() for field in dataclasses.fields(Change)}
    change = Change(**{**own, "previous": None, "reasons": ("created",)})  # type: ignore[arg-type]
    sources = {"frame text": "0123456789ab"}
    assert _with_sources(change, sources) == dataclasses.replace(change, sources=sources)
