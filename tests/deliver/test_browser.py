"""The pages in real headless Chromium, opened from disk: every image loads, nothing leaves
the file system, no console errors, and the screenshot shows something.

Chromium comes from Debian (`.ci/run` installs it). Without it these tests are skipped
locally, but fail in CI (where CI=1), so they can never silently not run there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CAMPAIGN, edit, version_frames

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must run the browser tests: install Debian's chromium (see .ci/run)")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"), pytest.mark.slow]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--allow-file-access-from-files", "--enable-logging=stderr",
         "--v=0"]

CHECKER = """<!doctype html><html><body>
<iframe id="page" src="%s" style="width:1280px;height:30000px"></iframe><pre id="result">pending</pre>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", async () => {
  const doc = frame.contentDocument;
  const images = Array.from(doc.images).filter(img => !img.closest("dialog"));  // the viewer's is empty
  const settle = Promise.allSettled(images.map(img => { img.loading = "eager"; return img.decode(); }));
  await Promise.race([settle, new Promise(done => setTimeout(done, 5000))]);
  const loaded = img => img.complete && img.naturalWidth > 0;
  const broken = images.filter(img => !loaded(img)).map(img => img.getAttribute("src"));
  const external = doc.querySelectorAll("link, script[src], iframe, object, embed, video, audio, source")
    .length;
  const sources = images.map(img => img.currentSrc).concat(Array.from(doc.links).map(a => a.href));
  const scenes = Array.from(doc.querySelectorAll("section[data-seconds]")).map(section => ({
    seconds: Number(section.dataset.seconds),
    panels: Array.from(section.querySelectorAll("[data-duration]")).map(p => Number(p.dataset.duration))}));
  const total = doc.querySelector("#totals [data-seconds]");
  const result = {images: images.length, broken, sources, external, scenes,
                  total: total ? Number(total.dataset.seconds) : null};
  document.getElementById("result").textContent = JSON.stringify(result);
});
</script></body></html>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=90, check=False)


def check_page(page: Path, tmp_path: Path) -> dict[str, object]:
    checker = tmp_path / f"check-{page.stem}.html"
    checker.write_text(CHECKER % page.as_uri())
    result = chromium("--virtual-time-budget=30000", "--dump-dom", checker.as_uri(), profile=tmp_path / "p1")
    found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.S)
    assert found and found.group(1) != "pending", result.stderr[-2000:]
    report: dict[str, object] = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    report["errors"] = [line for line in result.stderr.splitlines()
                        if "CONSOLE" in line or "ERR_" in line or "Uncaught" in line]
    return report


def screenshot_is_not_blank(page: Path, tmp_path: Path) -> bool:
    from PIL import Image, ImageStat

    shot = tmp_path / f"{page.stem}.png"
    chromium("--window-size=1280,1600", f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "p2")
    with Image.open(shot) as image:
        stat = ImageStat.Stat(image.convert("L"))
    return stat.stddev[0] > 10  # a blank page is one flat colour


