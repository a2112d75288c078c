"""What decides a frame's image, and its fingerprint: sha256 of canonical JSON of that.

A fingerprint covers provider, model, rendered prompt, size, seed, provider params,
the sha256 of each reference image's bytes and, for frames generated in sequential
sets, the sequence template. Never the frame's position, file or batch-mates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from storyboard.errors import Diagnostic, Location, ProjectError
from storyboard.project import model
from storyboard.project.prompts import RenderedFrame, Renderer
from storyboard.project.sizes import SEEDREAM_SIZES, nearest_size_for_aspect, nearest_sizes, parse_size
from storyboard.project.variants import merged_variables, variable_levels
from storyboard.providers.base import Capabilities

T = TypeVar("T")
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same value always gives the same bytes."""
    return _CANONICAL.encode(value).encode()  # one encoder: json.dumps would build one per call


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_seed(project_name: str, key: str) -> int:
    """A stable seed from the project and a frame address (or, for sets, a scene id), in 0 … 2**31-1."""
    digest = hashlib.sha256(f"{project_name}\0{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def frame_seed(project: model.Project, scene: model.Scene, frame: model.Frame, sequential: bool) -> int:
    """The seed sent for a frame, so the one its fingerprint and provenance record.

    One request carries one seed, so the frames of a sequential scene share theirs (from the
    scene, by default) and a frame with a seed of its own goes in a request of its own kind.
    Every variant of a frame has the same seed (from its address without the variant).
    """
    if frame.seed is not None:
        return frame.seed
    if scene.seed is not None:
        return scene.seed
    return default_seed(project.name, scene.id if sequential else frame.base_address)


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """Everything that decides one frame's image, plus where its references live."""

    address: str
    scene_id: str
    prompt: str
    provider: str
    model: str
    size: str
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)
    reference_hashes: tuple[str, ...] = ()
    sequence_template: str | None = None  # sha256 of its source, for sequential frames
    variant: str = ""  # the variant's key (`de-DE,story`), "" without variants
    master: str | None = None  # `derive: master`: the address of the variant it is made from …
    derived_from: str | None = None  # … and the fingerprint of the master's image (set by the plan)
    fingerprint: str = field(default="", compare=False)  # computed once, from deciding_inputs()
    # a variant's canonical inputs before its master's image is known, so that `derived` hashes
    # them with it without encoding the prompt a second time
    own_inputs: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            inputs = canonical_json(self.deciding_inputs())
            object.__setattr__(self, "fingerprint", sha256_hex(inputs))
            if self.master is not None and self.derived_from is None:
                object.__setattr__(self, "own_inputs", inputs)

    def provenance(self, project_name: str, version: int, job: str) -> dict[str, object]:
        """What a generated PNG says about itself (an iTXt chunk; see images.with_provenance)."""
        return {"project": project_name, "address": self.address, "version": version,
                "fingerprint": self.fingerprint, "prompt": self.prompt, "model": self.model,
                "seed": self.seed, "job": job}

    def deciding_inputs(self) -> dict[str, Any]:
        inputs: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "prompt": self.prompt,
            "size": self.size,
            "seed": self.seed,
            "params": dict(self.params),
            "references": list(self.reference_hashes),
        }
        if self.sequence_template is not None:
            inputs["sequence_template"] = self.sequence_template
        if self.derived_from is not None:
            inputs["derived_from"] = self.derived_from
        return inputs

    def derived(self, master_fingerprint: str | None) -> FrameSpec:
        """This variant made from its master's image, which has `master_fingerprint` (None: the
        master is not made, so neither is anything from it: the variant is made on its own).

        A variant whose own inputs are the master's (no text, size or variable of its own)
        is the master's image: it keeps that fingerprint, and is paid for once.
        """
        if master_fingerprint is None:
            return replace(self, master=None, derived_from=None, fingerprint="", own_inputs=b"")
        if self.derived_from is None and self.fingerprint == master_fingerprint:
            return replace(self, master=None, own_inputs=b"")  # not made from it: it is the master's image
        if not self.own_inputs.startswith(b"{"):
            return replace(self, derived_from=master_fingerprint, fingerprint="")
        # canonical JSON sorts "derived_from" before every other input: the same bytes, and hash,
        # as encoding the inputs with it (tests hold the two to that)
        inputs = b'{"derived_from":"' + master_fingerprint.encode() + b'",' + self.own_inputs[1:]
        return replace(self, derived_from=master_fingerprint, fingerprint=sha256_hex(inputs), own_inputs=b"")


