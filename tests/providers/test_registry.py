"""The provider registry (built in and entry points) and the local provider's behaviour."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import anyio
import pytest
from conftest import build_tree

from storyboard.errors import UserError
from storyboard.plans.planner import make_plan
from storyboard.project.loader import load_project
from storyboard.project.model import ProviderConfig
from storyboard.providers.base import ImageRequest, capabilities_for, provider_class, provider_names
from storyboard.providers.local import LocalProvider
from storyboard.run.apply import apply

PLUGIN = """
    from storyboard.providers.base import Capabilities, JobResult
    from storyboard.providers.placeholders import draw_placeholder

    SUBMITTED = []

    class EchoProvider:
        name = "echo"

        def __init__(self, config, **options):
            self.config = config
            self.capabilities = self.capabilities_for(config)

        @staticmethod
        def capabilities_for(config):
            return Capabilities(max_images=1, price_per_image=0.25)

        async def submit(self, request):
            SUBMITTED.append(request)
            return f"echo-{len(SUBMITTED)}"

        async def wait(self, job_id, request):
            image = draw_placeholder(request.frames[0], request.fingerprints[0], request.prompt, request.size)
            return JobResult(images={0: image})

        async def aclose(self):
            pass
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A third-party provider installed the way pip installs one: a module plus dist-info."""
    site = build_tree(tmp_path / "site", {
        "echo_provider.py": textwrap.dedent(PLUGIN),
        "echo_provider-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: echo-provider\nVersion: 1.0\n",
        "echo_provider-1.0.dist-info/entry_points.txt":
            "[storyboard.providers]\necho = echo_provider:EchoProvider\n",
    })
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("echo_provider", None)


def test_entry_point_provider_is_found_and_used(plugin: Path, tmp_path: Path) -> None:
    assert "echo" in provider_names()
    config = ProviderConfig(name="echo")
    assert capabilities_for(config).price_per_image == 0.25
    project_dir = build_tree(tmp_path / "p", {"storyboard.yaml": """
        version: 1
        project: p
        provider: {name: echo}
        templates: {frame: "{{ frame.action }}"}
        scenes:
          - id: s
            frames: [{id: a, action: one}, {id: b, action: two}]
    """})
    plan = make_plan(load_project(project_dir))
    assert len(plan.batches) == 2  # max_images 1: no sequential sets
    assert plan.cost == 0.5
    result = anyio.run(lambda: apply(plan))
    assert result.ok and result.version == 1
    assert [r.frames for r in sys.modules["echo_provider"].SUBMITTED] == [("s/a",), ("s/b",)]


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(UserError) as caught:
        provider_class("nope")
    assert "unknown provider `nope`" in caught.value.message
    assert "local" in caught.value.hint


def test_local_provider_is_deterministic_and_honours_size(tmp_path: Path) -> None:
    provider = LocalProvider(ProviderConfig(), state_dir=tmp_path)
    request = ImageRequest(prompt="p", size="1600x2848", seed=1, model="m", frames=("s/a", "s/b"),
                           fingerprints=("f1", "f2"), captions=("first", "second"))

    async def twice() -> tuple[bytes, bytes, int, int]:
        one = await provider.wait(await provider.submit(request), request)
        two = await provider.wait(await provider.submit(request), request)
        return one.images[0].data, two.images[0].data, one.images[0].width, one.images[0].height

    first, second, width, height = anyio.run(twice)
    assert first == second
    assert first.startswith(b"\x89PNG")
    assert round(width / height, 2) == round(1600 / 2848, 2)


def test_the_parallelism_given_to_apply_sizes_the_connection_pool(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from storyboard.providers.base import create_provider

    monkeypatch.setenv("ATLASCLOUD_API_KEY", "k")
    config = ProviderConfig(name="atlascloud", parallelism=64)

    async def pool(parallelism: int | None) -> int:
        provider = create_provider(config, state_dir=tmp_path, parallelism=parallelism)
        try:
            return int(provider.connections)  # type: ignore[attr-defined]
        finally:
            await provider.aclose()

    assert anyio.run(pool, None) == 8  # the project's 64, capped
    assert anyio.run(pool, 1) == 5  # --parallelism 1: the provider is made for one prediction at a time


def test_a_plugin_of_protocol_one_is_spoken_to_without_the_new_options(plugin: Path, tmp_path: Path) -> None:
    """EchoProvider declares no protocol_version: its wait(job_id, request) still works."""
    from storyboard.providers.base import create_provider

    provider = create_provider(ProviderConfig(name="echo"), state_dir=tmp_path)
    request = ImageRequest(prompt="p", size="64x64", seed=1, model="m", frames=("s/a",), fingerprints=("f",),
                           captions=("c",))

    async def run() -> int:
        job = await provider.submit(request)
        result = await provider.wait(job, request, submitted_at=1.0, on_finished=lambda: None)
        return len(result.images)

    assert anyio.run(run) == 1


def test_a_plugin_of_a_newer_protocol_is_refused_with_a_hint(plugin: Path) -> None:
    sys.modules.pop("echo_provider", None)
    import echo_provider  # type: ignore[import-not-found]

    echo_provider.EchoProvider.protocol_version = 99
    with pytest.raises(UserError) as caught:
        provider_class("echo")
    assert "speaks provider protocol 99" in caught.value.message and "upgrade" in caught.value.hint


@pytest.mark.parametrize("size", ["2848x1600", "1600x2848", "2048x2048"])
def test_a_placeholder_comes_with_the_thumbnail_its_png_would_give(size: str) -> None:
    # the local provider hands over the page thumbnail it encodes from the picture in memory:
    # the bytes must be those a thumbnail of its PNG gives, so a version is the same either way
    import io

    from storyboard.images import thumbnail
    from storyboard.providers.placeholders import draw_placeholder

    image = draw_placeholder("pour/pour", "ab" * 32, "Milk poured in a slow spiral " * 9, size)
    assert image.thumbnail is not None and image.thumbnail.startswith(b"\xff\xd8")
    assert image.thumbnail == thumbnail(io.BytesIO(image.data))
