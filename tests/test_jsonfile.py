"""indented_json writes exactly the text json.dumps(indent=2) would: lockfiles and manifests
written by older builds compare equal, byte for byte, and git shows no change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storyboard.jsonfile import indented_json

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
