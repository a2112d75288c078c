"""`storyboard import shotlist`: a spreadsheet's CSV into a scene file that validates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

SHEET = '''Scene,Shot #,Shot type,Description,VO,Length,Cast,Notes
Before the City Wakes,1,wide,"the harbour at dawn, one window glowing",,2.5,,
Before the City Wakes,2,close-up,"Mara's hands, ""latte art""","Première tasse — ただいま",3,Mara,"keep \
it warm
and slow"
Before the City Wakes,2,insert,a second take on shot two,,,mara,
,,,,,,,
Before the City Wakes,3,wide,a bad row,,soon,,
Le Café,1A,two-shot,Theo and Mara laugh,"Told you, it's special.",2,"Mara, Theo",
Le Café,2,wide,one cell too many,,1,,,extra
'''


def test_a_shot_list_becomes_a_scene_file_that_validates(run, example: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "Shot List.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    result = run("-C", example, "import", "shotlist", sheet)
    assert result.code == 0, result.err
    written = example / "scenes" / "shot-list.yaml"
    assert "wrote" in result.out and "2 scenes, 4 frames" in result.out
    data = yaml.safe_load(written.read_text(encoding="utf-8"))
    first, second = data["scenes"]
    assert (first["id"], first["title"]) == ("before-the-city-wakes", "Before the City Wakes")
    assert [f["id"] for f in first["frames"]] == ["shot-1", "shot-2", "shot-2-2"]  # unique, stable
    pour = first["frames"][1]
    assert pour["action"] == "Mara's hands, \"latte art\"" and pour["dialogue"] == "Première tasse — ただいま"
    assert pour["duration"] == 3 and pour["characters"] == ["mara"]
    assert pour["notes"] == "keep it warm\nand slow"
    assert second["id"] == "le-cafe" and second["frames"][0]["id"] == "shot-1a"
    assert second["frames"][0]["characters"] == ["mara", "theo"]
    # the bad rows, each at its line in the sheet (the quoted note spans lines 3 and 4)
    assert "Shot List.csv:7:6: duration `soon` is not a number of seconds" in result.err
    assert "Shot List.csv:9:1: row has 9 cells, the header 8" in result.err
    assert "characters the project does not define yet" not in result.err  # mara and theo exist
    validated = run("-C", example, "validate")
    assert validated.code == 0, validated.err


def test_an_existing_file_is_kept_without_force(run, example: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "board.csv"
    sheet.write_text("Description\nthe door opens\n")
    target = example / "scenes" / "01-morning.yaml"
    before = target.read_bytes()
    refused = run("-C", example, "import", "shotlist", sheet, "--scene-file", "scenes/01-morning.yaml")
    assert refused.code == 1 and "already exists" in refused.err and "--force" in refused.err
    assert target.read_bytes() == before
    outside = run("-C", example, "import", "shotlist", sheet, "--scene-file", "../elsewhere.yaml")
    assert outside.code == 1 and "outside the project folder" in outside.err


def test_map_names_columns_the_header_does_not(run, example: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "odd.csv"
    sheet.write_text("Where,What we see\nAlley,a cat on a wall\n")
    unmapped = run("-C", example, "import", "shotlist", sheet)
    assert unmapped.code == 1 and "odd.csv:1:1: " in unmapped.err
    assert "no column says what happens" in unmapped.err
    assert "--map" in unmapped.err
    mapped = run("-C", example, "import", "shotlist", sheet, "--map", "What we see=action",
                 "--map", "Where=scene")
    assert mapped.code == 0, mapped.err
    data = yaml.safe_load((example / "scenes" / "odd.yaml").read_text())
    (scene,) = data["scenes"]
    assert scene["id"] == "alley" and scene["frames"][0]["action"] == "a cat on a wall"
    wrong = run("-C", example, "import", "shotlist", sheet, "--map", "Where=place", "--force")
    assert wrong.code == 1 and "no field `place`" in wrong.err


def test_unknown_characters_are_listed(run, example: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "extras.csv"
    sheet.write_text("Scene,Action,Cast\nStreet,a stranger waves,Nadia; Mara\n")
    result = run("-C", example, "import", "shotlist", sheet)
    assert result.code == 0 and "characters the project does not define yet: nadia" in result.err
    validated = run("-C", example, "validate")
    assert validated.code == 1 and "extras.yaml:" in validated.err and "nadia" in validated.err


@pytest.mark.parametrize(("raw", "expected"), [
    ("Action\nthe door opens\ncaf\xe9 au lait\n".encode("latin-1"),
     "sheet.csv:3:4: not UTF-8 text: byte 0xe9"),
    (b"Action\nfine\n\"" + b"x" * 200_000 + b"\"\n", "sheet.csv:3:1: not a readable CSV row"),
])
def test_a_sheet_that_cannot_be_read_is_refused_at_its_line(run, example: Path, tmp_path: Path, raw: bytes,
                                                            expected: str) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(raw)
    result = run("-C", example, "import", "shotlist", sheet)
    assert result.code == 1 and expected in result.err and "Traceback" not in result.err
    assert not (example / "scenes" / "sheet.yaml").exists()


def test_a_cell_with_a_control_character_is_left_out_at_its_line(run, example: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"Shot,Action\n1,the door opens\n2,a\x00b\x1b[2J\n")
    result = run("-C", example, "import", "shotlist", sheet)
    assert result.code == 0
    assert "sheet.csv:3:2: row's action holds a control character: left out" in result.err
    text = (example / "scenes" / "sheet.yaml").read_text()
    assert "the door opens" in text and "\\0" not in text and "\\e" not in text and "shot-2" not in text