def is_sequential(scene: model.Scene, capabilities: Capabilities) -> bool:
    """A scene is generated in sets when the provider can and the scene does not opt out."""
    return capabilities.sequential and scene.sequential is not False


def frame_specs(
    project: model.Project,
    rendered: Sequence[RenderedFrame],
    capabilities: Capabilities,
    renderer: Renderer | None = None,
) -> list[FrameSpec]:
    """The spec of every rendered frame; size problems are reported all at once."""
    specs, problems = specs_and_problems(project, rendered, capabilities, renderer)
    if problems:
        raise ProjectError(problems)
    return specs


def specs_and_problems(project: model.Project, rendered: Sequence[RenderedFrame], capabilities: Capabilities,
                       renderer: Renderer | None = None) -> tuple[list[FrameSpec], list[Diagnostic]]:
    """The spec of every rendered frame, and the size problems (a size the provider does not take)."""
    renderer = renderer or Renderer(project)
    sequence_hashes: dict[str, str] = {}
    scene_sizes: dict[str, str] = {}  # of frames that set no size or aspect of their own
    cast_references: dict[tuple[str, ...], list[model.Reference]] = {}  # of frames with none of their own
    specs: list[FrameSpec] = []
    problems: dict[str, Diagnostic] = {}
    config = project.provider
    for item in rendered:
        frame, scene = item.frame, project.scene(item.frame.scene_id)
        if frame.size or frame.aspect:
            size = _size(project, scene, frame, capabilities, problems)
        else:
            if scene.id not in scene_sizes:
                scene_sizes[scene.id] = _size(project, scene, frame, capabilities, problems)
            size = scene_sizes[scene.id]
        sequence = None
        sequential = is_sequential(scene, capabilities)
        derives = bool(frame.master and capabilities.max_references)  # a request of its own, from the master
        if sequential:  # a derived variant's too: with the master's inputs, it is the master's image
            name = renderer.sequence_template_name(scene)
            if name not in sequence_hashes:
                sequence_hashes[name] = sha256_hex(renderer.template_source(name).encode())
            sequence = sequence_hashes[name]
        if frame.references:
            references = _references(project, frame)
        else:
            if frame.characters not in cast_references:
                cast_references[frame.characters] = _references(project, frame)
            references = cast_references[frame.characters]
        specs.append(FrameSpec(
            address=frame.address,
            scene_id=frame.scene_id,
            prompt=item.prompt,
            provider=config.name,
            model=config.model,
            size=size,
            seed=frame_seed(project, scene, frame, sequential),
            params=config.params,
            reference_hashes=tuple(ref.sha256 for ref in references),
            sequence_template=sequence,
            variant=frame.variant_key,
            master=frame.master if derives else None,
        ))
    return specs, list(problems.values())


def _references(project: model.Project, frame: model.Frame) -> list[model.Reference]:
    """The frame's characters' references, then its own, each content once."""
    seen: set[str] = set()
    result: list[model.Reference] = []
    own = [ref for c in frame.characters for ref in project.characters[c].references]
    for ref in (*own, *frame.references):
        if ref.sha256 not in seen:
            seen.add(ref.sha256)
            result.append(ref)
    return result


def _size(project: model.Project, scene: model.Scene, frame: model.Frame,
          capabilities: Capabilities, problems: dict[str, Diagnostic]) -> str:
    """The most specific `size` or `aspect` (frame, scene, defaults) as a size the provider takes."""
    levels = ((frame.size, frame.aspect, frame.origin), (scene.size, scene.aspect, scene.origin),
              (project.default_size, project.default_aspect, None))
    size, aspect, origin = next(((s, a, o) for s, a, o in levels if s or a),
                                (model.DEFAULT_SIZE, None, None))
    sizes = capabilities.sizes
    if aspect:
        return nearest_size_for_aspect(aspect, sizes or SEEDREAM_SIZES)
    assert size is not None
    if sizes is not None and size not in sizes:
        width, height = parse_size(size)
        closest = ", ".join(nearest_sizes(width / height, sizes, 3))
        location: Location | None = None
        subject = ""
        if origin is not None:
            location, subject = origin.at("size"), f" (frame {frame.address})"
        elif project.origin is not None:
            location = project.origin.at("defaults", "size")
        problems[str(location)] = Diagnostic(
            f"size {size} is not supported by {project.provider.name} "
            f"({project.provider.model}){subject}",
            location,
            hint=f"nearest supported sizes: {closest}; or write an aspect such as \"16:9\"",
        )
    return size


