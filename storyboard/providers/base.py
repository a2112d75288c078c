"""What a provider is: capabilities plus submit / wait / aclose, and a registry by name.

Third-party providers register a class under the entry-point group
`storyboard.providers`; the class is called with the project's ProviderConfig.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from storyboard.errors import UserError

if TYPE_CHECKING:
    from storyboard.project.model import ProviderConfig

ENTRY_POINT_GROUP = "storyboard.providers"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do; decides batching, sizes and the cost estimate."""

    max_images: int = 1  # images per request; > 1 means sequential sets are possible
    max_references: int = 0  # reference images per request
    max_total: int | None = None  # references + images per request, where the model caps both
    sizes: tuple[str, ...] | None = None  # None: any WIDTHxHEIGHT
    price_per_image: float = 0.0  # US dollars, for the plan's estimate
    bytes_per_pixel: float = 1.5  # for the disk space apply checks before paying (PNG photographs)
    image_bytes_cap: int | None = None  # a provider whose images are always small says how small

    @property
    def sequential(self) -> bool:
        return self.max_images > 1

    def image_bytes(self, size: str) -> int:
        """About how many bytes one image of `size` (WIDTHxHEIGHT) takes on disk."""
        width, _, height = size.partition("x")
        estimate = int(int(width) * int(height) * self.bytes_per_pixel)
        return min(estimate, self.image_bytes_cap) if self.image_bytes_cap else estimate


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One request: one or more frames generated together."""

    prompt: str
    size: str
    seed: int  # sent to the service: every frame of the request records it
    model: str
    frames: tuple[str, ...]  # frame addresses, in story order, one image each
    fingerprints: tuple[str, ...]  # one per frame, same order
    captions: tuple[str, ...] = ()  # each frame's own prompt, same order
    references: tuple[Path, ...] = ()  # reference image files sent along
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.frames)


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One image a job returned: its bytes and format ('png', 'jpeg', …)."""

    data: bytes
    format: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a finished job gave, by position in the request's frames.

    A position in neither mapping came back empty: it is asked for again.
    """

    images: Mapping[int, GeneratedImage]
    failed: Mapping[int, str] = field(default_factory=dict)  # position -> why it cannot be made


@runtime_checkable
class Provider(Protocol):
    name: str
    capabilities: Capabilities

    async def submit(self, request: ImageRequest) -> str:
        """Start a job and return its id (the id is journaled before anything else)."""
        ...

    async def wait(self, job_id: str, request: ImageRequest, *, submitted_at: float | None = None,
                   on_finished: Callable[[], None] | None = None) -> JobResult:
        """Wait for a job, submitted by this run or an earlier one, and return its images.

        `submitted_at` (epoch seconds) is given for jobs an earlier run submitted.
        `on_finished` is called once the service is done with the job, before its images
        are downloaded: the caller submits the next job meanwhile. Both are optional for
        providers: a provider's `wait` may leave them out of its signature.
        Raises JobLost when the service does not know the job.
        """
        ...

    async def aclose(self) -> None: ...


def _builtin() -> dict[str, str]:
    return {
        "local": "storyboard.providers.local:LocalProvider",
        "atlascloud": "storyboard.providers.atlascloud:AtlasCloudProvider",
    }


def provider_names() -> list[str]:
    from importlib.metadata import entry_points

    names = set(_builtin())
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def provider_class(name: str) -> type[Any]:
    """The provider class registered as `name` (built in, or else an entry point)."""
    import importlib

    target = _builtin().get(name)
    if target is None:  # only now read the installed packages' metadata (slow to import)
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                loaded: type[Any] = ep.load()
                return loaded
        raise UserError(
            f"unknown provider `{name}`",
            hint=f"known providers: {', '.join(provider_names())}; "
            f"plugins register under the entry-point group `{ENTRY_POINT_GROUP}`",
        )
    module_name, _, attribute = target.partition(":")
    loaded_builtin: type[Any] = getattr(importlib.import_module(module_name), attribute)
    return loaded_builtin


def capabilities_for(config: ProviderConfig) -> Capabilities:
    """Capabilities without opening a connection (classes expose `capabilities_for`)."""
    cls = provider_class(config.name)
    caps: Capabilities = cls.capabilities_for(config)
    return caps


def create_provider(config: ProviderConfig, **options: Any) -> Provider:
    provider: Provider = provider_class(config.name)(config, **options)
    return provider
