"""Shared fixtures: real file trees in tmp_path and the real CLI entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storyboard.cli.commands import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "coffee-launch"
CAMPAIGN = REPO / "examples" / "campaign-variants"
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True, scope="session")
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Compiled schema checks and template bytecode go to a folder of this test run."""
    folder = tmp_path_factory.mktemp("user-cache")
    os.environ["STORYBOARD_CACHE_DIR"] = str(folder)
    return folder


_STARTS: dict[str, list[list[str]]] = {}  # module -> the commands started that run it


def _record_starts(event: str, args: tuple[Any, ...]) -> None:
    if event == "subprocess.Popen":
        command = [str(part) for part in args[1] or ()]
        for module, starts in _STARTS.items():
            if module in command:
                starts.append(command)


sys.addaudithook(_record_starts)  # audit hooks cannot be removed; this one only records


def starts_of(module: str) -> list[list[str]]:
    """The commands started from now on that run `python -m module` (a helper process), as a list
    that fills as they start."""
    starts = _STARTS.setdefault(module, [])
    starts.clear()
    return starts


@dataclass
class Result:
    code: int
    out: str
    err: str


def build_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write `files` (relative path -> text, dedented, or bytes) under `root`."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the real `storyboard` entry point in-process; returns exit code and output."""

    def invoke(*args: str | Path, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def run_process(*args: str | Path, cwd: Path, env: Mapping[str, str] | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `storyboard` as a real subprocess (for signals, run locks and tracebacks)."""
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "storyboard", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the bundled coffee-launch example."""
    target = tmp_path / "coffee-launch"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("out", "storyboard.lock",
                                                                      ".storyboard"))
    return target


@pytest.fixture
def applied(run, example: Path) -> Path:
    """The example, applied once (v0001) with the local provider."""
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 0, result.err
    return example


def png_bytes(color: tuple[int, int, int] = (200, 100, 50), size: int = 8) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


MINIMAL_ROOT = """
    version: 1
    project: demo
    include: [scenes/*.yaml]
    templates:
      frame: "{{ frame.shot }}: {{ frame.action }}"
"""


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    """A tiny valid project: one scene, two frames, inline template."""
    return build_tree(tmp_path / "demo", {
        "storyboard.yaml": MINIMAL_ROOT,
        "scenes/a.yaml": """
            scenes:
              - id: intro
                frames:
                  - id: one
                    shot: wide
                    action: a quiet street
                  - id: two
                    shot: close
                    action: a door opens
        """,
    })


def images(version: Path) -> dict[str, int]:
    """Relative image path -> inode, for every image of a version folder."""
    return {str(p.relative_to(version)): p.stat().st_ino for p in version.rglob("*.png")}


def version_frames(version: Path) -> list[dict[str, Any]]:
    """Every frame of a version folder with its status, merged from manifest.json and the
    scene manifests (what `storyboard show --json` prints)."""
    from storyboard.state.manifest import read_manifest

    frames: list[dict[str, Any]] = read_manifest(version.parent, int(version.name[1:]))["frames"]
    return frames


@dataclass
class S3:
    """A bucket on the loopback S3 server, and the backend settings that point at it."""

    endpoint: str
    bucket: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/campaign"

    def settings(self, **extra: object) -> str:
        fields = {"url": self.url, "endpoint": self.endpoint, "region": "us-east-1", **extra}
        return "backend: {" + ", ".join(f"{key}: {value}" for key, value in fields.items()) + "}\n"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def object_keys(self, prefix: str = "") -> list[str]:
        """Every key under the project's prefix, as the bucket lists them (prefix removed)."""
        paginator = self.client().get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=f"campaign/{prefix}")
        contents = (item for page in pages for item in page.get("Contents", []))
        return sorted(item["Key"].removeprefix("campaign/") for item in contents)

    def read(self, key: str) -> bytes:
        body = self.client().get_object(Bucket=self.bucket, Key=f"campaign/{key}")["Body"]
        return bytes(body.read())

    def write(self, key: str, body: bytes) -> None:
        self.client().put_object(Bucket=self.bucket, Key=f"campaign/{key}", Body=body)


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "storyboard-test", "AWS_SECRET_ACCESS_KEY": "not-a-real-secret-0123",
               "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the whole session."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> S3:
    """A fresh bucket, with the credentials in the environment (as a CI runner has them)."""
    import hashlib

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    bucket = "t-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    found = S3(s3_server, bucket)
    found.client().create_bucket(Bucket=bucket)
    return found


def add_backend(project: Path, settings: str) -> None:
    root = project / "storyboard.yaml"
    root.write_text(root.read_text() + settings)


def provider_options(project: Path, *lines: str) -> None:
    """Add `key: value` lines under `provider.options` in storyboard.yaml (the block made once)."""
    import re

    root = project / "storyboard.yaml"
    text = root.read_text()
    block = "".join(f"    {line}\n" for line in lines)
    if "\n  options:\n" in text:
        text = text.replace("\n  options:\n", "\n  options:\n" + block, 1)
    else:
        text = re.sub(r"(\n  parallelism: \d+\n)", lambda m: m.group(1) + "  options:\n" + block, text,
                      count=1)
    root.write_text(text)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def wait_for(condition, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def submitted(project: Path) -> int:
    """Jobs the project's journal says were submitted."""
    journal = project / ".storyboard/journal.jsonl"
    if not journal.exists():
        return 0
    return sum('"submitted"' in line for line in journal.read_text().splitlines())


def start_apply(project: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "storyboard", "apply", "--auto-approve"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})


KEY = "sk-atlas-test-0123456789"
FAST = ("    poll_interval: 0.02\n    retry_backoff: 0.01\n    request_timeout: 5\n"
        "    not_found_grace: 1\n")


def use_atlas(project: Path, *, parallelism: int = 4, extra: str = "") -> None:
    """Switch the example to atlascloud with quick polls; `extra` options win over FAST's."""
    extra = "".join(f"    {line.strip()}\n" for line in extra.splitlines())
    given = {line.split(":")[0] for line in extra.splitlines()}
    fast = "".join(line + "\n" for line in FAST.splitlines() if line.split(":")[0] not in given)
    edit(project / "storyboard.yaml", "  name: local ", "  name: atlascloud ")
    edit(project / "storyboard.yaml", "  parallelism: 4\n",
         f"  parallelism: {parallelism}\n  options:\n{fast}{extra}")


@pytest.fixture
def atlas(fake_atlas: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fake with a key that looks real, so a leak would be found by searching for it."""
    fake_atlas.api_key = KEY
    monkeypatch.setenv("ATLASCLOUD_API_KEY", KEY)
    return fake_atlas


def check_golden(name: str, actual: str) -> None:
    """`actual` is tests/golden/NAME (written instead with STORYBOARD_UPDATE_GOLDEN=1)."""
    path = GOLDEN / name
    if os.environ.get("STORYBOARD_UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")
