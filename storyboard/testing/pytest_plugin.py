"""The `fake_atlas` pytest fixture: a fake Atlas Cloud server, with the environment pointing at it.

Enable it in a conftest.py with `pytest_plugins = ["storyboard.testing.pytest_plugin"]`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storyboard.testing.fake_atlas import FakeAtlas
from storyboard.testing.server import serve


@pytest.fixture
def fake_atlas(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAtlas]:
    """A running fake; ATLASCLOUD_BASE_URL and ATLASCLOUD_API_KEY point at it for the test."""
    with serve(FakeAtlas()) as fake:
        monkeypatch.setenv("ATLASCLOUD_BASE_URL", fake.base_url)
        monkeypatch.setenv("ATLASCLOUD_API_KEY", fake.api_key or "fake-key")
        yield fake
