"""The atlascloud client against the fake Atlas Cloud server over real loopback HTTP.

Each test scripts the fake, runs the real provider, and checks what a user would:
the images, the failure reasons, and the request counts that prove nothing was paid
for twice.
"""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest

from storyboard.errors import AuthError, JobLost, ProviderError, UserError
from storyboard.project.model import ProviderConfig
from storyboard.providers.atlascloud import AtlasCloudProvider
from storyboard.providers.base import ImageRequest, JobResult
from storyboard.testing.fake_atlas import EDIT_SEQUENTIAL, SEQUENTIAL, FakeAtlas, Fault, Outcome
from tests.conftest import png_bytes

FAST = {"poll_interval": 0.02, "retry_backoff": 0.01, "request_timeout": 2.0, "not_found_grace": 0.5}


STATE = Path(".storyboard")  # the atlascloud provider keeps no files there


def config(**options: Any) -> ProviderConfig:
    return ProviderConfig(name="atlascloud", options={**FAST, **options})


def request(frames: int = 3, *, references: tuple[Path, ...] = (), size: str = "2848x1600",
            **extra: Any) -> ImageRequest:
    addresses = tuple(f"scene/f{n}" for n in range(frames))
    fingerprints = tuple(f"fp{n}" for n in range(frames))
    return ImageRequest(prompt=f"{frames} images of a coffee shop at dawn", size=size, seed=7,
                        model=SEQUENTIAL, frames=addresses, fingerprints=fingerprints,
                        captions=addresses, references=references, **extra)


def generate(job: ImageRequest, **overrides: Any) -> JobResult:
    """Submit and wait with a fresh provider, as one apply would."""

    async def main() -> JobResult:
        provider = AtlasCloudProvider(config(**overrides), state_dir=STATE)
        try:
            job_id = await provider.submit(job)
            return await provider.wait(job_id, job)
        finally:
            await provider.aclose()

    return anyio.run(main)


def raises(kind: type[Exception], job: ImageRequest, **overrides: Any) -> Any:
    with pytest.raises(kind) as caught:
        generate(job, **overrides)
    return caught.value


def is_png(result: JobResult, positions: range) -> bool:
    return sorted(result.images) == list(positions) and all(
        image.data.startswith(b"\x89PNG") and image.format == "png" and image.width == 64
        for image in result.images.values())


# --- the happy path and every response shape ---------------------------------------------------


def test_a_sequential_set_is_one_request_with_the_contracted_body(fake_atlas: FakeAtlas) -> None:
    result = generate(request(3))
    assert is_png(result, range(3)) and not result.failed
    assert result.images[0].height == 36  # the fake keeps the 2848*1600 aspect ratio
    submit = next(c for c in fake_atlas.calls if c.kind == "submit")
    assert submit.body == {"model": SEQUENTIAL, "prompt": "3 images of a coffee shop at dawn",
                           "size": "2848*1600", "max_images": 3, "seed": 7}
    assert fake_atlas.count("submit") == 1 and fake_atlas.count("download") == 3
    assert all(c.authorized for c in fake_atlas.calls if c.kind in ("submit", "poll"))
    assert not any(c.sent_authorization for c in fake_atlas.calls if c.kind == "download")


@pytest.mark.parametrize("shape", [
    {"flat": True},
    {"id_field": "prediction_id"},
    {"id_field": "request_id", "flat": True},
    {"running_status": "starting", "done_status": "succeeded"},
    {"running_status": "pending", "done_status": "success"},
    {"base64_outputs": True},
    {"complete_at_submit": True},
])
def test_every_response_variant_of_the_contract_is_understood(fake_atlas: FakeAtlas,
                                                              shape: dict[str, Any]) -> None:
    for name, value in shape.items():
        setattr(fake_atlas, name, value)
    fake_atlas.latency = 0.05
    result = generate(request(2))
    assert is_png(result, range(2)) and not result.failed
    assert fake_atlas.count("submit") == 1
    if shape.get("base64_outputs"):
        assert fake_atlas.count("download") == 0
    if shape.get("complete_at_submit"):
        assert fake_atlas.count("poll") == 0


