"""What a pipeline uses: --var and --var-file, --exclude, plan as Markdown, workflow annotations,
validate as JSON, gc --dry-run, global options after the command."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import check_golden, edit

ROOT_VARS = "variables:\n  brand: Aurora Coffee\n"



def fingerprints(run, project: Path, *args: str) -> dict[str, str]:
    result = run("-C", project, *args, "plan", "--json")
    assert result.code == 0, result.err
    return {c["address"]: c["fingerprint"] for c in json.loads(result.out)["changes"]}


def test_var_and_var_file_override_variables_in_order_and_change_fingerprints(run, applied: Path) -> None:
    (applied / "market.yaml").write_text("brand: Borealis\nproduct: Dawn roast\n")
    assert fingerprints(run, applied) == {}  # nothing changed
    from_file = fingerprints(run, applied, "--var-file", "market.yaml")
    assert set(from_file) == {"packshot/hero", "packshot/square"}  # the frames that use brand or product
    prompts = run("-C", applied, "--var-file", "market.yaml", "--var", "brand=Nordlys", "render",
                  "packshot/hero")
    assert "by Nordlys" in prompts.out and "Dawn roast" in prompts.out  # --var wins over the file
    assert "  brand = 'Nordlys'  (from --var)" in prompts.out
    assert re.search(r"  product = 'Dawn roast'  \(from --var-file \S*market\.yaml\)", prompts.out)
    both = fingerprints(run, applied, "--var-file", "market.yaml", "--var", "brand=Nordlys")
    assert both["packshot/hero"] != from_file["packshot/hero"]
    after = run("-C", applied, "plan", "--var", "brand=Aurora Coffee")  # the same value: no change
    assert "No changes" in after.out
    global_after = run("-C", applied, "plan", "--var", "brand=Nordlys", "--json")  # after the command too
    assert json.loads(global_after.out)["summary"]["regenerate"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--var", "brand"], "`brand` is not KEY=VALUE"),
    (["--var-file", "nothing.yaml"], "no variables file"),
    (["--var-file", "list.yaml"], "list.yaml:1:1: a variables file is a mapping of names to values"),
])
def test_bad_variables_are_clear_errors(run, applied: Path, args: list[str], message: str) -> None:
    (applied / "list.yaml").write_text("- a\n- b\n")
    result = run("-C", applied, *args, "plan")
    assert result.code != 0 and message in result.err and "Traceback" not in result.err


def test_exclude_leaves_scenes_and_frames_as_they_are(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    edit(applied / "scenes/01-morning.yaml", "breath visible in the cold", "breath hanging in the cold")
    plan = json.loads(run("-C", applied, "plan", "--json", "--exclude", "morning/pour").out)
    assert [c["address"] for c in plan["changes"]] == ["morning/shutter"]
    assert plan["options"]["excludes"] == ["morning/pour"]
    assert json.loads(run("-C", applied, "plan", "--json", "--exclude", "morning").out)["changes"] == []
    before = json.loads((applied / "storyboard.lock").read_text())["frames"]["morning/pour"]
    assert run("-C", applied, "apply", "--auto-approve", "--exclude", "morning/pour").code == 0
    lock = json.loads((applied / "storyboard.lock").read_text())["frames"]
    assert lock["morning/pour"] == before and lock["morning/shutter"]["generated_in"] == 2
    wrong = run("-C", applied, "plan", "--exclude", "morning/pur")
    assert wrong.code == 1 and "did you mean `morning/pour`?" in wrong.err


HOSTILE = "a sign reading <b>|pipe|</b> and ``` fences ` here"


def test_plan_as_markdown_escapes_what_users_wrote(run, applied: Path) -> None:
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk into the first cup of the day", HOSTILE)
    result = run("-C", applied, "plan", "--format", "markdown")
    assert result.code == 0, result.err
    text = result.out
    assert text.startswith("### storyboard plan: coffee-launch\n")
    assert "Plan: 0 to create, 1 to regenerate" in text and "within the budget of $5.00" in text
    assert "#### morning" in text
    row = next(line for line in text.splitlines() if line.startswith("| ~ |"))
    assert row == "| ~ | `morning/pour` | regenerate | prompt (frame text) |"
    fence = re.search(r"^(`{3,})diff$", text, re.M)
    assert fence is not None and len(fence.group(1)) > 3  # longer than the ``` in the prompt
    before, rest = text.split(fence.group(0), 1)
    body, after = rest.split("\n" + fence.group(1) + "\n", 1)
    assert HOSTILE in body  # the diff itself is verbatim, inside a fence it cannot close
    assert "<b>" not in before + after  # no HTML from user text outside the fence
    assert "<details><summary>prompt diff: morning/pour</summary>" in text


def test_markdown_table_cells_escape_pipes_and_html() -> None:
    from storyboard.cli.views import _md

    assert _md("a|b <script>`x`") == "a\\|b &lt;script&gt;\\`x\\`"


THREE_ERRORS = {
    "scenes/01-morning.yaml": ("        shot: extreme wide\n",
                               "        shot: extreme wide\n        acton: x\n"),
    "scenes/03-commute.yaml": ("  - id: commute\n", "  - id: commute\n    sequential: perhaps\n"),
    "storyboard.yaml": ("  template: frame\n", "  template: missing\n"),
}


def test_validate_prints_one_github_annotation_per_error(run, example: Path) -> None:
    for name, (old, new) in THREE_ERRORS.items():
        edit(example / name, old, new)
    result = run("-C", example, "validate", "--format", "github")
    assert result.code == 1
    annotations = [line for line in result.out.splitlines() if line.startswith("::error ")]
    assert len(annotations) >= 3
    files = {re.search(r"file=([^,]+)", line).group(1) for line in annotations}  # type: ignore[union-attr]
    assert {"scenes/01-morning.yaml", "scenes/03-commute.yaml", "storyboard.yaml"} <= {
        Path(file).as_posix().split("coffee-launch/")[-1] for file in files}
    for line in annotations:
        assert re.match(r"::error file=[^,]+,line=\d+,col=\d+,title=storyboard::\S", line), line
    plan = run("-C", example, "plan", "--format", "github")
    assert plan.code == 1 and plan.out.count("::error file=") == len(annotations)


def test_annotation_text_is_escaped() -> None:
    from storyboard.cli.views import annotation
    from storyboard.errors import Location

    line = annotation("error", "50% done\nnext line", Location(Path("a,b:c.yaml"), 3, 4), "t")
    assert line == "::error file=a%2Cb%3Ac.yaml,line=3,col=4,title=t::50%25 done%0Anext line"


def test_validate_as_json(run, example: Path) -> None:
    ok = run("-C", example, "validate", "--format", "json")
    assert ok.code == 0 and json.loads(ok.out) == {"ok": True, "errors": []}
    edit(example / "scenes/01-morning.yaml", "        shot: extreme wide\n",
         "        shot: extreme wide\n        acton: x\n")
    bad = run("-C", example, "validate", "--format", "json")
    report = json.loads(bad.out)
    assert bad.code == 1 and report["ok"] is False
    (error,) = report["errors"]
    assert error["file"].endswith("scenes/01-morning.yaml") and error["line"] > 0 and error["col"] > 0
    assert "acton" in error["message"] and "did you mean `action`" in error["message"] + error["hint"]


def test_gc_dry_run_removes_nothing_and_says_what_it_would_free(run, applied: Path) -> None:
    for old, new in (("slow spiral", "slow heart"), ("slow heart", "slow wave")):
        edit(applied / "scenes/01-morning.yaml", old, new)
        assert run("-C", applied, "apply", "--auto-approve").code == 0
    before = sorted(p.name for p in (applied / "out").iterdir())
    dry = run("-C", applied, "gc", "--keep", "1", "--dry-run")
    assert dry.code == 0 and "would remove 2 versions: v0001, v0002" in dry.out and "MB to free" in dry.out
    assert sorted(p.name for p in (applied / "out").iterdir()) == before
    done = run("-C", applied, "gc", "--keep", "1")
    assert done.code == 0 and "removed 2 versions: v0001, v0002" in done.out
    assert not (applied / "out/v0001").exists()


def test_global_options_after_the_command_and_from_the_environment(run, applied: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = run("plan", "-q", "-C", applied)
    assert quiet.code == 0 and quiet.out == ""  # -q after the command: nothing to say
    monkeypatch.setenv("STORYBOARD_DIR", str(applied))
    assert "OK coffee-launch" in run("validate").out
    help_text = run("apply", "--help").out
    assert "STORYBOARD_PARALLELISM" in help_text and "STORYBOARD_LOCK_TIMEOUT" in help_text


def test_completion_scripts_and_addresses_from_the_project(run, example: Path) -> None:
    import subprocess
    import sys

    for shell, marker in (("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        script = run("completion", shell)
        assert script.code == 0 and "_STORYBOARD_COMPLETE" in script.out and marker in script.out
    env = {**os.environ, "_STORYBOARD_COMPLETE": "bash_complete"}

    def complete(words: str) -> list[str]:
        position = len(words.split()) - 1
        result = subprocess.run([sys.executable, "-m", "storyboard"],
                                env={**env, "COMP_WORDS": words, "COMP_CWORD": str(position)},
                                capture_output=True, text=True, timeout=60, check=False)
        lines = [line for line in result.stdout.splitlines() if line]
        assert result.returncode == 0 and all(line.startswith("plain,") for line in lines), repr(result)
        return [line.removeprefix("plain,") for line in lines]

    assert complete(f"storyboard -C {example} plan --target morning/p") == ["morning/pour"]
    assert complete(f"storyboard -C {example} approve first") == [
        "first-sip", "first-sip/order", "first-sip/hand-off", "first-sip/sip", "first-sip/smile"]
    assert complete(f"storyboard -C {example / 'nowhere'} plan --exclude m") == []  # no project: nothing




def test_plan_as_markdown_matches_the_golden_file(run, applied: Path) -> None:
    """A regeneration with a hostile prompt, a held frame and a removed frame, as a reviewer reads it."""
    edit(applied / "scenes/01-morning.yaml", "slow spiral of milk into the first cup of the day", HOSTILE)
    assert run("-C", applied, "approve", "morning/shutter", "--by", "Ana | <Director>").code == 0
    lock = applied / "storyboard.lock"  # the approval's date fixed, so the golden file stays true
    lock.write_text(re.sub(r'"at": "[^"]+"', '"at": "2026-01-15T10:00:00Z"', lock.read_text()))
    edit(applied / "scenes/01-morning.yaml", "breath visible in the cold", "breath hanging in the cold")
    edit(applied / "scenes/04-cafe.yaml", "      - id: square\n", "      - id: square-crop\n")
    result = run("-C", applied, "plan", "--format", "markdown")
    assert result.code == 0, result.err
    check_golden("plan.md", result.out)


def test_json_outputs_follow_their_schemas(run, applied: Path) -> None:
    from storyboard.project.schema import validator

    edit(applied / "scenes/01-morning.yaml", "slow spiral", "slow heart")
    assert run("-C", applied, "apply", "--auto-approve").code == 0
    history = json.loads(run("-C", applied, "history", "--format", "json").out)
    assert validator("history").is_valid(history)
    assert [item["version"] for item in history] == ["v0001", "v0002"] and history[-1]["latest"]
    gc = json.loads(run("-C", applied, "gc", "--keep", "1", "--dry-run", "--format", "json").out)
    assert validator("gc").is_valid(gc) and gc["dry_run"] and gc["versions"] == ["v0001"]
    assert (applied / "out/v0001").is_dir()
    edit(applied / "scenes/01-morning.yaml", "        shot: extreme wide\n",
         "        shot: extreme wide\n        acton: x\n")
    report = json.loads(run("-C", applied, "validate", "--format", "json").out)
    assert validator("diagnostics").is_valid(report) and not report["ok"]
