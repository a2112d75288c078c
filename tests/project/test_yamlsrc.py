"""Reading many YAML files: a helper process parses part of them, with the same results."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE, build_tree, starts_of

from storyboard.errors import ProjectError
from storyboard.project import yamlsrc
from storyboard.project.loader import load_project
from storyboard.project.yamlsrc import YamlFile, read_all


@pytest.fixture
def helper_for_small_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Use the helper for any two files, with an empty parse cache; returns its recorded starts."""
    monkeypatch.setenv("STORYBOARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(yamlsrc, "HELPER_MIN_BYTES", 0)
    monkeypatch.setattr(yamlsrc, "_HELPER_START_BYTES", 0)
    monkeypatch.setattr(yamlsrc, "usable_cores", lambda: 2)  # the machine's, not ours: CI has two
    return starts_of("storyboard.project.parse_helper")


def files(tmp_path: Path, texts: list[str]) -> list[Path]:
    paths = []
    for number, text in enumerate(texts):
        path = tmp_path / f"f{number}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def outcome(result: YamlFile | ProjectError) -> object:
    return result.format() if isinstance(result, ProjectError) else result.data


def test_the_helper_parses_the_last_files_with_the_same_results(
        tmp_path: Path, helper_for_small_files: list[list[str]]) -> None:
    texts = ["a: 1\n" * 1 + "list: [1, 2]\n", "b: café\n" + "x: y\n" * 50, "c: [\n",  # a syntax error
             "when: 2026-01-01\n",  # a timestamp: marshal cannot carry it
             "é: ü\n" + "k: v\n" * 80]
    paths = files(tmp_path, texts)
    together = read_all(paths)
    assert len(helper_for_small_files) == 1
    started = helper_for_small_files[0]
    assert started[-1] == str(paths[-1]) and str(paths[0]) not in started
    one_by_one: list[object] = []
    for path in paths:
        try:
            one_by_one.append(YamlFile.read(path).data)
        except ProjectError as error:
            one_by_one.append(error.format())
    assert [outcome(r) for r in together] == one_by_one
    assert "f2.yaml:2:1" in str(outcome(together[2]))


def test_a_helper_that_fails_only_costs_time(tmp_path: Path, helper_for_small_files: list[list[str]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    paths = files(tmp_path, ["a: 1\n", "b: 2\n", "c: [3]\n"])
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the helper starts and exits 1
    assert [outcome(r) for r in read_all(paths)] == [{"a": 1}, {"b": 2}, {"c": [3]}]
    assert len(helper_for_small_files) == 1


def test_small_projects_are_parsed_in_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYBOARD_CACHE_DIR", str(tmp_path / "cache"))
    starts = starts_of("storyboard.project.parse_helper")
    load_project(EXAMPLE)
    assert starts == []


def test_a_project_read_with_the_helper_is_the_same_project(
        tmp_path: Path, helper_for_small_files: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    with_helper = load_project(EXAMPLE)
    assert len(helper_for_small_files) == 1
    monkeypatch.setenv("STORYBOARD_CACHE_DIR", str(tmp_path / "other-cache"))
    monkeypatch.setattr(yamlsrc, "HELPER_MIN_BYTES", 10**12)
    alone = load_project(EXAMPLE)
    assert len(helper_for_small_files) == 1
    assert with_helper.frames == alone.frames and with_helper.characters == alone.characters


def test_the_helper_answers_digest_and_data_per_file(tmp_path: Path) -> None:
    import hashlib
    import marshal
    import subprocess

    paths = files(tmp_path, ["a: [1, 2]\n", "b: [\n", "when: 2026-01-01\n"])
    answer = subprocess.run([sys.executable, "-m", "storyboard.project.parse_helper", *map(str, paths)],
                            capture_output=True, check=True).stdout
    results = marshal.loads(answer)
    assert [digest for digest, _, _ in results] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert marshal.loads(results[0][1]) == {"a": [1, 2]}
    assert results[1][1] is None and results[2][1] is None  # a syntax error; a timestamp
    assert [valid for _, _, valid in results] == [None, None, None]  # not asked to check


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, "
    f"*{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}, *{chr(97 + n)}]\n" for n in range(9))


def test_the_helper_checks_included_files_against_their_schema(tmp_path: Path) -> None:
    """With --check it names the schema each file's data is valid against; an invalid one, or a
    "billion laughs" (refused before it is parsed, so never walked by a check), gets None."""
    import marshal
    import subprocess

    from storyboard.project.schema import schema_key

    paths = files(tmp_path, ["scenes: [{id: intro, frames: [{id: one, shot: wide}]}]\n",
                             "characters: [{id: mara, description: a barista}]\n",
                             "scenes: 7\n", LAUGHS])
    answer = subprocess.run([sys.executable, "-m", "storyboard.project.parse_helper", "--check",
                             *map(str, paths)], capture_output=True, check=True, timeout=60).stdout
    results = marshal.loads(answer)
    assert [valid for _, _, valid in results] == [schema_key("scene"), schema_key("character"), None, None]
    assert results[2][1] is not None and results[3][1] is None


def test_a_file_found_valid_is_not_checked_again_and_an_invalid_one_always_is(
        tmp_path: Path, helper_for_small_files: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper checks the files it parses (cold); a file found valid is remembered by its bytes
    in the parse cache (warm). Either way a project with a mistake reports it every time."""
    from storyboard.project import schema

    checked: list[str] = []
    is_valid = schema.is_valid
    monkeypatch.setattr(schema, "is_valid", lambda name, data: checked.append(name) or is_valid(name, data))
    project = build_tree(tmp_path / "p", {
        "storyboard.yaml": "version: 1\nproject: p\ninclude: [scenes/*.yaml]\n"
                           "templates: {frame: '{{ frame.shot }}'}\n",
        **{f"scenes/{n}.yaml": f"scenes: [{{id: s{n}, frames: [{{id: f, shot: wide}}]}}]\n"
           for n in range(4)},
        "scenes/9.yaml": "scenes: [{id: s9, frames: [{id: f, shoot: wide}]}]\n",
    })
    with pytest.raises(ProjectError) as cold:
        load_project(project)
    assert len(helper_for_small_files) == 1
    helped = [Path(name).name for name in helper_for_small_files[0][4:]]  # after python -m … --check
    assert helped and "9.yaml" in helped
    # here: the root, the files this process parsed, and the invalid one again (to say what is wrong)
    assert checked.count("scene") == 5 - len(helped) + 1 and checked.count("storyboard") == 1
    checked.clear()
    with pytest.raises(ProjectError) as warm:
        load_project(project)
    assert checked == ["scene"]  # only the file with the mistake
    assert warm.value.format() == cold.value.format() and "9.yaml:1:" in warm.value.format()


def test_a_modelled_project_keeps_positions_but_not_the_parsed_documents() -> None:
    """A 100,000-frame campaign's parsed YAML is ~100 MB: once modelled, only the text stays."""
    project = load_project(EXAMPLE)
    frame = project.scenes[1].frames[2]
    origin = frame.origin
    assert isinstance(origin, yamlsrc.YamlOrigin)
    assert origin.source.data is None  # let go: the model holds the values
    location = origin.at("id")
    lines = origin.source.path.read_text(encoding="utf-8").splitlines()
    assert location.file == origin.source.path and f"id: {frame.id}" in lines[location.line - 1]
