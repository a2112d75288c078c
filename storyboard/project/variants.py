"""Campaign variants: the `variants:` axes of storyboard.yaml, and each frame expanded over them.

    variants:
      locale: {en-US: {}, de-DE: {vars: {tagline: "…"}}}
      format: {landscape: {aspect: "16:9"}, story: {aspect: "9:16"}}
      master: {locale: en-US, format: landscape}
      derive: master          # default when a master is named; or independent

A frame is expanded into one frame per combination of the axes' values (axes in the
order written, values too): `morning/pour@de-DE,story`. A scene or frame narrows an axis
(`format: [landscape, story]`), opts out of it (`locale: false`: one image serves every
locale), or overrides per value (`locale: {de-DE: {dialogue: "…"}}`).

What decides a value, least specific first: project `variables` < the variant's values
(axes in order) < the scene (`vars`, then its override for the value) < the frame (`vars`,
then its override). The same order holds for `template` and `size`/`aspect`.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from storyboard.errors import Origin
from storyboard.project import model


class Report(Protocol):
    """Where a problem is reported: at `where` (its key with key=True), with a hint."""

    def __call__(self, where: Origin, message: str, hint: str, *, key: bool = False) -> None: ...
_TEXT_FIELDS = ("shot", "action", "dialogue", "notes")
RESERVED = ("master", "derive")  # keys of `variants:` that are not axes
MAX_COMBINATIONS = 256  # variants of one frame: 4 axes of 4 values, or 16 markets × 16 formats


@dataclass(frozen=True, slots=True)
class Variants:
    """The project's axes, its master and derive policy."""

    axes: tuple[model.Axis, ...] = ()
    master: tuple[tuple[str, str], ...] = ()
    derive: str = "independent"
    # what one combination of values sets, worked out once for all the frames made in it
    combinations: dict[tuple[tuple[str, str], ...], _Combination] = field(default_factory=dict, compare=False,
                                                                          repr=False)


@dataclass(frozen=True, slots=True)
class _Combination:
    """One combination of axis values: its Variant (when no override applies), and the template and
    size or aspect its values set."""

    variant: model.Variant
    template: str | None
    size: tuple[str | None, str | None]


def _combination(variants: Variants, combination: Sequence[tuple[model.Axis, str, _Rule]]) -> _Combination:
    values = tuple((axis.name, value) for axis, value, _ in combination)
    found = variants.combinations.get(values)
    if found is None:
        settings = tuple(axis.value(value) for axis, value, _ in combination)
        variant_vars: dict[str, Any] = {}
        for setting in settings:
            if setting is not None:
                variant_vars.update(setting.vars)
        sized = [(s.size, s.aspect) for s in settings if s is not None and (s.size or s.aspect)]
        variant = model.Variant(values, _frozen(variant_vars))
        size = sized[-1] if sized else (None, None)
        found = _Combination(variant, _last(settings, "template"), size)
        variants.combinations[values] = found
    return found


def read_variants(data: Mapping[str, Any], origin: Origin, report: Report) -> Variants:
    """The `variants:` section (already checked against the schema); problems are reported."""
    axes: list[model.Axis] = []
    owner: dict[str, str] = {}  # value -> its axis: a value names one axis, so addresses stay unambiguous
    for name, values in data.items():
        if name in RESERVED or not isinstance(values, Mapping):
            continue
        parsed = []
        for value, settings in values.items():
            where = origin.child(name, value)
            if value in owner:
                report(where, f"variant value `{value}` of axis `{name}` is also a value of axis "
                              f"`{owner[value]}`", "a value may belong to one axis only: addresses "
                                                    "such as `scene/frame@de-DE,story` name values alone")
                continue
            owner[value] = name
            settings = settings or {}
            parsed.append(model.AxisValue(value, _frozen(settings.get("vars")), settings.get("size"),
                                          settings.get("aspect"), settings.get("template"), where))
        if parsed:
            axes.append(model.Axis(name, tuple(parsed), origin.child(name)))
    combinations = math.prod(len(axis.values) for axis in axes)
    if combinations > MAX_COMBINATIONS:
        sizes = " × ".join(str(len(axis.values)) for axis in axes)
        report(origin, f"the axes make {combinations:,} variants of every frame ({sizes}), more than "
                       f"{MAX_COMBINATIONS}", "split the campaign into projects, or narrow axes per scene "
                                              "with `variants:` lists (see \"Limits\" in the README)")
        return Variants()
    master = _master(data.get("master"), axes, origin.child("master"), report)
    derive = data.get("derive", "master" if master else "independent")
    if derive == "master" and not master and axes:
        report(origin.child("derive"), "`derive: master` needs a master",
               "name one value per axis under `variants.master`, e.g. {locale: en-US, format: landscape}")
        derive = "independent"
    return Variants(tuple(axes), master, derive)


