"""Wheel build hook: put a validity check of each schema in the wheel (storyboard/_checks/).

Generating and compiling a check takes ~100 ms for the schemas a `plan` needs; made here,
pip compiles them when it installs the wheel, so the first command on a fresh CI machine
does not pay for it (storyboard.project.schema.fast_check uses a packaged check only when
it was made of the schema it is asked for). Editable installs keep generating them into
the user's cache, so an edited schema is always checked as it is.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ChecksBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        bundle = _load_bundle(Path(self.root) / "storyboard" / "project" / "bundle.py")
        schemas = Path(self.root) / "schemas"
        self._folder = Path(tempfile.mkdtemp(prefix="storyboard-checks-"))
        load = functools.cache(functools.partial(bundle.load, schemas))
        files = {"__init__.py": '"""Schema checks generated when the wheel was built (hatch_build.py)."""\n'}
        for name in bundle.names(schemas):
            files[f"{bundle.module_name(name)}.py"] = bundle.check_source(bundle.bundled(name, load))
        for file_name, source in files.items():
            (self._folder / file_name).write_text(source, encoding="utf-8")
            packaged = f"storyboard/{bundle.PACKAGED}/{file_name}"
            build_data["force_include"][str(self._folder / file_name)] = packaged

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        folder = getattr(self, "_folder", None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _load_bundle(path: Path) -> Any:
    """storyboard/project/bundle.py by its path (the package's dependencies are not installed here)."""
    spec = importlib.util.spec_from_file_location("storyboard_schema_bundle", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
