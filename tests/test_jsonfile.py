"""indented_json writes exactly the text json.dumps(indent=2) would: lockfiles and manifests
written by older builds compare equal, byte for byte, and git shows no change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storyboard.errors import Location, UserError
from storyboard.jsonfile import MAX_DEPTH, indented_json, read_json

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
KEYS = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(value=VALUES, sort_keys=st.booleans())
def test_the_text_of_json_dumps_indent_2(value: Any, sort_keys: bool) -> None:
    assert indented_json(value, sort_keys=sort_keys) == json.dumps(value, indent=2, ensure_ascii=False,
                                                                   sort_keys=sort_keys)


@settings(max_examples=100, deadline=None)
@given(value=st.dictionaries(KEYS, SCALARS, max_size=5))
def test_keys_that_are_not_strings_become_what_json_makes_of_them(value: dict[Any, Any]) -> None:
    assert indented_json(value) == json.dumps(value, indent=2, ensure_ascii=False)


def test_what_json_refuses_it_refuses() -> None:
    with pytest.raises(TypeError):
        indented_json({"a": object()})
    with pytest.raises(TypeError):
        indented_json({"a": 1, 2: 3}, sort_keys=True)


@pytest.mark.parametrize("raw", [True, False], ids=["bytes", "text"])
def test_json_nested_past_the_parser_is_located_where_it_passes_the_limit(tmp_path: Path, raw: bool) -> None:
    """Brackets inside strings (escaped quotes too) do not count; the first level past
    MAX_DEPTH is named by line and column."""
    text = '{"a": [\n' + '["]\\"[", ' * 5000
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(UserError) as caught:
        read_json(path, "saved plan", UserError, "", text.encode() if raw else text)
    # line 2 holds `["]\"[", ` (9 characters) per level; level 2 is its first
    assert caught.value.location == Location(path, 2, 1 + 9 * (MAX_DEPTH - 2))
    assert caught.value.message == f"corrupt saved plan: nested more than {MAX_DEPTH} levels deep"
