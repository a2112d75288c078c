"""What a provider is: capabilities plus submit / wait / aclose, and a registry by name.

Third-party providers register a class under the entry-point group `storyboard.providers`.
The class (see ProviderClass) says which version of this protocol it speaks
(`protocol_version`; 1 when it does not say), how it parses its own settings
(`options_schema`: a JSON Schema of `provider.options`), and what it can do for a
configuration (`capabilities_for`); it is called with the project's ProviderConfig.

    version 1   wait(job_id, request)
    version 2   wait(job_id, request, *, submitted_at, on_finished)   (this one)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from storyboard.errors import Diagnostic, ProjectError, UserError
from storyboard.project.model import ProviderConfig

ENTRY_POINT_GROUP = "storyboard.providers"
PROTOCOL_VERSION = 2


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
    # the page thumbnail (images.thumbnail of `data`), from a provider that holds the picture
    # decoded anyway (the local one draws it): saves decoding `data` again; None: made from `data`
    thumbnail: bytes | None = None


@dataclass(frozen=True, slots=True)
class JobResult:
    """What a finished job gave, by position in the request's frames.

    A position in neither mapping came back empty: it is asked for again.
    """

    images: Mapping[int, GeneratedImage]
    failed: Mapping[int, str] = field(default_factory=dict)  # position -> why it cannot be made


@runtime_checkable
class Provider(Protocol):
    """A running provider (protocol version 2)."""

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
        are downloaded: the caller submits the next job meanwhile.
        Raises JobLost when the service does not know the job.
        """
        ...

    async def aclose(self) -> None: ...


class ProviderClass(Protocol):
    """What is registered under a provider's name."""

    protocol_version: ClassVar[int]
    options_schema: ClassVar[Mapping[str, Any]]  # JSON Schema of provider.options ({}: none taken)

    def __call__(self, config: ProviderConfig, *, state_dir: Path) -> Provider: ...

    def capabilities_for(self, config: ProviderConfig) -> Capabilities: ...


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


def provider_class(name: str) -> ProviderClass:
    """The provider class registered as `name` (built in, or else an entry point)."""
    import importlib

    target = _builtin().get(name)
    if target is None:  # only now read the installed packages' metadata (slow to import)
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                return _checked_class(name, ep.load())
        raise UserError(
            f"unknown provider `{name}`",
            hint=f"known providers: {', '.join(provider_names())}; "
            f"plugins register under the entry-point group `{ENTRY_POINT_GROUP}`",
        )
    module_name, _, attribute = target.partition(":")
    loaded: ProviderClass = getattr(importlib.import_module(module_name), attribute)
    return loaded


def _checked_class(name: str, cls: Any) -> ProviderClass:
    version = getattr(cls, "protocol_version", 1)
    if not isinstance(version, int) or version > PROTOCOL_VERSION:
        raise UserError(f"provider `{name}` speaks provider protocol {version}; this storyboard speaks "
                        f"up to {PROTOCOL_VERSION}",
                        hint="upgrade storyboard (pip install -U storyboard-iac)")
    checked: ProviderClass = cls
    return checked


def option_problems(config: ProviderConfig) -> list[Diagnostic]:
    """What is wrong with `provider.options` for the provider named, each at its file:line:col."""
    from storyboard.project.schema import validate_value

    schema = getattr(provider_class(config.name), "options_schema", {})
    if not config.options and not schema.get("required"):
        return []  # nothing given, nothing asked for
    if not schema:
        schema = {"type": "object", "additionalProperties": False, "properties": {}}
    return validate_value(dict(config.options), schema, config.options_origin)


def capabilities_for(config: ProviderConfig) -> Capabilities:
    """Capabilities without opening a connection; its options must be valid."""
    problems = option_problems(config)
    if problems:
        raise ProjectError(problems)
    return provider_class(config.name).capabilities_for(config)


def create_provider(config: ProviderConfig, *, state_dir: Path, parallelism: int | None = None) -> Provider:
    """A provider ready to submit; `parallelism` (e.g. --parallelism) sizes its connection pool."""
    if parallelism is not None:
        config = dataclasses.replace(config, parallelism=parallelism)
    problems = option_problems(config)
    if problems:
        raise ProjectError(problems)
    cls = provider_class(config.name)
    provider = cls(config, state_dir=state_dir)
    if getattr(cls, "protocol_version", 1) < 2:
        return _ProtocolOne(provider)
    return provider


class _ProtocolOne:
    """A provider of protocol version 1 spoken to in version 2: `wait` takes no options."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.capabilities: Capabilities = inner.capabilities

    async def submit(self, request: ImageRequest) -> str:
        job: str = await self.inner.submit(request)
        return job

    async def wait(self, job_id: str, request: ImageRequest, *, submitted_at: float | None = None,
                   on_finished: Callable[[], None] | None = None) -> JobResult:
        result: JobResult = await self.inner.wait(job_id, request)
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()
