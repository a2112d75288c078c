"""The floor of apply's CPU per frame on this machine, measured against the same fake server.

Any client must, per prediction, submit once and poll at least once, decode what comes
back and, per frame, download the image (URL outputs) and keep it durably before the
version links it. This does exactly that and nothing else: blocking sockets, one
hand-written HTTP/1.1 keep-alive connection, json + base64 from the standard library,
and for each frame a temp file written, fsynced, renamed, hard-linked and unlinked.
bench/apply_throughput.py sets it beside storyboard's own CPU per frame.

The same exchanges are also measured through httpx.AsyncClient on anyio, the HTTP stack
storyboard is built on: the floor for any client using it, whatever else it does.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

from storyboard.providers.atlascloud import POLL_PATH, SUBMIT_PATH

SAMPLES = 200


@dataclass(frozen=True)
class Floor:
    """CPU milliseconds of each unavoidable step."""

    exchange_ms: dict[str, float]  # a poll of a finished 6-image set and its decoding, by output mode
    download_ms: float  # one image downloaded (URL outputs)
    file_ms: float  # one image kept durably, linked into a version, its staging name removed
    httpx_exchange_ms: dict[str, float]  # the same poll through httpx.AsyncClient
    httpx_download_ms: float

    def per_frame(self, mode: str, predictions: int, frames: int, uploads: int, stack: str = "raw") -> float:
        """The least CPU per frame a client spends (1 submit and 1 poll per prediction) with
        hand-written HTTP ("raw") or through httpx ("httpx")."""
        exchange = self.exchange_ms if stack == "raw" else self.httpx_exchange_ms
        download = self.download_ms if stack == "raw" else self.httpx_download_ms
        exchanges = (2 * predictions + uploads) * exchange[mode]
        downloads = frames * download if mode == "urls" else 0.0
        return (exchanges + downloads) / frames + self.file_ms


class _Connection:
    """The least an HTTP/1.1 client can do: write the request, read the answer by Content-Length."""

    def __init__(self, url: str, key: str) -> None:
        parts = urlsplit(url)
        self.host = parts.netloc
        self.key = key
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def get(self, path: str) -> bytes:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                          f"Authorization: Bearer {self.key}\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body


def measure_floor(url: str, key: str) -> Floor:
    """Measure each part of the floor against the fake at `url` (already running)."""
    connection = _Connection(url, key)
    exchange: dict[str, float] = {}
    polls: dict[str, str] = {}
    for mode in ("urls", "base64"):
        polls[mode], outputs = _finished_set(connection, url, key, 6, mode == "base64")
        started = time.process_time()
        for _ in range(SAMPLES):
            _decode(json.loads(connection.get(polls[mode])))
        exchange[mode] = (time.process_time() - started) / SAMPLES * 1000
    image = urlsplit(outputs[0]).path
    started = time.process_time()
    for _ in range(SAMPLES):
        connection.get(image)
    download = (time.process_time() - started) / SAMPLES * 1000
    connection.sock.close()
    httpx_exchange, httpx_download = anyio.run(_through_httpx, url, key, polls, image)
    return Floor(exchange, download, _file_cost() * 1000, httpx_exchange, httpx_download)


def _decode(answer: dict[str, Any]) -> None:
    for item in answer["data"]["outputs"]:
        if not item.startswith("http"):
            base64.b64decode(item.split(",")[-1])


async def _through_httpx(url: str, key: str, polls: dict[str, str],
                         image: str) -> tuple[dict[str, float], float]:
    """CPU ms of the same poll (by mode) and download through one httpx.AsyncClient."""
    import httpx

    exchange: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        await client.get(image)  # the connection is open before timing, as with the raw socket
        for mode, poll in polls.items():
            started = time.process_time()
            for _ in range(SAMPLES):
                _decode((await client.get(poll)).json())
            exchange[mode] = (time.process_time() - started) / SAMPLES * 1000
        started = time.process_time()
        for _ in range(SAMPLES):
            (await client.get(image)).read()
        download = (time.process_time() - started) / SAMPLES * 1000
    return exchange, download


def _finished_set(connection: _Connection, url: str, key: str, images: int,
                  inline: bool) -> tuple[str, list[str]]:
    """Submit a set and wait for it; its poll path and outputs (base64 when `inline`)."""
    body = {"model": "bytedance/seedream-v4.5/sequential", "prompt": "floor", "size": "2848*1600",
            "max_images": images, "enable_base64_output": inline}
    request = urllib.request.Request(url + SUBMIT_PATH, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
        poll = POLL_PATH.format(id=json.load(response)["data"]["id"])
    while True:
        outputs: list[str] = json.loads(connection.get(poll))["data"]["outputs"]
        if outputs:
            return poll, outputs
        time.sleep(0.05)


def _file_cost(count: int = SAMPLES) -> float:
    """CPU to keep one small image durably and link it into a version folder."""
    data = os.urandom(600)
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as folder:
        staging, version = Path(folder, "staging"), Path(folder, "version")
        staging.mkdir()
        version.mkdir()
        started = time.process_time()
        for number in range(count):
            temp, final = staging / f"{number}.tmp", staging / f"{number}.png"
            with temp.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            temp.replace(final)
            os.link(final, version / final.name)
            final.unlink()
        cost = (time.process_time() - started) / count
        shutil.rmtree(version)
    return cost
