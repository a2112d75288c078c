"""The cheaper idle-connection check still notices a server that closed a kept-alive connection."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from storyboard.project.model import ProviderConfig
from storyboard.providers import http_pool
from storyboard.providers.atlascloud import AtlasCloudProvider

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


@pytest.fixture
def closing_server() -> Iterator[tuple[str, list[int]]]:
    """Answers one request per connection with keep-alive, then closes it 50 ms later."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            connection.sendall(ANSWER)
            time.sleep(0.05)

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    listener.close()


def test_readable_is_true_once_the_peer_closes() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        assert not http_pool.readable(ours)
        theirs.close()
        assert http_pool.readable(ours)
    assert http_pool.readable(ours)  # closed here too: never reused


def two_requests(url: str, pause: float) -> list[int]:
    """Two GETs through a pool with the cheaper check, `pause` seconds apart; their statuses.

    A dead connection reused for the second would raise RemoteProtocolError.
    """

    async def main() -> list[int]:
        transport = httpx.AsyncHTTPTransport()
        assert http_pool.install(transport)
        async with httpx.AsyncClient(transport=transport) as client:
            first = await client.get(url)
            await anyio.sleep(pause)
            second = await client.get(url)
        return [first.status_code, second.status_code]

    return anyio.run(main)


def test_a_connection_the_server_closed_is_replaced_not_reused(closing_server: tuple[str, list[int]]) -> None:
    url, accepted = closing_server
    assert two_requests(url, 0.2) == [200, 200]  # the server closed it; the last check is stale
    assert len(accepted) == 2


def test_an_idle_connection_is_always_polled(closing_server: tuple[str, list[int]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """However long a "still open" answer is trusted, not for a connection idle past IN_USE."""
    url, accepted = closing_server
    monkeypatch.setattr(http_pool, "RECHECK_AFTER", 3600.0)
    monkeypatch.setattr(http_pool, "IN_USE", 0.1)
    assert two_requests(url, 0.3) == [200, 200]
    assert len(accepted) == 2


def test_the_atlas_client_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails when an httpx upgrade moves the pool: the speed-up would be silently gone."""
    monkeypatch.setenv("ATLASCLOUD_API_KEY", "test-key")
    provider = AtlasCloudProvider(ProviderConfig(name="atlascloud"), state_dir=Path(".storyboard"))
    assert http_pool.is_installed(provider._transport)
    anyio.run(provider.aclose)
