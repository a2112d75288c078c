"""Loading and validation: every bad input ends in file:line:col, a message, exit 1, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import MINIMAL_ROOT, build_tree, png_bytes, run_process

from storyboard.errors import ProjectError
from storyboard.project.loader import load_project


def validate(run, project: Path):  # type: ignore[no-untyped-def]
    result = run("validate", cwd=project)
    assert "Traceback" not in result.err + result.out
    return result


def scene_file(frames_yaml: str, scene_id: str = "intro") -> str:
    return f"scenes:\n  - id: {scene_id}\n    frames:\n{frames_yaml}"


def test_valid_minimal_project_reports_ok(run, minimal: Path) -> None:
    result = validate(run, minimal)
    assert result.code == 0
    assert result.out.strip() == "OK demo: 1 scene, 2 frames, 0 characters, 1 template"


def test_yaml_syntax_error_names_file_line_and_column(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(
        "scenes:\n  - id: intro\n    frames:\n      - id: one\n       action: [unclosed\n")
    result = validate(run, minimal)
    assert result.code == 1
    assert result.err.startswith("scenes/a.yaml:5:")
    assert "YAML syntax error" in result.err
    assert result.err.rstrip().endswith("1 error in the project")


def test_every_schema_violation_is_reported_at_once(run, minimal: Path) -> None:
    build_tree(minimal, {
        "scenes/a.yaml": """
            scenes:
              - id: intro
                frames:
                  - id: one
                    shot: 3
                    duration: -2
                  - id: two
                    characters: mara
        """,
        "scenes/b.yaml": """
            scenes:
              - id: Outro
                frames: []
        """,
    })
    result = validate(run, minimal)
    assert result.code == 1
    lines = result.err.splitlines()
    assert "scenes/a.yaml:5:15: scenes[0].frames[0].shot: expected a string, got int 3" in lines
    assert "scenes/a.yaml:6:19: scenes[0].frames[0].duration: must be more than 0, got -2" in lines
    assert "scenes/a.yaml:8:21: scenes[0].frames[1].characters: expected an array, got str 'mara'" \
        in lines
    assert "scenes/b.yaml:2:9: scenes[0].id: `Outro` is not valid here" in lines
    assert "scenes/b.yaml:3:13: scenes[0].frames: must not be empty" in lines
    assert lines[-1] == "5 errors in the project"


def test_unknown_key_has_did_you_mean_hint(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        acton: runs\n"))
    result = validate(run, minimal)
    assert result.code == 1
    assert "scenes/a.yaml:5:9: scenes[0].frames[0].acton: unknown key `acton`; did you mean `action`?" \
        in result.err


def test_unknown_key_in_root_file(run, minimal: Path) -> None:
    (minimal / "storyboard.yaml").write_text("version: 1\nproject: demo\nprovidr: {name: local}\n")
    result = validate(run, minimal)
    assert "storyboard.yaml:3:1: providr: unknown key `providr`; did you mean `provider`?" in result.err


def test_api_key_in_yaml_is_refused(run, minimal: Path) -> None:
    (minimal / "storyboard.yaml").write_text(
        "version: 1\nproject: demo\nprovider:\n  name: atlascloud\n  api_key: sk-live-123\n")
    result = validate(run, minimal)
    assert result.code == 1
    assert "storyboard.yaml:5:3: provider.api_key: `api_key` is not allowed here" in result.err
    assert "ATLASCLOUD_API_KEY" in result.err
    assert "sk-live-123" not in result.err


def test_a_credential_in_the_backend_settings_is_refused(run, minimal: Path) -> None:
    (minimal / "storyboard.yaml").write_text(
        "version: 1\nproject: demo\nbackend:\n  url: s3://bucket/demo\n"
        "  secret_access_key: wJalrXUtnFEMI-K7MDENG\n")
    result = validate(run, minimal)
    assert result.code == 1
    assert "storyboard.yaml:5:3: backend.secret_access_key: `secret_access_key` is not allowed here" \
        in result.err
    assert "AWS_SECRET_ACCESS_KEY" in result.err and "wJalrXUtnFEMI" not in result.err


def test_duplicate_scene_across_two_files_names_both(run, minimal: Path) -> None:
    build_tree(minimal, {"scenes/b.yaml": scene_file("      - id: one\n")})
    result = validate(run, minimal)
    assert result.code == 1
    assert "scenes/b.yaml:2:9: scenes[0].id: duplicate scene id `intro` " \
        "(first defined at scenes/a.yaml:2:9)" in result.err


def test_duplicate_frame_in_a_scene_names_both_places(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n      - id: one\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:5:13: scenes[0].frames[1].id: duplicate frame id `intro/one` " \
        "(first defined at scenes/a.yaml:4:13)" in result.err


def test_duplicate_character_across_files(run, minimal: Path) -> None:
    character = "characters:\n  - id: mara\n    description: a barista\n"
    (minimal / "storyboard.yaml").write_text(MINIMAL_ROOT.replace("scenes/*.yaml", "'*/*.yaml'")
                                             .replace("\n    ", "\n").strip() + "\n")
    build_tree(minimal, {"cast/a.yaml": character, "cast/b.yaml": character})
    result = validate(run, minimal)
    assert "cast/b.yaml:2:9: characters[0].id: duplicate character id `mara` " \
        "(first defined at cast/a.yaml:2:9)" in result.err


def test_unknown_character_with_hint(run, minimal: Path) -> None:
    build_tree(minimal, {
        "scenes/a.yaml": scene_file("      - id: one\n        characters: [mara, marra]\n"),
        "characters.yaml": "characters:\n  - id: mara\n    description: a barista\n",
    })
    root = (minimal / "storyboard.yaml").read_text().replace("[scenes/*.yaml]",
                                                             "[characters.yaml, scenes/*.yaml]")
    (minimal / "storyboard.yaml").write_text(root)
    result = validate(run, minimal)
    assert result.code == 1
    assert "scenes/a.yaml:5:28: scenes[0].frames[0].characters[1]: unknown character `marra` " \
        "in frame intro/one" in result.err
    assert "hint: did you mean `mara`?" in result.err


def test_unknown_template(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        template: fram\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:5:19: scenes[0].frames[0].template: unknown template `fram`" in result.err
    assert "did you mean `frame`?" in result.err


def test_undefined_template_variable_names_template_line_and_frame(run, minimal: Path) -> None:
    build_tree(minimal, {"templates/wide.j2": "{{ frame.action }}\nin {{ vars.city }}\n"})
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        template: wide\n"))
    result = validate(run, minimal)
    assert result.code == 1
    assert "templates/wide.j2:2:1: undefined variable `city` (rendering frame intro/one)" in result.err
    assert "frame defined at scenes/a.yaml:4:9" in result.err


def test_undefined_variable_in_inline_template_points_into_storyboard_yaml(run, minimal: Path) -> None:
    (minimal / "storyboard.yaml").write_text(
        "version: 1\nproject: demo\ninclude: [scenes/*.yaml]\ntemplates:\n  frame: |\n"
        "    {{ frame.action }}\n    {{ missing }}\n")
    result = validate(run, minimal)
    assert "storyboard.yaml:7:1: undefined variable `missing` (rendering frame intro/one)" in result.err


def test_template_syntax_error_names_template_file_and_line(run, minimal: Path) -> None:
    build_tree(minimal, {"templates/wide.j2": "{{ frame.action }}\n{% if frame.shot %}\nwide\n"})
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        template: wide\n"))
    result = validate(run, minimal)
    assert result.code == 1
    assert result.err.startswith("templates/wide.j2:")
    assert "template syntax error: Unexpected end of template" in result.err
    assert "(rendering frame intro/one)" in result.err


def test_missing_reference_image(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        references: [refs/x.png]\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:5:22: scenes[0].frames[0].references[0]: reference image `refs/x.png` " \
        "does not exist" in result.err


def test_reference_that_is_not_an_image(run, minimal: Path) -> None:
    build_tree(minimal, {"refs/x.png": "just text"})
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        references: [refs/x.png]\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:5:22: scenes[0].frames[0].references[0]: `refs/x.png` is not an image" \
        in result.err


def test_reference_outside_the_project(run, minimal: Path) -> None:
    (minimal.parent / "secret.png").write_bytes(png_bytes())
    (minimal / "scenes/a.yaml").write_text(
        scene_file("      - id: one\n        references: [../secret.png]\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:5:22: scenes[0].frames[0].references[0]: reference `../secret.png` " \
        "leaves the project folder" in result.err


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_reference_symlink_leading_outside_the_project(run, minimal: Path) -> None:
    (minimal.parent / "secret.png").write_bytes(png_bytes())
    (minimal / "refs").mkdir()
    (minimal / "refs/link.png").symlink_to(minimal.parent / "secret.png")
    (minimal / "scenes/a.yaml").write_text(
        scene_file("      - id: one\n        references: [refs/link.png]\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:5:22: scenes[0].frames[0].references[0]: reference `refs/link.png` " \
        "leads outside the project folder" in result.err


def test_include_outside_the_project(run, minimal: Path) -> None:
    (minimal / "storyboard.yaml").write_text("version: 1\nproject: demo\ninclude:\n  - ../other/*.yaml\n")
    result = validate(run, minimal)
    assert result.code == 1
    assert "storyboard.yaml:4:5: include[0]: include pattern `../other/*.yaml` leaves the project folder" \
        in result.err


def test_include_that_matches_nothing(run, minimal: Path) -> None:
    (minimal / "storyboard.yaml").write_text("version: 1\nproject: demo\ninclude: [scene/*.yaml]\n")
    result = validate(run, minimal)
    assert "storyboard.yaml:3:11: include[0]: include pattern `scene/*.yaml` matches no file" in result.err


def test_frame_id_that_would_escape_a_folder(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: ../x\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:4:13: scenes[0].frames[0].id: `../x` is not valid here" in result.err
    assert "hint: ids use lowercase letters" in result.err


def test_invalid_size_and_size_with_aspect(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file(
        "      - id: one\n        size: 10x100\n"
        "      - id: two\n        size: 800x600\n        aspect: '4:3'\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:5:15: scenes[0].frames[0].size: size 10x100 is out of range" in result.err
    assert "scenes/a.yaml:8:9: scenes[0].frames[1].aspect: set either `size` or `aspect`, not both" \
        in result.err


def test_size_not_written_as_width_x_height(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        size: 800*600\n"))
    result = validate(run, minimal)
    assert "scenes/a.yaml:5:15: scenes[0].frames[0].size:" in result.err
    assert "hint: write a size as WIDTHxHEIGHT" in result.err


def test_empty_scene_file(run, minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text("# nothing yet\n")
    result = validate(run, minimal)
    assert result.code == 1
    assert "scenes/a.yaml" in result.err
    assert "expected an object, got nothing (null)" in result.err


def test_no_project_here(run, tmp_path: Path) -> None:
    result = validate(run, tmp_path)
    assert result.code == 1
    assert "no storyboard.yaml in ." in result.err
    assert "storyboard init" in result.err


def test_user_errors_never_print_a_traceback_in_a_real_process(minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        acton: x\n"))
    completed = run_process("validate", cwd=minimal)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert "scenes/a.yaml:5:9:" in completed.stderr


def test_load_project_returns_an_immutable_model(minimal: Path) -> None:
    project = load_project(minimal)
    assert [frame.address for frame in project.frames] == ["intro/one", "intro/two"]
    assert project.frames[1].index == 2
    with pytest.raises(AttributeError):
        project.name = "other"  # type: ignore[misc]


def test_load_project_raises_project_error_with_all_diagnostics(minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        shot: 1\n        seed: -1\n"))
    with pytest.raises(ProjectError) as caught:
        load_project(minimal)
    assert [d.crumb for d in caught.value.diagnostics] == ["scenes[0].frames[0].shot",
                                                          "scenes[0].frames[0].seed"]
    assert all(d.location and d.location.line > 0 for d in caught.value.diagnostics)


@pytest.mark.parametrize("line, expected", [
    ("base_url: ftp://example.com", "6:15: provider.options.base_url: `ftp://example.com` is not valid here"),
    ("poll_interval: 0", "6:20: provider.options.poll_interval: must be more than 0, got 0"),
    ("retry_deadline: -5", "6:21: provider.options.retry_deadline: must be at least 0, got -5"),
    ("base64_outputs: yes please", "6:21: provider.options.base64_outputs: expected a boolean"),
    ("latency: 3", "6:5: provider.options.latency: unknown key `latency`"),
])
def test_bad_atlascloud_options_name_file_and_line(run, minimal: Path, line: str, expected: str) -> None:
    (minimal / "storyboard.yaml").write_text(
        f"version: 1\nproject: demo\nprovider:\n  name: atlascloud\n  options:\n    {line}\n")
    result = validate(run, minimal)
    assert result.code == 1
    assert f"storyboard.yaml:{expected}" in result.err, result.err
    if "base_url" in line:
        assert "an http(s) URL such as" in result.err


def test_schema_violations_are_worded_for_people_not_validators(run, minimal: Path) -> None:
    (minimal / "storyboard.yaml").write_text(
        "version: 1\nproject: demo\ninclude: [scenes/*.yaml]\ntemplates: {frame: x}\n"
        "provider: {parallelism: 0, requests_per_minute: -3}\nlimits: {prompt_chars: 5}\n")
    (minimal / "scenes/a.yaml").write_text(scene_file(
        "      - id: one\n        characters: [ada, ada]\n        size: 12x\n        seed: 99999999999\n"
        "        references: []\n        template: ''\n"))
    result = validate(run, minimal)
    assert result.code == 1
    for raw in ("is less than", "is greater than", "should be non-empty", "does not match", "^[",
                "non-unique", "is too short", "is not valid under"):
        assert raw not in result.err, raw
    for worded in ("provider.parallelism: must be at least 1, got 0",
                   "provider.requests_per_minute: must be more than 0, got -3",
                   "limits.prompt_chars: must be at least 100, got 5",
                   "scenes[0].frames[0].characters: lists `ada` more than once",
                   "scenes[0].frames[0].size: `12x` is not valid here",
                   "hint: write a size as WIDTHxHEIGHT",
                   "scenes[0].frames[0].seed: must be at most 2,147,483,647, got 99,999,999,999"):
        assert worded in result.err, worded


def test_a_provider_setting_outside_options_says_where_it_goes(run, minimal: Path) -> None:
    root = minimal / "storyboard.yaml"
    root.write_text(root.read_text() + "provider:\n  name: local\n  latency: 2\n")
    result = validate(run, minimal)
    assert result.code == 1
    assert "provider.latency: unknown key `latency`" in result.err
    assert "settings of one provider go under `options:`" in result.err


def test_options_of_the_local_provider_are_checked_by_it(run, minimal: Path) -> None:
    root = minimal / "storyboard.yaml"
    root.write_text(root.read_text() + "provider:\n  name: local\n"
                                       "  options: {latency: -1, poll_interval: 2}\n")
    result = validate(run, minimal)
    assert result.code == 1
    assert "provider.options.latency: must be at least 0, got -1" in result.err
    assert "provider.options.poll_interval: unknown key `poll_interval`" in result.err