def test_references_go_to_edit_sequential_uploaded_once_per_content(fake_atlas: FakeAtlas,
                                                                     tmp_path: Path) -> None:
    same_a, same_b, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    same_a.write_bytes(png_bytes((1, 2, 3)))
    same_b.write_bytes(png_bytes((1, 2, 3)))
    other.write_bytes(png_bytes((9, 9, 9)))

    async def main() -> None:
        provider = AtlasCloudProvider(config(), state_dir=STATE)
        try:
            jobs = [request(2, references=(same_a, other)), request(3, references=(same_b,))]
            async with anyio.create_task_group() as group:
                for job in jobs:
                    group.start_soon(provider.submit, job)
        finally:
            await provider.aclose()

    anyio.run(main)
    assert fake_atlas.count("upload") == 2  # a.png and b.png have the same bytes
    bodies = [c.body for c in fake_atlas.calls if c.kind == "submit"]
    assert {b["model"] for b in bodies} == {EDIT_SEQUENTIAL}
    assert sorted(len(b["images"]) for b in bodies) == [1, 2]
    assert all(url.startswith(fake_atlas.base_url + "/files/media/") for b in bodies for url in b["images"])


def test_a_requests_references_are_uploaded_side_by_side(fake_atlas: FakeAtlas, tmp_path: Path) -> None:
    paths = tuple(tmp_path / f"ref{n}.png" for n in range(3))
    for n, path in enumerate(paths):
        path.write_bytes(png_bytes((n, 2, 3)))
    fake_atlas.script("upload", *[Fault(delay=0.3)] * 3)  # each answered late

    result = generate(request(2, references=paths))
    assert is_png(result, range(2))
    uploads = [call for call in fake_atlas.calls if call.kind == "upload"]
    assert len(uploads) == 3 and all(call.status == 200 for call in uploads)
    assert max(call.at for call in uploads) < min(call.answered for call in uploads)  # none waited
    submit = next(call for call in fake_atlas.calls if call.kind == "submit")
    names = [hashlib.sha256(path.read_bytes()).hexdigest()[:20] for path in paths]  # the fake's names
    assert submit.body["images"] == [f"{fake_atlas.base_url}/files/media/{name}.png" for name in names]


def test_a_failed_upload_fails_the_submit_with_its_reason(fake_atlas: FakeAtlas, tmp_path: Path) -> None:
    paths = (tmp_path / "a.png", tmp_path / "missing.png")
    paths[0].write_bytes(png_bytes((1, 2, 3)))
    error = raises(ProviderError, request(2, references=paths))
    assert "cannot read reference image" in error.message and "missing.png" in error.message
    assert fake_atlas.count("submit") == 0  # nothing was paid for


def test_downloads_leave_connections_to_the_next_submit(fake_atlas: FakeAtlas) -> None:
    """A finished set's downloads never hold every connection: the next prediction is submitted
    (and the service works on it) while they are still coming."""
    fake_atlas.script("download", *[Fault(delay=0.6)] * 8)  # the first set's 8 images come slowly
    first, second = request(8), request(1)

    async def main() -> None:
        provider = AtlasCloudProvider(config(), state_dir=STATE)  # parallelism 4: 8 connections
        try:
            async def next_job() -> None:
                while fake_atlas.count("download") < 6:  # the slow downloads are under way
                    await anyio.sleep(0.01)
                await provider.wait(await provider.submit(second), second)

            async with anyio.create_task_group() as group:
                job_id = await provider.submit(first)
                await provider.wait(job_id, first, on_finished=lambda: group.start_soon(next_job))
        finally:
            await provider.aclose()

    anyio.run(main)
    slow = [call for call in fake_atlas.calls if call.kind == "download"][:8]
    second_submit = [call for call in fake_atlas.calls if call.kind == "submit"][1]
    assert second_submit.status == 200 and second_submit.body["max_images"] == 1
    assert second_submit.answered < min(call.answered for call in slow)


def test_the_seed_is_always_sent_and_params_only_when_the_user_set_them(fake_atlas: FakeAtlas) -> None:
    generate(request(1, params={"watermark": False}))
    generate(request(1))
    first, second = (c.body for c in fake_atlas.calls if c.kind == "submit")
    assert first["seed"] == 7 and first["watermark"] is False
    assert second["seed"] == 7 and "watermark" not in second
    assert [p.seed for p in fake_atlas.accepted] == [7, 7]


