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
from conftest import edit

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
  const images = Array.from(doc.images);
  const settle = Promise.allSettled(images.map(img => { img.loading = "eager"; return img.decode(); }));
  await Promise.race([settle, new Promise(done => setTimeout(done, 5000))]);
  const loaded = img => img.complete && img.naturalWidth > 0;
  const broken = images.filter(img => !loaded(img)).map(img => img.getAttribute("src"));
  const external = doc.querySelectorAll("link, script, iframe, object, embed, video, audio, source").length;
  const sources = images.map(img => img.currentSrc).concat(Array.from(doc.links).map(a => a.href));
  const result = {images: images.length, broken, sources, external};
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


@pytest.mark.parametrize("name, images", [("index.html", 5), ("02-roastery/index.html", 16),
                                          ("changes.html", 2)])
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
