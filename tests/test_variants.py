"""Campaign variants: expansion, addresses, precedence, what changes regenerate, derivation from the
master, chained batches, errors at their line, and everything downstream of a version.

The bundled examples/campaign-variants (2 locales × 3 formats, a master, a chained scene) is
applied with the local provider and against the fake Atlas server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import CAMPAIGN, build_tree, check_golden, edit, use_atlas, version_frames

from storyboard.testing.fake_atlas import FakeAtlas

LOCALES, FORMATS = ("en-US", "de-DE"), ("landscape", "story", "square")
SHELL_SAFE = re.compile(r"[a-z0-9_-]+/[a-z0-9_-]+(@[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*)?")


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    """A private copy of the bundled campaign-variants example."""
    target = tmp_path / "campaign-variants"
    shutil.copytree(CAMPAIGN, target, ignore=shutil.ignore_patterns("out", "storyboard.lock", ".storyboard"))
    return target


def all_variants(frame: str) -> list[str]:
    return [f"{frame}@{locale},{form}" for locale in LOCALES for form in FORMATS]


def plan_json(run: Any, project: Path, *args: str) -> dict[str, Any]:
    result = run("-C", project, "plan", "--json", *args)
    assert result.code == 0, result.err
    plan: dict[str, Any] = json.loads(result.out)
    return plan


def actions(plan: dict[str, Any]) -> dict[str, str]:
    return {change["address"]: change["action"] for change in plan["changes"]}


def submits(fake: FakeAtlas) -> list[dict[str, Any]]:
    return [call.body for call in fake.calls if call.kind == "submit"]


# --- expansion and addresses ---------------------------------------------------------------------


def test_render_json_of_the_campaign_matches_golden(run) -> None:
    result = run("-C", CAMPAIGN, "render", "--json")
    assert result.code == 0, result.err
    frames = json.loads(result.out)
    # door, pour, cup in 2 × 3; grind opts out of locale (3); the packshot narrows format (2 × 2)
    assert len(frames) == 3 * 6 + 3 + 4
    assert all(SHELL_SAFE.fullmatch(frame["address"]) for frame in frames)
    check_golden("campaign-variants.render.json", result.out)


def test_every_variant_has_its_own_prompt_size_and_variables(run) -> None:
    frames = {f["address"]: f for f in json.loads(run("-C", CAMPAIGN, "render", "--json").out)}
    german_story = frames["pour/pour@de-DE,story"]
    assert german_story["variant"] == {"locale": "de-DE", "format": "story"}
    assert "Gleich ist es so weit." in german_story["prompt"]  # the frame's override for de-DE
    assert "tall 9:16" in german_story["prompt"]
    assert german_story["master"] == "pour/pour@en-US,landscape"
    assert german_story["variables"]["tagline"] == "locale=de-DE"
    assert german_story["variables"]["framing"] == "format=story"
    assert german_story["variables"]["location"] == "scene"
    assert frames["pour/pour@en-US,landscape"]["master"] is None  # the master itself
    assert "Almost there." in frames["pour/pour@en-US,landscape"]["prompt"]
    assert "pour/grind@story" in frames and "pour/grind@de-DE,story" not in frames  # locale: false
    assert "packshot/bag@de-DE,square" not in frames  # the scene narrows format
    packshot = frames["packshot/bag@de-DE,story"]["prompt"]
    assert 'On-screen text in German: "Der erste Schluck zählt"' in packshot


def test_addresses_select_a_frame_every_variant_or_one(run) -> None:
    every = json.loads(run("-C", CAMPAIGN, "render", "--json", "pour/pour").out)
    assert sorted(f["address"] for f in every) == sorted(all_variants("pour/pour"))
    one = json.loads(run("-C", CAMPAIGN, "render", "--json", "pour/pour@de-DE,story").out)
    assert [f["address"] for f in one] == ["pour/pour@de-DE,story"]
    wrong = run("-C", CAMPAIGN, "render", "pour/pour@de-DE,stroy")
    assert wrong.code == 1 and "did you mean `pour/pour@de-DE,story`?" in wrong.err
    targeted = plan_json(run, CAMPAIGN, "--target", "pour/pour")
    assert sorted(c["address"] for c in targeted["changes"]) == sorted(all_variants("pour/pour"))
    one_target = plan_json(run, CAMPAIGN, "--target", "pour/pour@de-DE,story", "--exclude", "packshot")
    assert [c["address"] for c in one_target["changes"]] == ["pour/pour@en-US,landscape",  # its master first
                                                             "pour/pour@de-DE,story"]


def test_variant_option_narrows_render_plan_and_apply(run, campaign: Path) -> None:
    rendered = json.loads(run("-C", campaign, "render", "--json", "--variant", "locale=de-DE",
                              "--variant", "format=story").out)
    assert {f["address"] for f in rendered} == {"pour/grind@story", "pour/door@de-DE,story",
                                                "pour/pour@de-DE,story", "pour/cup@de-DE,story",
                                                "packshot/bag@de-DE,story"}
    plan = plan_json(run, campaign, "--variant", "format=square")
    squares = {f"pour/{frame}@{locale},square" for frame in ("door", "pour", "cup") for locale in LOCALES}
    masters = {"pour/grind@landscape", *(f"pour/{name}@en-US,landscape" for name in ("door", "pour", "cup"))}
    assert set(actions(plan)) == {"pour/grind@square", *squares, *masters}  # masters never made come first
    reasons = {change["address"]: change["reasons"] for change in plan["changes"]}
    assert reasons["pour/grind@landscape"] == ["the master of pour/grind@square"]
    assert plan["options"]["variants"] == ["format=square"]
    result = run("-C", campaign, "apply", "--auto-approve", "--variant", "format=square")
    assert result.code == 0, result.err
    made = {frame["address"] for frame in version_frames(campaign / "out/v0001")}
    assert made == set(actions(plan))
    bad = run("-C", campaign, "plan", "--variant", "locale=fr")
    assert bad.code == 1 and "`fr` is not a value of axis `locale`" in bad.err and "Traceback" not in bad.err
    unknown = run("-C", campaign, "plan", "--variant", "lokale=de-DE")
    assert unknown.code == 1 and "did you mean `locale`?" in unknown.err


def test_outputs_sit_in_a_folder_per_variant_and_the_manifest_names_the_variant(run, campaign: Path) -> None:
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    version = campaign / "out/v0001"
    assert (version / "de-DE/story/01-pour/03-pour.png").is_file()
    assert (version / "story/01-pour/02-grind.png").is_file()  # no locale: one image for both
    frames = {f["address"]: f for f in version_frames(version)}
    assert frames["pour/pour@de-DE,story"]["variant"] == {"locale": "de-DE", "format": "story"}
    assert frames["pour/pour@de-DE,story"]["master"] == "pour/pour@en-US,landscape"
    shown = json.loads(run("-C", campaign, "show", "--json").out)
    variants = {f["address"]: f.get("variant") for f in shown["frames"]}
    assert variants["pour/grind@story"] == {"format": "story"}
    # the same shot with the same words in both markets is one image, paid for once
    assert frames["pour/door@de-DE,landscape"]["sha256"] == frames["pour/door@en-US,landscape"]["sha256"]
    assert frames["pour/pour@de-DE,landscape"]["sha256"] != frames["pour/pour@en-US,landscape"]["sha256"]
    # history and gc see versions, whatever their folders hold
    edit(campaign / "scenes/02-packshot.yaml", "morning light", "first light")
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    history = json.loads(run("-C", campaign, "history", "--format", "json").out)
    assert sorted(entry["version"] for entry in history) == ["v0001", "v0002"]
    assert run("-C", campaign, "gc", "--keep", "1", "--auto-approve").code == 0
    assert not (campaign / "out/v0001").exists()
    assert (campaign / "out/v0002/de-DE/story/01-pour/03-pour.png").is_file()
    assert run("-C", campaign, "plan", "--detailed-exitcode").code == 0


def test_plan_counts_and_costs_per_variant(run, campaign: Path) -> None:
    edit(campaign / "storyboard.yaml", "  parallelism: 4\n", "  parallelism: 4\n  price_per_image: 0.04\n")
    plan = plan_json(run, campaign)
    per = plan["variants"]
    assert per["de-DE,story"]["create"] == 4 and per["en-US,square"]["create"] == 3
    assert sum(entry["images"] for entry in per.values()) == sum(len(b["frames"]) for b in plan["batches"])
    assert sum(entry["cost"] for entry in per.values()) == pytest.approx(plan["summary"]["cost"])
    text = run("--no-color", "-C", campaign, "plan").out
    assert re.search(r"de-DE,story\s+4 to create; 2 images, \$0\.08", text)


# --- what regenerates ------------------------------------------------------------------------------


def test_adding_a_locale_creates_only_its_frames(run, campaign: Path) -> None:
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    edit(campaign / "storyboard.yaml", "    de-DE: {vars:",
         '    fr-FR: {vars: {tagline: "La première gorgée compte", language: French}}\n    de-DE: {vars:')
    plan = plan_json(run, campaign)
    changed = {a: act for a, act in actions(plan).items() if act != "keep"}
    assert changed and all("@fr-FR," in address for address in changed)
    assert set(changed.values()) <= {"create", "restore"}  # restore: as en-US's, from the store
    assert len(changed) == 3 * 3 + 2  # door, pour, cup in 3 formats; the packshot in 2


def test_changing_one_locales_tagline_regenerates_only_that_locale(run, campaign: Path) -> None:
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    edit(campaign / "storyboard.yaml", "Der erste Schluck zählt", "Jeder Schluck zählt")
    changed = {a: act for a, act in actions(plan_json(run, campaign)).items() if act != "keep"}
    assert changed == {"packshot/bag@de-DE,landscape": "regenerate", "packshot/bag@de-DE,story": "regenerate"}


def test_changing_the_master_regenerates_it_and_its_variants_only(run, campaign: Path) -> None:
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    edit(campaign / "scenes/01-pour.yaml", "the first cup set down on the counter",
         "the first cup set down on the oak counter")
    plan = plan_json(run, campaign)
    changed = {c["address"]: c for c in plan["changes"] if c["action"] != "keep"}
    assert set(changed) == set(all_variants("pour/cup"))  # its text is in them all
    edit(campaign / "scenes/01-pour.yaml", "the first cup set down on the oak counter",
         "the first cup set down on the counter")
    assert not plan_json(run, campaign)["summary"]["regenerate"]  # reverted: as it was
    replaced = plan_json(run, campaign, "--replace", "pour/pour@en-US,landscape")
    changed = {c["address"]: c for c in replaced["changes"] if c["action"] != "keep"}
    derived = set(all_variants("pour/pour")) - {"pour/pour@en-US,landscape"}
    assert set(changed) == {"pour/pour@en-US,landscape", *derived}
    assert all(changed[a]["after"] == "pour/pour@en-US,landscape" for a in derived)
    assert all("its master pour/pour@en-US,landscape is made again" in changed[a]["reasons"] for a in derived)


def test_a_master_listed_last_is_still_made_first_and_once(run, campaign: Path) -> None:
    # de-DE comes first in story order now; its door and cup are the master's image (same words,
    # same size), so their request is the master's: nothing may wait for a request never sent
    english = '    en-US: {vars: {tagline: "The first sip counts", language: English}}\n'
    german = '    de-DE: {vars: {tagline: "Der erste Schluck zählt", language: German}}\n'
    edit(campaign / "storyboard.yaml", english + german, german + english)
    assert "@de-DE," in json.loads(run("-C", campaign, "render", "--json").out)[3]["address"]
    result = run("-C", campaign, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert "19 frames generated" in result.out
    assert run("-C", campaign, "plan", "--detailed-exitcode").code == 0


def test_independent_variants_ignore_the_master(run, campaign: Path) -> None:
    edit(campaign / "storyboard.yaml", "  master: {locale: en-US, format: landscape}\n",
         "  master: {locale: en-US, format: landscape}\n  derive: independent\n")
    plan = plan_json(run, campaign)
    assert not any("after" in change for change in plan["changes"])
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    edit(campaign / "scenes/01-pour.yaml", '"Almost there."', '"Nearly there."')
    changed = {a for a, act in actions(plan_json(run, campaign)).items() if act != "keep"}
    assert changed == {f"pour/pour@en-US,{f}" for f in FORMATS}  # de-DE has its own line


# --- against the fake service ----------------------------------------------------------------------


def test_derived_variants_are_requested_after_their_master_with_its_image(run, atlas: FakeAtlas,
                                                                         campaign: Path) -> None:
    use_atlas(campaign)
    plan = plan_json(run, campaign)
    result = run("-C", campaign, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert atlas.count("submit") == len(plan["batches"])
    frames = {f["address"]: f for f in version_frames(campaign / "out/v0001")}
    version = campaign / "out/v0001"
    bodies = submits(atlas)

    def uploaded(address: str) -> str:  # the fake names an upload by its bytes' sha256
        return hashlib.sha256((version / frames[address]["path"]).read_bytes()).hexdigest()[:20]

    def body_of(address: str) -> tuple[int, dict[str, Any]]:
        job = frames[address]["job"]
        position = [p.id for p in atlas.accepted].index(job)
        return position, bodies[position]

    master_at, _ = body_of("pour/pour@en-US,landscape")
    for address in ("pour/pour@de-DE,story", "pour/pour@en-US,square", "packshot/bag@de-DE,landscape"):
        at, body = body_of(address)
        master = frames[address]["master"]
        assert body["max_images"] == 1  # a variant is a request of its own
        assert any(uploaded(master) in url for url in body["images"]), address  # the master's image first
        assert body["images"][0].endswith(uploaded(master) + ".png")
        assert at > body_of(master)[0]
    assert master_at < body_of("pour/pour@de-DE,landscape")[0]
    again = run("-C", campaign, "apply", "--auto-approve")
    assert again.code == 0 and "No changes" in again.out and atlas.count("submit") == len(plan["batches"])


CHAINED = """
    version: 1
    project: chained
    provider: {{name: {provider}, parallelism: 8, options: {{{options}}}}}
    include: [scenes.yaml]
    templates:
      frame: "{{{{ frame.action }}}}"
