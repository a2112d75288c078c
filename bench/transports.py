"""What a lighter HTTP stack would buy apply: CPU per poll and per download, layer by layer.

    python -m bench.transports [--samples 400] [--submits 175 --polls 363 --downloads 999]

Against the fake Atlas Cloud (its own process, no latency), one finished six-image set is
polled and one of its images downloaded `samples` times over one kept-alive connection
through each layer of the stack storyboard uses, from the top down:

    as apply uses httpx        8 pooled connections held open with storyboard's idle check,
                               polls one at a time, downloads six at once (one set), streamed
    httpx.AsyncClient.stream   how apply downloads (a size cap while reading), one connection
    httpx.AsyncClient.get      how apply polls and submits
    httpx transport            the client's own layer removed (no redirects, auth, cookies, proxies)
    httpcore pool              what the transport wraps
    h11 on an anyio stream     the HTTP/1.1 state machine alone, with no pool: a hand-written client
    blocking socket            hand-written HTTP/1.1 by Content-Length: the floor of any client

Then, for the exchanges of the 1,000-frame sequential run of bench/apply_throughput (its
default counts: 175 submits, 363 polls, 999 downloads), the CPU each stack would spend per
frame, and what it would save against httpx as apply uses it. Submits are counted at the
price of a poll. Only CPU is compared; timings move between runs, the ratios much less.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import anyio
import h11
import httpcore
import httpx

from bench.apply_floor import _Connection, _finished_set
from bench.apply_throughput import KEY, fake_server
from storyboard.machine import tune_gc

Get = Callable[[str], Awaitable[bytes]]


async def _timed(get: Get, path: str, samples: int) -> float:
    """CPU ms per `get(path)`, after one untimed call that opens the connection."""
    await get(path)
    started = time.process_time()
    for _ in range(samples):
        await get(path)
    return (time.process_time() - started) / samples * 1000


async def as_apply(url: str, paths: list[str], samples: int) -> list[float]:
    """httpx configured as the atlascloud provider configures it (at parallelism 4 and above)."""
    from storyboard.providers import http_pool
    from storyboard.providers.atlascloud import MAX_CONNECTIONS

    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    assert http_pool.install(transport)
    slots = anyio.CapacityLimiter(MAX_CONNECTIONS)
    async with httpx.AsyncClient(transport=transport, headers={"Authorization": f"Bearer {KEY}"}) as client:
        async def stream(path: str) -> None:
            async with slots, client.stream("GET", url + path) as response:
                b"".join([chunk async for chunk in response.aiter_bytes()])

        async def together(path: str, width: int) -> None:
            async with anyio.create_task_group() as group:
                for _ in range(width):
                    group.start_soon(stream, path)

        await together(paths[1], MAX_CONNECTIONS)  # every pooled connection open
        started = time.process_time()
        for _ in range(samples):
            async with slots:
                (await client.get(url + paths[0])).read()
        poll = (time.process_time() - started) / samples * 1000
        started = time.process_time()
        for _ in range(samples // 6):
            await together(paths[1], 6)
        download = (time.process_time() - started) / (samples // 6 * 6) * 1000
        return [poll, download]


async def through_httpx_stream(url: str, paths: list[str], samples: int) -> list[float]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as client:
        async def get(path: str) -> bytes:
            async with client.stream("GET", url + path) as response:
                return b"".join([chunk async for chunk in response.aiter_bytes()])
        return [await _timed(get, path, samples) for path in paths]


async def through_httpx_get(url: str, paths: list[str], samples: int) -> list[float]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as client:
        async def get(path: str) -> bytes:
            return (await client.get(url + path)).content
        return [await _timed(get, path, samples) for path in paths]


async def through_transport(url: str, paths: list[str], samples: int) -> list[float]:
    async with httpx.AsyncHTTPTransport() as transport:
        async def get(path: str) -> bytes:
            request = httpx.Request("GET", url + path, headers={"Authorization": f"Bearer {KEY}"})
            response = await transport.handle_async_request(request)
            try:
                return await response.aread()
            finally:
                await response.aclose()
        return [await _timed(get, path, samples) for path in paths]


async def through_httpcore(url: str, paths: list[str], samples: int) -> list[float]:
    headers = [(b"Authorization", f"Bearer {KEY}".encode())]
    async with httpcore.AsyncConnectionPool() as pool:
        async def get(path: str) -> bytes:
            return (await pool.request("GET", url + path, headers=headers)).content
        return [await _timed(get, path, samples) for path in paths]


async def through_h11(url: str, paths: list[str], samples: int) -> list[float]:
    parts = urlsplit(url)
    stream = await anyio.connect_tcp(parts.hostname or "127.0.0.1", parts.port or 80)
    connection = h11.Connection(h11.CLIENT)

    async def get(path: str) -> bytes:
        headers = [("Host", parts.netloc), ("Authorization", f"Bearer {KEY}")]
        await stream.send(connection.send(h11.Request(method="GET", target=path, headers=headers))
                          + (connection.send(h11.EndOfMessage()) or b""))
        body = []
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await stream.receive(65536))
            elif isinstance(event, h11.Data):
                body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                connection.start_next_cycle()
                return b"".join(body)

    async with stream:
        return [await _timed(get, path, samples) for path in paths]


def through_socket(url: str, paths: list[str], samples: int) -> list[float]:
    connection = _Connection(url, KEY)
    costs = []
    for path in paths:
        connection.get(path)
        started = time.process_time()
        for _ in range(samples):
            connection.get(path)
        costs.append((time.process_time() - started) / samples * 1000)
    connection.sock.close()
    return costs


STACKS: list[tuple[str, Callable[[str, list[str], int], Awaitable[list[float]]] | None]] = [
    ("as apply uses httpx", as_apply),
    ("httpx.AsyncClient.stream", through_httpx_stream),
    ("httpx.AsyncClient.get", through_httpx_get),
    ("httpx transport", through_transport),
    ("httpcore pool", through_httpcore),
    ("h11 on an anyio stream", through_h11),
    ("blocking socket (floor)", None),
]


def main() -> None:
    tune_gc()  # the collector as storyboard's command line sets it: floors and client alike
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--submits", type=int, default=175)
    parser.add_argument("--polls", type=int, default=363)
    parser.add_argument("--downloads", type=int, default=999)
    args = parser.parse_args()
    with fake_server(0.0, False) as fake:
        poll, outputs = _finished_set(_Connection(fake.url, KEY), fake.url, KEY, 6, False)
        paths = [poll, urlsplit(outputs[0]).path]
        costs: dict[str, list[float]] = {}
        for name, through in STACKS:
            if through is None:
                costs[name] = through_socket(fake.url, paths, args.samples)
            else:
                costs[name] = anyio.run(through, fake.url, paths, args.samples)
    exchanges = args.submits + args.polls
    frames = args.downloads
    poll_now, download_now = costs["as apply uses httpx"]
    apply_now = (exchanges * poll_now + frames * download_now) / frames
    print(f"CPU ms per exchange, {args.samples} samples each; per frame for {args.submits} submits, "
          f"{args.polls} polls and {frames} downloads\n")
    print("| stack | one poll | one download | HTTP CPU ms / frame | saved / frame against apply's |")
    print("|---|---|---|---|---|")
    for name, (poll_ms, download_ms) in costs.items():
        per_frame = (exchanges * poll_ms + frames * download_ms) / frames
        print(f"| {name} | {poll_ms:.3f} | {download_ms:.3f} | {per_frame:.2f} | "
              f"{apply_now - per_frame:+.2f} |")


if __name__ == "__main__":
    main()
