"""`storyboard apply` with the atlascloud provider against the fake server: what a user sees.

Real HTTP on 127.0.0.1 only; request counts are read from the fake to prove that nothing
was paid for twice.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    FAST,
    KEY,
    build_tree,
    edit,
    images,
    run_process,
    start_apply,
    submitted,
    use_atlas,
    version_frames,
    wait_for,
)

from storyboard.testing.fake_atlas import EDIT_SEQUENTIAL, FakeAtlas, Fault, Outcome

FRAMES = 31
def env_for(fake: FakeAtlas) -> dict[str, str]:
    return {"ATLASCLOUD_BASE_URL": fake.base_url, "ATLASCLOUD_API_KEY": KEY}


def test_apply_generates_every_frame_in_planned_requests_then_nothing(run, atlas: FakeAtlas,
                                                                      example: Path) -> None:
    use_atlas(example)
    plan = json.loads(run("-C", example, "plan", "--json").out)
    assert plan["summary"]["requests"] == 7 and plan["summary"]["cost"] == pytest.approx(31 * 0.036)
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert atlas.count("submit") == 7 and atlas.images_billed == FRAMES
    assert len(images(example / "out/v0001")) == FRAMES
    bodies = [c.body for c in atlas.calls if c.kind == "submit"]
    assert {b["size"] for b in bodies} == {"2848*1600", "2048*2048"}  # packshot/square is aspect 1:1
    assert all(b["model"] == EDIT_SEQUENTIAL and len(b["images"]) + b["max_images"] <= 15
               for b in bodies if "images" in b)
    jobs = {frame["job"] for frame in version_frames(example / "out/v0001")}
    assert jobs == {p.id for p in atlas.accepted}
    again = run("-C", example, "apply", "--auto-approve")
    assert again.code == 0 and "No changes" in again.out
    assert atlas.count("submit") == 7


def test_one_edited_frame_is_one_request_with_its_unchanged_neighbours(run, atlas: FakeAtlas,
                                                                      example: Path) -> None:
    use_atlas(example)
    assert run("-C", example, "apply", "--auto-approve").code == 0
    uploads = atlas.count("upload")
    edit(example / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert atlas.count("submit") == 8
    body = [c.body for c in atlas.calls if c.kind == "submit"][-1]
    assert body["max_images"] == 1 and body["model"] == EDIT_SEQUENTIAL
    assert atlas.count("upload") - uploads == len(body["images"])  # a new run uploads again
    neighbours = len(body["images"]) - 1  # the character reference, then the neighbours' images
    assert neighbours == 2


def one_frame_requests(root: Path, frames: int, provider: str) -> Path:
    """A project of `frames` frames in a non-sequential scene: one request each."""
    lines = "".join(f"      - {{id: f{n}, action: frame {n}}}\n" for n in range(frames))
    return build_tree(root, {
        "storyboard.yaml": f"version: 1\nproject: single\nprovider:\n  name: atlascloud\n{provider}"
                           f"  options:\n{FAST}"
                           "defaults: {size: 2048x2048}\ntemplates: {frame: '{{ frame.action }}'}\n"
                           "include: [scenes.yaml]\n",
        "scenes.yaml": "scenes:\n  - id: s\n    sequential: false\n    frames:\n" + lines,
    })


def test_parallelism_caps_predictions_in_flight_at_the_server(run, atlas: FakeAtlas, tmp_path: Path) -> None:
    project = one_frame_requests(tmp_path / "p", 12, "  parallelism: 3\n")
    atlas.latency = 0.3
    result = run("-C", project, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert atlas.count("submit") == 12
    assert atlas.max_in_flight == 3


def test_the_next_prediction_starts_while_the_last_one_downloads(run, atlas: FakeAtlas,
                                                                 tmp_path: Path) -> None:
    """`parallelism` caps predictions at the service: a finished one's slot is free while its
    images download (from a CDN, in real life, for seconds)."""
    project = one_frame_requests(tmp_path / "p", 2, "  parallelism: 1\n")
    atlas.latency = 0.2
    atlas.script("download", Fault(delay=1.5))  # the first image is slow to arrive
    result = run("-C", project, "apply", "--auto-approve")
    assert result.code == 0, result.err
    submits = [call for call in atlas.calls if call.kind == "submit"]
    first_download = next(call for call in atlas.calls if call.kind == "download")
    assert len(submits) == 2 and atlas.max_in_flight == 1
    assert submits[1].at < first_download.answered  # not held back until the slow image arrived


def test_requests_per_minute_spaces_the_submits_on_a_clock_the_test_controls() -> None:
    """600 a minute: one every 0.1 s, though all five could go at once (no wall clock read)."""
    import anyio

    from storyboard.run.execute import Pace

    now = [100.0]
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    async def main() -> None:
        pace = Pace(600, clock=lambda: now[0], sleep=sleep)
        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(pace.wait)
        now[0] += 0.25  # a later submit waits only for what is left of its gap
        await pace.wait()

    anyio.run(main)
    assert asked[:5] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert asked[5] == pytest.approx(0.25)


def test_requests_per_minute_lets_every_submit_through(run, atlas: FakeAtlas, tmp_path: Path) -> None:
    project = one_frame_requests(tmp_path / "p", 5, "  parallelism: 5\n  requests_per_minute: 6000\n")
    result = run("-C", project, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert atlas.count("submit") == 5 and atlas.images_billed == 5


@pytest.mark.parametrize("parallelism", [1, 4])
def test_402_mid_run_commits_what_was_paid_for_and_stops_submitting(run, atlas: FakeAtlas, example: Path,
                                                                    parallelism: int) -> None:
    use_atlas(example, parallelism=parallelism)
    atlas.latency = 0.3  # with 4 in flight, jobs still run when the 402 comes: they are collected
    atlas.balance = 20  # enough for the first requests, then the balance runs out
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 1
    assert "top up" in result.err and "balance" in result.err
    assert KEY not in result.out + result.err
    statuses = [c.status for c in atlas.calls if c.kind == "submit"]
    if parallelism == 1:
        assert statuses[-1] == 402 and statuses.count(402) == 1  # nothing submitted after the 402
    else:  # submits already on their way when the 402 came may still arrive, nothing later
        assert len(statuses) <= len(atlas.accepted) + parallelism
    billed = atlas.images_billed
    assert 0 < billed < FRAMES
    lock = json.loads((example / "storyboard.lock").read_text())
    assert len(lock["frames"]) == billed
    assert len(images(example / "out/v0001")) == billed
    atlas.balance = None
    resumed = run("-C", example, "apply", "--auto-approve")
    assert resumed.code == 0, resumed.err
    assert atlas.images_billed == FRAMES  # only the missing frames were paid for


def test_short_set_is_completed_with_the_kept_images_as_references(run, atlas: FakeAtlas,
                                                                   example: Path) -> None:
    use_atlas(example)
    atlas.outcomes(Outcome(images=1))  # the first request (morning, 4 frames) returns one image
    result = run("-C", example, "apply", "--auto-approve", "--target", "morning")
    assert result.code == 0, result.err
    first, retry = (c.body for c in atlas.calls if c.kind == "submit")
    assert first["max_images"] == 4 and retry["max_images"] == 3
    assert len(retry["images"]) == len(first["images"]) + 1  # the kept image went along
    assert atlas.images_billed == 7
    assert len(images(example / "out/v0001")) == 4


def test_failed_and_blocked_predictions_fail_their_frames_and_the_rest_lands(run, atlas: FakeAtlas,
                                                                             example: Path) -> None:
    use_atlas(example, parallelism=1)
    atlas.outcomes(Outcome(error="GPU worker crashed"), Outcome(nsfw=True))
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 1
    assert "morning/skyline" in result.err and "GPU worker crashed" in result.err
    assert "content filter" in result.err
    assert atlas.count("submit") == 7  # failed predictions are not paid again in the same run
    failed = atlas.accepted[0].count + atlas.accepted[1].count
    assert len(images(example / "out/v0001")) == FRAMES - failed
    plan = json.loads(run("-C", example, "plan", "--json").out)
    assert plan["summary"]["create"] == failed


def test_outcome_unknown_is_said_plainly_and_never_resubmitted(run, atlas: FakeAtlas, example: Path) -> None:
    use_atlas(example, parallelism=1, extra="  request_timeout: 0.5\n")
    atlas.script("submit", Fault(delay=1.5, accept=True))
    result = run("-C", example, "apply", "--auto-approve", "--target", "morning")
    assert result.code == 1
    assert "may have accepted" in result.err and "dashboard" in result.err
    assert atlas.count("submit") == 1


def test_poll_timeout_keeps_the_job_and_the_next_apply_collects_it(run, atlas: FakeAtlas,
                                                                   example: Path) -> None:
    use_atlas(example, extra="  poll_timeout: 0.3\n")
    atlas.latency = 1.0
    result = run("-C", example, "apply", "--auto-approve", "--target", "morning")
    assert result.code == 1 and "run `storyboard apply` again to collect it" in result.err
    job = atlas.accepted[0].id
    assert job in result.err
    assert job in (example / ".storyboard/journal.jsonl").read_text()
    wait_for(lambda: all(p.finished(time.monotonic()) for p in atlas.accepted), 5)
    again = run("-C", example, "apply", "--auto-approve", "--target", "morning")
    assert again.code == 0, again.err
    assert atlas.count("submit") == 1  # collected, not paid again
    assert f"re-attached to {job}" in again.out


def kill_mid_apply(atlas: FakeAtlas, example: Path, *, parallelism: int, latency: float, jobs: int) -> None:
    """Start apply in a process and SIGKILL it once `jobs` jobs are journaled."""
    use_atlas(example, parallelism=parallelism)
    atlas.latency = latency
    process = start_apply(example, env_for(atlas))
    wait_for(lambda: submitted(example) >= jobs)
    process.kill()
    process.communicate()


def resume(atlas: FakeAtlas, example: Path) -> subprocess.CompletedProcess[str]:
    atlas.latency = 0.05
    resumed = run_process("apply", "--auto-approve", cwd=example, env=env_for(atlas), timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert len(images(example / "out/v0001")) == FRAMES
    return resumed


@pytest.mark.slow
def test_sigkill_then_resume_re_polls_instead_of_resubmitting(atlas: FakeAtlas, example: Path) -> None:
    kill_mid_apply(atlas, example, parallelism=2, latency=2.0, jobs=2)
    killed = {p.id for p in atlas.accepted}
    assert len(killed) == 2
    resumed = resume(atlas, example)
    assert sorted(re.findall(r"re-attached to (\w+)", resumed.stdout)) == sorted(killed)
    assert atlas.count("submit") == 7 and atlas.images_billed == FRAMES


@pytest.mark.slow
def test_a_job_the_service_forgot_is_submitted_again_on_resume(atlas: FakeAtlas, example: Path) -> None:
    kill_mid_apply(atlas, example, parallelism=1, latency=5.0, jobs=1)
    atlas.predictions.clear()  # the service lost it (or it expired)
    resumed = resume(atlas, example)
    assert "does not know prediction" in resumed.stdout + resumed.stderr
    assert atlas.count("submit") == 8


def test_the_key_appears_in_no_file_and_no_output(run, atlas: FakeAtlas, example: Path) -> None:
    use_atlas(example)
    atlas.outcomes(Outcome(error=f"echoing Bearer {KEY}"))
    outputs = [run("-C", example, "plan", "-o", example / "plan.json"),
               run("-C", example, "apply", "--auto-approve"),
               run("-C", example, "apply", "--auto-approve", "--json"), run("-C", example, "show")]
    assert all(KEY not in r.out + r.err for r in outputs)
    assert "[redacted]" in outputs[1].err
    files = [p for p in example.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "manifest.json" for p in files) and (example / "plan.json").exists()
    assert [p for p in files if KEY.encode() in p.read_bytes()] == []


def test_missing_key_is_one_clear_error_and_no_request(run, atlas: FakeAtlas, example: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    use_atlas(example)
    monkeypatch.delenv("ATLASCLOUD_API_KEY")
    assert run("-C", example, "plan").code == 0  # planning needs no key
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 1 and "ATLASCLOUD_API_KEY is not set" in result.err
    assert "Traceback" not in result.err and atlas.calls == []


def test_unsupported_size_is_a_validation_error_naming_the_nearest(run, example: Path) -> None:
    use_atlas(example)
    edit(example / "storyboard.yaml", "  size: 2848x1600", "  size: 1920x1080")
    result = run("-C", example, "validate")
    assert result.code == 1
    assert re.search(r"storyboard\.yaml:\d+:\d+: .*size 1920x1080 is not supported by atlascloud", result.err)
    assert "2848x1600" in result.err


def test_the_service_receives_the_seed_each_frame_records(run, atlas: FakeAtlas, example: Path) -> None:
    use_atlas(example)
    assert run("-C", example, "apply", "--auto-approve").code == 0
    lock = json.loads((example / "storyboard.lock").read_text())["frames"]
    received = {p.id: p.seed for p in atlas.accepted}
    assert all(isinstance(seed, int) and 0 <= seed < 2**31 for seed in received.values())
    for address, entry in lock.items():  # sets of up to 15 frames: each records the one seed sent
        assert received[entry["job"]] == entry["inputs"]["seed"], address
    shown = {frame["address"]: frame["seed"] for frame in version_frames(example / "out/v0001")}
    assert shown == {address: entry["inputs"]["seed"] for address, entry in lock.items()}


def test_a_frame_with_its_own_seed_goes_in_a_request_of_its_own(run, atlas: FakeAtlas, example: Path) -> None:
    use_atlas(example)
    scene = example / "scenes/01-morning.yaml"
    edit(scene, "        duration: 3\n", "        duration: 3\n        seed: 42\n")
    plan = json.loads(run("-C", example, "plan", "--json", "--target", "morning").out)
    assert [b["frames"] for b in plan["batches"]] == [
        ["morning/skyline", "morning/shutter", "morning/grinder"], ["morning/pour"]]
    assert run("-C", example, "apply", "--auto-approve", "--target", "morning").code == 0
    assert sorted(p.seed for p in atlas.accepted)[0] == 42
    lock = json.loads((example / "storyboard.lock").read_text())["frames"]
    assert lock["morning/pour"]["inputs"]["seed"] == 42


def test_an_apply_under_heavy_429s_and_503s_finishes_and_pays_once(run, atlas: FakeAtlas,
                                                                   example: Path) -> None:
    """Every second request answered 429 and every third 503, on every endpoint: unbilled
    failures are tried again until a time budget is spent, not six times."""
    use_atlas(example)
    for kind in ("submit", "poll", "upload", "download"):
        atlas.periodic[kind] = [(2, Fault(status=429, retry_after=0)), (3, Fault(status=503))]
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert len(images(example / "out/v0001")) == FRAMES
    assert atlas.count("submit", 429) > 0 and atlas.count("submit", 503) > 0 and atlas.count("poll", 503) > 0
    assert len(atlas.accepted) == 7 and atlas.images_billed == FRAMES  # nothing paid twice


def test_verbose_shows_retries_and_quiet_hides_them(run, atlas: FakeAtlas, example: Path) -> None:
    use_atlas(example)
    atlas.script("submit", Fault(status=429, retry_after=0))
    verbose = run("-v", "-C", example, "apply", "--auto-approve", "--target", "morning")
    assert verbose.code == 0, verbose.err
    assert "storyboard.atlascloud: POST /api/v1/model/generateImage: HTTP 429" in verbose.err
    assert "retrying in 0.00 s" in verbose.err
    edit(example / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    atlas.script("submit", Fault(status=429, retry_after=0))
    quiet = run("-C", example, "apply", "--auto-approve", "--target", "morning")
    assert quiet.code == 0 and "retrying" not in quiet.err
