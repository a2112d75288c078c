"""The GitHub Action (action.yml): its shell step run as a runner runs it, inputs as environment
variables, against the example; what lands in the step's outputs and the job summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, edit

ACTION = yaml.safe_load((REPO / "action.yml").read_text())


def run_step(tmp_path: Path, **inputs: str) -> tuple[subprocess.CompletedProcess[str],
                                                                    dict[str, str], str]:
    """The action's `run` step with these inputs; returns the process, its outputs and the summary."""
    output, summary = tmp_path / "github_output", tmp_path / "summary.md"
    output.write_text(""), summary.write_text("")
    runner = tmp_path / "runner"
    runner.mkdir(exist_ok=True)
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
           "RUNNER_TEMP": str(runner), "GITHUB_ACTION_PATH": str(REPO),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           **{f"INPUT_{name.upper().replace('-', '_')}": value for name, value in inputs.items()}}
    step = next(step for step in ACTION["runs"]["steps"] if step.get("id") == "run")
    script = step["run"].replace("$GITHUB_ACTION_PATH", str(REPO))
    process = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return process, outputs, summary.read_text()


def test_the_step_reads_every_input_the_action_declares() -> None:
    step = next(step for step in ACTION["runs"]["steps"] if step.get("id") == "run")
    script = (REPO / "ci/action/run.sh").read_text()
    for name in step["env"]:
        assert name in script
    declared = set(ACTION["outputs"])
    assert declared == {"exitcode", "create", "regenerate", "restore", "remove", "hold", "requests", "cost"}
    for name in declared - {"exitcode"}:
        assert f'"{name}"' in script


def test_plan_writes_counts_to_the_outputs_and_markdown_to_the_summary(example: Path, tmp_path: Path) -> None:
    process, outputs, summary = run_step(tmp_path, command="plan", project=str(example))
    assert process.returncode == 0, process.stderr  # changes (2) do not fail the step
    assert outputs["exitcode"] == "2" and outputs["create"] == "31" and outputs["requests"] == "7"
    assert outputs["cost"] == "0.0" and outputs["hold"] == "0"
    assert summary.startswith("### storyboard plan: coffee-launch\n")
    assert "31 to create" in summary and "| + | `morning/skyline` | create |" in summary


def test_plan_of_a_broken_project_fails_with_annotations(example: Path, tmp_path: Path) -> None:
    edit(example / "scenes/01-morning.yaml", "        shot: extreme wide\n",
         "        shot: extreme wide\n        acton: x\n")
    process, outputs, _ = run_step(tmp_path, command="plan", project=str(example))
    assert process.returncode == 1 and outputs["exitcode"] == "1"
    assert re.search(r"^::error file=[^,]*01-morning\.yaml,line=\d+,col=\d+", process.stdout, re.M)


def test_validate_and_apply_through_the_step(example: Path, tmp_path: Path) -> None:
    process, outputs, _ = run_step(tmp_path, command="validate", project=str(example))
    assert process.returncode == 0 and outputs["exitcode"] == "0" and "OK coffee-launch" in process.stdout
    process, outputs, _ = run_step(tmp_path, command="apply", project=str(example),
                                   args="--target morning", lock_timeout="30s")
    assert process.returncode == 0, process.stderr
    assert outputs["exitcode"] == "0" and (example / "out/v0001/01-morning").is_dir()
    assert not (example / "out/v0001/02-roastery").exists()


@pytest.mark.parametrize("command", ["destroy"])
def test_an_unknown_command_is_an_annotated_failure(example: Path, tmp_path: Path, command: str) -> None:
    process, outputs, _ = run_step(tmp_path, command=command, project=str(example))
    assert process.returncode == 1 and outputs["exitcode"] == "1"
    assert "::error title=storyboard::unknown command `destroy`" in process.stdout


def test_the_pre_commit_hook_runs_validate() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [hook for hook in hooks if hook["id"] == "storyboard-validate"]
    assert hook["entry"] == "storyboard validate" and hook["pass_filenames"] is False
    assert re.search(hook["files"], "scenes/01-morning.yaml") and re.search(hook["files"], "templates/a.j2")
