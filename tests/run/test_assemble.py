"""Assembly's own string work, held to what it stands in for."""

from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from storyboard.run.assemble import _split_extension, _thumb_path


@settings(max_examples=3000)
@given(st.text(alphabet="ab./", max_size=14) | st.text(max_size=30))
def test_split_extension_is_posixpath_splitext(path: str) -> None:
    assert _split_extension(path) == posixpath.splitext(path)


@settings(max_examples=3000)
@given(st.text(alphabet="ab./", max_size=14) | st.text(max_size=30))
def test_a_thumbnail_path_is_the_image_path_with_splitext_s_stem(path: str) -> None:
    assert _thumb_path(path) == f"thumbs/{posixpath.splitext(path)[0]}.jpg"
