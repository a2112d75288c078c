"""The typed, immutable model of a loaded project.

Everything here is plain data built by `storyboard.project.loader.load_project`; nothing in
this module reads files or knows about YAML.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from storyboard.errors import Origin

EMPTY: Mapping[str, Any] = MappingProxyType({})
DEFAULT_SIZE = "2048x2048"
DEFAULT_TEMPLATE = "frame"
DEFAULT_SEQUENCE_TEMPLATE = "sequence"
# A rendered frame prompt may be this long: about the 600 English words the service advises.
DEFAULT_MAX_PROMPT_CHARS = 4000
DEFAULT_RENDER_SECONDS = 2.0  # per frame prompt (or batch prompt) rendered


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference image: where the project names it, and its content hash."""

    path: str  # as written, relative to the project folder (posix)
    file: Path  # absolute
    sha256: str
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Character:
    id: str
    name: str
    description: str
    references: tuple[Reference, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Frame:
    id: str
    scene_id: str
    index: int  # 1-based position in its scene
    shot: str = ""
    action: str = ""
    dialogue: str = ""
    duration: float | None = None
    characters: tuple[str, ...] = ()
    template: str | None = None
    size: str | None = None
    aspect: str | None = None
    seed: int | None = None
    references: tuple[Reference, ...] = ()
    notes: str = ""
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.scene_id}/{self.id}"


@dataclass(frozen=True, slots=True)
class Scene:
    id: str
    frames: tuple[Frame, ...]
    title: str = ""
    description: str = ""
    sequential: bool | None = None  # None: whatever the provider does best
    template: str | None = None
    sequence_template: str | None = None
    size: str | None = None
    aspect: str | None = None
    seed: int | None = None  # for every frame without its own; default: from the scene's id
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str = "local"
    model: str = "bytedance/seedream-v4.5/sequential"
    parallelism: int = 4
    requests_per_minute: float | None = None
    price_per_image: float | None = None
    latency: float = 0.0
    base_url: str | None = None
    poll_timeout: float | None = None
    poll_interval: float | None = None
    request_timeout: float | None = None
    retry_deadline: float | None = None
    retry_backoff: float | None = None
    not_found_grace: float | None = None
    base64_outputs: bool = False
    fail_frames: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class Template:
    """A Jinja template: a file under templates/, or an inline string in storyboard.yaml."""

    name: str
    source: str
    file: Path  # the file it lives in (storyboard.yaml for inline templates)
    line_offset: int = 0  # template line N is file line N + line_offset


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    name: str
    scenes: tuple[Scene, ...]
    characters: Mapping[str, Character]
    templates: Mapping[str, Template]
    provider: ProviderConfig = field(default_factory=ProviderConfig)
    description: str = ""
    variables: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    default_size: str | None = None
    default_aspect: str | None = None
    default_template: str = DEFAULT_TEMPLATE
    sequence_template: str = DEFAULT_SEQUENCE_TEMPLATE
    output_dir: str = "out"
    keep_versions: int | None = None
    max_cost: float | None = None
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    render_seconds: float = DEFAULT_RENDER_SECONDS
    files: tuple[Path, ...] = ()  # every YAML file read, root first
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def frames(self) -> tuple[Frame, ...]:
        """All frames in story order."""
        return tuple(frame for scene in self.scenes for frame in scene.frames)

    def template_for(self, scene: Scene, frame: Frame) -> str:
        """The name of the template that writes `frame`'s prompt (frame, scene, then default)."""
        return frame.template or scene.template or self.default_template

    def scene(self, scene_id: str) -> Scene | None:
        return next((scene for scene in self.scenes if scene.id == scene_id), None)

    @property
    def lockfile_path(self) -> Path:
        return self.root / "storyboard.lock"

    @property
    def output_path(self) -> Path:
        return self.root / self.output_dir

    @property
    def state_path(self) -> Path:
        return self.root / ".storyboard"


def select_frames(project: Project, addresses: Iterable[str]) -> tuple[Frame, ...]:
    """The frames named by scene (`morning`) or frame (`morning/pour`) addresses, in story order."""
    from storyboard.errors import UserError

    wanted = set(addresses)
    frames = project.frames
    known = {frame.address for frame in frames} | {scene.id for scene in project.scenes}
    unknown = sorted(wanted - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        raise UserError(
            f"no scene or frame `{unknown[0]}` in project {project.name}",
            hint=f"did you mean `{close[0]}`?" if close else "addresses are SCENE or SCENE/FRAME",
        )
    return tuple(f for f in frames if f.address in wanted or f.scene_id in wanted)
