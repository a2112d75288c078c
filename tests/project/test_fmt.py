"""`storyboard fmt`: one canonical layout, comments kept, idempotent, and fingerprints unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import CAMPAIGN, EXAMPLE

from storyboard.project.fmt import format_text

MESSY = """\
# the campaign's opening
scenes:
- frames:   # in story order
  - action: "a door opens"    # keep this quote
    aspect: "1:1"
    id: one
    shot: wide
  id: intro
  title: 'Intro'
"""


def untidy(file: Path) -> None:
    """Every mapping's keys reversed, four-space indentation, sequences not indented; comments kept."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=4, sequence=4, offset=0)
    document = yaml.load(file.read_text())

    def reverse(node: object) -> None:
        if isinstance(node, CommentedMap):
            for key in reversed(list(node)):
                node.move_to_end(key)
            for value in node.values():
                reverse(value)
        elif isinstance(node, list):
            for item in node:
                reverse(item)

    reverse(document)
    with file.open("w") as handle:
        yaml.dump(document, handle)


def rendered_prompts(run, project: Path) -> dict[str, str]:
    result = run("-C", project, "render", "--json")
    assert result.code == 0, result.err
    return {item["address"]: item["prompt"] for item in json.loads(result.out)}


def test_canonical_layout_keeps_comments_and_quotes() -> None:
    formatted = format_text(MESSY)
    assert formatted == """\
# the campaign's opening
scenes:
  - id: intro
    title: 'Intro'
    frames: # in story order
      - id: one
        shot: wide
        action: "a door opens" # keep this quote
        aspect: "1:1"
"""
    assert format_text(formatted) == formatted  # idempotent


@pytest.mark.parametrize("source", ["example", "init", "campaign"])
def test_a_formatted_project_plans_exactly_as_before(run, example: Path, tmp_path: Path, source: str) -> None:
    project = example
    if source == "init":
        project = tmp_path / "fresh"
        assert run("init", project).code == 0
    if source == "campaign":
        project = Path(shutil.copytree(CAMPAIGN, tmp_path / "campaign"))
    for file in project.rglob("*.yaml"):  # make every file untidy first
        untidy(file)
    assert run("-C", project, "apply", "--auto-approve").code == 0
    comments = {file: file.read_text().count("#") for file in project.rglob("*.yaml")}
    before = rendered_prompts(run, project)
    check = run("-C", project, "fmt", "--check")
    assert check.code == 1 and check.out.strip()  # each untidy file named
    assert run("-C", project, "fmt").code == 0
    assert run("-C", project, "fmt", "--check").code == 0  # idempotent
    assert {file: file.read_text().count("#") for file in project.rglob("*.yaml")} == comments
    assert rendered_prompts(run, project) == before
    assert run("-C", project, "plan", "--detailed-exitcode").code == 0  # same fingerprints: nothing to do


@pytest.mark.parametrize("bundled", [EXAMPLE, CAMPAIGN])
def test_the_bundled_examples_are_formatted(run, bundled: Path) -> None:
    result = run("-C", bundled, "fmt", "--check")
    assert result.code == 0 and result.out == ""


def test_diff_shows_the_change_and_writes_nothing(run, example: Path) -> None:
    scene = example / "scenes/04-cafe.yaml"
    scene.write_text(scene.read_text().replace("      - id: square\n        action:",
                                               "      - action:", 1).replace(
        "for the social cut-down\n", "for the social cut-down\n        id: square\n", 1))
    untidy = scene.read_text()
    result = run("-C", example, "fmt", "--diff")
    assert result.code == 0 and "04-cafe.yaml (formatted)" in result.out
    assert "+      - id: square" in result.out
    assert scene.read_text() == untidy
    assert run("-C", example, "fmt", "--check", "--diff").code == 1


def test_a_file_that_does_not_parse_is_refused_at_its_line(run, example: Path) -> None:
    scene = example / "scenes/03-commute.yaml"
    scene.write_text(scene.read_text() + "  - id: [\n")
    before = {file: file.read_bytes() for file in example.rglob("*.yaml")}
    result = run("-C", example, "fmt")
    assert result.code == 1 and "03-commute.yaml:" in result.err and "YAML syntax error" in result.err
    assert {file: file.read_bytes() for file in example.rglob("*.yaml")} == before