def fingerprints(project: model.Project, capabilities: Capabilities | None = None) -> dict[str, str]:
    """Every frame's fingerprint by address, in story order."""
    from storyboard.project.prompts import render
    from storyboard.providers.base import capabilities_for

    renderer = Renderer(project)
    caps = capabilities or capabilities_for(project.provider)
    specs = frame_specs(project, render(project, renderer=renderer), caps, renderer)
    return {spec.address: spec.fingerprint for spec in specs}


class SourceHashes:
    """Short hashes of what a frame's prompt is made from, to say later which one changed. Not
    deciding (the prompt itself is): they only name the cause of a prompt change.

    One per plan: each template's and character's hash is worked out once (a first plan of
    10,000 frames names 45,000 sources, most of them shared)."""

    def __init__(self, project: model.Project) -> None:
        self.project = project
        self._shared: dict[str, str] = {}
        # by the ids of the levels that hold variables, which the value keeps alive (so no id is
        # reused): the frames of a scene mostly see the same ones (0.8 s of a 100,000-frame first plan)
        self._variables: dict[tuple[int, ...], tuple[tuple[Mapping[str, Any], ...], str]] = {}

    def of(self, scene: model.Scene, frame: model.Frame) -> dict[str, str]:
        name = self.project.template_for(scene, frame)
        template = self.project.templates.get(name)
        sources = {
            f"template {name}": self._once(f"template {name}", _template_text, template),
            "variables": self._variables_of(frame),
            "frame text": _short([frame.shot, frame.action, frame.dialogue, frame.duration, frame.notes]),
        }
        for character_id in frame.characters:
            sources[f"character {character_id}"] = self._once(
                f"character {character_id}", _character_text, self.project.characters[character_id])
        return sources

    def later(self, scene: model.Scene, frame: model.Frame) -> FrameSources:
        """`of(scene, frame)`, worked out when it is first read (see FrameSources)."""
        return FrameSources(self, scene, frame)

    def _variables_of(self, frame: model.Frame) -> str:
        """The short hash of the variables the frame's template sees."""
        levels = variable_levels(self.project, frame)
        held = tuple(values for _, values in levels if values)
        key = tuple(map(id, held))
        known = self._variables.get(key)
        if known is None:
            known = self._variables[key] = (held, _short(merged_variables(levels)))
        return known[1]

    def _once(self, key: str, text: Callable[[T], Any], source: T) -> str:
        """The short hash of `text(source)`, worked out the first time `key` is asked for."""
        if key not in self._shared:
            self._shared[key] = _short(text(source))
        return self._shared[key]


class FrameSources(Mapping[str, str]):
    """A frame's sources (`SourceHashes.of`), worked out the first time anything reads them.

    Apply writes them into the lockfile for every frame it generates; a plan shows them only
    for a prompt that changed. So a plan that would create 100,000 frames names none of them
    (0.7 s of it), and apply names each once.
    """

    __slots__ = ("_found", "_frame", "_hashes", "_scene")

    def __init__(self, hashes: SourceHashes, scene: model.Scene, frame: model.Frame) -> None:
        self._hashes = hashes
        self._scene = scene
        self._frame = frame
        self._found: dict[str, str] | None = None

    def _sources(self) -> dict[str, str]:
        if self._found is None:
            self._found = self._hashes.of(self._scene, self._frame)
        return self._found

    def __getitem__(self, name: str) -> str:
        return self._sources()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources())

    def __len__(self) -> int:
        return len(self._sources())

    def __repr__(self) -> str:
        return repr(self._sources())


def _template_text(template: model.Template | None) -> str:
    return template.source if template else ""


def _character_text(character: model.Character) -> list[Any]:
    return [character.name, character.description, dict(character.vars)]


def _short(value: Any) -> str:
    return sha256_hex(canonical_json(value))[:12]
