"""The fast schema check (fastjsonschema) and jsonschema must give the same answer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLE, REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from storyboard.project.schema import FILE_SCHEMAS, is_valid, validator
from storyboard.state.lockfile import Approval, LockEntry, plainly_valid

SCHEMA_OF = {"storyboard.yaml": "storyboard", "characters": "character", "scenes": "scene"}
ODD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 20), st.floats(allow_nan=False),
                       st.text(max_size=6), st.just("2048x2048"), st.just("16:9"), st.just("Bad Id"),
                       st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                st.integers(), max_size=2))


def example_documents() -> list[tuple[str, Any]]:
    documents = []
    for path in sorted(EXAMPLE.rglob("*.yaml")):
        key = path.name if path.name == "storyboard.yaml" else path.parent.name
        documents.append((SCHEMA_OF[key], yaml.safe_load(path.read_text())))
    documents.append(("lockfile", json.loads((REPO / "tests/golden/storyboard.lock").read_text())))
    return documents


DOCUMENTS = example_documents()


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside a document (where a mutation can land)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def mutate(document: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    changed = copy.deepcopy(document)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[f"{last}x"] = value
    return changed


def test_the_example_is_valid_for_both() -> None:
    assert {name for name, _ in DOCUMENTS} == {*FILE_SCHEMAS, "lockfile"}
    for name, document in DOCUMENTS:
        assert is_valid(name, document) and validator(name).is_valid(document)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_fast_check_and_jsonschema_agree_on_mutated_documents(data: st.DataObject) -> None:
    name, document = data.draw(st.sampled_from(DOCUMENTS))
    path = data.draw(st.sampled_from(paths(document)))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    changed = mutate(document, path, action, data.draw(ODD_VALUES))
    assert is_valid(name, changed) == validator(name).is_valid(changed), (path, action)



def test_a_damaged_or_unwritable_cache_only_costs_time(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from storyboard.project.schema import fast_check

    monkeypatch.setenv("STORYBOARD_CACHE_DIR", str(tmp_path / "cache"))
    fast_check.cache_clear()
    assert not is_valid("character", {"characters": [{"id": "mara"}]})  # no description
    cached = list((tmp_path / "cache").glob("check-character-*.marshal"))
    assert len(cached) == 1
    cached[0].write_bytes(b"not marshal data")
    fast_check.cache_clear()
    assert is_valid("character", {"characters": [{"id": "mara", "description": "a barista"}]})
    monkeypatch.setenv("STORYBOARD_CACHE_DIR", "/proc/no-such-place")
    fast_check.cache_clear()
    assert not is_valid("character", {"characters": [{"id": "Bad Id", "description": "x"}]})
    fast_check.cache_clear()


def test_parsed_yaml_is_cached_by_content_and_survives_damage(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from storyboard.errors import ProjectError
    from storyboard.project.yamlsrc import YamlFile

    monkeypatch.setenv("STORYBOARD_CACHE_DIR", str(tmp_path / "cache"))
    file = tmp_path / "a.yaml"
    file.write_text("scenes:\n  - id: one\n    when: 2026-01-01\n")  # a timestamp: not marshal-able
    assert str(YamlFile.read(file).data["scenes"][0]["when"]) == "2026-01-01"
    assert not list((tmp_path / "cache").rglob("*.marshal"))
    file.write_text("scenes:\n  - id: one\n    frames: [a, b]\n")
    first = YamlFile.read(file).data
    entries = list((tmp_path / "cache").rglob("*.marshal"))
    assert len(entries) == 1
    assert YamlFile.read(file).data == first  # loaded from the cache
    entries[0].write_bytes(b"\x00garbage")
    assert YamlFile.read(file).data == first  # damaged entry: parsed again
    file.write_text("scenes:\n  - id: one\n    frames: [a, c]\n")
    assert YamlFile.read(file).data["scenes"][0]["frames"] == ["a", "c"]  # new bytes, new key
    broken = tmp_path / "b.yaml"
    broken.write_text("scenes:\n  - id: [\n")
    with pytest.raises(ProjectError) as caught:
        YamlFile.read(broken)
    assert "YAML syntax error" in caught.value.diagnostics[0].message


GOLDEN_LOCK = json.loads((REPO / "tests/golden/storyboard.lock").read_text())
WITH_SOURCES = copy.deepcopy(GOLDEN_LOCK)
next(iter(WITH_SOURCES["frames"].values()))["sources"] = {"template frame": "0123456789ab", "variables": "x"}


def test_the_lockfile_fast_path_takes_what_storyboard_writes() -> None:
    for document in (GOLDEN_LOCK, WITH_SOURCES):
        assert document["approvals"]
        fast = plainly_valid(document)
        assert fast == ({a: LockEntry.from_json(e) for a, e in document["frames"].items()},
                        {a: Approval.from_json(e) for a, e in document["approvals"].items()})


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_the_lockfile_fast_path_never_accepts_what_the_schema_rejects(data: st.DataObject) -> None:
    document = data.draw(st.sampled_from([GOLDEN_LOCK, WITH_SOURCES]))
    path = data.draw(st.sampled_from(paths(document)))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    changed = mutate(document, path, action, data.draw(ODD_VALUES | st.just("a" * 64)))
    fast = plainly_valid(changed)
    if fast is not None:
        assert validator("lockfile").is_valid(changed), (path, action)
        assert fast[0] == {a: LockEntry.from_json(e) for a, e in changed["frames"].items()}
        assert fast[1] == {a: Approval.from_json(e) for a, e in changed.get("approvals", {}).items()}


def test_every_schema_names_itself_and_its_refs_resolve_through_the_ids() -> None:
    from storyboard.project.schema import available_schemas, load_schema

    base = "https://raw.githubusercontent.com/storyboard-iac/storyboard/main/schemas/"
    for name in available_schemas():
        assert load_schema(name)["$id"] == f"{base}{name}.schema.json"
    scene_ref = {"version": 1, "project": "Bad Id"}  # `project` is checked by scene.schema.json's $defs/id
    assert not validator("storyboard").is_valid(scene_ref)
    assert validator("storyboard").is_valid({"version": 1, "project": "good-id"})
