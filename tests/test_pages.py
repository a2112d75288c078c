"""The storyboard page, the review page and the provenance inside the images."""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import edit

from storyboard.images import read_provenance


class Page(HTMLParser):
    """The parts of a page the tests look at."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self._heading: str | None = None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("h1", "h2", "h3"):
            self._heading = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._heading:
            self._heading = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._heading and data.strip():
            self.headings.append(self._heading)

    def all(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags
                if t == tag and all(wanted[k] in a.get(k, "").split() for k in wanted)]

    @property
    def panels(self) -> list[dict[str, str]]:
        return [a for t, a in self.tags if "data-address" in a]


def manifest(version: Path) -> dict[str, Any]:
    return json.loads((version / "manifest.json").read_text())


@pytest.fixture
def applied(run, example: Path) -> Path:
    assert run("-C", example, "apply", "--auto-approve").code == 0
    return example


def test_index_shows_every_frame_in_story_order_with_thumbnails_and_alt_text(applied: Path) -> None:
    version = applied / "out/v0001"
    page = Page(version / "index.html")
    frames = manifest(version)["frames"]
    assert [p["data-address"] for p in page.panels] == [f["address"] for f in frames]
    assert len(frames) == 31
    assert page.headings[0] == "h1" and page.headings.count("h2") == 5
    assert "h3" not in page.headings[: page.headings.index("h2")]  # headings in order
    images = page.all("img")
    assert len(images) == 31
    for image, frame in zip(images, frames, strict=True):
        assert image["alt"] == frame["action"] and image["alt"]
        thumb = version / image["src"]
        assert thumb.read_bytes()[:3] == b"\xff\xd8\xff" and thumb.stat().st_size < 60_000
    links = [a["href"] for a in page.all("a", **{"class": "image"})]
    assert links == [f["path"] for f in frames] and all((version / link).is_file() for link in links)
    assert [p["data-status"] for p in page.panels] == ["new"] * 31
    assert len(page.all("span", **{"class": "badge"})) == 31


def test_pages_are_self_contained(applied: Path) -> None:
    for name in ("index.html", "changes.html"):
        html = (applied / "out/v0001" / name).read_text()
        page = Page(applied / "out/v0001" / name)
        assert "<script" not in html and "@import" not in html and "url(" not in html
        references = [a.get("src") or a.get("href") for t, a in page.tags if t in ("img", "a", "link")]
        assert references and not [r for r in references if r and (":" in r or r.startswith("/"))]


def test_changes_page_shows_before_after_reasons_and_prompt_diff(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    version = applied / "out/v0002"
    index = Page(version / "index.html")
    statuses = {p["data-address"]: p["data-status"] for p in index.panels}
    assert statuses.pop("morning/pour") == "regenerated"
    assert set(statuses.values()) == {"kept"}
    changes = Page(version / "changes.html")
    assert [p["data-address"] for p in changes.panels] == ["morning/pour"]
    before, after = (version / img["src"] for img in changes.all("img"))
    assert before.is_file() and after.is_file() and before.read_bytes() != after.read_bytes()
    text = "".join(changes.text)
    assert "Because: prompt" in text and "+" in text and "heart" in text and "spiral" in text
    assert changes.all("span", **{"class": "add"}) and changes.all("span", **{"class": "del"})


def test_a_prompt_with_markup_is_shown_as_text(run, example: Path) -> None:
    edit(example / "scenes/01-morning.yaml", "one café window already glowing amber",
         "a sign reading <script>alert(1)</script> & more")
    assert run("-C", example, "apply", "--auto-approve").code == 0
    html = (example / "out/v0001/index.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_provenance_in_each_new_png_matches_the_manifest(run, applied: Path) -> None:
    version = applied / "out/v0001"
    for frame in manifest(version)["frames"]:
        file = version / frame["path"]
        assert hashlib.sha256(file.read_bytes()).hexdigest() == frame["sha256"]
        found = read_provenance(file)
        assert found is not None
        assert found["project"] == "coffee-launch" and found["address"] == frame["address"]
        assert found["fingerprint"] == frame["fingerprint"] and found["prompt"] == frame["prompt"]
        assert found["version"] == frame["generated_in"] == 1
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0  # the lock knows the final bytes


def test_manifest_carries_the_frame_fields(applied: Path) -> None:
    from storyboard.schema import validator

    data = manifest(applied / "out/v0001")
    assert validator("manifest").is_valid(data)
    pour = next(f for f in data["frames"] if f["address"] == "morning/pour")
    assert (pour["index"], pour["shot"], pour["dialogue"], pour["duration"]) == (
        4, "close-up", "First one's always for me.", 3)


def test_changes_name_the_source_that_changed_the_prompt(run, applied: Path) -> None:
    edit(applied / "characters/cast.yaml", "copper-red hair", "jet-black hair")
    edit(applied / "templates/closeup.j2", "shallow depth of field", "very shallow depth of field")
    plan = json.loads(run("-C", applied, "plan", "--json").out)
    reasons = {c["address"]: c["reasons"] for c in plan["changes"] if c["action"] == "regenerate"}
    assert reasons["commute/bike"] == ["prompt (character theo)"]
    assert any("template closeup" in r for rs in reasons.values() for r in rs)
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    text = "".join(Page(applied / "out/v0002/changes.html").text)
    assert "Because: prompt (character theo)" in text


def test_changes_page_without_an_earlier_image_links_nothing_missing(run, applied: Path) -> None:
    (applied / "out/v0001/01-morning/04-pour.png").unlink()
    (applied / "out/v0001/thumbs/01-morning/04-pour.jpg").unlink()
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    version = applied / "out/v0002"
    changes = Page(version / "changes.html")
    assert [p["data-address"] for p in changes.panels] == ["morning/pour"]
    assert "no earlier image" in "".join(changes.text)
    assert [img["src"] for img in changes.all("img")] == ["thumbs/01-morning/04-pour.jpg"]
    assert all((version / img["src"]).is_file() for img in changes.all("img"))
