"""`storyboard export pdf` and `export contact-sheet`: read back what a user would print or share."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import version_frames
from pypdf import PdfReader

FRAMES = 31


@pytest.fixture
def applied(run, example: Path) -> Path:
    assert run("-C", example, "apply", "--auto-approve").code == 0
    return example


@pytest.mark.parametrize("per_page", [4, 6, 9])
def test_pdf_has_one_captioned_panel_per_frame_in_order(run, applied: Path, tmp_path: Path,
                                                        per_page: int) -> None:
    target = tmp_path / "board.pdf"
    result = run("-C", applied, "export", "pdf", "-o", target, "--per-page", str(per_page))
    assert result.code == 0, result.err
    reader = PdfReader(target)
    assert len(reader.pages) == math.ceil(FRAMES / per_page)
    assert [len(page.images) for page in reader.pages] == [
        min(per_page, FRAMES - n * per_page) for n in range(len(reader.pages))]
    text = "\n".join(page.extract_text() for page in reader.pages)
    positions = [text.index(frame["address"]) for frame in version_frames(applied / "out/v0001")]
    assert positions == sorted(positions)  # story order
    assert "coffee-launch" in text and "version 0001" in text and f"page 1 of {len(reader.pages)}" in text
    assert "First one's always for me." in text and "2.5 s" in text and "close-up" in text


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