"""


def chained_project(root: Path, frames: int, provider: str = "local", options: str = "") -> Path:
    lines = "".join(f"      - {{id: f{n:02d}, action: beat {n} of the long take}}\n"
                    for n in range(1, frames + 1))
    return build_tree(root, {
        "storyboard.yaml": CHAINED.format(provider=provider, options=options),
        "scenes.yaml": "scenes:\n  - id: take\n    consistency: chain\n    frames:\n" + lines,
    })


def test_a_31_frame_scene_goes_out_as_11_10_10(run, tmp_path: Path) -> None:
    project = chained_project(tmp_path / "p", 31)
    plan = plan_json(run, project)
    assert [len(batch["frames"]) for batch in plan["batches"]] == [11, 10, 10]


def test_chained_batches_run_in_order_with_the_last_images_of_the_one_before(run, atlas: FakeAtlas,
                                                                              tmp_path: Path) -> None:
    options = "poll_interval: 0.02, retry_backoff: 0.01, request_timeout: 5, not_found_grace: 1"
    project = chained_project(tmp_path / "p", 31, "atlascloud", options)
    result = run("-C", project, "apply", "--auto-approve")
    assert result.code == 0, result.err
    bodies = submits(atlas)
    assert [body["max_images"] for body in bodies] == [11, 10, 10]  # in order: each waits for the last
    frames = {f["address"]: f for f in version_frames(project / "out/v0001")}

    def upload_name(address: str) -> str:
        data = (project / "out/v0001" / frames[address]["path"]).read_bytes()
        return hashlib.sha256(data).hexdigest()[:20]

    assert "images" not in bodies[0]
    for body, last in ((bodies[1], ("take/f10", "take/f11")), (bodies[2], ("take/f20", "take/f21"))):
        sent = [url.rsplit("/", 1)[1].removesuffix(".png") for url in body["images"]]
        assert sent == [upload_name(address) for address in last]
    submitted = [call.at for call in atlas.calls if call.kind == "submit"]
    downloads = [call.answered for call in atlas.calls if call.kind == "download"]
    assert submitted[1] > min(downloads) and submitted == sorted(submitted)


# --- errors at their line --------------------------------------------------------------------------


ROOT = """\
version: 1
project: demo
include: [scenes/*.yaml]
templates:
  frame: "{{ frame.action }} {{ variant.locale | default('') }}"
"""
SCENE = """\
scenes:
  - id: intro
    frames:
      - id: one
        action: a quiet street
"""


@pytest.mark.parametrize("variants, scene, message, where", [
    ("variants:\n  locale: {}\n", SCENE, "must not be empty", "storyboard.yaml:7"),
    ("variants:\n  locale: {en: {}}\n  master: {locale: fr}\n", SCENE,
     "the master names `fr`, not a value of axis `locale`", "storyboard.yaml:8"),
    ("variants:\n  locale: {en: {}}\n  format: {wide: {}}\n  master: {locale: en}\n", SCENE,
     "the master names no value of axis `format`", "storyboard.yaml:9"),
    ("variants:\n  locale: {en: {}, wide: {}}\n  format: {wide: {}}\n", SCENE,
     "variant value `wide` of axis `format` is also a value of axis `locale`", "storyboard.yaml:8"),
    ("variants:\n  locale: {en: {}, de: {}}\n", SCENE + "        variants: {locale: [en, fr]}\n",
     "`fr` is not a value of axis `locale`", "scenes/a.yaml:6"),
    ("variants:\n  locale: {en: {}, de: {}}\n", SCENE + "        variants: {lokale: [en]}\n",
     "no variant axis `lokale`; did you mean `locale`?", "scenes/a.yaml:6"),
    ("", SCENE + "        variants: {locale: [en]}\n",
     "no variant axis `locale` (storyboard.yaml has no `variants:`)", "scenes/a.yaml:6"),
    ("variants:\n  locale: {en: {}, de: {}}\n",
     SCENE.replace("    frames:", "    variants: {locale: [de]}\n    frames:")
     + "        variants: {locale: [en]}\n",
     "the frame narrows axis `locale` to no value it may have", "scenes/a.yaml:7"),
    ("variants:\n  locale: {en: {aspect: wide}}\n", SCENE, "aspect", "storyboard.yaml:7"),
    ("variants:\n  locale: {en: {template: nope}}\n", SCENE, "unknown template `nope`", "storyboard.yaml:7"),
    ("variants:\n  locale: {'de DE': {}}\n", SCENE, "`de DE` is not valid here", "storyboard.yaml:7"),
    ("variants:\n  locale: {en: {}}\n  derive: master\n", SCENE, "`derive: master` needs a master",
     "storyboard.yaml:8"),
    ("variants:\n  locale: {en: {}, de: {}}\n",
     SCENE.replace("    frames:", "    variants: {locale: [fr]}\n    frames:"),
     "the scene narrows axis `locale` to no value it may have", "scenes/a.yaml:3"),
])
def test_bad_variants_are_errors_at_their_line(run, tmp_path: Path, variants: str, scene: str, message: str,
                                               where: str) -> None:
    project = build_tree(tmp_path / "demo", {"storyboard.yaml": ROOT + variants, "scenes/a.yaml": scene})
    for command in ("validate", "plan"):
        result = run("-C", project, command)
        assert result.code == 1, result.out
        assert "Traceback" not in result.err
        assert f"{where}:" in result.err, result.err
        assert message in result.err


# --- precedence ----------------------------------------------------------------------------------


def test_precedence_is_project_then_variant_then_scene_then_frame(run, tmp_path: Path) -> None:
    project = build_tree(tmp_path / "demo", {
        "storyboard.yaml": """
            version: 1
            project: demo
            include: [scenes.yaml]
            variables: {who: project, what: project, where: project, how: project}
            variants:
              locale:
                en: {vars: {who: variant, what: variant, where: variant}, aspect: "16:9"}
                de: {vars: {who: variant-de}, template: plain}
            templates:
              frame: "{{ vars.who }} {{ vars.what }} {{ vars.where }} {{ vars.how }} {{ variant.locale }}"
              plain: "plain {{ vars.who }}"
        """,
        "scenes.yaml": """
            scenes:
              - id: s
                vars: {what: scene, where: scene}
                variants: {locale: {en: {vars: {where: scene-for-en}}}}
                frames:
                  - id: f
                    vars: {where: frame}
                    variants: {locale: {en: {vars: {who: frame-for-en}}}}
                  - id: g
                    template: frame
        """,
    })
    frames = {f["address"]: f for f in json.loads(run("-C", project, "render", "--json").out)}
    assert frames["s/f@en"]["prompt"] == "frame-for-en scene frame project en"
    assert frames["s/g@en"]["prompt"] == "variant scene scene-for-en project en"
    assert frames["s/f@de"]["prompt"] == "plain variant-de"  # the variant's template, below the frame's
    assert frames["s/g@de"]["prompt"] == "variant-de scene scene project de"
    assert frames["s/g@en"]["variables"] == {"who": "en", "what": "scene", "where": "scene, for en",
                                             "how": "variables"} | {"who": "locale=en"}
    batches = json.loads(run("-C", project, "plan", "--json").out)["batches"]
    sizes = {batch["frames"][0]: batch["size"] for batch in batches}
    assert sizes["s/f@en"] != sizes["s/f@de"]  # en's aspect 16:9; de the default


# --- downstream ----------------------------------------------------------------------------------


def test_pages_have_a_board_per_variant_and_a_matrix_with_links_that_resolve(run, campaign: Path) -> None:
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    version = campaign / "out/v0001"
    boards = sorted(str(p.relative_to(version)) for p in version.rglob("board.html"))
    per_variant = [f"{locale}/{form}/board.html" for locale in LOCALES for form in FORMATS]
    assert boards == sorted(["board.html", *per_variant])
    german_story = (version / "de-DE/story/board.html").read_text()
    addresses = re.findall(r'data-address="([^"]+)"', german_story)
    assert addresses == ["pour/door@de-DE,story", "pour/grind@story", "pour/pour@de-DE,story",
                         "pour/cup@de-DE,story", "packshot/bag@de-DE,story"]
    matrix = (version / "variants.html").read_text()
    assert len(re.findall(r"<tr data-frame=", matrix)) == 5  # door, grind, pour, cup, bag
    assert matrix.count("not in this variant") == 2  # the packshot has no square cut
    for page in version.rglob("*.html"):
        for link in re.findall(r'(?:href|src)="([^"#:]+)', page.read_text()):
            assert (page.parent / link).resolve().is_file(), f"{page.relative_to(version)} links {link}"


def test_pdf_and_contact_sheet_take_a_variant(run, campaign: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader

    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    result = run("-C", campaign, "export", "pdf", "--variant", "locale=de-DE", "--variant", "format=story",
                 "-o", tmp_path / "de.pdf")
    assert result.code == 0, result.err
    assert "5 frames" in result.out
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "de.pdf").pages)
    assert "pour/pour@de-DE,story" in text and "@en-US" not in text and "Gleich ist es so weit." in text
    sheet = run("-C", campaign, "export", "contact-sheet", "--variant", "format=square",
                "-o", tmp_path / "s.png")
    assert sheet.code == 0 and "7 frames" in sheet.out


def test_a_held_variant_stays_while_its_master_is_made_again(run, campaign: Path) -> None:
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    assert run("-C", campaign, "approve", "pour/pour@de-DE,story", "--by", "Priya").code == 0
    edit(campaign / "scenes/01-pour.yaml", "in a slow spiral", "in a slow circle")
    changes = actions(plan_json(run, campaign))
    assert changes["pour/pour@de-DE,story"] == "hold"
    assert changes["pour/pour@en-US,landscape"] == "regenerate"
    assert changes["pour/pour@de-DE,square"] == "regenerate"


def test_a_master_that_fails_leaves_its_variants_for_the_next_apply(run, atlas: FakeAtlas,
                                                                    campaign: Path) -> None:
    from storyboard.testing.fake_atlas import Outcome

    use_atlas(campaign, parallelism=1)  # one at a time: the first request is the grinder's master
    atlas.outcomes(Outcome(error="GPU worker crashed"))
    result = run("-C", campaign, "apply", "--auto-approve")
    assert result.code == 1
    assert "pour/grind@story: not made: its master pour/grind@landscape was not made" in result.err
    frames = {f["address"] for f in version_frames(campaign / "out/v0001")}
    assert not {"pour/grind@landscape", "pour/grind@story", "pour/grind@square"} & frames
    assert "pour/pour@de-DE,story" in frames  # everything else was made
    billed = atlas.images_billed
    again = run("-C", campaign, "apply", "--auto-approve")
    assert again.code == 0, again.err
    assert atlas.images_billed - billed == 3  # the master, then its two variants; nothing paid twice
    assert [len(body.get("images", [])) for body in submits(atlas)[-3:]] == [0, 1, 1]


def test_regenerate_scene_makes_the_whole_scene_again_in_that_variant_only(run, campaign: Path) -> None:
    edit(campaign / "scenes/01-pour.yaml", "    consistency: chain",
         "    consistency: chain\n    regenerate: scene")
    edit(campaign / "storyboard.yaml", "  master: {locale: en-US, format: landscape}\n",
         "  master: {locale: en-US, format: landscape}\n  derive: independent\n")
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    edit(campaign / "scenes/01-pour.yaml", 'de-DE: {dialogue: "Gleich ist es so weit."}',
         'de-DE: {dialogue: "Gleich fertig."}')
    plan = plan_json(run, campaign)
    changed = {c["address"]: c["reasons"] for c in plan["changes"] if c["action"] != "keep"}
    german = {f"pour/{frame}@de-DE,{form}" for frame in ("door", "pour", "cup") for form in FORMATS}
    assert set(changed) == german
    assert changed["pour/door@de-DE,story"] == ["regenerate: scene (pour/pour@de-DE,story changed)"]


def test_approve_takes_every_variant_of_a_frame(run, campaign: Path) -> None:
    assert run("-C", campaign, "apply", "--auto-approve").code == 0
    result = run("-C", campaign, "approve", "packshot/bag", "--by", "Priya")
    assert result.code == 0, result.err
    lock = json.loads((campaign / "storyboard.lock").read_text())
    assert sorted(lock["approvals"]) == sorted(f"packshot/bag@{locale},{form}" for locale in LOCALES
                                               for form in ("landscape", "story"))
