"""Shared state on a real S3 API (moto's server on loopback) and a folder: what a team and its CI see.

Clone A applies; clone B is a fresh copy of the project with the committed lockfile and no
out/, as a CI runner checks it out. Images are counted at the fake Atlas server and the
local provider's job files: nothing may be paid for twice.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import (
    S3,
    add_backend,
    edit,
    images,
    run_process,
    start_apply,
    submitted,
    version_frames,
    wait_for,
)

from storyboard.testing.fake_atlas import FakeAtlas
from storyboard.testing.fault_proxy import FaultProxy

FRAMES = 31
SCENES = 5
ATLAS_FAST = ("  options:\n    poll_interval: 0.02\n    retry_backoff: 0.01\n    request_timeout: 5\n"
              "    not_found_grace: 1\n")


def clone(source: Path, target: Path) -> Path:
    """What `git clone` gives a CI runner: the project and its lockfile, no out/, no .storyboard/."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("out", ".storyboard"))
    return target


@pytest.fixture
def clone_a(example: Path, s3: S3) -> Path:
    add_backend(example, s3.settings(lock_expiry=5))
    return example


def local_jobs(project: Path) -> int:
    jobs = project / ".storyboard/local-jobs"
    return len(list(jobs.iterdir())) if jobs.is_dir() else 0


def test_a_fresh_clone_restores_everything_and_pays_nothing(run, clone_a: Path, s3: S3,
                                                            tmp_path: Path) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    assert len(s3.object_keys("objects/")) == FRAMES and len(s3.object_keys("index/")) == FRAMES
    assert len(s3.object_keys("thumbs/")) == FRAMES
    assert "versions/v0001/manifest.json" in s3.object_keys("versions/")
    assert s3.object_keys("journal/") == [] and s3.object_keys("lock.json") == []
    clone_b = clone(clone_a, tmp_path / "runner-b")
    plan = json.loads(run("-C", clone_b, "plan", "--json").out)
    assert plan["summary"]["restore"] == FRAMES and plan["summary"]["requests"] == 0
    assert plan["summary"]["cost"] == 0 and plan["warnings"] == []
    result = run("-C", clone_b, "apply", "--auto-approve")
    assert result.code == 0, result.err
    assert local_jobs(clone_b) == 0  # nothing was generated on B
    a = {f["address"]: f["sha256"] for f in version_frames(clone_a / "out/v0001")}
    b_version = sorted((clone_b / "out").glob("v*"))[-1]
    assert {f["address"]: f["sha256"] for f in version_frames(b_version)} == a
    for frame in version_frames(b_version):  # the images, and the thumbnails the pages show
        for file in (frame["path"], frame["thumbnail"]):
            assert (b_version / file).read_bytes() == (clone_a / "out/v0001" / file).read_bytes()


