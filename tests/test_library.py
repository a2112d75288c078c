"""The front door a build script uses: typed functions, every problem at once, the layering kept."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import EXAMPLE, REPO, build_tree, png_bytes

import storyboard


def test_a_build_script_does_what_the_cli_does(example: Path, tmp_path: Path) -> None:
    project = storyboard.load(example)
    assert storyboard.check(project) == []
    plan = storyboard.plan(project, targets=["morning"])
    assert plan.summary()["create"] == 4
    seen: list[str] = []
    result = storyboard.apply(plan, on_event=lambda event: seen.append(event.kind))
    assert result.ok and result.version == 1 and len(result.generated) == 4
    assert seen[0] == "apply_started" and seen[-1] == "apply_finished" and seen.count("frame_done") == 4
    assert [summary.name for summary in storyboard.history(project)] == ["v0001"]
    assert [frame["address"] for frame in storyboard.show(project, "v0001").frames][:1] == ["morning/skyline"]
    exported = storyboard.export_contact_sheet(project, path=tmp_path / "sheet.png")
    assert exported.frames == 4 and (tmp_path / "sheet.png").read_bytes().startswith(b"\x89PNG")
    assert storyboard.gc(project, keep=1) == storyboard.Collected((), 0)


def test_load_lays_variables_and_a_provider_over_the_project() -> None:
    project = storyboard.load(EXAMPLE, provider="atlascloud", variables={"brand": "Borealis Tea"})
    assert project.provider.name == "atlascloud" and project.variables["brand"] == "Borealis Tea"
    assert "Borealis Tea" in storyboard.render(project, ["packshot/hero"])[0].prompt


def test_check_reports_problems_of_three_stages_in_one_run(minimal: Path) -> None:
    """An unknown key (schema), a missing reference image (names and files) and an undefined
    template variable (rendering): all three, each at its place, in one call."""
    build_tree(minimal, {
        "templates/wide.j2": "{{ frame.action }} in {{ vars.city }}\n",
        "refs/ok.png": png_bytes(),
        "scenes/a.yaml": """
            scenes:
              - id: intro
                frames:
                  - id: one
                    acton: typo
                  - id: two
                    references: [refs/missing.png]
                  - id: three
                    template: wide
                    action: rain
        """,
    })
    problems = storyboard.check(storyboard.load(minimal))
    found = [(problem.location.file.name, problem.location.line, problem.message)
             for problem in problems if problem.location]
    assert found == [
        ("a.yaml", 5, "unknown key `acton`; did you mean `action`?"),
        ("a.yaml", 7, "reference image `refs/missing.png` does not exist"),
        ("wide.j2", 1, "undefined variable `city` (rendering frame intro/three)"),
    ]
    with pytest.raises(storyboard.ProjectError) as caught:
        storyboard.plan(storyboard.load(minimal))
    assert len(caught.value.diagnostics) == 3


def test_a_user_script_type_checks_with_the_real_types(tmp_path: Path) -> None:
    script = tmp_path / "build.py"
    script.write_text(textwrap.dedent("""
        import storyboard

        project = storyboard.load("campaign/")
        reveal_type(project)
        reveal_type(storyboard.check(project))
        plan = storyboard.plan(project, targets=["morning"])
        reveal_type(plan)
        reveal_type(storyboard.apply(plan, on_event=print))
        reveal_type(storyboard.history(project))
        storyboard.plan(project, targets=3)  # a mistake mypy must find
    """))
    completed = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--strict", str(script)],
                               cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    output = completed.stdout
    assert 'Revealed type is "storyboard.project.model.Project"' in output, output
    assert re.search(r'Revealed type is "(builtins\.)?list\[storyboard\.errors\.Diagnostic\]"', output)
    assert 'Revealed type is "storyboard.plans.planner.Plan"' in output
    assert 'Revealed type is "storyboard.run.apply.ApplyResult"' in output
    assert re.search(r'Revealed type is "(builtins\.)?list\[storyboard\.api\.VersionSummary\]"', output)
    assert 'Argument "targets" to "plan" has incompatible type "int"' in output
    assert "Any" not in "".join(line for line in output.splitlines() if "Revealed" in line)


# What each package may import, lowest first: nothing imports upward.
LAYERS = {
    "base": set(),
    "project": {"base"},
    "providers": {"base", "project"},
    "state": {"base", "project", "providers"},
    "plans": {"base", "project", "providers", "state"},
    "deliver": {"base", "project", "state", "plans"},
    "run": {"base", "project", "providers", "state", "plans", "deliver"},
    "api": {"base", "project", "providers", "state", "plans", "deliver", "run"},
    "cli": {"base", "project", "providers", "state", "plans", "deliver", "run", "api"},
    "testing": {"base", "project", "providers"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "api"  # the package itself re-exports the front door
    if parts[1] == "__main__":
        return "cli"
    return parts[1] if parts[1] in LAYERS else "base"


def test_nothing_imports_upward() -> None:
    package = REPO / "storyboard"
    wrong = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        layer = _layer(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                if name.startswith("storyboard.") or name == "storyboard":
                    target = _layer(name)
                    if target != layer and target not in LAYERS[layer]:
                        wrong.append(f"{module} ({layer}) imports {name} ({target})")
    assert wrong == []


def test_the_model_knows_nothing_of_yaml() -> None:
    source = (REPO / "storyboard/project/model.py").read_text()
    assert "yamlsrc" not in source and "import yaml" not in source


def test_the_readme_library_example_runs(example: Path, tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Library API"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("```\n", 10)]
    script = tmp_path / "example.py"
    script.write_text(code.replace('"examples/coffee-launch"', repr(str(example))))
    completed = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert '"event": "apply_finished"' in completed.stdout.replace("'", '"')
    assert (tmp_path / "board.pdf").read_bytes().startswith(b"%PDF")


def test_no_module_imports_a_posix_only_module() -> None:
    """The README says storyboard imports on any platform: the run lock is filelock, not fcntl."""
    posix_only = {"fcntl", "termios", "pty", "tty", "pwd", "grp", "resource", "posix"}
    found = []
    for path in sorted((REPO / "storyboard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(REPO)}: {name}" for name in names
                      if name.split(".")[0] in posix_only]
    assert found == []
