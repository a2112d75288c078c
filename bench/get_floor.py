"""The floor of `storyboard pull`: a plain concurrent GET loop through obstore, nothing else.

    python -m bench.get_floor ENDPOINT BUCKET/PREFIX KEYS_FILE [--concurrency 16] [--write DIR]
                              [--threads]

GETs every key listed in KEYS_FILE (one per line, below PREFIX), `--concurrency` at a time,
with the client storyboard's backend uses (obstore's S3 store): its asyncio API, or with
`--threads` its blocking API on a pool of threads. With `--write DIR` each body is also
written to a file there, as a pull must at least do. Prints the bytes read.

It leaves with os._exit: obstore's asyncio API can finish a future from a runtime thread
while Python finalizes, which aborts the process on Python 3.11 (see Backend in
storyboard/state/backend.py, which uses the blocking API for that reason).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import obstore
from obstore.store import S3Store

from storyboard.machine import tune_gc


async def get_all(store: S3Store, keys: list[str], concurrency: int, write: Path | None) -> int:
    pending = iter(keys)
    total = 0

    async def worker() -> None:
        nonlocal total
        for key in pending:
            result = await obstore.get_async(store, key)
            data = bytes(await result.bytes_async())
            total += len(data)
            if write is not None:
                (write / key.replace("/", "_")).write_bytes(data)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total


def get_all_threads(store: S3Store, keys: list[str], concurrency: int, write: Path | None) -> int:
    def one(key: str) -> int:
        data = bytes(obstore.get(store, key).bytes())
        if write is not None:
            (write / key.replace("/", "_")).write_bytes(data)
        return len(data)

    with ThreadPoolExecutor(concurrency) as pool:
        return sum(pool.map(one, keys))


def main() -> None:
    tune_gc()  # the collector as storyboard's command line sets it: floors and client alike
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("endpoint")
    parser.add_argument("location", help="BUCKET/PREFIX")
    parser.add_argument("keys", type=Path)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--threads", action="store_true")
    args = parser.parse_args()
    bucket, _, prefix = args.location.partition("/")
    store = S3Store(bucket, prefix=prefix, endpoint=args.endpoint, region="us-east-1",
                    client_options={"allow_http": True},
                    access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                    secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])
    keys = args.keys.read_text().split()
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
    if args.threads:
        print(get_all_threads(store, keys, args.concurrency, args.write))
    else:
        print(asyncio.run(get_all(store, keys, args.concurrency, args.write)))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
