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

from storyboard.errors import Diagnostic, Origin

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
class AxisValue:
    """One value of a variant axis (`de-DE` of `locale`) and what it sets for its frames."""

    name: str
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    size: str | None = None
    aspect: str | None = None
    template: str | None = None
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Axis:
    """A variant axis (`locale`, `format`) and its values, in the order storyboard.yaml lists them."""

    name: str
    values: tuple[AxisValue, ...]
    origin: Origin | None = field(default=None, compare=False, repr=False)

    def value(self, name: str) -> AxisValue | None:
        return next((value for value in self.values if value.name == name), None)


@dataclass(frozen=True, slots=True)
class Variant:
    """Which variant an expanded frame is: one value per axis the frame varies over.

    Its key (`de-DE,story`: the values in axis order) ends the frame's address; its folder
    (`de-DE/story`) leads its path in a version.
    """

    values: tuple[tuple[str, str], ...]  # (axis, value), axes in project order
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False)  # the values' own
    scene_vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY, compare=False)  # the scene's

    @property
    def key(self) -> str:
        return ",".join(value for _, value in self.values)

    @property
    def folder(self) -> str:
        return "/".join(value for _, value in self.values)

    def as_dict(self) -> dict[str, str]:
        return dict(self.values)

    def matches(self, wanted: Mapping[str, Iterable[str]]) -> bool:
        """Whether this variant is one `--variant AXIS=VALUE` asks for (an axis it does not vary
        over matches: its one image serves every value)."""
        mine = dict(self.values)
        return all(axis not in mine or mine[axis] in values for axis, values in wanted.items())


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
    variant: Variant | None = None  # None: the project has no variants (or the frame opts out of all)
    master: str | None = None  # `derive: master`: the address of the variant it is derived from
    address: str = field(init=False, compare=False)  # `scene/frame`, or `scene/frame@de-DE,story`

    def __post_init__(self) -> None:
        base = f"{self.scene_id}/{self.id}"
        object.__setattr__(self, "address", f"{base}@{self.variant.key}" if self.variant else base)

    @property
    def base_address(self) -> str:
        """`scene/frame`: the same for every variant of the frame."""
        return f"{self.scene_id}/{self.id}"

    @property
    def variant_key(self) -> str:
        return self.variant.key if self.variant else ""


@dataclass(frozen=True, slots=True)
class Scene:
    id: str
    frames: tuple[Frame, ...]
    title: str = ""
    description: str = ""
    sequential: bool | None = None  # None: whatever the provider does best
    template: str | None = None
    sequence_template: str | None = None
    regenerate: str = "changed"  # or "scene": any change makes the whole scene again
    consistency: str = "parallel"  # or "chain": each batch gets the previous batch's last images
    size: str | None = None
    aspect: str | None = None
    seed: int | None = None  # for every frame without its own; default: from the scene's id
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """The provider section of storyboard.yaml: the settings every provider has, and `options`,
    which the provider named parses and checks itself (see providers/base.py)."""

    name: str = "local"
    model: str = "bytedance/seedream-v4.5/sequential"
    parallelism: int = 4
    requests_per_minute: float | None = None
    price_per_image: float | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: EMPTY)  # sent to the model as they are
    options: Mapping[str, Any] = field(default_factory=lambda: EMPTY)  # the provider's own settings
    options_origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """The `backend:` section: shared state on an object store (see storyboard.state.backend)."""

    url: str
    endpoint: str | None = None
    region: str | None = None
    lock_expiry: float = 300.0
    retry_timeout: float = 30.0
    concurrency: int = 16


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
    # where a variable set for this run came from (`--var`, `--var-file FILE`); others: `variables:`
    variable_sources: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    default_size: str | None = None
    default_aspect: str | None = None
    default_template: str = DEFAULT_TEMPLATE
    sequence_template: str = DEFAULT_SEQUENCE_TEMPLATE
    output_dir: str = "out"
    keep_versions: int | None = None
    max_cost: float | None = None
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    render_seconds: float = DEFAULT_RENDER_SECONDS
    backend: BackendConfig | None = None
    files: tuple[Path, ...] = ()  # every YAML file read, root first
    fonts: tuple[Path, ...] = ()  # `fonts:`: for text the bundled font cannot draw, in order
    axes: tuple[Axis, ...] = ()  # `variants:`
    master: tuple[tuple[str, str], ...] = ()  # `variants.master`: (axis, value) pairs
    derive: str = "independent"  # or "master": non-master variants are made from the master's image
    origin: Origin | None = field(default=None, compare=False, repr=False)
    # what loading found wrong (storyboard.project.loader.read_project), and the frames that
    # leaves unusable: they are not rendered, so one problem is reported once
    diagnostics: tuple[Diagnostic, ...] = field(default=(), compare=False, repr=False)
    broken: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    _scenes: Mapping[str, Scene] = field(init=False, compare=False, repr=False)
    _frames: Mapping[str, Frame] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_scenes", {scene.id: scene for scene in self.scenes})
        object.__setattr__(self, "_frames", {f.address: f for scene in self.scenes for f in scene.frames})

    @property
    def frames(self) -> tuple[Frame, ...]:
        """All frames in story order."""
        return tuple(self._frames.values())

    def template_for(self, scene: Scene, frame: Frame) -> str:
        """The name of the template that writes `frame`'s prompt (frame, scene, then default)."""
        return frame.template or scene.template or self.default_template

    def scene(self, scene_id: str) -> Scene:
        """The scene with this id (KeyError if there is none: ids come from the project)."""
        return self._scenes[scene_id]

    def frame(self, address: str) -> Frame | None:
        """The frame at `scene/frame`, if the project has it."""
        return self._frames.get(address)

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
    """The frames named by scene (`morning`), frame (`morning/pour`: every variant of it) or
    variant (`morning/pour@de-DE,story`) addresses, in story order."""
    from storyboard.errors import UserError

    wanted = set(addresses)
    frames = project.frames
    known = {frame.address for frame in frames} | {scene.id for scene in project.scenes} | \
        {frame.base_address for frame in frames}
    unknown = sorted(wanted - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        raise UserError(
            f"no scene or frame `{unknown[0]}` in project {project.name}",
            hint=f"did you mean `{close[0]}`?" if close else
            "addresses are SCENE, SCENE/FRAME or SCENE/FRAME@VARIANT",
        )
    return tuple(f for f in frames if f.address in wanted or f.scene_id in wanted or f.base_address in wanted)
