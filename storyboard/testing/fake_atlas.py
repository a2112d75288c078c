"""A fake Atlas Cloud image API on loopback, for tests and offline rehearsals.

    python -m storyboard.testing.fake_atlas --port 8000 --latency 2
    export ATLASCLOUD_BASE_URL=http://127.0.0.1:8000 ATLASCLOUD_API_KEY=fake-key

It speaks ATLAS_API.md: submit, poll, upload, download; it checks bodies the way the
service does (model, prompt, `max_images` 1–15, sizes, references ≤ 10 and references
+ images ≤ 15) and answers with real PNGs. Tests script its behaviour call by call —
`script("submit", Fault(status=429, retry_after=1))`, `outcomes(Outcome(images=3))` —
by rate (`rates["poll"] = [(0.05, Fault(status=503))]`) or by period
(`periodic["submit"] = [(2, Fault(status=429))]`: every second submit), and read back what it saw:
`count("submit")`, `max_in_flight`, `calls`.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import io
import json
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from storyboard.project.sizes import SEEDREAM_SIZES

SEQUENTIAL = "bytedance/seedream-v4.5/sequential"
EDIT_SEQUENTIAL = "bytedance/seedream-v4.5/edit-sequential"
MODELS = {SEQUENTIAL: 0.036, EDIT_SEQUENTIAL: 0.036}
SIZES = frozenset(size.replace("x", "*") for size in SEEDREAM_SIZES)  # as the service writes them
KINDS = ("submit", "poll", "upload", "download", "models")
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Fault:
    """What one call gets instead of its normal answer."""

    status: int | None = None  # answer with this HTTP status (and a JSON error body)
    code: int | None = None  # answer HTTP 200 with this `code` inside the JSON body
    message: str = ""
    body: str | None = None  # this raw body instead (plain text, HTML, "{not json")
    retry_after: float | None = None
    delay: float = 0.0  # wait this long before answering (client read timeouts)
    drop: bool = False  # start the answer, then cut the connection
    truncate: bool = False  # download: declare the full length, send half, close
    accept: bool = False  # submit: create (and bill) the prediction first, then misbehave

    @property
    def rewrites_answer(self) -> bool:
        """It answers with another status or body, not just late or cut off."""
        return self.status is not None or self.code is not None or self.body is not None


@dataclass(frozen=True)
class Outcome:
    """How one prediction ends (scripted in submit order)."""

    error: str | None = None  # status `failed` with this error
    images: int | None = None  # return only this many images (a short set)
    nsfw: bool = False  # return no images, all flagged has_nsfw_contents
    latency: float | None = None


@dataclass
class Call:
    kind: str
    method: str
    path: str
    status: int  # 0 until answered
    at: float
    body: Any = None
    authorized: bool = False  # carried the right bearer key
    sent_authorization: bool = False  # carried any Authorization header
    answered: float = float("inf")  # when its answer was sent (monotonic, like `at`)


@dataclass
class Prediction:
    id: str
    model: str
    count: int
    prompt: str
    size: str
    created: float
    latency: float
    outcome: Outcome
    base64: bool = False
    seed: int | None = None  # as received
    polls: int = 0
    images: list[bytes] = field(default_factory=list)

    def finished(self, now: float) -> bool:
        return now >= self.created + self.latency


class FakeAtlas:
    """The fake service's state and its ASGI app (`fake(scope, receive, send)`)."""

    def __init__(self, *, api_key: str | None = "fake-key", latency: float = 0.0, flat: bool = False,
                 id_field: str = "id", running_status: str = "processing", done_status: str = "completed",
                 complete_at_submit: bool = False, base64_outputs: bool = False, balance: float | None = None,
                 image_width: int = 64, seed: int = 0) -> None:
        self.api_key = api_key
        self.latency = latency
        self.flat = flat
        self.id_field = id_field
        self.running_status = running_status
        self.done_status = done_status
        self.complete_at_submit = complete_at_submit
        self.base64_outputs = base64_outputs
        self.balance = balance  # images that can still be paid for; None: unlimited
        self.image_width = image_width
        self.rates: dict[str, list[tuple[float, Fault]]] = {}
        self.periodic: dict[str, list[tuple[int, Fault]]] = {}  # every n-th call of a kind gets the fault
        self._seen: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.calls: list[Call] = []
        self.predictions: dict[str, Prediction] = {}
        self.uploads: dict[str, bytes] = {}
        self.base_url = ""
        self._scripts: dict[str, deque[Fault | None]] = {kind: deque() for kind in KINDS}
        self._outcomes: deque[Outcome] = deque()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    # --- what tests use --------------------------------------------------------------

    def script(self, kind: str, *faults: Fault | None) -> None:
        """The next calls of `kind` get these faults in order (None: a normal answer)."""
        self._scripts[kind].extend(faults)

    def outcomes(self, *outcomes: Outcome) -> None:
        """The next predictions end like this, in submit order."""
        self._outcomes.extend(outcomes)

    def count(self, kind: str, status: int | None = None) -> int:
        return sum(1 for c in self.calls if c.kind == kind and (status is None or c.status == status))

    @property
    def accepted(self) -> list[Prediction]:
        """Predictions created (and billed), in submit order."""
        return sorted(self.predictions.values(), key=lambda p: p.created)

    @property
    def images_billed(self) -> int:
        return sum(p.count for p in self.predictions.values())

    @property
    def max_in_flight(self) -> int:
        """The most predictions running at one moment (each runs from submit for its latency)."""
        edges = sorted((t, step) for p in self.predictions.values()
                       for t, step in ((p.created, 1), (p.created + p.latency, -1)))
        running = peak = 0
        for _, step in edges:
            running += step
            peak = max(peak, running)
        return peak

    # --- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if not self.base_url:
            self.base_url = str(request.base_url).rstrip("/")
        kind, handler = self._route(request)
        fault = self._next_fault(kind) if kind else None
        call = self._record(kind or "unknown", request)
        status, response = await handler(request, fault)
        call.status, call.body = status, getattr(request.state, "body", None)
        if fault and fault.delay:  # the work is done (and billed); the answer is late
            import anyio

            await anyio.sleep(fault.delay)
        if fault and fault.drop:
            await _drop(send)
        else:
            await response(scope, receive, send)
        call.answered = time.monotonic()

    def _route(self, request: Request) -> tuple[str | None, Any]:
        path, method = request.url.path, request.method
        if method == "POST" and path == "/api/v1/model/generateImage":
            return "submit", self._submit
        if method == "GET" and path.startswith("/api/v1/model/prediction/"):
            return "poll", self._poll
        if method == "POST" and path == "/api/v1/model/uploadMedia":
            return "upload", self._upload
        if method == "GET" and path.startswith("/files/"):
            return "download", self._download
        if method == "GET" and path == "/api/v1/models":
            return "models", self._models
        if path == "/_fake/stats":  # not Atlas Cloud's: for harnesses running the fake as a process
            return None, self._stats
        return None, self._not_found

    def _next_fault(self, kind: str) -> Fault | None:
        with self._lock:
            self._seen[kind] += 1
            if self._scripts[kind]:
                return self._scripts[kind].popleft()
            for period, fault in self.periodic.get(kind, ()):
                if self._seen[kind] % period == 0:
                    return fault
            for probability, fault in self.rates.get(kind, ()):
                if self._random.random() < probability:
                    return fault
        return None

    def _record(self, kind: str, request: Request) -> Call:
        """Record a call as it arrives (its status is filled in once it is answered)."""
        header = request.headers.get("authorization")
        call = Call(kind, request.method, request.url.path, 0, time.monotonic(), None,
                    self._authorized(header or ""), header is not None)
        with self._lock:
            self.calls.append(call)
        return call

    # --- endpoints (each returns the status it answered and the response) ------------------

    async def _submit(self, request: Request, fault: Fault | None) -> tuple[int, Response]:
        refused = self._refuse(request, fault)
        if refused:
            return refused
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._error(400, "request body is not valid JSON")
        request.state.body = body
        problem = validate_submit(body)
        if problem:
            return self._error(400 if "model" in problem else 422, problem)
        count = int(body.get("max_images", 1))
        if self.balance is not None and self.balance < count:
            return self._error(402, "insufficient balance, please top up")
        prediction = self._create(body, count)
        if fault:
            return self._faulty(fault, prediction)
        return 200, self._answer(self._prediction_json(prediction, submitted=True))

    def _create(self, body: dict[str, Any], count: int) -> Prediction:
        with self._lock:
            outcome = self._outcomes.popleft() if self._outcomes else Outcome()
            if self.balance is not None:
                self.balance -= count
        latency = self.latency if outcome.latency is None else outcome.latency
        prediction = Prediction(uuid.uuid4().hex[:24], body["model"], count, body["prompt"], body["size"],
                                time.monotonic(), 0.0 if self.complete_at_submit else latency, outcome,
                                bool(body.get("enable_base64_output")) or self.base64_outputs,
                                body.get("seed"))
        with self._lock:
            self.predictions[prediction.id] = prediction
        return prediction

    async def _poll(self, request: Request, fault: Fault | None) -> tuple[int, Response]:
        refused = self._refuse(request, fault)
        if refused:
            return refused
        prediction = self.predictions.get(request.url.path.rsplit("/", 1)[-1])
        if prediction is None:
            return self._error(404, "prediction not found")
        prediction.polls += 1
        if fault:
            return self._faulty(fault, prediction)
        return 200, self._answer(self._prediction_json(prediction))

    async def _upload(self, request: Request, fault: Fault | None) -> tuple[int, Response]:
        refused = self._refuse(request, fault)
        if refused:
            return refused
        data = _multipart_file(request.headers.get("content-type", ""), await request.body())
        if data is None:
            return self._error(400, "multipart field `file` is missing")
        name = hashlib.sha256(data).hexdigest()[:20] + ".png"
        self.uploads[name] = data
        request.state.body = {"bytes": len(data)}
        if fault and fault.rewrites_answer:
            return self._faulty(fault, None)
        return 200, self._answer({"type": "image", "download_url": f"{self.base_url}/files/media/{name}",
                                  "filename": name, "size": len(data)}, message="success")

    async def _download(self, request: Request, fault: Fault | None) -> tuple[int, Response]:
        parts = request.url.path.split("/")  # /files/<prediction>/<n>.png
        data = self._file(parts[2], parts[3]) if len(parts) == 4 else None
        if data is None:
            return 404, Response("Not Found", status_code=404, media_type="text/plain")
        if fault and fault.truncate:
            return 200, Response(data[: len(data) // 2], headers={"content-length": str(len(data))},
                                 media_type="image/png")
        if fault and (fault.status or fault.body is not None):
            status = fault.status or 200
            return status, Response(fault.body or "expired", status_code=status, media_type="text/html")
        return 200, Response(data, media_type="image/png")

    async def _models(self, request: Request, fault: Fault | None) -> tuple[int, Response]:
        models = [{"id": name, "type": "image", "price": price} for name, price in MODELS.items()]
        return 200, self._answer({"models": models})

    async def _stats(self, request: Request, fault: Fault | None) -> tuple[int, Response]:
        """GET: counts so far; POST: the same, then forget every call and prediction."""
        stats = self.stats()
        if request.method == "POST":
            with self._lock:
                self.calls.clear()
                self.predictions.clear()
        return 200, JSONResponse(stats)

    def stats(self) -> dict[str, Any]:
        return {"calls": {kind: self.count(kind) for kind in KINDS},
                "statuses": {str(status): sum(1 for c in self.calls if c.status == status)
                             for status in sorted({c.status for c in self.calls})},
                "predictions": len(self.predictions), "images_billed": self.images_billed,
                "max_in_flight": self.max_in_flight}

    async def _not_found(self, request: Request, fault: Fault | None) -> tuple[int, Response]:
        return self._error(404, f"no route {request.method} {request.url.path}")

    # --- answers ---------------------------------------------------------------------------------

    def _refuse(self, request: Request, fault: Fault | None) -> tuple[int, Response] | None:
        """Auth first, then a fault that stops the call before it is accepted."""
        if not self._authorized(request.headers.get("authorization", "")):
            return self._error(401, "Unauthorized: invalid api key")
        if fault and not fault.accept and not fault.drop and not fault.delay:
            return self._faulty(fault, None)
        return None

    def _authorized(self, header: str) -> bool:
        if self.api_key is None:
            return header.startswith("Bearer ") and len(header) > len("Bearer ")
        return header == f"Bearer {self.api_key}"

    def _faulty(self, fault: Fault, prediction: Prediction | None) -> tuple[int, Response]:
        headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        payload = self._prediction_json(prediction, submitted=True) if prediction else None
        if fault.body is not None:
            status = fault.status or 200
            return status, Response(fault.body, status_code=status, headers=headers, media_type="text/html")
        if fault.code is not None:
            return 200, JSONResponse({"code": fault.code, "msg": fault.message or "error", "data": payload})
        if fault.status is not None:
            body = {"code": fault.status, "msg": fault.message or _reason(fault.status), "data": payload}
            return fault.status, JSONResponse(body, status_code=fault.status, headers=headers)
        return 200, self._answer(payload or {})

    def _answer(self, payload: dict[str, Any], message: str = "") -> JSONResponse:
        return JSONResponse(payload if self.flat else {"code": 200, "message": message, "data": payload})

    def _error(self, status: int, message: str) -> tuple[int, Response]:
        return status, JSONResponse({"code": status, "msg": message}, status_code=status)

    def _prediction_json(self, prediction: Prediction, submitted: bool = False) -> dict[str, Any]:
        done = prediction.finished(time.monotonic()) and (self.complete_at_submit or not submitted)
        outcome = prediction.outcome
        data: dict[str, Any] = {
            self.id_field: prediction.id, "model": prediction.model, "outputs": None,
            "status": self.done_status if done else self.running_status,
            "urls": {"get": f"{self.base_url}/api/v1/model/prediction/{prediction.id}"},
            "created_at": "2026-01-01T00:00:00Z", "has_nsfw_contents": [],
        }
        if not done:
            return data
        if outcome.error is not None:
            data.update(status="failed", error=outcome.error, error_code="PREDICTION_FAILED")
        elif outcome.nsfw:
            data.update(outputs=[], has_nsfw_contents=[True] * prediction.count)
        else:
            count = prediction.count if outcome.images is None else min(outcome.images, prediction.count)
            data["outputs"] = [self._output(prediction, n) for n in range(count)]
            data.update(executionTime=int(prediction.latency * 1000), price=0.036 * count)
        return data

    def _output(self, prediction: Prediction, number: int) -> str:
        if prediction.base64:
            return base64.b64encode(self._image(prediction, number)).decode()
        return f"{self.base_url}/files/{prediction.id}/{number}.png?v={prediction.polls}"

    def _file(self, folder: str, name: str) -> bytes | None:
        if folder == "media":
            return self.uploads.get(name)
        prediction = self.predictions.get(folder)
        number = name.removesuffix(".png")
        if prediction is None or not number.isdigit() or int(number) >= prediction.count:
            return None
        return self._image(prediction, int(number))

    def _image(self, prediction: Prediction, number: int) -> bytes:
        while len(prediction.images) <= number:
            prediction.images.append(draw(prediction, len(prediction.images), self.image_width))
        return prediction.images[number]


def validate_submit(body: Any) -> str | None:
    """What the service would refuse in a submit body, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    model = body.get("model")
    if model not in MODELS:
        return f"model `{model}` not found"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "prompt is required"
    size = body.get("size", "2048*2048")
    if size not in SIZES:
        return f"size `{size}` is not supported"
    count = body.get("max_images", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 15:
        return "max_images must be an integer from 1 to 15"
    images = body.get("images")
    if model == EDIT_SEQUENTIAL:
        if not isinstance(images, list) or not 1 <= len(images) <= 10:
            return "images must hold 1 to 10 reference image URLs"
        if not all(isinstance(url, str) and url.startswith(("http://", "https://")) for url in images):
            return "images must be URLs"
        if len(images) + count > 15:
            return "the number of reference images plus max_images must not exceed 15"
    elif images is not None:
        return f"images are not accepted by {model}"
    if "enable_base64_output" in body and not isinstance(body["enable_base64_output"], bool):
        return "enable_base64_output must be a boolean"
    seed = body.get("seed", -1)
    if not isinstance(seed, int) or isinstance(seed, bool) or not -1 <= seed <= MAX_SEED:
        return f"seed must be an integer from -1 to {MAX_SEED}"
    return None


def draw(prediction: Prediction, number: int, width: int) -> bytes:
    """A small real PNG in the requested aspect ratio, different for every prediction and image."""
    from PIL import Image

    w, h = (int(side) for side in prediction.size.split("*"))
    digest = hashlib.sha256(f"{prediction.id}/{number}".encode()).digest()
    image = Image.new("RGB", (width, max(1, round(width * h / w))), (digest[0], digest[1], digest[2]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _multipart_file(content_type: str, body: bytes) -> bytes | None:
    """The bytes of the `file` field of a multipart/form-data body (stdlib parser)."""
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


async def _drop(send: Send) -> None:
    """Start an answer and stop half-way: the client sees a connection cut mid-response."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
    await send({"type": "http.response.body", "body": b'{"code": 200, "da', "more_body": True})


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


if __name__ == "__main__":
    from storyboard.testing.server import main

    main()