def _master(data: Any, axes: Sequence[model.Axis], origin: Origin,
            report: Report) -> tuple[tuple[str, str], ...]:
    if not isinstance(data, Mapping):
        return ()
    by_name = {axis.name: axis for axis in axes}
    chosen: dict[str, str] = {}
    for axis_name, value in data.items():
        axis = by_name.get(axis_name)
        if axis is None:
            report(origin.child(axis_name), f"the master names axis `{axis_name}`, which `variants:` "
                                            "does not have", _did_you_mean(axis_name, list(by_name)))
        elif axis.value(value) is None:
            report(origin.child(axis_name), f"the master names `{value}`, not a value of axis `{axis_name}`",
                   _did_you_mean(value, [v.name for v in axis.values]))
        else:
            chosen[axis_name] = value
    missing = [axis.name for axis in axes if axis.name not in data]
    if missing:
        report(origin, f"the master names no value of axis `{missing[0]}`",
               "the master is one variant: it names a value of every axis")
        return ()
    if len(chosen) < len(axes):
        return ()
    return tuple((axis.name, chosen[axis.name]) for axis in axes)


@dataclass(frozen=True, slots=True)
class _Rule:
    """What the scene and the frame say about one axis: its values, and their overrides per value."""

    values: tuple[str, ...] | None  # None: the axis is not varied over (opted out)
    scene: Mapping[str, Mapping[str, Any]]  # value -> the scene's override
    frame: Mapping[str, Mapping[str, Any]]  # value -> the frame's override


def expand(frame: model.Frame, scene: model.Scene, scene_rules: Mapping[str, Any] | None,
           frame_rules: Mapping[str, Any] | None, variants: Variants, report: Report) -> list[model.Frame]:
    """`frame` expanded over the project's axes (the frame itself when there are none)."""
    if not variants.axes:
        return [frame]
    rules = []
    for axis in variants.axes:
        rule = _Rule(tuple(value.name for value in axis.values), EMPTY_OVERRIDES, EMPTY_OVERRIDES)
        rule = _rule(axis, scene_rules, scene.origin, "scene", rule, report)
        rule = _rule(axis, frame_rules, frame.origin, "frame", rule, report)
        if rule.values is not None:
            rules.append((axis, rule))
    if any(not rule.values for _, rule in rules):
        return []  # narrowed to nothing (reported)
    combinations = itertools.product(*[[(axis, value, rule) for value in rule.values or ()]
                                       for axis, rule in rules])
    master = _master_for(rules, variants)
    return [_one(frame, scene, list(combination), master, variants) for combination in combinations]


EMPTY_OVERRIDES: Mapping[str, Mapping[str, Any]] = MappingProxyType({})


def check_axes(rules: Mapping[str, Any] | None, owner: Origin | None, variants: Variants,
               report: Report) -> None:
    """A scene's or frame's `variants:` names only axes the project has (others are reported)."""
    known = [axis.name for axis in variants.axes]
    for name in rules or {}:
        if name not in known and owner is not None:
            reason = f"; {_did_you_mean(name, known)}" if known else " (storyboard.yaml has no `variants:`)"
            report(owner.child("variants", name), f"no variant axis `{name}`{reason}",
                   "axes are the keys of `variants:` in storyboard.yaml", key=True)


def _rule(axis: model.Axis, rules: Mapping[str, Any] | None, owner: Origin | None, level: str,
          outer: _Rule, report: Report) -> _Rule:
    """The axis narrowed, dropped or overridden by one level's `variants:` (scene, then frame)."""
    if rules is None or axis.name not in rules:
        return outer
    written = rules[axis.name]
    origin = owner.child("variants", axis.name) if owner else None
    if written is False:
        return _Rule(None, EMPTY_OVERRIDES, EMPTY_OVERRIDES)
    known = [value.name for value in axis.values]
    names = list(written) if isinstance(written, (list, Mapping)) else []
    for position, name in enumerate(names):
        if name not in known and origin is not None:
            where = origin.child(position if isinstance(written, list) else name)
            report(where, f"`{name}` is not a value of axis `{axis.name}`", _did_you_mean(name, known))
    if outer.values is None:
        return outer  # the scene opted out: a frame cannot opt back in
    if isinstance(written, Mapping):  # overrides: the values stay as they were
        mine = MappingProxyType({name: value or {} for name, value in written.items()})
        return _Rule(outer.values, mine, outer.frame) if level == "scene" else \
            _Rule(outer.values, outer.scene, mine)
    narrowed = tuple(name for name in outer.values if name in names)
    if not narrowed and origin is not None:
        report(origin, f"the {level} narrows axis `{axis.name}` to no value it may have",
               f"values it may have here: {', '.join(outer.values)}")
    return _Rule(narrowed, outer.scene, outer.frame)


