"""The command line as a user meets it: help, schema, init, validate on the example."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import EXAMPLE, REPO


def test_validate_the_bundled_example(run) -> None:
    result = run("-C", EXAMPLE, "validate")
    assert result.code == 0
    assert result.out.strip() == "OK coffee-launch: 5 scenes, 31 frames, 3 characters, 3 templates"


def test_schema_prints_every_schema_as_json(run) -> None:
    result = run("schema")
    assert result.code == 0
    schemas = json.loads(result.out)
    assert {"storyboard", "scene", "character"} <= set(schemas)
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_by_name_and_unknown_name(run) -> None:
    assert json.loads(run("schema", "scene").out)["title"] == "scene file"
    result = run("schema", "scenes")
    assert result.code == 1
    assert "no schema `scenes`" in result.err


def test_schema_output_dir_writes_files_editors_can_use(run, tmp_path: Path) -> None:
    result = run("schema", "-o", tmp_path / "schemas")
    assert result.code == 0
    assert (tmp_path / "schemas" / "storyboard.schema.json").is_file()


def test_example_files_point_editors_at_the_schemas() -> None:
    for path in [EXAMPLE / "storyboard.yaml", *EXAMPLE.glob("*/*.yaml")]:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=")[1]).resolve()
        assert target.is_file(), f"{path}: {target}"


def test_init_writes_a_project_that_validates(run, tmp_path: Path) -> None:
    result = run("init", tmp_path / "new-board")
    assert result.code == 0
    project = tmp_path / "new-board"
    scenes = [yaml.safe_load(p.read_text())["scenes"] for p in sorted(project.glob("scenes/*.yaml"))]
    assert len(scenes) == 2
    assert (project / "refs" / "ada.png").read_bytes().startswith(b"\x89PNG")
    result = run("-C", project, "validate")
    assert result.code == 0, result.err
    assert result.out.startswith("OK new-board: 2 scenes, 3 frames, 1 character, 1 template")


def test_init_refuses_an_existing_project(run, tmp_path: Path) -> None:
    run("init", tmp_path)
    result = run("init", tmp_path)
    assert result.code == 1
    assert "already exists" in result.err


def test_help_lists_the_commands(run) -> None:
    result = run("--help")
    assert result.code == 0
    for command in ("validate", "render", "schema", "init", "approve", "unapprove"):
        assert command in result.out


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """This checkout built as a wheel, and installed into a folder as pip installs it (compiled)."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(folder / "dist"), str(REPO)], check=True, capture_output=True, timeout=300)
    wheel = next((folder / "dist").glob("storyboard_iac-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(folder / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return wheel, folder / "site"


@pytest.mark.slow
def test_built_wheel_carries_the_schemas_and_page_templates(installed_wheel: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    wheel, target = installed_wheel
    names = zipfile.ZipFile(wheel).namelist()
    assert "storyboard/schemas/storyboard.schema.json" in names
    templates = "storyboard/deliver/page_templates/"
    assert {f"{templates}index.html.j2", f"{templates}changes.html.j2", f"{templates}board.html.j2",
            f"{templates}style.css", f"{templates}viewer.js"} <= set(names)
    assert {"storyboard/fonts/DejaVuSans.ttf", "storyboard/fonts/DejaVuSans-Bold.ttf",
            "storyboard/fonts/LICENSE-DejaVu.txt"} <= set(names)  # the font and its licence
    entry_points = zipfile.ZipFile(wheel).read(
        next(name for name in names if name.endswith(".dist-info/entry_points.txt"))).decode()
    assert "[pytest11]\nstoryboard.testing.pytest_plugin = storyboard.testing.pytest_plugin" in entry_points
    assert "storyboard-fake-atlas = storyboard.testing.server:main" in entry_points
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    where = subprocess.run(
        [sys.executable, "-c", "import storyboard.project.schema as s; print(s.schema_dir())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(target))
    printed = subprocess.run([sys.executable, "-m", "storyboard", "schema", "scene"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert json.loads(printed.stdout)["title"] == "scene file"


@pytest.mark.slow
def test_installed_wheel_validates_with_its_own_schema_checks(installed_wheel: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    """A fresh install generates no schema check (the wheel carries one per schema, made when it was
    built); one made of another schema than the installed one is not used."""
    wheel, target = installed_wheel
    schemas = sorted(p.name.removesuffix(".schema.json") for p in (REPO / "schemas").glob("*.schema.json"))
    assert {f"storyboard/_checks/{name.replace('-', '_')}.py" for name in schemas} <= set(
        zipfile.ZipFile(wheel).namelist())
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    cache = tmp_path / "cache"
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "STORYBOARD_CACHE_DIR": str(cache)}

    def validate() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "storyboard", "-C", str(project), "validate"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)

    result = validate()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK coffee-launch: 5 scenes, 31 frames")
    assert not list(cache.glob("check-*"))  # nothing generated: the packaged checks were used
    scene = project / "scenes" / "01-morning.yaml"
    scene.write_text(scene.read_text().replace("frames:", "framez:", 1))
    result = validate()
    assert result.returncode == 1
    line = next(n for n, text in enumerate(scene.read_text().splitlines(), 1) if "framez:" in text)
    assert f"scenes/01-morning.yaml:{line}:" in result.stderr and "framez" in result.stderr
    assert not list(cache.glob("check-*"))
    check = target / "storyboard" / "_checks" / "scene.py"  # now made of another schema
    check.write_text(check.read_text().replace("DIGEST = '", "DIGEST = 'another ", 1))
    for compiled in (check.parent / "__pycache__").glob("scene.*.pyc"):
        compiled.unlink()
    result = validate()
    assert result.returncode == 1 and f"scenes/01-morning.yaml:{line}:" in result.stderr
    assert [path.name.split("-")[1] for path in cache.glob("check-*")] == ["scene"]  # made again, kept


@pytest.mark.slow
def test_a_users_tests_get_the_fake_atlas_fixture_without_configuration(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(
        "import os, httpx\n\n"
        "def test_fake(fake_atlas):\n"
        "    assert os.environ['ATLASCLOUD_BASE_URL'].startswith('http://127.0.0.1:')\n"
        "    assert httpx.get(fake_atlas.base_url + '/_fake/stats').status_code == 200\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 passed" in result.stdout


def test_the_fake_server_has_its_console_script() -> None:
    script = Path(sys.executable).parent / "storyboard-fake-atlas"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "usage: storyboard-fake-atlas" in result.stdout
