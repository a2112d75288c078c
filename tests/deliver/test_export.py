"""`storyboard export pdf` and `export contact-sheet`: read back what a user would print or share."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import version_frames
from pypdf import PdfReader

FRAMES = 31


def scene_sizes(project: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for frame in version_frames(project / "out/v0001"):
        sizes[frame["scene"]] = sizes.get(frame["scene"], 0) + 1
    return sizes


@pytest.mark.parametrize("per_page", [4, 6, 9])
def test_pdf_has_a_cover_then_each_scene_from_a_new_page(run, applied: Path, tmp_path: Path,
                                                         per_page: int) -> None:
    target = tmp_path / "board.pdf"
    result = run("-C", applied, "export", "pdf", "-o", target, "--per-page", str(per_page))
    assert result.code == 0, result.err
    reader = PdfReader(target)
    sizes = scene_sizes(applied)
    per_scene = [min(per_page, size - n * per_page) for size in sizes.values()
                 for n in range(math.ceil(size / per_page))]
    assert len(reader.pages) == 1 + len(per_scene)
    assert [len(page.images) for page in reader.pages] == [0, *per_scene]
    text = "\n".join(page.extract_text() for page in reader.pages)
    positions = [text.index(frame["address"]) for frame in version_frames(applied / "out/v0001")]
    assert positions == sorted(positions)  # story order
    cover = reader.pages[0].extract_text()
    assert "coffee-launch" in cover and "Version 0001" in cover and f"{FRAMES} frames in 5 scenes" in cover
    assert "0 of 31 frames approved" in cover
    assert f"page 2 of {len(reader.pages)}" in text and "version 0001" in text
    assert "First one's always for me." in text and "2.5 s" in text and "close-up" in text
    assert "Notes: Hold on the latte art" in text and "Characters: mara" in text
    assert [item["/Title"] for item in reader.outline] == [
        "Before the City Wakes", "Where First Light Begins", "Morning Rush", "First Sip", "Packshot"]
    first_pages = [reader.get_destination_page_number(item) for item in reader.outline]
    assert first_pages == [1 + sum(math.ceil(size / per_page) for size in list(sizes.values())[:n])
                           for n in range(len(sizes))]  # each scene starts a page


def test_scene_headings_carry_description_and_running_time(run, applied: Path, tmp_path: Path) -> None:
    target = tmp_path / "board.pdf"
    assert run("-C", applied, "export", "pdf", "-o", target).code == 0
    morning = PdfReader(target).pages[1].extract_text()
    frames = version_frames(applied / "out/v0001")
    durations = [f.get("duration") or 0 for f in frames if f["scene"] == "morning"]
    assert sum(durations) == 9
    assert "Before the City Wakes" in morning and "4 frames  ·  0:09" in morning
    assert "Mara opens the café in the blue hour" in morning


def test_the_same_version_gives_the_same_pdf_bytes(run, applied: Path, tmp_path: Path) -> None:
    assert run("-C", applied, "export", "pdf", "-o", tmp_path / "a.pdf").code == 0
    assert run("-C", applied, "export", "pdf", "-o", tmp_path / "b.pdf").code == 0
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


UNICODE_LINE = "ただいま — Привет, café"


def with_dialogue(project: Path, text: str) -> None:
    scene = project / "scenes" / "01-morning.yaml"
    scene.write_text(scene.read_text().replace('dialogue: "First one\'s always for me."',
                                               f'dialogue: "{text}"'), encoding="utf-8")
    assert text in scene.read_text(encoding="utf-8")


def test_pdf_draws_cyrillic_and_accents_with_the_bundled_font_and_names_what_it_cannot(
        run, example: Path, tmp_path: Path) -> None:
    with_dialogue(example, UNICODE_LINE)
    assert run("-C", example, "apply", "--auto-approve").code == 0
    target = tmp_path / "board.pdf"
    result = run("-C", example, "export", "pdf", "-o", target)
    assert result.code == 0, result.err
    text = "\n".join(page.extract_text() for page in PdfReader(target).pages)
    assert "Привет, café" in text
    assert "ただいま" not in text and "????" not in text
    assert "warning: morning/pour: no font can draw 'ただいま'" in result.err
    assert "fonts:" in result.err


def test_a_font_the_project_names_draws_cjk(run, example: Path, tmp_path: Path) -> None:
    make_font(example / "fonts" / "kana.ttf", "ただいま")
    root = example / "storyboard.yaml"
    root.write_text(root.read_text() + "\nfonts:\n  - fonts/kana.ttf\n")
    with_dialogue(example, UNICODE_LINE)
    assert run("-C", example, "apply", "--auto-approve").code == 0
    target = tmp_path / "board.pdf"
    result = run("-C", example, "export", "pdf", "-o", target)
    assert result.code == 0 and "warning" not in result.err, result.err
    text = "\n".join(page.extract_text() for page in PdfReader(target).pages)
    assert "ただいま" in text and "Привет" in text and "café" in text


@pytest.mark.parametrize(("written", "message"), [
    ("../outside.ttf", "font `../outside.ttf` leaves the project folder"),
    ("fonts/missing.ttf", "font `fonts/missing.ttf` does not exist"),
    ("fonts/fake.ttf", "font `fonts/fake.ttf` is not a TrueType or OpenType font"),
    ("fonts/link.ttf", "font `fonts/link.ttf` leads outside the project folder"),
])
def test_a_bad_font_is_an_error_at_its_line(run, example: Path, tmp_path: Path, written: str,
                                            message: str) -> None:
    (example / "fonts").mkdir()
    (example / "fonts" / "fake.ttf").write_text("not a font")
    make_font(tmp_path / "elsewhere.ttf", "ab")
    (example / "fonts" / "link.ttf").symlink_to(tmp_path / "elsewhere.ttf")
    root = example / "storyboard.yaml"
    root.write_text(root.read_text() + f"\nfonts:\n  - {written}\n")
    line = root.read_text().splitlines().index(f"  - {written}") + 1
    result = run("-C", example, "validate")
    assert result.code == 1 and "Traceback" not in result.err
    assert f"storyboard.yaml:{line}:5: " in result.err and message in result.err


def make_font(path: Path, characters: str) -> None:
    """A real TrueType font (square glyphs) with exactly `characters`, made with fontTools."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    def square():  # type: ignore[no-untyped-def]
        pen = TTGlyphPen(None)
        pen.moveTo((100, 0))
        pen.lineTo((100, 700))
        pen.lineTo((900, 700))
        pen.lineTo((900, 0))
        pen.closePath()
        return pen.glyph()

    names = {ord(char): f"uni{ord(char):04X}" for char in characters}
    order = [".notdef", *names.values()]
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap(names)
    builder.setupGlyf({name: square() for name in order})
    builder.setupHorizontalMetrics({name: (1000, 100) for name in order})
    builder.setupHorizontalHeader(ascent=880, descent=-120)
    builder.setupNameTable({"familyName": "Storyboard Test Kana", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    builder.setupPost()
    path.parent.mkdir(parents=True, exist_ok=True)
    builder.save(str(path))


def test_contact_sheet_size_matches_its_grid(run, applied: Path, tmp_path: Path) -> None:
    from PIL import Image

    target = tmp_path / "sheet.png"
    assert run("-C", applied, "export", "contact-sheet", "v1", "-o", target, "--columns", "5").code == 0
    with Image.open(target) as sheet:
        assert sheet.size == (5 * 320, math.ceil(FRAMES / 5) * (180 + 22))


def test_export_of_a_missing_version_is_a_clear_error(run, applied: Path, tmp_path: Path) -> None:
    result = run("-C", applied, "export", "pdf", "v7", "-o", tmp_path / "x.pdf")
    assert result.code == 1 and "v0007" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("command", [["show"], ["export", "contact-sheet", "-o", "sheet.png"]])
def test_before_any_apply_there_is_nothing_to_show_or_export(run, example: Path, command: list[str]) -> None:
    result = run("-C", example, *command)
    assert result.code == 1 and "no versions yet" in result.err and "storyboard apply" in result.err
    assert not (example / "sheet.png").exists()


@pytest.mark.parametrize(("text", "undrawable"), [("Привет", "ただいまただ"), ("café", "cafた")])
def test_placeholders_and_contact_sheets_draw_unicode_with_the_bundled_font(text: str,
                                                                            undrawable: str) -> None:
    """A character the font lacks is drawn as the same empty box as any other: had the placeholder
    font no Cyrillic or "é", `text` would render exactly like the undrawable string of its length."""
    from storyboard.fonts import pillow_font
    from storyboard.providers.placeholders import draw_placeholder

    fingerprint = "c" * 64
    drawn = draw_placeholder("scene/frame", fingerprint, text, "1024x576").data
    boxes = draw_placeholder("scene/frame", fingerprint, undrawable, "1024x576").data
    assert drawn != boxes
    font = pillow_font(13)
    assert bytes(font.getmask(text)) != bytes(font.getmask(undrawable))  # the contact sheet's font


def test_a_long_scene_description_is_cut_to_one_line(run, example: Path, tmp_path: Path) -> None:
    scene = example / "scenes/01-morning.yaml"
    long = "the city wakes " * 2000  # 30,000 characters
    old = "description: Mara opens the café in the blue hour; the first pour of the day."
    scene.write_text(scene.read_text().replace(old, f"description: {long}"))
    assert run("-C", example, "apply", "--auto-approve").code == 0
    target = tmp_path / "board.pdf"
    assert run("-C", example, "export", "pdf", "-o", target).code == 0
    morning = PdfReader(target).pages[1].extract_text()
    heading = next(line for line in morning.splitlines() if line.startswith("the city wakes"))
    assert heading.endswith("…") and len(heading) < 300
