"""The fake Atlas Cloud server is held to the contract too: it refuses what the service refuses."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest
from conftest import png_bytes

from storyboard.testing.fake_atlas import EDIT_SEQUENTIAL, SEQUENTIAL, FakeAtlas

SUBMIT = "/api/v1/model/generateImage"
GOOD = {"model": SEQUENTIAL, "prompt": "two images of a harbour", "size": "2048*2048", "max_images": 2}
REFS = [f"https://example.invalid/{n}.png" for n in range(11)]


def client(fake: FakeAtlas, key: str = "fake-key") -> httpx.Client:
    return httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5)


@pytest.mark.parametrize("change, words", [
    ({"model": "bytedance/seedream-v9"}, "model"),
    ({"prompt": ""}, "prompt is required"),
    ({"size": "2048x2048"}, "size"),
    ({"size": "1000*1000"}, "size"),
    ({"max_images": 0}, "max_images"),
    ({"max_images": 16}, "max_images"),
    ({"max_images": "3"}, "max_images"),
    ({"images": REFS[:1]}, "not accepted"),
    ({"model": EDIT_SEQUENTIAL}, "1 to 10"),
    ({"model": EDIT_SEQUENTIAL, "images": REFS}, "1 to 10"),
    ({"model": EDIT_SEQUENTIAL, "images": REFS[:6], "max_images": 10}, "must not exceed 15"),
    ({"enable_base64_output": "yes"}, "boolean"),
])
def test_bodies_the_service_refuses_are_refused(fake_atlas: FakeAtlas, change: dict[str, Any],
                                                words: str) -> None:
    with client(fake_atlas) as http:
        response = http.post(SUBMIT, json={**GOOD, **change})
    assert response.status_code in (400, 422)
    assert words in response.json()["msg"]
    assert fake_atlas.predictions == {}


def test_a_good_body_makes_a_prediction_that_completes_with_real_pngs(fake_atlas: FakeAtlas) -> None:
    with client(fake_atlas) as http:
        submitted = http.post(SUBMIT, json=GOOD).json()
        assert submitted["code"] == 200 and submitted["data"]["status"] == "processing"
        polled = http.get(f"/api/v1/model/prediction/{submitted['data']['id']}").json()["data"]
        assert polled["status"] == "completed" and len(polled["outputs"]) == 2
        image = http.get(polled["outputs"][0])
    assert image.content.startswith(b"\x89PNG")
    assert fake_atlas.count("submit") == 1 and fake_atlas.count("download") == 1


def test_edit_sequential_accepts_uploaded_references(fake_atlas: FakeAtlas) -> None:
    reference = png_bytes()
    with client(fake_atlas) as http:
        uploaded = http.post("/api/v1/model/uploadMedia", files={"file": ("r.png", reference, "image/png")})
        url = uploaded.json()["data"]["download_url"]
        assert http.get(url).content == reference
        answer = http.post(SUBMIT, json={**GOOD, "model": EDIT_SEQUENTIAL, "images": [url]})
    assert answer.status_code == 200


def test_wrong_or_missing_key_is_401(fake_atlas: FakeAtlas) -> None:
    with client(fake_atlas, key="nope") as http:
        assert http.post(SUBMIT, json=GOOD).status_code == 401
    with httpx.Client(base_url=fake_atlas.base_url) as http:
        assert http.get("/api/v1/model/prediction/x").status_code == 401
    assert fake_atlas.predictions == {} and not any(c.authorized for c in fake_atlas.calls)


def test_unknown_prediction_is_404(fake_atlas: FakeAtlas) -> None:
    with client(fake_atlas) as http:
        assert http.get("/api/v1/model/prediction/nope").status_code == 404


def test_the_fake_runs_as_a_command_users_can_point_storyboard_at() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "storyboard.testing.fake_atlas", "--port", str(port), "--latency", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        models = httpx.get(f"http://127.0.0.1:{port}/api/v1/models", timeout=5).json()["data"]["models"]
        assert {m["id"] for m in models} == {SEQUENTIAL, EDIT_SEQUENTIAL}
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert process.returncode == 0
