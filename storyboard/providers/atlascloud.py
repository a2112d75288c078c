"""The `atlascloud` provider: ByteDance Seedream 4.5 sequential on Atlas Cloud (ATLAS_API.md).

One httpx AsyncClient (one connection pool) serves every task of a run. Retries follow
the service's contract: a submit (which may be billed) is repeated only when the service
certainly did not take it — a 429, a 502/503/504 without a prediction id, or a
connection that failed before the request went out. After a sent submit lost its answer
the outcome is unknown, and the user is told so instead of paying twice. Polls, uploads
and downloads are repeated with jittered exponential backoff, honouring `Retry-After`.

The API key comes from ATLASCLOUD_API_KEY only. It is sent to the API host alone (never
to output URLs) and removed from every message that could show it.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import anyio
import httpx

from storyboard.errors import AuthError, JobLost, ProviderError, UserError
from storyboard.images import image_format
from storyboard.project.schema import load_schema
from storyboard.project.sizes import SEEDREAM_SIZES
from storyboard.providers import atlas_wire as wire
from storyboard.providers import http_pool
from storyboard.providers.base import PROTOCOL_VERSION, Capabilities, GeneratedImage, ImageRequest, JobResult
from storyboard.providers.http_retry import (
    Expired,
    Retry,
    checked_image,
    read_capped,
    retry_for_status,
    retrying,
    words,
)

if TYPE_CHECKING:
    from storyboard.project.model import ProviderConfig

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.atlascloud.ai"
KEY_VARIABLE = "ATLASCLOUD_API_KEY"
URL_VARIABLE = "ATLASCLOUD_BASE_URL"
SUBMIT_PATH = "/api/v1/model/generateImage"
POLL_PATH = "/api/v1/model/prediction/{id}"
UPLOAD_PATH = "/api/v1/model/uploadMedia"
PRICE_PER_IMAGE = 0.036
MAX_IMAGES = 15
MAX_REFERENCES = 10
MAX_CONNECTIONS = 8
FREE_FOR_CALLS = 2  # connections downloads always leave to submits, polls and uploads
GATEWAY_ERRORS = frozenset({502, 503, 504})
EXPIRED = frozenset({401, 403, 404, 410})
KEY_HINT = f"check {KEY_VARIABLE}: it must hold a valid Atlas Cloud API key"
BALANCE_HINT = "top up the Atlas Cloud balance, then run `storyboard apply` again"


@dataclass(frozen=True, slots=True)
class Settings:
    """`provider.options` of the atlascloud provider (schemas/provider-atlascloud.schema.json)."""

    base_url: str | None = None  # ATLASCLOUD_BASE_URL wins
    poll_timeout: float = 900.0
    poll_interval: float = 1.0
    request_timeout: float = 60.0
    retry_deadline: float = 300.0  # seconds a call that failed for a passing reason is tried again
    retry_backoff: float = 0.5
    not_found_grace: float = 30.0
    base64_outputs: bool = False

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> Settings:
        return cls(**{name: options[name] for name in cls.__dataclass_fields__ if name in options})


class AtlasCloudProvider:
    name = "atlascloud"
    protocol_version: ClassVar[int] = PROTOCOL_VERSION
    options_schema: ClassVar[Mapping[str, Any]] = load_schema("provider-atlascloud")

    def __init__(self, config: ProviderConfig, *, state_dir: Path) -> None:
        key = os.environ.get(KEY_VARIABLE, "").strip()
        if not key:
            raise UserError(f"{KEY_VARIABLE} is not set: the atlascloud provider needs an API key",
                            hint=f"export {KEY_VARIABLE}=… in the environment (keys are never read "
                                 "from project files); or use `--provider local` to rehearse offline")
        self.config = config
        self.capabilities = self.capabilities_for(config)
        self.settings = Settings.parse(config.options)
        self.base_url = _base_url(os.environ.get(URL_VARIABLE) or self.settings.base_url or DEFAULT_BASE_URL)
        self._key = key
        self._auth = {"Authorization": f"Bearer {key}"}
        # httpcore scans every open connection for each request it places, and churns when idle
        # connections are closed and reopened: a small pool, all kept alive, serves best.
        connections = self.connections = min(MAX_CONNECTIONS, config.parallelism + 4)
        timeout = self.settings.request_timeout
        self._transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections))
        http_pool.install(self._transport)
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            follow_redirects=True,
        )
        # at most as many calls as connections: httpcore's pool queue grows costly when long
        self._slots = anyio.CapacityLimiter(connections)
        # downloads of finished sets never hold every connection: the next submit and the polls
        # of running sets would wait behind them (the service idles meanwhile)
        self._download_slots = anyio.CapacityLimiter(connections - FREE_FOR_CALLS)
        self._uploads: dict[str, str] = {}  # reference sha256 -> URL, for this run
        self._uploaded_paths: dict[Path, str] = {}  # files read once per run
        self._upload_locks: dict[str, anyio.Lock] = {}
        self._submitted_at: dict[str, float] = {}
        self._durations: dict[int, list[float]] = {}  # images per set -> seconds from submit to done
        self._finished_at_submit: dict[str, wire.Prediction] = {}

    def __repr__(self) -> str:
        return f"AtlasCloudProvider(base_url={self.base_url!r})"

    @classmethod
    def capabilities_for(cls, config: ProviderConfig) -> Capabilities:
        price = PRICE_PER_IMAGE if config.price_per_image is None else config.price_per_image
        return Capabilities(max_images=MAX_IMAGES, max_references=MAX_REFERENCES, max_total=MAX_IMAGES,
                            sizes=SEEDREAM_SIZES, price_per_image=price)

    # --- the Provider protocol -------------------------------------------------

    async def submit(self, request: ImageRequest) -> str:
        body = request_body(request, await self._upload_all(request.references))
        if self.settings.base64_outputs:
            body.setdefault("enable_base64_output", True)
        answer = await self._call("POST", SUBMIT_PATH, json=body, billed=True)
        prediction = wire.parse_prediction(answer.payload or {})
        job_id = prediction.id
        if job_id is None:
            if prediction.state == "running":
                raise ProviderError("the service accepted the request but named no prediction id, "
                                    "so it cannot be collected; check the Atlas Cloud dashboard before "
                                    "running apply again")
            job_id = f"sync-{uuid.uuid4().hex[:16]}"
        if prediction.state != "running":
            self._finished_at_submit[job_id] = prediction
        self._submitted_at[job_id] = time.time()
        return job_id

    async def wait(self, job_id: str, request: ImageRequest, *, submitted_at: float | None = None,
                   on_finished: Callable[[], None] | None = None) -> JobResult:
        prediction = self._finished_at_submit.pop(job_id, None)
        if prediction is None:
            started = self._submitted_at.get(job_id) or submitted_at or time.time()
            prediction = await self._poll_until_finished(job_id, started, request.count)
        if on_finished is not None:
            on_finished()  # the outputs are downloaded while the next prediction runs
        if prediction.state == "failed":
            reason = f"the service failed the prediction: {self._redact(prediction.error)}"
            return JobResult(images={}, failed=dict.fromkeys(range(request.count), reason))
        return await self._deliver(job_id, request, prediction)

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- polling and delivery --------------------------------------------------

    async def _poll_until_finished(self, job_id: str, started: float, count: int) -> wire.Prediction:
        """Poll with backoff; once this run has seen sets of `count` finish, sleep through most
        of the expected time first, so a prediction costs a few polls instead of dozens."""
        settings = self.settings
        deadline = time.monotonic() + settings.poll_timeout
        interval, ceiling = settings.poll_interval, settings.poll_interval * 5
        expected = self._expected_duration(count)
        if expected is not None:  # the first poll one step before the expected time: a set that
            # takes what sets took is seen at the second poll, one that is quicker at the first
            await anyio.sleep(min(max(0.0, started + 0.95 * expected - time.time()), settings.poll_timeout))
            interval = ceiling = max(settings.poll_interval, 0.05 * expected)
        else:  # no set is done the moment it is submitted: the first poll one interval after (at
            # once for a job submitted by an earlier run, collected now)
            await anyio.sleep(max(0.0, started + interval - time.time()))
        while True:
            prediction = await self._poll(job_id)
            if prediction is None:
                if time.time() - started > settings.not_found_grace:
                    raise JobLost(f"the service does not know prediction {job_id} (HTTP 404)")
            elif prediction.state != "running":
                if job_id in self._submitted_at:
                    self._durations.setdefault(count, []).append(time.time() - started)
                return prediction
            if time.monotonic() + interval > deadline:
                raise ProviderError(f"prediction {job_id} did not finish within {settings.poll_timeout:g} s; "
                                    "it stays in the journal: run `storyboard apply` again to collect it",
                                    retryable=True)
            await anyio.sleep(interval)
            interval = min(interval * 1.5, ceiling)

    def _expected_duration(self, count: int) -> float | None:
        """A low estimate of how long a set of `count` images takes, from this run's finished sets.

        The first quartile of sets of the same size once there are two; before that, the
        quickest set of any size up to `count` (more images never take less time). Sets of
        1–15 images give few of each size: without this, 1 set in 7 polled a dozen times.
        """
        same = sorted(self._durations.get(count, ()))
        if len(same) >= 2:
            return same[len(same) // 4]
        smaller = [seconds for size, seen in self._durations.items() if size <= count for seconds in seen]
        return min(smaller) if smaller else None

    async def _poll(self, job_id: str) -> wire.Prediction | None:
        """The prediction, or None while the service answers 404."""
        answer = await self._call("GET", POLL_PATH.format(id=job_id), billed=False, not_found_ok=True)
        if answer.status == 404:
            return None
        return wire.parse_prediction(answer.payload or {})

    async def _deliver(self, job_id: str, request: ImageRequest, prediction: wire.Prediction) -> JobResult:
        """Download the outputs, position by position; blocked positions fail with the reason."""
        placed, failed = place_outputs(prediction, request.count)
        images: dict[int, GeneratedImage] = {}

        async def fetch(position: int, item: str) -> None:
            try:
                images[position] = await self._fetch_output(job_id, position, item, request.count)
            except ProviderError as error:
                failed[position] = self._redact(error.message)

        async with anyio.create_task_group() as group:
            for position, item in placed.items():
                group.start_soon(fetch, position, item)
        return JobResult(images=images, failed=failed)

    async def _fetch_output(self, job_id: str, position: int, item: str, count: int) -> GeneratedImage:
        data = wire.decode_output(item)
        if data is not None:
            return checked_image(data, f"output {position + 1} of prediction {job_id} (base64)")
        try:
            return await self._download(item, f"output {position + 1} of prediction {job_id}")
        except Expired:
            fresh = await self._poll(job_id)  # output URLs are temporary: ask for fresh ones once
            placed = place_outputs(fresh, count)[0] if fresh and fresh.state == "done" else {}
            expired = ProviderError(f"output {position + 1} of prediction {job_id} expired before it "
                                    "could be downloaded")
            if position not in placed or placed[position] == item:
                raise expired from None
            try:
                return await self._download(placed[position], f"output {position + 1} of prediction {job_id}")
            except Expired:
                raise expired from None

    async def _download(self, url: str, what: str) -> GeneratedImage:
        url = self._absolute(url)

        async def attempt() -> GeneratedImage:
            try:
                async with self._download_slots, self._slots, self._client.stream("GET", url) as response:
                    if response.status_code in EXPIRED:
                        raise Expired
                    if response.status_code != 200:
                        raise retry_for_status(response.status_code, response.headers, what)
                    data = await read_capped(response, what)
            except httpx.TransportError as error:
                raise Retry(f"{what}: download broke off ({type(error).__name__})") from None
            try:
                return checked_image(data, what)
            except ProviderError as error:
                raise Retry(error.message) from None

        return await self._retrying(attempt)

    # --- uploads -----------------------------------------------------------------

    async def _upload_all(self, paths: tuple[Path, ...]) -> list[str]:
        """The URLs of a request's reference images, uploaded side by side."""
        known = self._uploaded_paths
        if len(paths) <= 1 or all(path in known for path in paths):  # usually all: once per run each
            return [await self._upload(path) for path in paths]
        urls: dict[int, str] = {}
        errors: list[ProviderError] = []

        async def upload(position: int, path: Path) -> None:
            try:
                urls[position] = await self._upload(path)
            except ProviderError as error:
                errors.append(error)

        async with anyio.create_task_group() as group:
            for position, path in enumerate(paths):
                group.start_soon(upload, position, path)
        if errors:
            raise errors[0]
        return [urls[position] for position in range(len(paths))]

    async def _upload(self, path: Path) -> str:
        """The URL of a reference image, uploaded once per content hash and run."""
        if path in self._uploaded_paths:
            return self._uploaded_paths[path]
        try:
            data = await anyio.Path(path).read_bytes()
        except OSError as error:
            raise ProviderError(f"cannot read reference image {path}: {error.strerror}") from None
        digest = hashlib.sha256(data).hexdigest()
        lock = self._upload_locks.setdefault(digest, anyio.Lock())
        async with lock:
            if digest not in self._uploads:
                kind = image_format(data) or "png"
                files = {"file": (f"{digest[:16]}.{kind}", data, f"image/{kind}")}
                answer = await self._call("POST", UPLOAD_PATH, files=files, billed=False)
                url = wire.upload_url(answer.payload or {})
                if url is None:
                    raise ProviderError(f"uploading {path.name}: the service answered without a download_url")
                self._uploads[digest] = self._absolute(url)
        self._uploaded_paths[path] = self._uploads[digest]
        return self._uploads[digest]

    # --- one API call with the retry policy ------------------------------------------

    async def _call(self, method: str, path: str, *, billed: bool, not_found_ok: bool = False,
                    **kwargs: Any) -> wire.Answer:
        what = f"{method} {path}"

        async def attempt() -> wire.Answer:
            try:
                async with self._slots:
                    response = await self._client.request(method, self.base_url + path, headers=self._auth,
                                                          **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                cause = type(error).__name__
                raise Retry(f"{what}: could not connect to {self.base_url} ({cause})") from None
            except httpx.TransportError as error:
                if billed:
                    raise self._unknown_outcome(type(error).__name__) from None
                raise Retry(f"{what}: {type(error).__name__}") from None
            answer = wire.read_answer(response.status_code, response.content)
            return self._judge(answer, response.headers, what, billed=billed, not_found_ok=not_found_ok)

        return await self._retrying(attempt)

    def _judge(self, answer: wire.Answer, headers: httpx.Headers, what: str, *, billed: bool,
               not_found_ok: bool) -> wire.Answer:
        """Return a usable answer, raise Retry for a passing fault, or raise the error."""
        status, message = answer.status, self._redact(answer.message)
        if 200 <= status < 300:
            if answer.payload is None:
                raise ProviderError(f"{what}: the service answered without a JSON object")
            return answer
        if status == 0:  # HTTP 200 whose body is not JSON
            if billed:
                raise self._unknown_outcome("an unreadable answer")
            raise Retry(f"{what}: the answer was not JSON")
        if status == 404 and not_found_ok:
            return answer
        if status in (401, 403):
            raise AuthError(f"the service refused the API key (HTTP {status}{words(message)}); {KEY_HINT}")
        if wire.is_balance_problem(status, message) and status >= 400:
            raise AuthError(f"the Atlas Cloud balance is too low (HTTP {status}{words(message)}); "
                            f"{BALANCE_HINT}")
        has_id = answer.payload is not None and any(answer.payload.get(k) for k in wire.ID_KEYS)
        if billed and has_id and status in GATEWAY_ERRORS:
            return answer  # a gateway error that still names the prediction: it was accepted
        if status == 429 or status in GATEWAY_ERRORS:
            raise retry_for_status(status, headers, what, message)
        if status >= 500 and not billed:
            raise retry_for_status(status, headers, what, message)
        if status >= 500:
            raise ProviderError(f"the service answered HTTP {status}{words(message)} to a submit; it may or "
                                "may not have accepted it, so it is not sent again: check the Atlas Cloud "
                                "dashboard, then run `storyboard apply` again for the frames still missing")
        raise ProviderError(f"the service rejected {what} (HTTP {status}{words(message)})")

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        return await retrying(attempt, self.settings.retry_deadline, self.settings.retry_backoff)

    def _unknown_outcome(self, cause: str) -> ProviderError:
        return ProviderError(
            f"the submit was sent but its answer was lost ({cause}): the service may have accepted and "
            "billed it. It is not sent again automatically. Check the Atlas Cloud dashboard, then run "
            "`storyboard apply` again to generate the frames still missing")

    def _absolute(self, url: str) -> str:
        return self.base_url + url if url.startswith("/") else url

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if self._key else text


def request_body(request: ImageRequest, reference_urls: list[str]) -> dict[str, Any]:
    """The JSON body of a submit: parameters at the top level, size as W*H, the frames' seed."""
    model = _model_for(request.model, bool(reference_urls))
    body: dict[str, Any] = {"model": model, "prompt": request.prompt, "size": request.size.replace("x", "*"),
                            "max_images": request.count}
    if reference_urls:
        body["images"] = reference_urls
    body["seed"] = request.seed  # the seed every frame of the request records
    body.update(request.params)
    return body


def place_outputs(prediction: wire.Prediction, count: int) -> tuple[dict[int, str], dict[int, str]]:
    """Which output belongs to which requested position, and which positions were blocked."""
    blocked_reason = "blocked by the service's content filter (has_nsfw_contents)"
    outputs, nsfw = prediction.outputs, prediction.nsfw
    if not outputs and any(nsfw):
        return {}, dict.fromkeys(range(count), blocked_reason)
    if len(nsfw) == count and any(nsfw) and len(outputs) < count:
        free = [position for position in range(count) if not nsfw[position]]
        blocked = {position: blocked_reason for position in range(count) if nsfw[position]}
        return dict(zip(free, outputs, strict=False)), blocked
    return dict(enumerate(outputs[:count])), {}


def _model_for(model: str, has_references: bool) -> str:
    """Seedream's edit-sequential takes references; sequential does not."""
    if has_references and model.endswith("/sequential"):
        return model.removesuffix("/sequential") + "/edit-sequential"
    if not has_references and model.endswith("/edit-sequential"):
        return model.removesuffix("/edit-sequential") + "/sequential"
    return model


def _base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"the Atlas Cloud base URL `{url}` is not an http(s) URL",
                        hint=f"set {URL_VARIABLE} or provider.options.base_url to e.g. {DEFAULT_BASE_URL}")
    return url
