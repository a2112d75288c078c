"""Load and validate a project: storyboard.yaml, its includes, templates and references.

Every problem is collected, none stops the others from being found:
1. syntax and JSON Schema of every file; a value at fault is left out of the data the
   model is built from (schema.checked_data), so the next stage still sees the rest;
2. semantic checks over the merged project: duplicate ids, unknown characters and
   templates, reference images, sizes, paths that would leave the project folder.

`read_project` returns the project with its problems (`Project.diagnostics`) and the
frames those problems leave unusable (`Project.broken`, not rendered); only a
storyboard.yaml that cannot be read at all is an error at once. `load_project` raises
them.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from storyboard.errors import Diagnostic, Location, Origin, ProjectError, UserError
from storyboard.fsutil import read_regular
from storyboard.images import image_format
from storyboard.project import model
from storyboard.project.schema import checked_data, document_schema
from storyboard.project.sizes import size_problem
from storyboard.project.variants import Variants, check_axes, expand, read_variants
from storyboard.project.yamlsrc import YamlFile, YamlOrigin, bad_bytes, read_all

ROOT_FILE = "storyboard.yaml"
TEMPLATE_DIR = "templates"
TEMPLATE_SUFFIX = ".j2"
MAX_TEMPLATE_BYTES = 256 * 1024


def find_root(path: Path) -> Path:
    """The storyboard.yaml of the project at `path` (a folder or the file itself)."""
    candidate = path / ROOT_FILE if path.is_dir() else path
    if not candidate.is_file():
        raise UserError(
            f"no {ROOT_FILE} in {path}",
            hint="run storyboard in a project folder, pass -C DIR, or create one with `storyboard init`",
        )
    return candidate.resolve()


def load_project(path: Path | str = ".") -> model.Project:
    """Read, validate and model the project at `path`; raises ProjectError listing every problem."""
    project = read_project(path)
    if project.diagnostics:
        raise ProjectError(project.diagnostics)
    return project


def read_project(path: Path | str = ".") -> model.Project:
    """Read and model the project at `path`, its problems in `diagnostics` (see the module doc)."""
    return _Reader(find_root(Path(path))).load()


class _Reader:
    def __init__(self, root_file: Path) -> None:
        self.root_file = root_file
        self.root = root_file.parent
        self.diagnostics: list[Diagnostic] = []
        self.broken: set[str] = set()  # frames a problem leaves unusable
        self._hashes: dict[Path, str | None] = {}
        self._unreadable_templates: set[str] = set()  # reported already: not "unknown" as well
        self._data: dict[Path, Any] = {}  # each file's data without the values at fault
        self.variants = Variants()
        self._bad_variant_templates: set[str] = set()  # reported at the axis value already
        self._broken_values: set[str] = set()  # variant values whose size or aspect is wrong

    def load(self) -> model.Project:
        root = self._read(self.root_file)
        if root is None or not isinstance(root.data, dict):
            if root is not None:
                self._checked(root, "storyboard")
            raise ProjectError(sorted(self.diagnostics, key=_position))
        self._checked(root, "storyboard")
        includes = [(source, kind) for source in self._included_files(root)
                    if self._checked(source, kind := document_schema(source.data)) is not None]
        templates = self._templates(root)
        characters = self._characters([root, *[s for s, kind in includes if kind == "character"]])
        self.variants = self._variants(root)
        scenes = self._scenes([root, *[s for s, kind in includes if kind == "scene"]])
        project = self._project(root, scenes, characters, templates, [s for s, _ in includes])
        self._check_names(project)
        for source in (root, *(source for source, _ in includes)):
            source.release_data()  # the model holds what it needs; errors later ask only positions
        return dataclasses.replace(project, diagnostics=tuple(sorted(self.diagnostics, key=_position)),
                                   broken=frozenset(self.broken))

    # --- files ---------------------------------------------------------------

    def _read(self, path: Path) -> YamlFile | None:
        try:
            return YamlFile.read(path)
        except ProjectError as error:
            self.diagnostics.extend(error.diagnostics)
            return None

    def _checked(self, source: YamlFile, schema: str) -> Any:
        """The file's data without what its schema refuses (the refusals are reported)."""
        problems, data = checked_data(source, schema)
        self.diagnostics.extend(problems)
        self._data[source.path] = data if isinstance(data, dict) else {}
        return self._data[source.path]

    def _of(self, source: YamlFile) -> dict[str, Any]:
        data: dict[str, Any] = self._data[source.path]
        return data

    def _included_files(self, root: YamlFile) -> list[YamlFile]:
        seen: set[Path] = {self.root_file}
        paths: list[Path] = []
        for position, pattern in enumerate(self._of(root).get("include", [])):
            origin = YamlOrigin(root, ("include", position))
            if pattern is None:
                continue
            if not self._inside(pattern, origin, "include pattern"):
                continue
            matches = sorted(p for p in self.root.glob(pattern) if p.is_file())
            if not matches:
                self._error(origin, f"include pattern `{pattern}` matches no file",
                            "check the pattern; it is relative to the folder of storyboard.yaml")
            for match in matches:
                resolved = match.resolve()
                if not resolved.is_relative_to(self.root):
                    self._error(origin, f"`{match}` is outside the project folder")
                elif resolved not in seen:
                    seen.add(resolved)
                    paths.append(resolved)
        sources: list[YamlFile] = []
        for result in read_all(paths, check=True):
            if isinstance(result, ProjectError):
                self.diagnostics.extend(result.diagnostics)
            else:
                sources.append(result)
        return sources

    def _inside(self, written: str, origin: YamlOrigin, what: str) -> bool:
        """Whether a path written in a file stays inside the project folder."""
        pure = PurePosixPath(written.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or Path(written).is_absolute():
            self._error(origin, f"{what} `{written}` leaves the project folder",
                        "paths are relative to the project folder and stay inside it")
            return False
        return True

    # --- model building ------------------------------------------------------

    def _templates(self, root: YamlFile) -> dict[str, model.Template]:
        templates: dict[str, model.Template] = {}
        folder = self.root / TEMPLATE_DIR
        for path in sorted(folder.rglob(f"*{TEMPLATE_SUFFIX}")) if folder.is_dir() else []:
            name = path.relative_to(folder).as_posix().removesuffix(TEMPLATE_SUFFIX)
            source = self._template_source(path)
            if source is not None:
                templates[name] = model.Template(name, source, path)
            else:
                self._unreadable_templates.add(name)
        for name, source in self._of(root).get("templates", {}).items():
            if name in templates:
                self._error(YamlOrigin(root, ("templates", name)),
                            f"template `{name}` is defined here and in "
                            f"{TEMPLATE_DIR}/{name}{TEMPLATE_SUFFIX}", "keep one of the two", key=True)
            offset = root.block_offset(("templates", name))
            templates[name] = model.Template(name, source, root.path, offset)
        return templates

    def _template_source(self, path: Path) -> str | None:
        """A template file's text, if it is a readable UTF-8 file that stays inside the project.

        A link is followed only to see where it leads: a template that resolves outside the
        project folder is refused (its contents would end up in prompts, the lockfile, the
        pages and the requests sent to the service).
        """
        where = Location(path, 1, 1)
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            self.diagnostics.append(Diagnostic(
                f"template `{path.name}` is a link to a file outside the project folder",
                where, hint="copy the template into the project instead of linking to it"))
            return None
        try:
            raw = read_regular(resolved)
        except OSError as exc:
            self.diagnostics.append(Diagnostic(f"template cannot be read: {exc.strerror}", where))
            return None
        if raw is None:  # a pipe would never answer
            self.diagnostics.append(Diagnostic("template is not a file", where))
            return None
        if len(raw) > MAX_TEMPLATE_BYTES:
            self.diagnostics.append(Diagnostic(
                f"template is {len(raw):,} bytes, more than the {MAX_TEMPLATE_BYTES:,} a template may hold",
                where, hint="templates write prompts of a few sentences; split or shorten it"))
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.diagnostics.append(bad_bytes(path, raw, exc))
            return None

    def _characters(self, sources: list[YamlFile]) -> dict[str, model.Character]:
        characters: dict[str, model.Character] = {}
        for source in sources:
            for position, data in enumerate(self._of(source).get("characters", [])):
                origin = YamlOrigin(source, ("characters", position))
                if data is None or "id" not in data or "description" not in data:  # refused (reported)
                    continue
                character_id = data["id"]
                if character_id in characters:
                    self._duplicate("character", character_id, origin, characters[character_id].origin)
                    continue
                characters[character_id] = model.Character(
                    id=character_id,
                    name=data.get("name", character_id),
                    description=data["description"],
                    references=self._references(data, origin) or (),
                    vars=_frozen(data.get("vars")),
                    origin=origin,
                )
        return characters

    def _scenes(self, sources: list[YamlFile]) -> list[model.Scene]:
        scenes: dict[str, model.Scene] = {}
        for source in sources:
            for position, data in enumerate(self._of(source).get("scenes", [])):
                origin = YamlOrigin(source, ("scenes", position))
                if data is None or "id" not in data or "frames" not in data:  # refused (reported)
                    continue
                scene_id = data["id"]
                if scene_id in scenes:
                    self._duplicate("scene", scene_id, origin, scenes[scene_id].origin)
                    continue
                frames, rules = self._frames(scene_id, data["frames"], origin)
                if self._check_size(data, origin):
                    self.broken.update(frame.address for frame in frames)
                scene = model.Scene(
                    id=scene_id,
                    frames=frames,
                    title=data.get("title", ""),
                    description=data.get("description", ""),
                    sequential=data.get("sequential"),
                    regenerate=data.get("regenerate", "changed"),
                    consistency=data.get("consistency", "parallel"),
                    template=data.get("template"),
                    sequence_template=data.get("sequence_template"),
                    size=data.get("size"),
                    aspect=data.get("aspect"),
                    seed=data.get("seed"),
                    vars=_frozen(data.get("vars")),
                    origin=origin,
                )
                scenes[scene_id] = self._expanded(scene, data.get("variants"), rules)
        return list(scenes.values())

    def _expanded(self, scene: model.Scene, scene_rules: Mapping[str, Any] | None,
                  frame_rules: Mapping[str, Mapping[str, Any] | None]) -> model.Scene:
        """The scene with each frame expanded over the variant axes, variant by variant (the
        frames of one variant together, in story order: they are generated as one set)."""
        check_axes(scene_rules, scene.origin, self.variants, self._report)
        for frame in scene.frames:
            check_axes(frame_rules.get(frame.id), frame.origin, self.variants, self._report)
        if not self.variants.axes:
            return scene
        order = {value.name: number for axis in self.variants.axes
                 for number, value in enumerate(axis.values)}
        axes = [axis.name for axis in self.variants.axes]
        frames: list[model.Frame] = []
        for frame in scene.frames:
            rules = frame_rules.get(frame.id)
            expanded = expand(frame, scene, scene_rules, rules, self.variants, self._report)
            if frame.address in self.broken:
                self.broken.update(variant.address for variant in expanded)
            frames.extend(expanded)

        def position(frame: model.Frame) -> tuple[list[int], int]:
            chosen = frame.variant.as_dict() if frame.variant else {}
            return [order[chosen[axis]] if axis in chosen else -1 for axis in axes], frame.index

        frames.sort(key=position)
        for frame in frames:
            assert frame.variant is not None
            if any(value in self._broken_values for _, value in frame.variant.values):
                self.broken.add(frame.address)
        return dataclasses.replace(scene, frames=tuple(frames))

    def _variants(self, root: YamlFile) -> Variants:
        """The `variants:` axes; a value whose size, aspect or template is wrong is reported, and its
        frames are not rendered."""
        data = self._of(root).get("variants")
        if not data:
            return Variants()
        origin = YamlOrigin(root, ("variants",))
        variants = read_variants(data, origin, self._report)
        for axis in variants.axes:
            for value in axis.values:
                where = origin.child(axis.name, value.name)
                settings = data[axis.name][value.name] or {}
                if self._check_size(settings, where):
                    self._broken_values.add(value.name)
        return variants

    def _report(self, where: Origin, message: str, hint: str, *, key: bool = False) -> None:
        self._error(where, message, hint, key=key)

    def _frames(self, scene_id: str, items: list[dict[str, Any] | None],
                scene: YamlOrigin) -> tuple[tuple[model.Frame, ...], dict[str, Any]]:
        """The scene's frames, and the `variants:` each of them says (by frame id)."""
        frames: dict[str, model.Frame] = {}
        rules: dict[str, Any] = {}
        for position, data in enumerate(items):
            origin = YamlOrigin(scene.source, (*scene.path, "frames", position))
            if data is None or "id" not in data:  # refused by the schema (reported)
                continue
            if data["id"] in frames:
                self._duplicate("frame", f"{scene_id}/{data['id']}", origin, frames[data["id"]].origin)
                continue
            address = f"{scene_id}/{data['id']}"
            if self._check_size(data, origin):
                self.broken.add(address)
            references = self._references(data, origin)
            if references is None:
                self.broken.add(address)
            frames[data["id"]] = model.Frame(
                id=data["id"],
                scene_id=scene_id,
                index=len(frames) + 1,
                shot=data.get("shot", ""),
                action=data.get("action", ""),
                dialogue=data.get("dialogue", ""),
                duration=data.get("duration"),
                characters=_present(data.get("characters", ())),
                template=data.get("template"),
                size=data.get("size"),
                aspect=data.get("aspect"),
                seed=data.get("seed"),
                references=references or (),
                notes=data.get("notes", ""),
                vars=_frozen(data.get("vars")),
                origin=origin,
            )
            rules[data["id"]] = data.get("variants")
        return tuple(frames.values()), rules

    def _references(self, data: Mapping[str, Any], owner: YamlOrigin) -> tuple[model.Reference, ...] | None:
        """The reference images named; None when one of them cannot be used (reported)."""
        references: list[model.Reference] = []
        usable = True
        for position, written in enumerate(data.get("references", [])):
            origin = YamlOrigin(owner.source, (*owner.path, "references", position))
            if written is None:
                continue
            if not self._inside(written, origin, "reference"):
                usable = False
                continue
            file = (self.root / written).resolve()
            if not file.is_relative_to(self.root):
                self._error(origin, f"reference `{written}` leads outside the project folder")
                usable = False
                continue
            digest = self._image_hash(file, written, origin)
            if digest is None:
                usable = False
            else:
                references.append(model.Reference(written, file, digest, origin))
        return tuple(references) if usable else None

    def _fonts(self, written: list[str], owner: YamlOrigin) -> tuple[Path, ...]:
        """The font files named (each inside the project and readable as a font; else reported)."""
        fonts: list[Path] = []
        for position, name in enumerate(written):
            origin = YamlOrigin(owner.source, (*owner.path, position))
            if not isinstance(name, str) or not self._inside(name, origin, "font"):
                continue
            file = (self.root / name).resolve()
            if not file.is_relative_to(self.root):
                self._error(origin, f"font `{name}` leads outside the project folder")
            elif not file.is_file():
                self._error(origin, f"font `{name}` does not exist", "paths are relative to storyboard.yaml")
            else:
                from storyboard.fonts import font_problem

                problem = font_problem(file)
                if problem:
                    self._error(origin, f"font `{name}` {problem}", "name a .ttf or .otf file")
                else:
                    fonts.append(file)
        return tuple(fonts)

    def _image_hash(self, file: Path, written: str, origin: YamlOrigin) -> str | None:
        if file not in self._hashes:
            try:
                data = read_regular(file)
            except FileNotFoundError:
                self._error(origin, f"reference image `{written}` does not exist",
                            "paths are relative to the folder of storyboard.yaml")
                return None
            except OSError as exc:
                self._error(origin, f"reference image `{written}` cannot be read: {exc.strerror}")
                return None
            if data is None:  # a pipe would never answer
                self._error(origin, f"reference image `{written}` is not a file")
                return None
            ok = image_format(data) is not None
            self._hashes[file] = hashlib.sha256(data).hexdigest() if ok else None
            if not ok:
                self._error(origin, f"`{written}` is not an image (PNG, JPEG, WebP or GIF)")
        return self._hashes[file]

    def _project(self, root: YamlFile, scenes: list[model.Scene],
                 characters: dict[str, model.Character], templates: dict[str, model.Template],
                 includes: list[YamlFile]) -> model.Project:
        data = self._of(root)
        defaults = data.get("defaults", {})
        if self._check_size(defaults, YamlOrigin(root, ("defaults",))):
            self.broken.update(f.address for scene in scenes for f in scene.frames)
        provider = data.get("provider", {})
        output = data.get("output", {})
        limits = data.get("limits", {})
        output_dir = output.get("dir", "out")
        self._inside(output_dir, YamlOrigin(root, ("output", "dir")), "output folder")
        return model.Project(
            root=self.root,
            name=data.get("project") or _slug(self.root.name),
            scenes=tuple(scenes),
            characters=MappingProxyType(characters),
            templates=MappingProxyType(templates),
            provider=model.ProviderConfig(
                **{key: value for key, value in provider.items() if key in _CORE_PROVIDER_KEYS},
                params=_frozen(provider.get("params")),
                options=_frozen(provider.get("options")),
                options_origin=YamlOrigin(root, ("provider", "options")),
            ),
            description=data.get("description", ""),
            variables=_frozen(data.get("variables")),
            default_size=defaults.get("size"),
            default_aspect=defaults.get("aspect"),
            default_template=defaults.get("template", model.DEFAULT_TEMPLATE),
            sequence_template=data.get("sequence_template", model.DEFAULT_SEQUENCE_TEMPLATE),
            output_dir=output_dir,
            keep_versions=output.get("keep"),
            max_cost=data.get("budget", {}).get("max_cost"),
            max_prompt_chars=limits.get("prompt_chars", model.DEFAULT_MAX_PROMPT_CHARS),
            render_seconds=limits.get("render_seconds", model.DEFAULT_RENDER_SECONDS),
            backend=model.BackendConfig(**data["backend"]) if "backend" in data else None,
            files=(root.path, *(source.path for source in includes)),
            fonts=self._fonts(data.get("fonts", []), YamlOrigin(root, ("fonts",))),
            axes=self.variants.axes,
            master=self.variants.master,
            derive=self.variants.derive,
            origin=YamlOrigin(root, ()),
        )

    # --- semantic checks -----------------------------------------------------

    def _check_size(self, data: Mapping[str, Any], origin: YamlOrigin) -> bool:
        """Whether `size` or `aspect` has a problem (reported)."""
        problems = 0
        if "size" in data and "aspect" in data:
            self._error(origin.child("aspect"), "set either `size` or `aspect`, not both", key=True)
            problems += 1
        for key in ("size", "aspect"):
            if key in data and (problem := size_problem(key, data[key])):
                self._error(origin.child(key), problem)
                problems += 1
        return problems > 0

    def _check_names(self, project: model.Project) -> None:
        templates = sorted(project.templates)
        with_builtin = [*templates, model.DEFAULT_SEQUENCE_TEMPLATE]
        root = project.origin
        assert root is not None
        uses_default = any(
            frame.template is None and scene.template is None
            for scene in project.scenes for frame in scene.frames
        )
        if uses_default and not self._check_template(project.default_template,
                                                     root.child("defaults", "template"), templates):
            self.broken.update(f.address for scene in project.scenes for f in scene.frames
                               if f.template is None and scene.template is None)
        sequence_ok = self._check_template(project.sequence_template, root.child("sequence_template"),
                                           with_builtin)
        for axis in project.axes:
            for value in axis.values:
                if value.template and value.origin and \
                        not self._check_template(value.template, value.origin.child("template"), templates):
                    self._bad_variant_templates.add(value.template)
        for scene in project.scenes:
            assert scene.origin is not None
            scene_ok = sequence_ok
            if scene.template and not self._check_template(scene.template, scene.origin.child("template"),
                                                            templates):
                self.broken.update(f.address for f in scene.frames if f.template is None)
            if scene.sequence_template:
                scene_ok = self._check_template(scene.sequence_template,
                                                scene.origin.child("sequence_template"), with_builtin)
            for frame in scene.frames:
                if not self._check_frame(project, frame, templates) or not scene_ok:
                    self.broken.add(frame.address)

    def _check_frame(self, project: model.Project, frame: model.Frame, templates: list[str]) -> bool:
        """Whether the frame's characters and template exist (what is missing is reported)."""
        assert frame.origin is not None
        ok = True
        for position, character in enumerate(frame.characters):
            if character not in project.characters:
                close = difflib.get_close_matches(character, list(project.characters), n=1)
                hint = f"did you mean `{close[0]}`?" if close else \
                    f"known characters: {', '.join(sorted(project.characters)) or 'none'}"
                self._error(frame.origin.child("characters", position),
                            f"unknown character `{character}` in frame {frame.address}", hint)
                ok = False
        if frame.template in self._bad_variant_templates:
            ok = False  # reported at the variant's value
        elif frame.template:
            ok = self._check_template(frame.template, frame.origin.child("template"), templates) and ok
        return ok

    def _check_template(self, name: str, origin: Origin, known: list[str]) -> bool:
        """Whether template `name` exists (an unknown one is reported)."""
        if name in known:
            return True
        if name in self._unreadable_templates:
            return False
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else \
            f"templates are {TEMPLATE_DIR}/NAME{TEMPLATE_SUFFIX} files or inline under `templates:`"
        self._error(origin, f"unknown template `{name}`", hint)
        return False

    # --- reporting -----------------------------------------------------------

    def _error(self, origin: Origin, message: str, hint: str = "", *, key: bool = False) -> None:
        self.diagnostics.append(Diagnostic(message, origin.at(key=key), origin.crumb(), hint))

    def _duplicate(self, kind: str, name: str, origin: Origin, first: Origin | None) -> None:
        where = f" (first defined at {first.at('id')})" if first else ""
        self.diagnostics.append(Diagnostic(f"duplicate {kind} id `{name}`{where}",
                                           origin.at("id"), origin.crumb("id"),
                                           f"{kind} ids must be unique in the project"))



def _position(diagnostic: Diagnostic) -> tuple[str, int, int]:
    where = diagnostic.location
    return (str(where.file), where.line, where.col) if where else ("", 0, 0)


_CORE_PROVIDER_KEYS = ("name", "model", "parallelism", "requests_per_minute", "price_per_image")


def _present(items: Any) -> tuple[str, ...]:
    """The items of a list the schema checked, without those it refused (None)."""
    if None not in items:
        return tuple(items)
    return tuple(item for item in items if item is not None)


def _slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return cleaned or "storyboard"


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if value else model.EMPTY


def read_var_file(path: Path) -> dict[str, Any]:
    """A `--var-file`: a YAML mapping of variables (read with the same limits as project files)."""
    if not path.is_file():
        raise UserError(f"no variables file {path}",
                        hint="--var-file takes a YAML file of `name: value` lines")
    source = YamlFile.read(path)
    if not isinstance(source.data, dict) or not all(isinstance(key, str) for key in source.data):
        raise ProjectError([Diagnostic("a variables file is a mapping of names to values",
                                       Location(path, 1, 1), hint="for example `tagline: First Light`")])
    return dict(source.data)
