"""The storyboard page, the review page and the provenance inside the images."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from conftest import REPO, edit, version_frames

from storyboard.deliver.pages import EncodedMembers, _section_key, render_pages
from storyboard.images import read_provenance
from storyboard.state.manifest import read_manifest, scene_manifest_of


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


def scene_pages(version: Path) -> list[Path]:
    return [version / scene["folder"] / "index.html" for scene in manifest(version)["scenes"]]


def inodes(version: Path) -> dict[str, int]:
    return {p.relative_to(version).as_posix(): p.stat().st_ino for p in version.rglob("*") if p.is_file()}


def test_index_lists_every_scene_with_its_page_poster_and_what_changed(applied: Path) -> None:
    version = applied / "out/v0001"
    page = Page(version / "index.html")
    scenes = manifest(version)["scenes"]
    entries = page.all("li", **{"class": "scene"})
    assert [e["data-scene"] for e in entries] == [s["id"] for s in scenes] == [
        "morning", "roastery", "commute", "first-sip", "packshot"]
    links = {a["href"] for a in page.all("a", **{"class": "image"})}
    assert links == {f"{s['folder']}/index.html" for s in scenes}
    assert all((version / link).is_file() for link in links)
    posters = page.all("img")
    firsts = ["01-skyline.jpg", "01-door.jpg", "01-alarm.jpg", "01-order.jpg", "01-hero.jpg"]
    assert [img["src"] for img in posters] == [
        f"thumbs/{s['folder']}/{first}" for s, first in zip(scenes, firsts, strict=True)]
    assert all((version / img["src"]).read_bytes()[:3] == b"\xff\xd8\xff" and img["alt"] for img in posters)
    frames = version_frames(version)
    assert [p["data-address"] for p in page.panels] == [f["address"] for f in frames]  # all new in v1
    assert [p["data-status"] for p in page.panels] == ["new"] * 31
    assert "31 frames in 5 scenes" in "".join(page.text) and "31 new" in "".join(page.text)


def test_scene_pages_show_every_frame_in_story_order_with_thumbnails_and_alt_text(applied: Path) -> None:
    version = applied / "out/v0001"
    frames = version_frames(version)
    shown: list[str] = []
    pages = scene_pages(version)
    for number, file in enumerate(pages):
        page = Page(file)
        shown += [p["data-address"] for p in page.panels]
        assert page.headings[0] == "h1" and "h3" not in page.headings
        for panel, image in zip(page.panels, page.all("img"), strict=True):
            frame = next(f for f in frames if f["address"] == panel["data-address"])
            assert image["alt"] == frame["action"] and image["alt"]
            thumb = file.parent / image["src"]
            assert thumb.resolve() == (version / frame["thumbnail"]).resolve()
            assert thumb.read_bytes()[:3] == b"\xff\xd8\xff" and thumb.stat().st_size < 60_000
            assert panel["data-generated-in"] == "1"
        links = [a["href"] for a in page.all("a", **{"class": "image"})]
        assert all((file.parent / link).is_file() and link.endswith(".png") for link in links)
        navigation = {a["href"] for a in page.all("a") if "class" not in a}
        neighbours = pages[max(0, number - 1):number + 2]
        expected = {"../index.html"} | {f"../{p.parent.name}/index.html" for p in neighbours if p != file}
        assert navigation == expected and all((file.parent / link).is_file() for link in navigation)
    assert shown == [f["address"] for f in frames] and len(shown) == 31


def test_pages_are_self_contained(applied: Path) -> None:
    version = applied / "out/v0001"
    pages = [version / "index.html", version / "board.html", version / "changes.html", *scene_pages(version)]
    for file in pages:
        html = without_viewer(file.read_text())
        page = Page(file)
        assert "<script" not in html and "@import" not in html and "url(" not in html
        references = [a.get("src") or a.get("href") for t, a in page.tags if t in ("img", "a", "link")]
        assert references and not [r for r in references if r and (":" in r or r.startswith("/"))]
        assert all((file.parent / r.split("#")[0]).resolve().is_relative_to(version) for r in references if r)


def test_changes_page_shows_before_after_reasons_and_prompt_diff(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    version = applied / "out/v0002"
    index = Page(version / "index.html")
    assert {p["data-address"]: p["data-status"] for p in index.panels} == {"morning/pour": "regenerated"}
    assert "".join(index.text).count("unchanged in this version") == 4
    morning = Page(version / "01-morning/index.html")
    made = {p["data-address"]: p["data-generated-in"] for p in morning.panels}
    assert made == {"morning/skyline": "1", "morning/shutter": "1", "morning/grinder": "1",
                    "morning/pour": "2"}
    changes = Page(version / "changes.html")
    assert [p["data-address"] for p in changes.panels] == ["morning/pour"]
    assert "01-morning/index.html#morning--pour" in [a["href"] for a in changes.all("a")]
    before, after = (version / img["src"] for img in changes.all("img"))
    assert before.is_file() and after.is_file() and before.read_bytes() != after.read_bytes()
    text = "".join(changes.text)
    assert "Because: prompt" in text and "+" in text and "heart" in text and "spiral" in text
    assert changes.all("span", **{"class": "add"}) and changes.all("span", **{"class": "del"})


def test_a_version_writes_only_what_changed_and_links_the_rest(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    old, new = inodes(applied / "out/v0001"), inodes(applied / "out/v0002")
    written = sorted(path for path, inode in new.items() if old.get(path) != inode)
    assert written == ["01-morning/04-pour.png", "01-morning/index.html", "01-morning/scene.json",
                       "board.html", "changes.html", "index.html", "manifest.json",
                       "thumbs/01-morning/04-pour.jpg", "thumbs/before/01-morning/04-pour.jpg"]
    assert "02-roastery/scene.json" in new and "02-roastery/index.html" in new  # linked, not missing


def test_a_scene_no_frame_of_which_is_made_again_still_shows_what_changed_in_it(run, applied: Path) -> None:
    """A frame's duration is not in its prompt: nothing is generated for it, but its scene's
    manifest (made while the service works) and pages show the new one."""
    sacks_line = "        action: rows of green coffee sacks stamped with origin names\n"
    edit(applied / "scenes/02-roastery.yaml", sacks_line, sacks_line + "        duration: 7.5\n")
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    old, new = inodes(applied / "out/v0001"), inodes(applied / "out/v0002")
    assert old["02-roastery/scene.json"] != new["02-roastery/scene.json"]
    assert old["03-commute/scene.json"] == new["03-commute/scene.json"]
    sacks = [frame for frame in version_frames(applied / "out/v0002") if frame["address"] == "roastery/sacks"]
    assert sacks[0]["duration"] == 7.5 and sacks[0]["status"] == "kept"
    assert old["02-roastery/01-door.png"] == new["02-roastery/01-door.png"]


def test_an_untouched_scene_page_is_linked_by_its_inputs_not_rendered_again(run, applied: Path) -> None:
    # a mark only v0001's files carry: a page rendered again for v0002 would not have it
    for scene in ("02-roastery", "03-commute", "04-first-sip", "05-packshot"):
        page = applied / "out/v0001" / scene / "index.html"
        page.write_text(page.read_text() + "<!-- v0001 -->")
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    v2 = applied / "out/v0002"
    assert all((v2 / s / "index.html").read_text().endswith("<!-- v0001 -->")
               for s in ("02-roastery", "03-commute", "04-first-sip", "05-packshot"))
    assert "slow heart of milk" in (v2 / "01-morning/index.html").read_text()
    # a page shows its neighbours' titles: retitling the roastery makes the pages beside it again
    edit(applied / "scenes/02-roastery.yaml", "title: ", "title: The Roast · ")
    edit(applied / "scenes/02-roastery.yaml", "stamped with origin names", "stamped with farm names")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    v3 = applied / "out/v0003"
    assert (v3 / "04-first-sip/index.html").read_text().endswith("<!-- v0001 -->")  # not beside it
    for scene in ("01-morning", "02-roastery", "03-commute"):
        assert "The Roast · " in (v3 / scene / "index.html").read_text()
        assert not (v3 / scene / "index.html").read_text().endswith("<!-- v0001 -->")


def test_a_board_takes_the_sections_of_untouched_scenes_from_the_board_before(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    # a mark only v0002's board carries, in every scene's section
    board = applied / "out/v0002/board.html"
    marked = board.read_text().replace('<section class="board-scene"', '<section data-v2 class="board-scene"')
    board.write_text(marked)
    edit(applied / "scenes/03-commute.yaml", "weaves between delivery vans", "weaves between trams")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    board = applied / "out/v0003/board.html"
    sections = {section["id"]: "data-v2" in section for section in Page(board).all("section")}
    # reused: untouched in both versions; rendered: 01 (its frame was "Regenerated" in v0002, "Kept"
    # now) and 03 (a frame of it changed)
    assert sections == {"scene-morning": False, "scene-roastery": True, "scene-commute": False,
                        "scene-first-sip": True, "scene-packshot": True}
    assert "weaves between trams" in board.read_text()


def test_a_board_made_of_reused_sections_is_the_board_rendered_anew(run, applied: Path) -> None:
    for before, after in [("spiral of milk", "heart of milk"), ("heart of milk", "tulip of milk")]:
        edit(applied / "scenes/01-morning.yaml", before, after)
        assert run("-C", applied, "apply", "--auto-approve").code == 0
    merged = read_manifest(applied / "out", 3)
    anew = render_pages(merged, merged["scenes"], {})["board.html"]
    assert (applied / "out/v0003/board.html").read_text() == anew


def test_a_section_key_takes_a_manifest_made_ahead_only_for_those_very_frames(applied: Path) -> None:
    """apply makes the untouched scenes' manifests while the service works; a section key made with
    one is the key of the frames, and frames that are not those objects are encoded again."""
    members = [frame for frame in read_manifest(applied / "out", 1)["frames"] if frame["scene"] == "morning"]
    row = [1, "", "morning", "First Light", len(members), "Dawn at the café.", 12.5]
    ahead = EncodedMembers(members, scene_manifest_of(members))
    assert _section_key(row, members, ahead) == _section_key(row, members, None)
    edited = [{**frame, "action": "something else"} for frame in members]
    assert _section_key(row, edited, ahead) == _section_key(row, edited, None)
    assert _section_key(row, edited, None) != _section_key(row, members, None)
    held = [{**frame, "status": "held"} for frame in members]  # a field of this version only
    assert _section_key(row, held, None) != _section_key(row, members, None)


def test_a_board_section_key_covers_all_it_shows() -> None:
    # the key hashes the row's fields below and its frames' manifest entries (views are made from
    # those alone): a template reading anything else would need it added to the key
    template = (REPO / "storyboard/deliver/page_templates/board-scene.html.j2").read_text()
    assert set(re.findall(r"\bscene\.(\w+)", template)) == {"id", "seconds", "title", "frames", "description",
                                                             "members"}
    assert set(re.findall(r"{{ *(\w+)", template)) == {"scene", "f", "number", "up"}


def test_a_page_key_read_back_is_not_trusted_without_its_scene_manifest(run, applied: Path) -> None:
    # v0001's roastery page and scene.json altered, its page_key in manifest.json left as it was:
    # a claim the new version must check, not follow
    v1 = applied / "out/v0001"
    page, manifest = v1 / "02-roastery/index.html", v1 / "02-roastery/scene.json"
    page.write_text(page.read_text() + "<!-- v0001 -->")
    text = manifest.read_text()
    manifest.unlink()  # a file of its own, not the store's hard link
    manifest.write_text(text.replace("rows of green coffee sacks", "rows of forged sacks"))
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    v2 = applied / "out/v0002"
    assert not (v2 / "02-roastery/index.html").read_text().endswith("<!-- v0001 -->")
    assert "forged" not in (v2 / "02-roastery/scene.json").read_text()
    assert "rows of green coffee sacks" in (v2 / "02-roastery/scene.json").read_text()
    assert "forged" not in (v2 / "02-roastery/index.html").read_text()


VIEWER = (REPO / "storyboard/deliver/page_templates/viewer.js").read_text()


def without_viewer(html: str) -> str:
    """The page without its one allowed script, the viewer, inlined exactly as shipped."""
    assert html.count("<script") <= 1
    return html.replace(f"<script>{VIEWER}</script>", "")


def test_a_prompt_with_markup_is_shown_as_text(run, example: Path) -> None:
    edit(example / "scenes/01-morning.yaml", "one café window already glowing amber",
         "a sign reading <script>alert(1)</script> & more")
    assert run("-C", example, "apply", "--auto-approve").code == 0
    for page in ("01-morning/index.html", "board.html"):
        html = without_viewer((example / "out/v0001" / page).read_text())
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_provenance_in_each_new_png_matches_the_manifest(run, applied: Path) -> None:
    version = applied / "out/v0001"
    for frame in version_frames(version):
        file = version / frame["path"]
        assert hashlib.sha256(file.read_bytes()).hexdigest() == frame["sha256"]
        found = read_provenance(file)
        assert found is not None
        assert found["project"] == "coffee-launch" and found["address"] == frame["address"]
        assert found["fingerprint"] == frame["fingerprint"] and found["prompt"] == frame["prompt"]
        assert found["version"] == frame["generated_in"] == 1
    assert run("-C", applied, "plan", "--detailed-exitcode").code == 0  # the lock knows the final bytes


def test_manifest_carries_the_frame_fields(applied: Path) -> None:
    from storyboard.project.schema import validator

    version = applied / "out/v0001"
    data = manifest(version)
    assert validator("manifest").is_valid(data)
    for scene in data["scenes"]:
        assert validator("scene-manifest").is_valid(json.loads((version / scene["manifest"]).read_text()))
    pour = next(f for f in version_frames(version) if f["address"] == "morning/pour")
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
