"""Grouping the frames to generate into provider requests.

Frames of a sequential scene go together, in story order, at most the provider's
limit per request (less the reference images sent along, where the provider counts
both); every other frame is a request of its own. Only frames of the same size share
a request. The same frames always give the same batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from storyboard import model
from storyboard.fingerprint import FrameSpec, is_sequential
from storyboard.prompts import RenderedFrame, Renderer
from storyboard.providers.base import Capabilities, ImageRequest


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's worth of frames."""

    specs: tuple[FrameSpec, ...]
    prompt: str
    references: tuple[Path, ...] = ()

    @property
    def frames(self) -> tuple[str, ...]:
        return tuple(spec.address for spec in self.specs)

    @property
    def size(self) -> str:
        return self.specs[0].size

    @property
    def key(self) -> str:
        """Identifies the batch by what it asks for (used by the journal to re-attach)."""
        joined = "\n".join(spec.fingerprint for spec in self.specs)
        return hashlib.sha256(joined.encode()).hexdigest()[:32]

    def request(self) -> ImageRequest:
        first = self.specs[0]
        return ImageRequest(
            prompt=self.prompt,
            size=first.size,
            seed=first.seed,
            model=first.model,
            frames=self.frames,
            fingerprints=tuple(spec.fingerprint for spec in self.specs),
            captions=tuple(spec.prompt for spec in self.specs),
            references=self.references,
            params=dict(first.params),
        )


def make_batches(
    project: model.Project,
    specs: Iterable[FrameSpec],
    capabilities: Capabilities,
    renderer: Renderer | None = None,
) -> list[Batch]:
    """Batches for `specs` (frames to generate), in story order."""
    renderer = renderer or Renderer(project)
    frames = {frame.address: frame for frame in project.frames}
    references = {ref.sha256: ref.file for frame in project.frames for ref in frame.references}
    references.update({ref.sha256: ref.file for c in project.characters.values() for ref in c.references})
    scenes = {scene.id: scene for scene in project.scenes}
    batches: list[Batch] = []
    group: list[FrameSpec] = []

    def close() -> None:
        if group:
            batches.append(_batch(scenes[group[0].scene_id], group, frames, references, renderer,
                                  capabilities.max_references))
            group.clear()

    for spec in specs:
        scene = scenes[spec.scene_id]
        if not is_sequential(scene, capabilities):
            close()
            group.append(spec)
            close()
            continue
        if group and not _fits(group, spec, capabilities):
            close()
        group.append(spec)
    close()
    return batches


def _fits(group: Sequence[FrameSpec], spec: FrameSpec, capabilities: Capabilities) -> bool:
    """Whether `spec` can join `group` in one request."""
    first = group[0]
    if spec.scene_id != first.scene_id or spec.size != first.size:
        return False
    references = {h for s in (*group, spec) for h in s.reference_hashes}
    count = len(group) + 1
    if count > capabilities.max_images:
        return False
    sent = min(len(references), capabilities.max_references)
    return capabilities.max_total is None or count + sent <= capabilities.max_total


def _batch(scene: model.Scene, group: Sequence[FrameSpec], frames: dict[str, model.Frame],
           references: dict[str, Path], renderer: Renderer, max_references: int) -> Batch:
    specs = tuple(group)
    if len(specs) == 1:
        prompt = specs[0].prompt
    else:
        rendered = [RenderedFrame(frames[spec.address], spec.prompt) for spec in specs]
        prompt = renderer.sequence_prompt(scene, rendered)
    hashes = list(dict.fromkeys(h for spec in specs for h in spec.reference_hashes))
    return Batch(specs, prompt, tuple(references[h] for h in hashes[:max_references]))
