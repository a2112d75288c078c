"""Grouping the frames to generate into provider requests.

Frames of a sequential scene go together, in story order, at most the provider's
limit per request (less the reference images sent along, where the provider counts
both), in as few requests as that allows and split evenly between them (31 frames
with a limit of 15: 11 + 10 + 10, never 15 + 15 + 1 with a lone frame that shares
nothing with the others); every other frame is a request of its own. Only frames of the same size and seed
share a request (a request carries one of each), and only frames of one variant. The same
frames (and the same unchanged neighbours) always give the same batches.

Two kinds of batch wait for images made in the same run (`Batch.after`, which the executor
waits for and sends first): a variant derived from its master (`derive: master`) is a
request of its own after the master's, and in a scene with `consistency: chain` each batch
goes after the one before it, with that batch's last images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from storyboard.plans.fingerprint import FrameSpec
from storyboard.project import model
from storyboard.project.prompts import RenderedFrame, Renderer
from storyboard.providers.base import Capabilities, ImageRequest

NEIGHBOURS = 2  # unchanged neighbour images sent along with a partly regenerated scene


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's worth of frames."""

    specs: tuple[FrameSpec, ...]
    prompt: str
    references: tuple[Path, ...] = ()
    after: tuple[str, ...] = ()  # frames made in this run whose images go first as references

    @property
    def frames(self) -> tuple[str, ...]:
        return tuple(spec.address for spec in self.specs)

    @property
    def size(self) -> str:
        return self.specs[0].size

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
    neighbours: Mapping[str, Path] | None = None,
) -> list[Batch]:
    """Batches for `specs` (frames to generate), in story order.

    `neighbours` holds the current images of frames that are not regenerated; where the
    provider takes references, a sequential batch carries those of its nearest
    unchanged neighbours so that new frames keep matching the old ones.
    """
    renderer = renderer or Renderer(project)
    references = {ref.sha256: ref.file for frame in project.frames for ref in frame.references}
    references.update({ref.sha256: ref.file for c in project.characters.values() for ref in c.references})
    nearby_images: Mapping[str, Path] = (neighbours or {}) if capabilities.max_references else {}
    groups: list[tuple[list[FrameSpec], bool]] = []  # (frames, sequential), greedily filled
    for spec in specs:
        scene = project.scene(spec.scene_id)
        if spec.sequence_template is None or spec.master is not None:  # a derived variant: on its own
            groups.append(([spec], False))
            continue
        last = groups[-1] if groups else None
        if last is not None and last[1] and _fits(last[0], spec, capabilities,
                                                   _neighbour_count(scene, nearby_images, capabilities)):
            last[0].append(spec)
        else:
            groups.append(([spec], True))
    batches: list[Batch] = []
    previous: list[FrameSpec] | None = None  # the group before, for `consistency: chain`
    for group in _evened(groups, capabilities, project, nearby_images):
        scene = project.scene(group[0].scene_id)
        own = _own_references(group, references, capabilities.max_references)
        master = group[0].master
        if master is not None and master in nearby_images:  # made already: sent as it is
            own = (nearby_images[master], *own)[:capabilities.max_references]
        after: tuple[str, ...] = (master,) if master is not None and master not in nearby_images else ()
        if master is None and previous is not None and _chained_after(scene, previous, group, capabilities):
            after = tuple(spec.address for spec in previous[-NEIGHBOURS:])
        nearby = _nearest(scene, group, nearby_images, _room(len(group), len(own) + len(after), capabilities))
        batches.append(Batch(tuple(group), _prompt(project, scene, group, renderer), (*own, *nearby), after))
        previous = group
    return batches


def _chained_after(scene: model.Scene, previous: Sequence[FrameSpec], group: Sequence[FrameSpec],
                   capabilities: Capabilities) -> bool:
    """Whether `group` goes after `previous` with its last images: the next set of a chained
    scene's variant (a derived variant is made from its master instead)."""
    return _chained(scene, capabilities) and previous[0].master is None and _same_set(previous[0], group[0])


def _chained(scene: model.Scene, capabilities: Capabilities) -> bool:
    return scene.consistency == "chain" and capabilities.max_references > 0


def _evened(groups: Sequence[tuple[list[FrameSpec], bool]], capabilities: Capabilities,
            project: model.Project, neighbours: Mapping[str, Path]) -> list[list[FrameSpec]]:
    """The groups, with each run of sequential groups that the limit split (same scene, size and
    seed, one after another) spread evenly over the same number of requests, where they fit."""
    result: list[list[FrameSpec]] = []
    run: list[list[FrameSpec]] = []

    def flush() -> None:
        if len(run) > 1:
            scene = project.scene(run[0][0].scene_id)
            result.extend(_spread(run, capabilities, _neighbour_count(scene, neighbours, capabilities)))
        else:
            result.extend(run)
        run.clear()

    for group, sequential in groups:
        if run and not (sequential and _same_set(run[-1][0], group[0])):
            flush()
        if sequential:
            run.append(group)
        else:
            flush()
            result.append(group)
    flush()
    return result