# --- submit: retried only when certainly not accepted ---------------------------------------------


def test_429_on_submit_is_retried_after_retry_after_and_billed_once(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("submit", Fault(status=429, retry_after=0.1), Fault(status=429, retry_after=0))
    result = generate(request(2))
    assert is_png(result, range(2))
    assert fake_atlas.count("submit") == 3 and fake_atlas.count("submit", 429) == 2
    assert len(fake_atlas.accepted) == 1


def test_a_submit_refused_many_times_is_tried_until_the_deadline_not_a_count(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("submit", *[Fault(status=429, retry_after=0), Fault(status=503, retry_after=0)] * 8)
    assert is_png(generate(request(2)), range(2))
    assert fake_atlas.count("submit") == 17 and len(fake_atlas.accepted) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_error_without_prediction_id_is_retried(fake_atlas: FakeAtlas, status: int) -> None:
    fake_atlas.script("submit", Fault(status=status))
    assert is_png(generate(request(2)), range(2))
    assert fake_atlas.count("submit") == 2 and len(fake_atlas.accepted) == 1


def test_gateway_error_that_names_the_prediction_is_collected_not_resubmitted(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("submit", Fault(status=504, accept=True))
    assert is_png(generate(request(2)), range(2))
    assert fake_atlas.count("submit") == 1 and len(fake_atlas.accepted) == 1


def test_500_on_submit_is_not_resubmitted(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("submit", Fault(status=500))
    error = raises(ProviderError, request(2))
    assert "HTTP 500" in error.message and "not sent again" in error.message
    assert fake_atlas.count("submit") == 1


@pytest.mark.parametrize("fault", [
    Fault(delay=1.5, accept=True),  # the answer never comes in time: a read timeout
    Fault(drop=True, accept=True),  # the connection breaks mid-answer
    Fault(body="{not json", accept=True),  # an answer nobody can read
], ids=["read-timeout", "dropped", "malformed"])
def test_lost_answer_to_a_sent_submit_is_outcome_unknown_never_resubmitted(fake_atlas: FakeAtlas,
                                                                           fault: Fault) -> None:
    fake_atlas.script("submit", fault)
    error = raises(ProviderError, request(2), request_timeout=0.5)
    assert "may have accepted" in error.message and "not sent again" in error.message
    assert "dashboard" in error.message
    assert fake_atlas.count("submit") == 1 and len(fake_atlas.accepted) == 1


def test_connection_refused_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    monkeypatch.setenv("ATLASCLOUD_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ATLASCLOUD_API_KEY", "k")
    error = raises(ProviderError, request(1), retry_deadline=0.2)
    assert "could not connect" in error.message and "retry_deadline is 0.2 s" in error.message
    assert re.search(r"gave up after \d+ tries", error.message)
    assert error.retryable


def test_invalid_request_is_not_retried_and_names_the_service_reason(fake_atlas: FakeAtlas) -> None:
    error = raises(ProviderError, request(1, size="1000x1000"))
    assert "HTTP 422" in error.message and "size `1000*1000` is not supported" in error.message
    assert fake_atlas.count("submit") == 1


# --- credentials and balance ---------------------------------------------------------------------


def test_wrong_key_is_an_auth_error_saying_what_to_do(fake_atlas: FakeAtlas,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLASCLOUD_API_KEY", "sk-wrong-123")
    error = raises(AuthError, request(1))
    assert "HTTP 401" in error.message and "ATLASCLOUD_API_KEY" in error.message
    assert "sk-wrong-123" not in error.message
    assert fake_atlas.count("submit") == 1


@pytest.mark.parametrize("fault", [
    Fault(status=402),
    Fault(code=402, message="payment required"),
    Fault(status=400, message="Insufficient balance"),
], ids=["http-402", "code-in-200", "message"])
def test_balance_problems_are_auth_errors_asking_to_top_up(fake_atlas: FakeAtlas, fault: Fault) -> None:
    fake_atlas.script("submit", fault)
    error = raises(AuthError, request(1))
    assert "balance" in error.message and "top up" in error.message
    assert fake_atlas.count("submit") == 1


def test_missing_key_is_a_user_error_before_any_request(fake_atlas: FakeAtlas,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATLASCLOUD_API_KEY")
    with pytest.raises(UserError, match="ATLASCLOUD_API_KEY is not set"):
        AtlasCloudProvider(config(), state_dir=STATE)
    assert fake_atlas.calls == []


def test_the_key_is_redacted_from_an_error_the_service_echoes(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("submit", Fault(status=400, message="bad header Bearer fake-key"))
    error = raises(ProviderError, request(1))
    assert "fake-key" not in error.message and "[redacted]" in error.message


# --- polling ------------------------------------------------------------------------------------------


def test_polling_learns_how_long_sets_take(fake_atlas: FakeAtlas) -> None:
    """After sets have finished, a new set sleeps through most of the expected time and
    costs a few polls; a size not seen yet borrows the time of a smaller one."""
    fake_atlas.latency = 0.4
    polls: list[int] = []

    async def main() -> None:
        provider = AtlasCloudProvider(config(poll_interval=0.01), state_dir=STATE)
        try:
            for frames in (2, 2, 2, 3):
                before = fake_atlas.count("poll")
                job = request(frames)
                result = await provider.wait(await provider.submit(job), job)
                assert sorted(result.images) == list(range(frames))
                polls.append(fake_atlas.count("poll") - before)
        finally:
            await provider.aclose()

    anyio.run(main)
    assert polls[0] >= 6  # nothing known yet: 10 ms, then growing to 50 ms, for 0.4 s
    assert all(n <= 3 for n in polls[1:]), polls  # the first poll one 5% step before the expected time


def test_a_new_set_is_first_polled_one_interval_after_its_submit(fake_atlas: FakeAtlas) -> None:
    # no set is done the moment it is submitted: a poll then is a request for nothing
    fake_atlas.latency = 0.3

    async def main() -> None:
        provider = AtlasCloudProvider(config(poll_interval=0.2), state_dir=STATE)
        try:
            job = request(2)
            await provider.wait(await provider.submit(job), job)
        finally:
            await provider.aclose()

    anyio.run(main)
    submit = next(call for call in fake_atlas.calls if call.kind == "submit")
    polls = [call for call in fake_atlas.calls if call.kind == "poll"]
    assert polls[0].at - submit.answered >= 0.19  # one interval (less the clock's grain)
    assert len(polls) == 2  # at 0.2 s (running) and 0.5 s (done)


@pytest.mark.parametrize("fault", [
    Fault(status=503), Fault(status=500), Fault(status=429, retry_after=0), Fault(drop=True),
    Fault(body="{not json"), Fault(status=502, body="<html><h1>502 Bad Gateway</h1></html>"),
    Fault(delay=0.6),
], ids=["503", "500", "429", "dropped", "malformed", "html", "read-timeout"])
def test_poll_faults_are_retried_and_the_set_still_arrives(fake_atlas: FakeAtlas, fault: Fault) -> None:
    fake_atlas.latency = 0.1
    fake_atlas.script("poll", fault, fault)
    assert is_png(generate(request(2), request_timeout=0.5), range(2))
    assert fake_atlas.count("submit") == 1


def test_404_right_after_submit_is_tolerated(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("poll", Fault(status=404), Fault(status=404))
    assert is_png(generate(request(2)), range(2))
    assert fake_atlas.count("poll", 404) == 2 and fake_atlas.count("submit") == 1


def test_a_prediction_unknown_past_the_grace_period_is_lost(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("poll", *[Fault(status=404)] * 100)
    error = raises(JobLost, request(1), not_found_grace=0.2)
    assert "does not know prediction" in error.message


def test_poll_timeout_names_the_prediction_and_keeps_it_collectable(fake_atlas: FakeAtlas) -> None:
    fake_atlas.latency = 30
    error = raises(ProviderError, request(1), poll_timeout=0.3)
    assert fake_atlas.accepted[0].id in error.message and "run `storyboard apply` again" in error.message
    assert error.retryable


def test_poll_gives_up_at_the_retry_deadline_and_is_retryable(fake_atlas: FakeAtlas) -> None:
    fake_atlas.rates["poll"] = [(1.0, Fault(status=503))]
    error = raises(ProviderError, request(1), retry_deadline=0.1)
    assert "HTTP 503" in error.message and error.retryable


# --- what a finished prediction holds ----------------------------------------------------------------


@pytest.mark.parametrize("error", ["GPU out of memory", {"message": "content rejected", "code": 17}])
def test_failed_prediction_fails_its_frames_with_the_service_reason(fake_atlas: FakeAtlas,
                                                                    error: Any) -> None:
    fake_atlas.outcomes(Outcome(error=error))
    result = generate(request(3))
    assert result.images == {} and sorted(result.failed) == [0, 1, 2]
    words = error if isinstance(error, str) else error["message"]
    assert all(words in reason for reason in result.failed.values())


def test_short_set_keeps_what_came_and_leaves_the_rest_to_ask_again(fake_atlas: FakeAtlas) -> None:
    fake_atlas.outcomes(Outcome(images=2))
    result = generate(request(4))
    assert is_png(result, range(2)) and result.failed == {}


def test_nsfw_blocked_set_fails_those_frames_with_that_reason(fake_atlas: FakeAtlas) -> None:
    fake_atlas.outcomes(Outcome(nsfw=True))
    result = generate(request(2))
    assert result.images == {} and all("content filter" in r for r in result.failed.values())


def test_expired_output_url_is_fetched_again_from_a_fresh_poll(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("download", Fault(status=404))
    assert is_png(generate(request(1)), range(1))
    assert fake_atlas.count("download") == 2 and fake_atlas.count("submit") == 1


def test_output_that_stays_expired_fails_only_that_frame(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("download", Fault(status=403), Fault(status=410))
    result = generate(request(1))
    assert result.images == {} and "expired" in result.failed[0]
    assert fake_atlas.count("submit") == 1


@pytest.mark.parametrize("fault, words", [
    (Fault(truncate=True), "broke off"),
    (Fault(body="<html>gateway</html>"), "not an image"),
], ids=["truncated", "not-an-image"])
def test_bad_download_is_retried_then_fails_the_frame(fake_atlas: FakeAtlas, fault: Fault,
                                                       words: str) -> None:
    fake_atlas.script("download", fault)
    assert is_png(generate(request(1)), range(1))  # once: the retry gets the image
    fake_atlas.rates["download"] = [(1.0, fault)]
    result = generate(request(1), retry_deadline=0.1)
    assert result.images == {} and words in result.failed[0]
    assert fake_atlas.count("submit") == 2


def test_server_records_in_flight_predictions(fake_atlas: FakeAtlas) -> None:
    fake_atlas.latency = 0.3

    async def main() -> None:
        provider = AtlasCloudProvider(config(), state_dir=STATE)
        try:
            async def one(job: ImageRequest) -> None:
                await provider.wait(await provider.submit(job), job)

            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(one, request(1))
        finally:
            await provider.aclose()

    anyio.run(main)
    assert fake_atlas.max_in_flight == 3


def test_base64_outputs_setting_asks_for_images_inline(fake_atlas: FakeAtlas) -> None:
    result = generate(request(2), base64_outputs=True)
    assert is_png(result, range(2))
    body = next(c.body for c in fake_atlas.calls if c.kind == "submit")
    assert body["enable_base64_output"] is True and fake_atlas.count("download") == 0


def test_any_2xx_submit_answer_with_a_prediction_is_accepted(fake_atlas: FakeAtlas) -> None:
    fake_atlas.script("submit", Fault(status=202, accept=True))
    assert is_png(generate(request(2)), range(2))
    assert fake_atlas.count("submit") == 1 and len(fake_atlas.accepted) == 1


def test_a_base_url_from_the_environment_that_is_no_url_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLASCLOUD_API_KEY", "k")
    monkeypatch.setenv("ATLASCLOUD_BASE_URL", "api.atlascloud.ai")
    with pytest.raises(UserError, match=re.escape("base URL `api.atlascloud.ai` is not an http")) as caught:
        AtlasCloudProvider(config(), state_dir=STATE)
    assert "ATLASCLOUD_BASE_URL" in (caught.value.hint or "")
