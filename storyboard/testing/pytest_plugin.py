"""The `fake_atlas` pytest fixture: a fake Atlas Cloud server, with the environment pointing at it.

Registered with pytest through the `pytest11` entry point: installing `storyboard-iac[testing]`
is all a project needs. The server's own imports (starlette, uvicorn) are made only when a
test asks for the fixture, so installing storyboard without the extra never breaks pytest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from storyboard.testing.fake_atlas import FakeAtlas


@pytest.fixture
def fake_atlas(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAtlas]:
    """A running fake; ATLASCLOUD_BASE_URL and ATLASCLOUD_API_KEY point at it for the test."""
    from storyboard.testing.fake_atlas import FakeAtlas
    from storyboard.testing.server import serve

    with serve(FakeAtlas()) as fake:
        monkeypatch.setenv("ATLASCLOUD_BASE_URL", fake.base_url)
        monkeypatch.setenv("ATLASCLOUD_API_KEY", fake.api_key or "fake-key")
        yield fake
