"""Rendering: golden prompts of the bundled example, context precedence, whitespace, sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import jinja2.sandbox
import pytest
from conftest import EXAMPLE, build_tree, check_golden

from storyboard.errors import ProjectError
from storyboard.project.loader import load_project
from storyboard.project.prompts import render


def test_render_of_the_example_matches_golden_text(run) -> None:
    result = run("--no-color", "-C", EXAMPLE, "render")
    assert result.code == 0
    check_golden("coffee-launch.render.txt", result.out)


def test_render_json_of_the_example_matches_golden(run) -> None:
    result = run("-C", EXAMPLE, "render", "--json")
    assert result.code == 0
    data = json.loads(result.out)
    assert len(data) == 31
    check_golden("coffee-launch.render.json", result.out)


def test_render_selected_frames_in_story_order(run) -> None:
    result = run("-C", EXAMPLE, "render", "--json", "packshot", "morning/pour")
    addresses = [item["address"] for item in json.loads(result.out)]
    assert addresses == ["morning/pour", "packshot/hero", "packshot/square"]


def test_render_unknown_address_suggests_the_closest(run) -> None:
    result = run("-C", EXAMPLE, "render", "morning/pur")
    assert result.code == 1
    assert "no scene or frame `morning/pur`" in result.err
    assert "did you mean `morning/pour`?" in result.err


def test_vars_precedence_project_scene_frame(tmp_path: Path) -> None:
    project_dir = build_tree(tmp_path / "p", {
        "storyboard.yaml": """
            version: 1
            project: p
            variables: {a: project, b: project, c: project}
            templates:
              frame: "{{ vars.a }} {{ vars.b }} {{ vars.c }} #{{ index }} {{ scene.title }}"
            scenes:
              - id: s
                title: The Scene
                vars: {b: scene, c: scene}
                frames:
                  - id: f1
                    vars: {c: frame}
                  - id: f2
        """,
    })
    prompts = [r.prompt for r in render(load_project(project_dir))]
    assert prompts == ["project scene frame #1 The Scene", "project scene scene #2 The Scene"]


def test_whitespace_is_collapsed_and_characters_resolved(tmp_path: Path) -> None:
    project_dir = build_tree(tmp_path / "p", {
        "storyboard.yaml": """
            version: 1
            project: p
            characters:
              - {id: ada, name: Ada, description: "tall,   calm"}
            scenes:
              - id: s
                frames:
                  - {id: f, characters: [ada], action: "  walks\\n\\n  in  "}
        """,
        "templates/frame.j2": "{{ frame.action }}\n\n{% for c in characters %}\n"
                              "   {{ c.name }}: {{ c.description }}\n{% endfor %}",
    })
    assert render(load_project(project_dir))[0].prompt == "walks in Ada: tall, calm"


def test_dotted_names_read_the_data_first(tmp_path: Path) -> None:
    """`vars.items` is the variable called items (not dict.items); methods on values still work."""
    project_dir = build_tree(tmp_path / "p", {
        "storyboard.yaml": """
            version: 1
            project: p
            variables: {items: three cups, keys: brass}
            templates:
              frame: "{{ vars.items }} / {{ vars.keys }} / {{ frame.shot.upper() }} /
                      {{ vars.get('none', 'x') }}"
            scenes:
              - id: s
                frames: [{id: f, shot: wide}]
        """,
    })
    assert render(load_project(project_dir))[0].prompt == "three cups / brass / WIDE / x"


LOOP = ("{% for s in vars.style %}{% for c in s %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
        "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.depth }}"
        "{{ loop.depth0 }}{{ loop.previtem | default('-') }}{{ loop.nextitem | default('-') }}"
        "{{ loop.cycle('a', 'b') }};{% endfor %}"
        "{% endfor %}")


def test_the_loop_variable_reads_as_in_jinjas_sandbox(tmp_path: Path) -> None:
    """Its properties are read directly, not the sandbox's way: the same text as the sandbox's."""
    project_dir = build_tree(tmp_path / "p", {
        "storyboard.yaml": f"""
            version: 1
            project: p
            variables: {{style: [ab, cde]}}
            templates:
              frame: "{LOOP}"
            scenes:
              - id: s
                frames: [{{id: f}}]
        """,
    })
    sandbox = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    expected = sandbox.from_string(LOOP).render(vars={"style": ["ab", "cde"]})
    assert render(load_project(project_dir))[0].prompt == expected
    assert expected.startswith("1021TrueFalse210-ba;2110FalseTrue210a-b;") and expected.count(";") == 5


@pytest.mark.parametrize("template, message", [
    ("{{ ''.__class__.__mro__ }}", "unsafe"),
    ("{% for x in [1] %}{{ loop.__class__.__init__.__globals__ }}{% endfor %}", "unsafe"),
    ("{% include '../../etc/passwd' %}", "not found"),
    ("{{ frame.vars.update({'x': 1}) }}", "unsafe"),
])
def test_sandbox_refuses_unsafe_templates(tmp_path: Path, template: str, message: str) -> None:
    project_dir = build_tree(tmp_path / "p", {
        "storyboard.yaml": f"""
            version: 1
            project: p
            templates:
              frame: "{template}"
            scenes:
              - id: s
                frames: [{{id: f}}]
        """,
    })
    with pytest.raises(ProjectError) as caught:
        render(load_project(project_dir))
    assert message in caught.value.format().lower()
