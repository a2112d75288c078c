"""Hostile projects: what an attacker could put in the files stops cleanly, leaks nothing, hangs nothing.

Every bomb runs `storyboard` as a real subprocess with a timeout, so a regression fails
this suite instead of hanging it.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import build_tree, run_process

from storyboard.testing.fake_atlas import FakeAtlas

BOMB_SECONDS = 10  # each bomb must end, with its error, well within this


def scene_file(frames_yaml: str, scene_id: str = "intro") -> str:
    return f"scenes:\n  - id: {scene_id}\n    frames:\n{frames_yaml}"


def storyboard(project: Path, *args: str, env: dict[str, str] | None = None,
               timeout: float = BOMB_SECONDS) -> subprocess.CompletedProcess[str]:
    completed = run_process(*args, cwd=project, env=env, timeout=timeout)
    assert "Traceback" not in completed.stderr + completed.stdout
    return completed


# --- templates confined to the project ------------------------------------------------------------

SECRET = "TOP-SECRET-CONTENT-4711"


@pytest.fixture
def linked_template(minimal: Path) -> Path:
    """The minimal project whose frame template is a link to a file outside the project."""
    outside = minimal.parent / "outside.j2"
    outside.write_text(f"{{{{ frame.action }}}} {SECRET}\n")
    build_tree(minimal, {"storyboard.yaml": """
        version: 1
        project: demo
        include: [scenes/*.yaml]
    """})
    (minimal / "templates").mkdir()
    (minimal / "templates/frame.j2").symlink_to(outside)
    return minimal


def test_a_template_linked_from_outside_is_refused_for_every_command(linked_template: Path) -> None:
    for command in (["validate"], ["render"], ["plan"], ["apply", "--auto-approve"]):
        completed = storyboard(linked_template, *command)
        assert completed.returncode == 1, command
        assert completed.stderr.startswith(
            "templates/frame.j2:1:1: template `frame.j2` is a link to a file outside the project folder")
        assert SECRET not in completed.stdout + completed.stderr


def test_a_linked_template_reaches_no_request_lockfile_or_page(linked_template: Path,
                                                                fake_atlas: FakeAtlas) -> None:
    root = linked_template / "storyboard.yaml"
    root.write_text(root.read_text() + "provider: {name: atlascloud}\n")
    env = {"ATLASCLOUD_BASE_URL": fake_atlas.base_url, "ATLASCLOUD_API_KEY": fake_atlas.api_key or ""}
    completed = storyboard(linked_template, "apply", "--auto-approve", env=env, timeout=60)
    assert completed.returncode == 1
    assert fake_atlas.calls == []
    assert not (linked_template / "storyboard.lock").exists() and not (linked_template / "out").exists()
    written = [p for p in linked_template.rglob("*") if p.is_file() and not p.is_symlink()]
    assert all(SECRET.encode() not in p.read_bytes() for p in written)


def test_a_link_to_another_template_inside_the_project_is_fine(minimal: Path) -> None:
    build_tree(minimal, {"shared/house.j2": "{{ frame.shot }} / {{ frame.action }}"})
    (minimal / "templates").mkdir()
    (minimal / "templates/house.j2").symlink_to(minimal / "shared/house.j2")
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        template: house\n"
                                                      "        shot: wide\n        action: rain\n"))
    completed = storyboard(minimal, "render")
    assert completed.returncode == 0, completed.stderr
    assert "wide / rain" in completed.stdout


def test_include_of_a_path_outside_is_an_error_at_the_statement(minimal: Path) -> None:
    (minimal.parent / "passwd").write_text(SECRET)
    build_tree(minimal, {"templates/wide.j2": "{{ frame.action }}\n{% include '../../passwd' %}\n"})
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        template: wide\n"))
    completed = storyboard(minimal, "validate")
    assert completed.returncode == 1
    assert completed.stderr.startswith("templates/wide.j2:2:1: template `../../passwd` not found "
                                       "(rendering frame intro/one)")
    assert SECRET not in completed.stderr


def test_a_template_that_is_not_utf8_is_located(minimal: Path) -> None:
    build_tree(minimal, {"templates/wide.j2": b"{{ frame.action }}\nCaf\xe9\n"})
    completed = storyboard(minimal, "validate")
    assert completed.returncode == 1
    assert completed.stderr.startswith("templates/wide.j2:2:4: not UTF-8 text: byte 0xe9")


# --- template bombs ------------------------------------------------------------------------------

BOMBS = {
    "string multiplication": ('{{ "x" * 100000000 }}', "builds a value of 100,000,000 characters"),
    "list multiplication": ("{{ ([1] * 100000000) | length }}", "builds a value of 100,000,000"),
    "join of a big range": ("{{ range(99999) | join(range(99999) | join(',')) }}", "builds a value of"),
    "nested loops": ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
                     "loops run more than 1,000,000 times"),
    "nested loops over strings": ("{% for a in 'x' * 999999 %}{% for b in 'y' * 999999 %}"
                                  "{% endfor %}{% endfor %}", "loops run more than"),
    "recursive macro": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
                        "calls nest deeper than 64"),
    "doubling through a namespace": ("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(60) %}"
                                     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}", "builds a value"),
    "output in a loop": ("{% for i in range(99999) %}{{ 'x' * 99999 }}{% endfor %}",
                         "writes more than 1,000,000 characters"),
    "output captured in a block": ("{% set s %}{% for i in range(99999) %}{{ 'x' * 99999 }}{% endfor %}"
                                   "{% endset %}{{ s | length }}", "writes more than"),
    "format width": ('{{ "%0999999999d" % 1 }}', "builds a value of 999,999,999"),
    "str.format width": ('{{ "{:>999999999}".format(1) }}', "builds a value of 999,999,999"),
    "center": ('{{ "ab".center(999999999) }}', "builds a value of 999,999,999"),
    "replace": ('{{ ("x" * 999999) | replace("x", "yyyyyyyyyy") }}', "builds a value of 9,999,990"),
    "huge number": ("{{ 10 ** 100000 }}", "a number of more than 4096 bits"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_template_bombs_end_quickly_at_the_template_line_naming_the_frame(minimal: Path, name: str) -> None:
    source, message = BOMBS[name]
    build_tree(minimal, {"templates/bomb.j2": f"{{{{ frame.action }}}}\n{source}\n"})
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        template: bomb\n"
                                                      "      - id: two\n        template: bomb\n"))
    completed = storyboard(minimal, "plan")
    assert completed.returncode == 1
    first = completed.stderr.splitlines()[0]
    assert first.startswith("templates/bomb.j2:2:1: template stopped: "), first
    assert message in first and "(rendering frame intro/one)" in first
    assert "see \"Limits\" in the README" in completed.stderr
    assert completed.stderr.rstrip().endswith("1 error in the project")  # reported once, not per frame


def test_a_slow_template_stops_at_the_render_deadline(minimal: Path) -> None:
    """A loop under every count bound that still takes too long: the deadline ends it."""
    slow = ("{% for i in range(999) %}{% for j in range(999) %}{{ i }}{% endfor %}{% endfor %}")
    build_tree(minimal, {"templates/slow.j2": f"{slow}\n"})
    root = minimal / "storyboard.yaml"
    root.write_text(root.read_text() + "limits: {render_seconds: 0.05}\n")
    (minimal / "scenes/a.yaml").write_text(scene_file("      - id: one\n        template: slow\n"))
    completed = storyboard(minimal, "validate")
    assert completed.returncode == 1
    assert "rendering took longer than 0.05 s (limits.render_seconds)" in completed.stderr


def test_a_prompt_over_the_limit_is_an_error_at_the_frame(minimal: Path) -> None:
    long_action = "a very long action " * 300  # 5,700 characters
    (minimal / "scenes/a.yaml").write_text(scene_file(f"      - id: one\n        action: {long_action}\n"))
    completed = storyboard(minimal, "validate")
    assert completed.returncode == 1
    assert re.search(r"^scenes/a\.yaml:4:9: the prompt of frame intro/one is 5,7\d\d characters, "
                     r"more than limits\.prompt_chars \(4,000\)", completed.stderr, re.M)
    root = minimal / "storyboard.yaml"
    root.write_text(root.read_text() + "limits: {prompt_chars: 6000}\n")
    assert storyboard(minimal, "validate").returncode == 0


# --- YAML ----------------------------------------------------------------------------------------

def billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghi"
    lines += [f"{name}: &{name} [{', '.join(['*' + before] * 9)}]"
              for before, name in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_refused_at_its_alias(minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text("x_bomb:\n" + "".join(
        "  " + line + "\n" for line in billion_laughs().splitlines()) + scene_file("      - id: one\n"))
    for command in ("validate", "plan"):
        completed = storyboard(minimal, command, timeout=5)
        assert completed.returncode == 1
        assert re.match(r"scenes/a\.yaml:8:\d+: alias `\*f` expands this document past 16,000,000 characters",
                        completed.stderr), completed.stderr


def test_a_combinatorial_bomb_of_variant_axes_is_refused_at_variants(minimal: Path) -> None:
    # 8 axes of 10 values: 100,000,000 variants of every frame, if nothing counted them
    axes = "".join(f"  a{axis}: {{{', '.join(f'v{axis}x{value}: {{}}' for value in range(10))}}}\n"
                   for axis in range(8))
    root = minimal / "storyboard.yaml"
    root.write_text(root.read_text() + "variants:\n" + axes)
    for command in ("validate", "plan", "render"):
        completed = storyboard(minimal, command, timeout=5)
        assert completed.returncode == 1, completed.stdout[-500:]
        expected = (r"storyboard\.yaml:\d+:\d+: variants: the axes make 100,000,000 variants of every "
                    r"frame \(10( × 10){7}\), more than 256")
        assert re.match(expected, completed.stderr), completed.stderr
        assert "Traceback" not in completed.stderr
    assert not (minimal / ".storyboard").exists() and not (minimal / "out").exists()


def test_aliases_and_merge_keys_that_stay_small_are_fine(minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(
        "scenes:\n  - id: intro\n    vars: &common {look: grainy}\n    frames:\n"
        "      - &base {id: one, shot: wide, action: rain}\n"
        "      - {<<: *base, id: two, vars: *common}\n")
    completed = storyboard(minimal, "render")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("wide: rain") == 2


def test_a_duplicate_key_is_an_error_at_the_second_one(minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_text(scene_file(
        "      - id: one\n        shot: wide\n        action: rain\n        shot: close\n"))
    completed = storyboard(minimal, "validate")
    assert completed.returncode == 1
    assert completed.stderr.startswith(
        "scenes/a.yaml:7:9: duplicate key `shot` (first written at line 5)")


def test_bytes_that_are_not_utf8_are_reported_where_they_are(minimal: Path) -> None:
    (minimal / "scenes/a.yaml").write_bytes(
        scene_file("      - id: one\n        action: caf\xe9 au lait\n").encode("latin-1"))
    completed = storyboard(minimal, "validate")
    assert completed.returncode == 1
    assert completed.stderr.startswith("scenes/a.yaml:5:20: not UTF-8 text: byte 0xe9 cannot be decoded")


@pytest.mark.parametrize("text, where", [
    (scene_file('      - id: one\n        action: "an unclosed quote\n      - id: two\n'), "5:17"),
    (scene_file("      - id: one\n        characters: [mara, theo\n      - id: two\n"), "5:21"),
])
def test_a_syntax_error_is_reported_where_it_starts_not_at_the_end(minimal: Path, text: str,
                                                                   where: str) -> None:
    (minimal / "scenes/a.yaml").write_text(text)
    completed = storyboard(minimal, "validate")
    assert completed.returncode == 1
    assert completed.stderr.startswith(f"scenes/a.yaml:{where}: YAML syntax error"), completed.stderr


@pytest.mark.parametrize("content", ["bomb", "latin-1"])
def test_fmt_refuses_a_file_it_cannot_read_and_touches_nothing(minimal: Path, content: str) -> None:
    scene = minimal / "scenes/a.yaml"
    if content == "bomb":
        scene.write_text("x_bomb:\n" + "".join("  " + line + "\n" for line in billion_laughs().splitlines())
                         + scene_file("      - id: one\n"))
        expected = r"scenes/a\.yaml:8:\d+: alias `\*f` expands this document past"
    else:
        scene.write_bytes(scene_file("      - {id: one, action: caf\xe9}\n").encode("latin-1"))
        expected = r"scenes/a\.yaml:4:\d+: not UTF-8 text: byte 0xe9"
    before = {path: path.read_bytes() for path in minimal.rglob("*.yaml")}
    for args in (["fmt"], ["fmt", "--check"]):
        completed = storyboard(minimal, *args, timeout=5)
        assert completed.returncode == 1 and re.search(expected, completed.stderr), completed.stderr
    assert {path: path.read_bytes() for path in minimal.rglob("*.yaml")} == before


# --- links planted in an output version -------------------------------------------------------------


def test_links_in_the_latest_version_are_never_carried_into_the_next(applied: Path, tmp_path: Path) -> None:
    """A commit (or a hand) may put links in out/: to a secret, or to a copy of the right bytes.
    The next version holds regular files only, none of them the secret, and the linked image
    is made whole again rather than trusted."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    v1 = applied / "out/v0001"

    def link(relative: str, target: Path) -> None:
        (v1 / relative).unlink()
        (v1 / relative).symlink_to(target)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for relative in ("01-morning/01-skyline.png", "02-roastery/scene.json"):  # the right bytes, elsewhere
        copy = elsewhere / relative.replace("/", "-")
        copy.write_bytes((v1 / relative).read_bytes())
        link(relative, copy)
    for relative in ("thumbs/01-morning/02-shutter.jpg", "02-roastery/index.html", "board.html"):
        link(relative, secret)
    plan = storyboard(applied, "--no-color", "plan")
    assert plan.returncode == 0 and "morning/skyline" in plan.stdout
    assert "v0001/01-morning/01-skyline.png is missing" in plan.stdout
    scene = applied / "scenes/01-morning.yaml"
    scene.write_text(scene.read_text().replace("slow spiral of milk", "slow heart of milk"))
    assert storyboard(applied, "apply", "--auto-approve", timeout=60).returncode == 0
    v2 = applied / "out/v0002"
    files = list(v2.rglob("*"))
    assert [path for path in files if path.is_symlink()] == []
    assert all(SECRET.encode() not in path.read_bytes() for path in files if path.is_file())
    assert (v2 / "thumbs/01-morning/02-shutter.jpg").read_bytes().startswith(b"\xff\xd8")
    assert "No changes" in storyboard(applied, "--no-color", "plan").stdout


def test_a_link_named_like_an_unfinished_version_is_not_followed(applied: Path, tmp_path: Path) -> None:
    """apply removes version folders dead runs left in out/ (`.v0009.tmp-PID`): one that is a link
    to a folder elsewhere must not have that folder emptied."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text(SECRET)
    (applied / "out/.v0009.tmp-4194304999").symlink_to(elsewhere)  # no process has that pid
    scene = applied / "scenes/01-morning.yaml"
    scene.write_text(scene.read_text().replace("slow spiral of milk", "slow heart of milk"))
    assert storyboard(applied, "apply", "--auto-approve", timeout=60).returncode == 0
    assert (elsewhere / "keep.txt").read_text() == SECRET
    assert SECRET not in "".join(p.name for p in (applied / "out/v0002").rglob("*"))


def test_a_lockfile_record_of_any_size_is_read_as_one_line(applied: Path) -> None:
    """.storyboard/lockfile-written is apply's own one-line record; a terabyte there (sparse) is
    read as its first line, not into memory, and the lockfile is encoded whole."""
    record = applied / ".storyboard/lockfile-written"
    with record.open("wb") as file:
        file.truncate(2**40)
    scene = applied / "scenes/01-morning.yaml"
    scene.write_text(scene.read_text().replace("slow spiral of milk", "slow heart of milk"))
    assert storyboard(applied, "apply", "--auto-approve", timeout=60).returncode == 0
    data = (applied / "storyboard.lock").read_bytes()
    encoded = json.dumps(json.loads(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data == encoded.encode()
    assert record.stat().st_size < 200


def test_latest_manifests_that_would_hang_or_crash_a_reader_are_not_read(applied: Path) -> None:
    """apply reads the latest version's scene manifests for sizes and to link the unchanged ones: a
    link to an endless file, nesting deeper than any parser, an address that cannot be a key.
    None of them is read into the next version, which is whole."""
    v1 = applied / "out/v0001"
    roastery, commute, morning = (v1 / f"{scene}/scene.json" for scene in ("02-roastery", "03-commute",
                                                                           "01-morning"))
    for file in (roastery, commute, morning):
        file.unlink()
    roastery.symlink_to("/dev/zero")
    commute.write_text("[" * 200_000)
    morning.write_text(json.dumps({"format": 2, "scene": "morning", "frames": [{"address": ["x"]}, 7]}))
    scene = applied / "scenes/01-morning.yaml"
    scene.write_text(scene.read_text().replace("slow spiral of milk", "slow heart of milk"))
    assert storyboard(applied, "apply", "--auto-approve", timeout=60).returncode == 0
    v2 = applied / "out/v0002"
    scenes = json.loads((v2 / "manifest.json").read_text())["scenes"]
    counts = {scene["folder"]: scene["frames"] for scene in scenes}
    for part in ("02-roastery", "03-commute", "01-morning"):  # written anew: the sizes read are lost
        frames = json.loads((v2 / part / "scene.json").read_text())["frames"]
        assert len(frames) == counts[part] and all(type(frame["width"]) is int for frame in frames)
    assert "No changes" in storyboard(applied, "--no-color", "plan").stdout


# --- a committed lockfile that would hang, exhaust or crash its reader -----------------------------


NOT_A_FILE = "not a file (a link to a device, a pipe or a folder)"


@pytest.mark.parametrize("kind, message", [("a link to /dev/zero", NOT_A_FILE), ("a FIFO", NOT_A_FILE),
                                           ("a folder", "cannot be read: Is a directory")])
def test_a_lockfile_that_is_not_a_file_is_refused_before_a_byte_is_read(minimal: Path, kind: str,
                                                                        message: str) -> None:
    lockfile = minimal / "storyboard.lock"
    if kind == "a link to /dev/zero":
        lockfile.symlink_to("/dev/zero")
    elif kind == "a FIFO":
        os.mkfifo(lockfile)  # opened for reading, it would wait for a writer forever
    else:
        lockfile.mkdir()
    for command in (("plan",), ("apply", "--auto-approve"), ("approve", "intro")):
        completed = storyboard(minimal, *command)
        assert completed.returncode == 1, command
        assert f"storyboard.lock: {message}" in completed.stderr
        assert "git checkout -- storyboard.lock" in completed.stderr
    assert not (minimal / "out").exists()


def test_a_lockfile_nested_past_any_parser_is_an_error_at_its_line(minimal: Path) -> None:
    # line 3 is `  "frames": [[[…`: the 500th [ (the 501st level) is at column 12 + 500
    (minimal / "storyboard.lock").write_text('{\n  "format": 2,\n  "frames": ' + "[" * 200_000)
    completed = storyboard(minimal, "plan")
    assert completed.returncode == 1
    assert "storyboard.lock:3:512: corrupt lockfile: nested more than 500 levels deep" in completed.stderr


@pytest.mark.parametrize("planted, message", [
    ("refs/mara.png", "characters/cast.yaml:8:18: characters[0].references[0]: reference image "
                      "`refs/mara.png` is not a file"),
    ("templates/closeup.j2", "templates/closeup.j2:1:1: template is not a file"),
])
def test_a_pipe_in_place_of_an_image_or_a_template_is_an_error_not_a_hang(example: Path, planted: str,
                                                                         message: str) -> None:
    """Opened for reading, a FIFO waits for a writer forever: it is refused before a byte is read."""
    (example / planted).unlink()
    os.mkfifo(example / planted)
    completed = storyboard(example, "plan")
    assert completed.returncode == 1 and message in completed.stderr
