"""A cheaper "has the server closed this idle connection?" for httpx's connection pool.

httpcore asks that of every pooled connection each time it places a request or gets
one back: at parallelism 64 each connection is asked hundreds of times a second. Its
anyio streams answer by building a dict of socket attributes, with a getpeername()
system call, then poll the socket: about 1 ms of CPU per request with 8 connections, a
quarter of `apply`'s CPU at high parallelism (see bench/RESULTS.md). Here a connection
keeps its socket from the start, polls it as httpcore does, and trusts a "still open"
answer for RECHECK_AFTER seconds, but only while it carried a request in the last
IN_USE seconds. Servers close connections after seconds of keep-alive idleness, so a
connection that busy cannot be closed for idleness between the poll and its next use;
an idle one is polled every time, as before.

httpx has no public way to choose the pool's network backend, so `install` wraps the
one the transport's pool has and does nothing if that pool looks different (a newer
httpx): then only the speed-up is lost. A test fails if it stops being installed.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

RECHECK_AFTER = 0.025  # seconds
IN_USE = 1.0  # seconds; far below any server's keep-alive timeout (uvicorn's is 5 s, nginx's 75 s)


def install(transport: httpx.AsyncHTTPTransport) -> bool:
    """Give `transport`'s pool the cheaper check; False if this httpx keeps its pool elsewhere."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.AsyncNetworkBackend):
        return False
    pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
    return True


def is_installed(transport: httpx.AsyncHTTPTransport) -> bool:
    return isinstance(getattr(getattr(transport, "_pool", None), "_network_backend", None), _Backend)


def readable(sock: socket.socket | None) -> bool:
    """True when the peer sent something or closed: an idle HTTP/1.1 connection is then dead."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = stream.get_extra_info("socket")
        self._open_at = float("-inf")  # when a poll last found it still open
        self._used_at = float("-inf")  # when it last read or wrote

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._stream.read(max_bytes, timeout)
        self._used_at = time.monotonic()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)
        self._used_at = time.monotonic()

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            now = time.monotonic()
            if now - self._open_at < RECHECK_AFTER and now - self._used_at < IN_USE:
                return False
            if readable(self._socket):
                return True
            self._open_at = now
            return False
        if info == "socket" and self._socket is not None:
            return self._socket
        return self._stream.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