def _same_set(a: FrameSpec, b: FrameSpec) -> bool:
    return a.scene_id == b.scene_id and a.variant == b.variant and a.size == b.size and a.seed == b.seed


def _spread(run: Sequence[list[FrameSpec]], capabilities: Capabilities,
            neighbours: int) -> list[list[FrameSpec]]:
    """`run`'s frames in as many groups, of sizes that differ by one at most (larger first);
    the greedy groups if an even group would not fit (references count against the limit)."""
    frames = [spec for group in run for spec in group]
    count = len(run)
    sizes = [len(frames) // count + (1 if number < len(frames) % count else 0) for number in range(count)]
    even: list[list[FrameSpec]] = []
    start = 0
    for size in sizes:
        group = frames[start:start + size]
        start += size
        if not all(_fits(group[:position], group[position], capabilities, neighbours)
                   for position in range(1, len(group))):
            return list(run)
        even.append(group)
    return even


def with_references(batch: Batch, extra: Sequence[Path], capabilities: Capabilities) -> Batch:
    """The batch with as many of `extra` (best first) added as references as the provider takes."""
    room = _room(len(batch.specs), len(batch.references), capabilities)
    added = [path for path in extra if path not in batch.references][:room]
    return replace(batch, references=(*batch.references, *added)) if added else batch


def with_first_references(batch: Batch, first: Sequence[Path], capabilities: Capabilities) -> Batch:
    """The batch with `first` ahead of its references, and as many of those after as still fit."""
    room = _room(len(batch.specs), 0, capabilities)
    ordered = list(dict.fromkeys((*first, *batch.references)))
    return replace(batch, references=tuple(ordered[:room]))


def _fits(group: Sequence[FrameSpec], spec: FrameSpec, capabilities: Capabilities, neighbours: int) -> bool:
    """Whether `spec` can join `group` in one request (leaving room for neighbour images)."""
    if not _same_set(group[0], spec):
        return False  # one request: one variant, one size, and the one seed each of its frames records
    references = {h for s in (*group, spec) for h in s.reference_hashes}
    count = len(group) + 1
    if count > capabilities.max_images:
        return False
    sent = min(len(references) + neighbours, capabilities.max_references)
    return capabilities.max_total is None or count + sent <= capabilities.max_total


def _room(count: int, references: int, capabilities: Capabilities) -> int:
    """How many more reference images a request of `count` frames can carry."""
    room = capabilities.max_references - references
    if capabilities.max_total is not None:
        room = min(room, capabilities.max_total - count - references)
    return max(0, room)


def _neighbour_count(scene: model.Scene, neighbours: Mapping[str, Path],
                     capabilities: Capabilities | None = None) -> int:
    """Room a sequential group of `scene` leaves for other frames' images: its unchanged
    neighbours', or the previous batch's in a chained scene."""
    if capabilities is not None and _chained(scene, capabilities):
        return NEIGHBOURS
    if not neighbours:
        return 0
    return min(NEIGHBOURS, sum(1 for frame in scene.frames if frame.address in neighbours))


def _nearest(scene: model.Scene, group: Sequence[FrameSpec], neighbours: Mapping[str, Path],
             room: int) -> tuple[Path, ...]:
    """Images of the unchanged frames of `scene` closest in story order to the group's frames."""
    if not neighbours or room <= 0 or len(scene.frames) < 2:
        return ()
    position = {frame.address: number for number, frame in enumerate(scene.frames)}
    wanted = [position[spec.address] for spec in group]
    variant = group[0].variant
    candidates = [f for f in scene.frames if f.address in neighbours and f.variant_key == variant]
    candidates.sort(key=lambda f: (min(abs(position[f.address] - w) for w in wanted), position[f.address]))
    chosen = sorted(candidates[: min(room, NEIGHBOURS)], key=lambda f: position[f.address])
    return tuple(neighbours[frame.address] for frame in chosen)


def _own_references(group: Sequence[FrameSpec], references: Mapping[str, Path],
                    max_references: int) -> tuple[Path, ...]:
    hashes = list(dict.fromkeys(h for spec in group for h in spec.reference_hashes))
    return tuple(references[h] for h in hashes[:max_references])


def _prompt(project: model.Project, scene: model.Scene, group: Sequence[FrameSpec],
            renderer: Renderer) -> str:
    if len(group) == 1:
        return group[0].prompt
    rendered = [RenderedFrame(project.frame(spec.address) or _missing(spec.address), spec.prompt)
                for spec in group]
    return renderer.sequence_prompt(scene, rendered)


def _missing(address: str) -> model.Frame:
    raise AssertionError(f"a batch names {address}, which the project does not have")