def _master_for(rules: Sequence[tuple[model.Axis, _Rule]], variants: Variants) -> tuple[tuple[str, str], ...]:
    """The master's values on the axes a frame varies over; empty when it has no master (derive:
    independent, no axes, or the frame is not made in the master's values)."""
    if variants.derive != "master" or not variants.master or not rules:
        return ()
    master = dict(variants.master)
    if not all(master[axis.name] in (rule.values or ()) for axis, rule in rules):
        return ()
    return tuple((axis.name, master[axis.name]) for axis, _ in rules)


def _one(frame: model.Frame, scene: model.Scene, combination: list[tuple[model.Axis, str, _Rule]],
         master: tuple[tuple[str, str], ...], variants: Variants) -> model.Frame:
    """The frame for one combination of values, every setting at its level (see the module doc)."""
    made = _combination(variants, combination)
    variant = made.variant
    scene_over = _merged([rule.scene.get(value) for _, value, rule in combination if rule.scene])
    frame_over = _merged([rule.frame.get(value) for _, value, rule in combination if rule.frame])
    template = frame_over.get("template") or frame.template or scene_over.get("template") or \
        (None if scene.template else made.template)
    size, aspect = _size(frame, frame_over, scene_over, scene, made.size)
    text = {key: frame_over[key] for key in _TEXT_FIELDS if key in frame_over}
    frame_vars = {**frame.vars, **frame_over["vars"]} if frame_over.get("vars") else frame.vars
    if scene_over.get("vars"):
        variant = model.Variant(variant.values, variant.vars, _frozen(scene_over["vars"]))
    master_address = None
    if master and variant.values != master:
        master_address = f"{frame.base_address}@{model.Variant(master).key}"
    return model.Frame(
        id=frame.id, scene_id=frame.scene_id, index=frame.index, duration=frame.duration,
        characters=frame.characters, template=template, size=size, aspect=aspect, seed=frame.seed,
        references=frame.references, vars=_frozen(frame_vars), origin=frame.origin,
        variant=variant, master=master_address, shot=text.get("shot", frame.shot),
        action=text.get("action", frame.action), dialogue=text.get("dialogue", frame.dialogue),
        notes=text.get("notes", frame.notes))


def variable_levels(project: model.Project, frame: model.Frame) -> list[tuple[str, Mapping[str, Any]]]:
    """The variables a frame's template sees, level by level, least specific first: `variables`,
    each variant value's (`locale=de-DE`), the scene's, the scene's override for the variant,
    the frame's (with its override). The one place this precedence is written down."""
    axes = {axis.name: axis for axis in project.axes}
    levels: list[tuple[str, Mapping[str, Any]]] = [("variables", project.variables)]
    for axis_name, value_name in frame.variant.values if frame.variant else ():
        value = axes[axis_name].value(value_name)
        levels.append((f"{axis_name}={value_name}", value.vars if value else model.EMPTY))
    levels.append(("scene", project.scene(frame.scene_id).vars))
    if frame.variant:
        levels.append((f"scene, for {frame.variant.key}", frame.variant.scene_vars))
    levels.append(("frame", frame.vars))
    return levels


def merged_variables(levels: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, values in levels:
        merged.update(values)
    return merged


def variable_sources(project: model.Project, frame: model.Frame) -> dict[str, str]:
    """Where each variable a frame's template sees comes from (`render --json` shows it)."""
    sources: dict[str, str] = {}
    for label, values in variable_levels(project, frame):
        sources.update({name: project.variable_sources.get(name, label) if label == "variables" else label
                        for name in values})
    return sources


def _merged(overrides: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Overrides of several axes' values, later axes on top (`vars` merged key by key)."""
    merged: dict[str, Any] = {}
    for override in overrides:
        for key, value in (override or {}).items():
            merged[key] = {**merged.get(key, {}), **value} if key == "vars" else value
    return merged


def _size(frame: model.Frame, frame_over: Mapping[str, Any], scene_over: Mapping[str, Any],
          scene: model.Scene, variant: tuple[str | None, str | None]) -> tuple[str | None, str | None]:
    """The size or aspect the frame is given: its override's, its own, its scene override's; none
    when the scene sets one (the scene's applies); else the variant's."""
    if frame.size or frame.aspect:
        return frame.size, frame.aspect
    for level in (frame_over, scene_over):
        if level.get("size") or level.get("aspect"):
            return level.get("size"), level.get("aspect")
    if scene.size or scene.aspect:
        return None, None
    return variant


def _last(settings: Sequence[model.AxisValue | None], key: str) -> Any:
    found = [getattr(setting, key) for setting in settings if setting is not None and getattr(setting, key)]
    return found[-1] if found else None


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean `{close[0]}`?" if close else f"known: {', '.join(known) or 'none'}"


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if isinstance(value, MappingProxyType) or not value:
        return value or model.EMPTY  # already frozen (a frame's own vars): shared, not copied
    return MappingProxyType(dict(value))