def test_a_reverted_edit_costs_nothing_with_a_backend(run, clone_a: Path) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    edit(clone_a / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    jobs = local_jobs(clone_a)
    edit(clone_a / "scenes/01-morning.yaml", "slow heart of milk", "slow spiral of milk")
    plan = json.loads(run("-C", clone_a, "plan", "--json").out)
    assert plan["summary"]["restore"] == 1 and plan["summary"]["requests"] == 0
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    assert local_jobs(clone_a) == jobs


def test_pull_of_an_older_version_and_history_from_any_machine(run, clone_a: Path, tmp_path: Path) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    edit(clone_a / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    reviewer = clone(clone_a, tmp_path / "reviewer")
    history = run("-C", reviewer, "history").out
    assert "v0001" in history and "v0002" in history and history.count("storyboard pull") == 2
    shown = json.loads(run("-C", reviewer, "show", "v0001", "--json").out)
    assert len(shown["frames"]) == FRAMES
    pulled = run("-C", reviewer, "pull", "v0001")
    assert pulled.code == 0 and "pulled v0001 into out/ (31 images fetched" in pulled.out
    assert {f["sha256"] for f in version_frames(reviewer / "out/v0001")} == \
        {f["sha256"] for f in version_frames(clone_a / "out/v0001")}
    assert (reviewer / "out/v0001/index.html").is_file()
    assert (reviewer / "out/v0001/01-morning/index.html").is_file()
    again = run("-C", reviewer, "pull")
    assert again.code == 0 and "pulled v0002" in again.out
    assert (reviewer / "out/latest").resolve().name == "v0002"


def test_the_lock_refuses_a_second_apply_naming_the_holder_and_force_unlock_frees_it(
        run, clone_a: Path, s3: S3, tmp_path: Path) -> None:
    holder = {"id": "0123456789abcdef", "who": "ci-runner", "host": "runner-7", "pid": 4242,
              "operation": "apply", "created": "2026-12-02T08:00:00Z", "renewed_at": time.time(),
              "expiry": 3600}
    s3.write("lock.json", json.dumps(holder).encode())
    refused = run("-C", clone_a, "apply", "--auto-approve")
    assert refused.code == 1
    assert "the backend's run lock is held: lock 0123456789abcdef by ci-runner on runner-7 (pid 4242)" \
        in refused.err
    assert "storyboard force-unlock 0123456789abcdef" in refused.err
    assert not (clone_a / "out").exists() and local_jobs(clone_a) == 0  # nothing paid for
    wrong = run("-C", clone_a, "force-unlock", "ffff")
    assert wrong.code == 1 and "is 0123456789abcdef, not ffff" in wrong.err
    freed = run("-C", clone_a, "force-unlock", "0123456789abcdef")
    assert freed.code == 0 and "removed the run lock 0123456789abcdef of ci-runner" in freed.out
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0


def test_a_stale_lock_is_taken_over_and_a_damaged_one_is_refused(run, clone_a: Path, s3: S3) -> None:
    stale = {"id": "stale0000000000", "who": "ci", "host": "gone", "pid": 1, "operation": "apply",
             "created": "2026-12-01T00:00:00Z", "renewed_at": time.time() - 60, "expiry": 5}
    s3.write("lock.json", json.dumps(stale).encode())
    taken = run("-C", clone_a, "apply", "--auto-approve", "--target", "morning")
    assert taken.code == 0, taken.err
    assert s3.object_keys("lock.json") == []  # released at the end
    s3.write("lock.json", b"{not json")
    damaged = run("-C", clone_a, "apply", "--auto-approve")
    assert damaged.code == 1 and "does not read as a storyboard lock" in damaged.err
    assert "Traceback" not in damaged.err


def test_the_lock_holds_through_lost_answers_server_errors_and_slow_answers(run, example: Path, s3: S3,
                                                                           s3_server: str) -> None:
    host, port = s3_server.removeprefix("http://").split(":")
    with FaultProxy(host, int(port)) as proxy:
        add_backend(example, S3(proxy.url, s3.bucket).settings(lock_expiry=5, retry_timeout=5))
        root = example / "storyboard.yaml"  # long enough for several renewals (every 0.5 s)
        root.write_text(root.read_text().replace("  parallelism: 4\n", "  parallelism: 4\n"
                                                 "  options: {latency: 1}\n"))
        lock_put = lambda request: request.method == "PUT" and "/campaign/lock.json" in request.path  # noqa: E731
        proxy.fail(lock_put, lose_answer=True, times=1)  # the lock is created; its answer never arrives
        proxy.fail(lock_put, status=503, times=2)  # its retries fail for a passing reason, twice
        proxy.fail(lambda request: request.method == "GET" and "lock.json" in request.path, delay=1, times=1)
        applied = run("-v", "-C", example, "apply", "--auto-approve")
        assert applied.code == 0, applied.err
        assert "took over" not in applied.err and "no longer holds" not in applied.err
        lock_puts = [r for r in proxy.requests if lock_put(r)]
        assert [r.status for r in lock_puts[:4]] == [200, 503, 503, 412]  # created, then "already there"
        assert len(lock_puts) >= 7  # then renewed while the frames were made
        assert len(s3.object_keys("objects/")) == FRAMES and s3.object_keys("lock.json") == []


def test_two_concurrent_applies_one_generates_the_other_waits_and_restores(s3: S3, clone_a: Path,
                                                                          tmp_path: Path) -> None:
    clone_b = clone(clone_a, tmp_path / "runner-b")
    for project in (clone_a, clone_b):
        root = project / "storyboard.yaml"
        root.write_text(root.read_text().replace("  parallelism: 4\n", "  parallelism: 2\n"
                                                  "  options: {latency: 1}\n"))
    first = start_apply(clone_a)
    try:
        wait_for(lambda: submitted(clone_a) >= 1)  # A holds the lock and is paying for frames
        refused = run_process("apply", "--auto-approve", cwd=clone_b, timeout=60)
        waiting = run_process("apply", "--auto-approve", "--lock-timeout", "2m", cwd=clone_b, timeout=180)
    finally:
        _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err
    assert refused.returncode == 1 and "the backend's run lock is held" in refused.stderr
    assert f"(pid {first.pid})" in refused.stderr
    assert waiting.returncode == 0, waiting.stderr
    assert local_jobs(clone_a) == 7 and local_jobs(clone_b) == 0  # exactly one generated
    assert "31 to restore" in waiting.stdout


def test_two_applies_at_once_never_both_hold_the_lock(s3: S3, clone_a: Path, tmp_path: Path) -> None:
    clone_b = clone(clone_a, tmp_path / "runner-b")
    for project in (clone_a, clone_b):
        root = project / "storyboard.yaml"
        root.write_text(root.read_text().replace("  parallelism: 4\n", "  parallelism: 4\n"
                                                  "  options: {latency: 1}\n"))
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def apply(name: str, project: Path) -> None:
        results[name] = run_process("apply", "--auto-approve", cwd=project, timeout=180)

    threads = [threading.Thread(target=apply, args=(name, project)) for name, project in
               (("a", clone_a), ("b", clone_b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(result.returncode for result in results.values())
    generated = local_jobs(clone_a) + local_jobs(clone_b)
    if codes == [0, 1]:  # one ran, the other was refused naming the holder
        loser = next(result for result in results.values() if result.returncode == 1)
        assert "the backend's run lock is held" in loser.stderr
        assert generated == 7
    else:  # one ran after the other: the second restored what the first made
        assert codes == [0, 0] and generated == 7


def test_an_apply_killed_on_a_is_finished_from_b_without_paying_again(fake_atlas: FakeAtlas, s3: S3,
                                                                      clone_a: Path, tmp_path: Path) -> None:
    root = clone_a / "storyboard.yaml"
    root.write_text(root.read_text().replace("  name: local ", "  name: atlascloud ")
                    .replace("  parallelism: 4\n", "  parallelism: 2\n" + ATLAS_FAST))
    fake_atlas.latency = 2.0
    env = {"ATLASCLOUD_BASE_URL": fake_atlas.base_url, "ATLASCLOUD_API_KEY": fake_atlas.api_key or ""}
    process = start_apply(clone_a, env)
    wait_for(lambda: submitted(clone_a) >= 2 and len(s3.object_keys("journal/")) >= 2)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    paid = {p.id for p in fake_atlas.accepted}
    assert len(paid) >= 2 and {f"journal/{job}.json" for job in paid} <= set(s3.object_keys("journal/"))
    clone_b = clone(clone_a, tmp_path / "runner-b")  # A's lock is left behind: B takes it when stale
    fake_atlas.latency = 0.05
    resumed = run_process("apply", "--auto-approve", "--lock-timeout", "1m", cwd=clone_b, env=env,
                          timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(resumed.stdout.count(f"re-attached to {job}") for job in paid) == [1] * len(paid)
    assert fake_atlas.count("submit") == 7 and fake_atlas.images_billed == FRAMES  # nothing paid twice
    assert s3.object_keys("journal/") == []
    assert len(images(sorted((clone_b / "out").glob("v*"))[-1])) == FRAMES


def test_an_upload_that_fails_loses_nothing_and_push_finishes_it(run, example: Path, s3: S3,
                                                                 s3_server: str) -> None:
    host, port = s3_server.removeprefix("http://").split(":")
    with FaultProxy(host, int(port)) as proxy:
        add_backend(example, S3(proxy.url, s3.bucket).settings(retry_timeout=1))
        proxy.fail(lambda request: request.method == "PUT" and "/objects/" in request.path, status=500)
        failed = run("-C", example, "apply", "--auto-approve")
        assert failed.code == 1
        assert "31 images of v0001 could not be sent to the backend" in failed.err
        assert "`storyboard push` sends them" in failed.err and "Traceback" not in failed.err
        assert not (example / "storyboard.lock").exists()  # not published: the lockfile waits
        assert len(images(example / "out/v0001")) == FRAMES  # the images are here, paid once
        jobs = local_jobs(example)
        proxy.heal()
        pushed = run("-C", example, "push")
        assert pushed.code == 0, pushed.err
        assert "pushed 31 images" in pushed.out and "1 version" in pushed.out
        assert len(s3.object_keys("objects/")) == FRAMES
        assert "versions/v0001/manifest.json" in s3.object_keys("versions/")
        again = run("-C", example, "apply", "--auto-approve")
        assert again.code == 0, again.err
        assert local_jobs(example) == jobs  # nothing paid twice
        assert (example / "storyboard.lock").exists()


def test_uploads_survive_resets_and_slow_answers_and_each_object_is_whole(run, example: Path, s3: S3,
                                                                         s3_server: str) -> None:
    host, port = s3_server.removeprefix("http://").split(":")
    with FaultProxy(host, int(port)) as proxy:
        add_backend(example, S3(proxy.url, s3.bucket).settings(retry_timeout=10))
        object_put = lambda request: request.method == "PUT" and "/objects/" in request.path  # noqa: E731
        proxy.fail(object_put, reset=True, times=3)
        proxy.fail(object_put, lose_answer=True, times=2)
        proxy.fail(object_put, delay=1, times=4)
        applied = run("-C", example, "apply", "--auto-approve")
        assert applied.code == 0, applied.err
    stored = s3.object_keys("objects/")
    assert len(stored) == FRAMES
    for key in stored:
        assert hashlib.sha256(s3.read(key)).hexdigest() == key.rsplit("/", 1)[1]
    assert {f["sha256"] for f in version_frames(example / "out/v0001")} == \
        {key.rsplit("/", 1)[1] for key in stored}


def test_a_journal_the_backend_refuses_does_not_stop_the_apply(run, example: Path, s3: S3,
                                                               s3_server: str) -> None:
    host, port = s3_server.removeprefix("http://").split(":")
    with FaultProxy(host, int(port)) as proxy:
        add_backend(example, S3(proxy.url, s3.bucket).settings(retry_timeout=0.5))
        proxy.fail(lambda request: "/journal/" in request.path, status=500)
        applied = run("-C", example, "apply", "--auto-approve")
    assert applied.code == 0, applied.err
    assert "is in the local journal only" in applied.err and "Traceback" not in applied.err
    assert len(s3.object_keys("objects/")) == FRAMES and (example / "storyboard.lock").exists()
    assert s3.object_keys("journal/") == []


def test_a_project_applied_before_the_store_existed_pushes_its_versions(run, example: Path, s3: S3,
                                                                         tmp_path: Path) -> None:
    assert run("-C", example, "apply", "--auto-approve").code == 0
    shutil.rmtree(example / ".storyboard/store")  # as a project applied by an older storyboard is
    add_backend(example, s3.settings())
    pushed = run("-C", example, "push")
    assert pushed.code == 0, pushed.err
    assert "pushed 31 images" in pushed.out and len(s3.object_keys("objects/")) == FRAMES
    edit(example / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", example, "apply", "--auto-approve").code == 0  # publishes v0002 beside
    runner = clone(example, tmp_path / "runner")
    restored = run("-C", runner, "apply", "--auto-approve")
    assert restored.code == 0 and "31 to restore" in restored.out and local_jobs(runner) == 0


def test_a_no_op_plan_makes_a_few_backend_requests_not_one_per_frame(run, example: Path, s3: S3,
                                                                     s3_server: str, tmp_path: Path) -> None:
    host, port = s3_server.removeprefix("http://").split(":")
    with FaultProxy(host, int(port)) as proxy:
        add_backend(example, S3(proxy.url, s3.bucket).settings())
        assert run("-C", example, "apply", "--auto-approve").code == 0
        before = len(proxy.requests)
        assert run("-C", example, "plan", "--detailed-exitcode").code == 0
        assert len(proxy.requests) - before == 0  # out/ matches the lockfile: the backend is not asked
        runner = clone(example, tmp_path / "runner")
        before = len(proxy.requests)
        plan = json.loads(run("-C", runner, "plan", "--json").out)
        assert plan["summary"]["restore"] == FRAMES
        assert len(proxy.requests) - before <= 2  # one listing of the objects, not 31 requests


def test_gc_remote_keeps_what_is_referenced_and_is_a_dry_run_by_default(run, clone_a: Path, s3: S3) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    edit(clone_a / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    s3.write("objects/ff/" + "f" * 64, b"orphan")
    dry = run("-C", clone_a, "gc", "--remote", "--keep-days", "0")
    assert dry.code == 0 and "would remove 1 image" in dry.out and "f" * 64 in dry.out
    assert len(s3.object_keys("objects/")) == FRAMES + 2
    kept_versions = run("-C", clone_a, "gc", "--remote", "--keep", "1", "--keep-days", "0", "--force")
    assert kept_versions.code == 0 and "removed 2 images" in kept_versions.out
    assert "1 version" in kept_versions.out and "1 scene manifest" in kept_versions.out
    assert len(s3.object_keys("objects/")) == FRAMES  # the old pour went with v0001; the lockfile's stay
    assert len(s3.object_keys("manifests/")) == SCENES  # v0001's morning went with it
    lock = json.loads((clone_a / "storyboard.lock").read_text())["frames"]
    held = {key.rsplit("/", 1)[-1] for key in s3.object_keys("objects/")}
    assert {entry["image"]["sha256"] for entry in lock.values()} == held


def test_a_version_sends_only_the_scene_manifests_it_changed(run, clone_a: Path, s3: S3,
                                                              tmp_path: Path) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    assert len(s3.object_keys("manifests/")) == SCENES
    edit(clone_a / "scenes/01-morning.yaml", "slow spiral of milk", "slow heart of milk")
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    assert len(s3.object_keys("manifests/")) == SCENES + 1  # morning's new scene.json, nothing else
    listing = json.loads(s3.read("versions/v0002/scenes.json"))["scenes"]
    assert len(listing) == SCENES
    for relative, sha in listing.items():  # each as out/v0002 holds it
        assert hashlib.sha256((clone_a / "out/v0002" / relative).read_bytes()).hexdigest() == sha
    reviewer = clone(clone_a, tmp_path / "reviewer")
    for version in ("v0001", "v0002"):
        assert run("-C", reviewer, "pull", version).code == 0
        for relative in listing:
            pulled, original = reviewer / "out" / version / relative, clone_a / "out" / version / relative
            assert pulled.read_bytes() == original.read_bytes()


def test_a_damaged_or_unlisted_scene_manifest_from_the_backend_is_refused(run, clone_a: Path, s3: S3,
                                                                          tmp_path: Path) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    listing = json.loads(s3.read("versions/v0001/scenes.json"))
    sha = next(iter(listing["scenes"].values()))
    key = f"manifests/{sha[:2]}/{sha}.json"
    reviewer = clone(clone_a, tmp_path / "reviewer")
    s3.write(key, s3.read(key).replace(b'"prompt": "', b'"prompt": "tampered '))
    damaged = run("-C", reviewer, "show", "v0001")
    assert damaged.code == 1 and "scene manifest" in damaged.err and "is damaged" in damaged.err
    listing["scenes"] = {"../../escape/scene.json": sha}
    s3.write("versions/v0001/scenes.json", json.dumps(listing).encode())
    hostile = run("-C", reviewer, "pull", "v0001")
    assert hostile.code == 1 and "would leave the output folder" in hostile.err
    assert not (reviewer / "out").exists() and "Traceback" not in hostile.err + damaged.err


def test_a_manifest_from_the_backend_that_leaves_its_folder_is_refused(run, clone_a: Path, s3: S3,
                                                                       tmp_path: Path) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    key = "versions/v0001/manifest.json"
    manifest = json.loads(s3.read(key))
    manifest["scenes"][0]["manifest"] = "../../../../escape/scene.json"
    s3.write(key, json.dumps(manifest).encode())
    reviewer = clone(clone_a, tmp_path / "reviewer")
    result = run("-C", reviewer, "pull", "v0001")
    assert result.code == 1 and "would leave the version folder" in result.err
    assert not (reviewer / "out").exists() and not (tmp_path / "escape").exists()


def test_a_variant_from_the_backend_that_would_name_a_page_outside_is_refused(run, clone_a: Path, s3: S3,
                                                                              tmp_path: Path) -> None:
    # a board per variant is written at the variant's folder: a value that climbs would put a page
    # outside the version when the pulled version's pages are made; the manifest is stored under
    # its own hash, as a backend that means harm would store it
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    listing = json.loads(s3.read("versions/v0001/scenes.json"))
    relative, sha = next(iter(listing["scenes"].items()))
    data = s3.read(f"manifests/{sha[:2]}/{sha}.json").replace(
        b'"address": ', b'"variant": {"locale": "../../../../escape"}, "address": ', 1)
    forged = hashlib.sha256(data).hexdigest()
    s3.write(f"manifests/{forged[:2]}/{forged}.json", data)
    listing["scenes"][relative] = forged
    s3.write("versions/v0001/scenes.json", json.dumps(listing).encode())
    reviewer = clone(clone_a, tmp_path / "reviewer")
    result = run("-C", reviewer, "pull", "v0001")
    assert result.code == 1 and "scene-manifest: frames.0.variant.locale" in result.err, result.err
    assert "Traceback" not in result.err
    assert not (reviewer / "out").exists() and not (tmp_path / "escape").exists()


def test_a_damaged_object_in_the_backend_is_not_used(run, clone_a: Path, s3: S3, tmp_path: Path) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    key = s3.object_keys("objects/")[0]
    s3.write(key, b"\x89PNG damaged")
    reviewer = clone(clone_a, tmp_path / "reviewer")
    result = run("-C", reviewer, "pull")
    assert result.code == 1 and "is damaged: its bytes do not hash to its name" in result.err


def test_a_thumbnail_from_the_backend_that_is_not_a_jpeg_is_made_again(run, clone_a: Path, s3: S3,
                                                                        tmp_path: Path) -> None:
    assert run("-C", clone_a, "apply", "--auto-approve").code == 0
    key = s3.object_keys("thumbs/")[0]
    s3.write(key, b"<html><script>alert(1)</script></html>")
    reviewer = clone(clone_a, tmp_path / "reviewer")
    assert run("-C", reviewer, "pull").code == 0
    sha = key.rsplit("/", 1)[1].removesuffix(".jpg")
    frame = next(f for f in version_frames(reviewer / "out/v0001") if f["sha256"] == sha)
    thumb = (reviewer / "out/v0001" / frame["thumbnail"]).read_bytes()
    assert thumb.startswith(b"\xff\xd8\xff") and b"script" not in thumb


def test_the_file_backend_shares_a_folder(run, example: Path, tmp_path: Path) -> None:
    shared = tmp_path / "mnt/shared/storyboard"
    add_backend(example, f"backend: {{url: 'file://{shared}', lock_expiry: 5}}\n")
    assert run("-C", example, "apply", "--auto-approve").code == 0
    assert len(list((shared / "objects").glob("*/*"))) == FRAMES
    runner = clone(example, tmp_path / "runner")
    plan = json.loads(run("-C", runner, "plan", "--json").out)
    assert plan["summary"]["restore"] == FRAMES
    assert run("-C", runner, "apply", "--auto-approve").code == 0
    assert local_jobs(runner) == 0


def test_credentials_never_reach_output_logs_or_files(run, clone_a: Path, s3: S3) -> None:
    from conftest import CREDENTIALS

    results = [run("-v", "-C", clone_a, "apply", "--auto-approve"), run("-C", clone_a, "history"),
               run("-C", clone_a, "gc", "--remote")]
    secret = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    assert all(secret not in result.out + result.err for result in results)
    written = [p for p in clone_a.rglob("*") if p.is_file() and not p.is_symlink()]
    assert all(secret.encode() not in p.read_bytes() for p in written)
    assert all(secret.encode() not in s3.read(key) for key in s3.object_keys())


def test_an_unreachable_backend_leaves_plan_to_the_local_store_and_stops_apply(
        run, example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import CREDENTIALS

    for key, value in CREDENTIALS.items():  # never the machine's own (or instance metadata)
        monkeypatch.setenv(key, value)
    add_backend(example, "backend: {url: s3://nowhere/campaign, endpoint: 'http://127.0.0.1:9', "
                         "region: us-east-1, retry_timeout: 0.5}\n")
    plan = run("-C", example, "plan")
    assert plan.code == 0 and "Plan: 31 to create" in plan.out
    assert "warning: planned without the backend's store: the backend s3://nowhere/campaign could not" \
        in plan.err
    result = run("-C", example, "apply", "--auto-approve")
    assert result.code == 1 and "the backend s3://nowhere/campaign could not" in result.err
    assert not (example / "out").exists() and local_jobs(example) == 0



