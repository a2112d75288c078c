"""An HTTP/1.1 proxy on loopback that counts what passes and injects faults, for testing a client
against a real server (here: an S3 server) when the network misbehaves.

    with FaultProxy("127.0.0.1", 9000) as proxy:     # a running proxy in front of 127.0.0.1:9000
        proxy.url                                     # http://127.0.0.1:<port>
        proxy.fail(lambda request: request.method == "PUT", status=500)   # answer 500 to PUTs
        proxy.fail(matches, reset=True)               # close the connection instead of answering
        proxy.fail(matches, delay=2.0)                # answer, 2 s late
        proxy.fail(matches, lose_answer=True)         # forward it, then reset before the answer
        proxy.requests                                # every request: method, path, bytes in and out

Each request is forwarded on its own upstream connection and answered with
`Connection: close`, so faults and counts are per request. Only loopback is ever used.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class Request:
    method: str
    path: str
    sent: int = 0  # bytes of the request body
    received: int = 0  # bytes of the response body
    status: int = 0  # 0: no answer (reset)


@dataclass
class _Rule:
    matches: Callable[[Request], bool]
    status: int | None = None
    reset: bool = False
    delay: float = 0.0
    lose_answer: bool = False  # the server does the work; the client never hears of it
    times: int | None = None  # None: every match


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    requests: list[Request] = field(default_factory=list)
    _rules: list[_Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def fail(self, matches: Callable[[Request], bool], *, status: int | None = None, reset: bool = False,
             delay: float = 0.0, lose_answer: bool = False, times: int | None = None) -> None:
        """Requests that `matches` get this fault (the `times` first ones, or every one)."""
        with self._lock:
            self._rules.append(_Rule(matches, status, reset, delay, lose_answer, times))

    def heal(self) -> None:
        with self._lock:
            self._rules.clear()

    def count(self, method: str | None = None, prefix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if (method is None or r.method == method)
                       and r.path.split("?")[0].startswith(prefix))

    def bytes_sent(self, method: str = "PUT") -> int:
        with self._lock:
            return sum(r.sent for r in self.requests if r.method == method)

    def __enter__(self) -> FaultProxy:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((HOST, 0))
        self.port = sock.getsockname()[1]
        started = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, sock=sock))
            started.set()
            try:
                loop.run_forever()
            finally:
                self._server.close()
                loop.run_until_complete(self._server.wait_closed())
                loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="fault-proxy")
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _rule_for(self, request: Request) -> _Rule | None:
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.matches(request) and (rule.times is None or rule.times > 0):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, OSError):
            head = await reader.readuntil(b"\r\n\r\n")
            method, path = head.split(b" ", 2)[:2]
            length = _content_length(head)
            body = await reader.readexactly(length) if length else b""
            request = Request(method.decode(), path.decode(), len(body))
            rule = self._rule_for(request)
            if rule is not None and rule.delay:
                await asyncio.sleep(rule.delay)
            if rule is not None and rule.reset:
                writer.transport.abort()  # the client sees its connection reset
                return
            if rule is not None and rule.status:
                request.status = rule.status
                writer.write(f"HTTP/1.1 {rule.status} Injected\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n".encode())
            else:
                answer = await self._forward(head, body, request)
                if rule is not None and rule.lose_answer:
                    writer.transport.abort()
                    return
                writer.write(answer)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    async def _forward(self, head: bytes, body: bytes, request: Request) -> bytes:
        """The upstream server's answer to the request, counted."""
        upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        upstream_reader, upstream_writer = upstream
        upstream_writer.write(_with_close(head) + body)
        await upstream_writer.drain()
        response_head = await upstream_reader.readuntil(b"\r\n\r\n")
        request.status = int(response_head.split(b" ", 2)[1])
        length = _content_length(response_head)
        no_body = request.method == "HEAD" or request.status in (204, 304)
        response_body = b"" if no_body else (await upstream_reader.readexactly(length) if length is not None
                                             else await upstream_reader.read())
        request.received = len(response_body)
        upstream_writer.close()
        return _with_close(response_head) + response_body


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def _with_close(head: bytes) -> bytes:
    """The head with `Connection: close`: one request per connection, each counted and faulted alone."""
    lines = [line for line in head.rstrip(b"\r\n").split(b"\r\n")
             if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


@contextlib.contextmanager
def proxy(upstream_host: str, upstream_port: int) -> Iterator[FaultProxy]:
    with FaultProxy(upstream_host, upstream_port) as running:
        yield running
