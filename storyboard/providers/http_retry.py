"""Retries, waits and checked downloads for the atlascloud provider (HTTP, no Atlas specifics).

    Retry        one attempt failed for a passing reason (raised inside an attempt)
    retrying()   runs an attempt again with jittered exponential backoff or Retry-After,
                 until a time budget is spent (not a count: a busy service may answer 429
                 for minutes, and every try of an unbilled request costs nothing)
    Expired      an output URL the service no longer serves
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import httpx

from storyboard.errors import ProviderError
from storyboard.images import image_complete, image_format, image_size
from storyboard.providers.base import GeneratedImage

log = logging.getLogger("storyboard.atlascloud")
T = TypeVar("T")

MAX_DOWNLOAD = 100 * 1024 * 1024
MAX_RETRY_AFTER = 120.0
RETRY_CAP = 30.0


class Retry(Exception):
    """One attempt failed for a passing reason; `after` overrides the backoff delay."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class Expired(Exception):
    """An output URL the service no longer serves (temporary URLs expire)."""


async def retrying(attempt: Callable[[], Awaitable[T]], deadline: float, base_backoff: float) -> T:
    """`attempt()`, again after each Retry it raises, while `deadline` seconds have not passed.

    The wait before a try is the Retry-After the service asked for, else jittered
    exponential backoff; a try that could only start after the deadline is not made.
    """
    started = time.monotonic()
    number = 0
    while True:
        try:
            return await attempt()
        except Retry as passing:
            delay = passing.after if passing.after is not None else backoff(base_backoff, number)
            number += 1
            spent = time.monotonic() - started
            if spent + delay > deadline:
                raise ProviderError(f"{passing.reason} (gave up after {number} tries in {spent:.1f} s; "
                                    f"retry_deadline is {deadline:g} s)", retryable=True) from None
            log.info("%s; retrying in %.2f s", passing.reason, delay)
            await anyio.sleep(delay)


def checked_image(data: bytes, what: str) -> GeneratedImage:
    kind = image_format(data)
    if kind is None:
        raise ProviderError(f"{what} is not an image ({len(data)} bytes)")
    if not image_complete(data, kind):
        raise ProviderError(f"{what} is cut off ({len(data)} bytes of {kind})")
    try:
        width, height = image_size(data)
    except (OSError, ValueError, SyntaxError):
        raise ProviderError(f"{what} is a damaged {kind}") from None
    return GeneratedImage(data, kind, width, height)


async def read_capped(response: httpx.Response, what: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_DOWNLOAD:
        raise ProviderError(f"{what} is {int(declared)} bytes, above the {MAX_DOWNLOAD} byte cap")
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > MAX_DOWNLOAD:
            raise ProviderError(f"{what} is larger than the {MAX_DOWNLOAD} byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def retry_for_status(status: int, headers: httpx.Headers, what: str, message: str = "") -> Retry:
    return Retry(f"{what}: HTTP {status}{words(message)}", retry_after(headers.get("retry-after")))


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff(base: float, attempt: int) -> float:
    """Exponential backoff with full jitter in its upper half."""
    ceiling: float = min(RETRY_CAP, base * 2.0**attempt)
    return ceiling * random.uniform(0.5, 1.0)


def words(message: str) -> str:
    return f": {message}" if message else ""
