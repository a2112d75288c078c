"""Running the fake Atlas Cloud app: in a background thread for tests, or as a command.

    with serve(FakeAtlas(latency=0.2)) as fake:
        os.environ["ATLASCLOUD_BASE_URL"] = fake.base_url
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from storyboard.testing.fake_atlas import FakeAtlas, Fault

HOST = "127.0.0.1"


@contextlib.contextmanager
def serve(fake: FakeAtlas | None = None, *, port: int = 0) -> Iterator[FakeAtlas]:
    """Serve `fake` on 127.0.0.1 (a free port unless given) until the block ends."""
    fake = fake or FakeAtlas()
    # IPPROTO_TCP explicitly: asyncio only turns Nagle off (TCP_NODELAY) on accepted sockets
    # whose proto is IPPROTO_TCP, and without it every keep-alive answer waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    fake.base_url = f"http://{HOST}:{sock.getsockname()[1]}"
    config = uvicorn.Config(fake, log_level="critical", lifespan="off", access_log=False,
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="fake-atlas")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake Atlas Cloud server did not start")
        time.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="storyboard-fake-atlas",
        description="A fake Atlas Cloud image API on 127.0.0.1 for offline rehearsals.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--key", default="fake-key", help="the API key it accepts (default: fake-key)")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds each prediction runs")
    parser.add_argument("--rate-limit", type=float, default=0.0, metavar="FRACTION",
                        help="answer this fraction of submits with 429 and Retry-After: 1")
    parser.add_argument("--retry-after", type=float, default=1.0, metavar="SECONDS",
                        help="the Retry-After of those 429 answers (default 1)")
    parser.add_argument("--server-errors", type=float, default=0.0, metavar="FRACTION",
                        help="answer this fraction of polls with 503")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault dice")
    parser.add_argument("--flat", action="store_true", help="answer without the code/data wrapper")
    parser.add_argument("--base64", action="store_true", help="return outputs as base64, not URLs")
    args = parser.parse_args(argv)
    fake = FakeAtlas(api_key=args.key, latency=args.latency, flat=args.flat, base64_outputs=args.base64,
                     seed=args.seed)
    if args.rate_limit:
        fake.rates["submit"] = [(args.rate_limit, Fault(status=429, retry_after=args.retry_after))]
    if args.server_errors:
        fake.rates["poll"] = [(args.server_errors, Fault(status=503))]
    # Ctrl-C and SIGTERM stop it, even when started by a shell that ignores SIGINT in
    # background jobs (Python then installs no KeyboardInterrupt handler by itself)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with serve(fake, port=args.port) as running:
        print(f"fake Atlas Cloud listening on {running.base_url}\n"
              f"  export ATLASCLOUD_BASE_URL={running.base_url} ATLASCLOUD_API_KEY={args.key}\n"
              f"  counts: GET {running.base_url}/_fake/stats (POST resets them)\n"
              "Ctrl-C stops it.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