@pytest.fixture
def two_versions(run, example: Path) -> Path:
    assert run("-C", example, "apply", "--auto-approve").code == 0
    edit(example / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", example, "apply", "--auto-approve").code == 0
    return example / "out/v0002"


@pytest.mark.parametrize("name, images", [("index.html", 5), ("board.html", 31),
                                          ("02-roastery/index.html", 16), ("changes.html", 2)])
def test_page_loads_every_image_from_disk_only(two_versions: Path, tmp_path: Path, name: str,
                                              images: int) -> None:
    report = check_page(two_versions / name, tmp_path)
    assert report["images"] == images and report["broken"] == []
    sources = report["sources"]
    assert isinstance(sources, list) and len(sources) >= images and report["external"] == 0
    assert all(str(url).startswith("file://") for url in sources)  # nothing is fetched from elsewhere
    assert report["errors"] == []
    assert screenshot_is_not_blank(two_versions / name, tmp_path)


def test_the_checker_sees_a_missing_image_and_a_console_error(two_versions: Path, tmp_path: Path) -> None:
    (two_versions / "thumbs/01-morning/01-skyline.jpg").unlink()
    page = two_versions / "index.html"
    probe = "<script>console.error('broken on purpose')</script></body>"
    page.write_text(page.read_text().replace("</body>", probe))
    report = check_page(page, tmp_path)
    assert report["broken"] == ["thumbs/01-morning/01-skyline.jpg"]
    assert any("broken on purpose" in line for line in report["errors"])


def test_the_board_shows_every_frame_and_its_running_times_add_up(two_versions: Path, tmp_path: Path) -> None:
    report = check_page(two_versions / "board.html", tmp_path)
    frames = version_frames(two_versions)
    assert report["images"] == len(frames) == 31 and report["broken"] == []
    scenes = report["scenes"]
    assert isinstance(scenes, list) and len(scenes) == 5
    assert sum(len(scene["panels"]) for scene in scenes) == len(frames)
    for scene in scenes:
        assert scene["seconds"] == pytest.approx(sum(scene["panels"]))
    assert report["total"] == pytest.approx(sum(scene["seconds"] for scene in scenes))
    assert report["total"] == pytest.approx(sum(frame.get("duration") or 0 for frame in frames))
    index = (two_versions / "index.html").read_text()
    assert index.index('href="board.html"') < index.index('href="01-morning/index.html"')  # linked first


VIEWER = """<!doctype html><html><body>
<iframe id="page" src="%s" style="width:1280px;height:900px"></iframe><pre id="result">pending</pre>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", async () => {
  try { await run(); } catch (error) { document.getElementById("result").textContent = String(error); }
});
async function run() {
  const doc = frame.contentDocument;
  const dialog = () => doc.querySelector("dialog.viewer");
  const image = () => dialog().querySelector("img");
  const press = key => dialog().dispatchEvent(new KeyboardEvent("keydown", {key, bubbles: true}));
  const steps = [];
  const record = async () => {
    const decoded = image().decode().catch(() => null);
    await Promise.race([decoded, new Promise(done => setTimeout(done, 3000))]);
    steps.push({open: dialog().open, src: image().getAttribute("src"), width: image().naturalWidth,
                address: dialog().dataset.address});
  };
  doc.querySelectorAll("a.view")[0].click();
  await record();
  press("ArrowRight"); await record();
  press("ArrowLeft"); press("ArrowLeft"); await record();
  press("Escape");
  steps.push({open: dialog().open});
  document.getElementById("result").textContent = JSON.stringify(steps);
}
</script></body></html>"""


def test_the_viewer_moves_with_the_arrow_keys_and_closes_with_escape(two_versions: Path,
                                                                     tmp_path: Path) -> None:
    checker = tmp_path / "viewer.html"
    checker.write_text(VIEWER % (two_versions / "board.html").as_uri())
    result = chromium("--virtual-time-budget=20000", "--dump-dom", checker.as_uri(), profile=tmp_path / "p3")
    found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.S)
    assert found and found.group(1) != "pending", result.stderr[-2000:]
    steps = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    frames = version_frames(two_versions)
    first, second, last = steps[0], steps[1], steps[2]
    assert first["open"] and first["address"] == frames[0]["address"] and first["src"] == frames[0]["path"]
    assert second["address"] == frames[1]["address"] and second["src"] == frames[1]["path"]
    assert last["address"] == frames[-1]["address"]  # left from the first wraps round to the last
    assert all(step["width"] > 0 for step in (first, second, last))  # the full-size image, decoded
    assert steps[3] == {"open": False}


def test_the_board_prints_landscape_with_no_panel_split_and_a_page_per_scene(two_versions: Path,
                                                                             tmp_path: Path) -> None:
    from pypdf import PdfReader

    target = tmp_path / "board.pdf"
    chromium("--no-pdf-header-footer", f"--print-to-pdf={target}", (two_versions / "board.html").as_uri(),
             profile=tmp_path / "p4")
    reader = PdfReader(target)
    frames = version_frames(two_versions)
    titles = ["1. Before the City Wakes", "2. Where First Light Begins", "3. Morning Rush", "4. First Sip",
              "5. Packshot"]
    texts = [page.extract_text() for page in reader.pages]
    assert all(page.mediabox.width > page.mediabox.height for page in reader.pages)  # landscape
    starts = [next(n for n, text in enumerate(texts) if title in text) for title in titles]
    for start, title in zip(starts, titles, strict=True):
        body = [line for line in texts[start].splitlines() if line.strip()]
        assert title in " ".join(body[:3])  # a scene heading starts its page
    for number, (page, text) in enumerate(zip(reader.pages, texts, strict=True)):
        here = [frame["address"] for frame in frames if f"{frame['address']}" in text.replace("\n", " ")]
        assert len(page.images) == len(here), (number, here)  # each panel whole: image and caption together
    assert sum(len(page.images) for page in reader.pages) == len(frames)


@pytest.mark.parametrize("name, images", [("de-DE/story/board.html", 5), ("board.html", 5),
                                          ("variants.html", 28), ("de-DE/story/01-pour/index.html", 3)])
def test_variant_pages_load_every_image_from_disk(run, tmp_path: Path, name: str, images: int) -> None:
    project = tmp_path / "campaign"
    shutil.copytree(CAMPAIGN, project, ignore=shutil.ignore_patterns("out", "storyboard.lock", ".storyboard"))
    assert run("-C", project, "apply", "--auto-approve").code == 0
    report = check_page(project / "out/v0001" / name, tmp_path)
    assert report["images"] == images and report["broken"] == [] and report["errors"] == []
    assert report["external"] == 0

