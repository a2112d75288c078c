"""Reading Atlas Cloud's answers in every shape ATLAS_API.md lists; plain functions, no I/O.

A body may come wrapped (`{"code": 200, "data": {...}}`) or flat, name the prediction
`id`, `prediction_id` or `request_id`, spell its status in a dozen ways, carry its
error as a string or an object, and report an error as a `code` inside an HTTP 200.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

RUNNING = frozenset({"created", "starting", "pending", "processing", "running", "queued", "in_progress"})
DONE = frozenset({"completed", "succeeded", "success", "succeed", "done"})
FAILED = frozenset({"failed", "error", "canceled", "cancelled", "timeout", "timed_out"})
ID_KEYS = ("id", "prediction_id", "request_id")
MESSAGE_KEYS = ("msg", "message", "error", "detail")
MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer reduced to what decides the next step."""

    status: int  # the effective status: a non-2xx `code` in the body wins over HTTP 2xx; 0: unreadable 2xx
    payload: dict[str, Any] | None  # the (unwrapped) JSON object, if the body was one
    message: str  # the service's own words, for errors


@dataclass(frozen=True, slots=True)
class Prediction:
    id: str | None
    state: str  # "running", "done" or "failed"
    outputs: tuple[str, ...] = ()
    nsfw: tuple[bool, ...] = ()
    error: str = ""
    raw_status: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def read_answer(http_status: int, body: bytes) -> Answer:
    """The effective status, the unwrapped object and a message, from any body (JSON or not)."""
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        return Answer(0 if _ok(http_status) else http_status, None, _text_message(body))
    if not isinstance(data, dict):
        return Answer(0 if _ok(http_status) else http_status, None, _text_message(body))
    status = http_status
    code = _int(data.get("code"))
    if _ok(http_status) and code is not None and not (code == 0 or _ok(code)):
        status = code if 100 <= code <= 599 else 400
    message = error_message(data)
    inner = data.get("data")
    payload = inner if isinstance(inner, dict) and ("code" in data or _looks_like_prediction(inner)) else data
    return Answer(status, payload, message)


def parse_prediction(payload: dict[str, Any]) -> Prediction:
    """A prediction from a submit or poll payload (already unwrapped)."""
    prediction_id = next((str(payload[key]) for key in ID_KEYS if payload.get(key)), None)
    raw_status = str(payload.get("status") or "").strip().lower()
    outputs = tuple(item for item in (payload.get("outputs") or ()) if isinstance(item, str) and item)
    nsfw = tuple(bool(flag) for flag in (payload.get("has_nsfw_contents") or ()))
    if raw_status in DONE:
        state = "done"
    elif raw_status in FAILED:
        state = "failed"
    elif raw_status in RUNNING or not raw_status:
        state = "done" if outputs and not raw_status else "running"
    else:
        state = "running"  # a spelling we have not seen: keep polling until the timeout
    error = error_message(payload) if state == "failed" else ""
    if state == "failed" and not error:
        error = f"the prediction ended with status `{raw_status}`"
    return Prediction(prediction_id, state, outputs, nsfw, error, raw_status, payload)


def error_message(data: dict[str, Any]) -> str:
    """The service's error words from `msg`, `message`, `error` (string or object) or `detail`."""
    for key in MESSAGE_KEYS:
        value = data.get(key)
        if isinstance(value, dict):
            value = error_message(value) or json.dumps(value, sort_keys=True)
        if isinstance(value, str) and value.strip() and value.strip().lower() not in ("success", "ok"):
            text = value.strip()
            code = data.get("error_code")
            return _clip(f"{text} ({code})" if code else text)
    return ""


def is_balance_problem(status: int, message: str) -> bool:
    lowered = message.lower()
    return status == 402 or "insufficient" in lowered or "balance" in lowered


def decode_output(item: str) -> bytes | None:
    """The bytes of a base64 output (bare or a data: URL); None when `item` is a URL."""
    if item.startswith(("http://", "https://", "/")):
        return None
    encoded = item.split(",", 1)[1] if item.startswith("data:") else item
    try:
        return base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError):
        return b""


def upload_url(payload: dict[str, Any]) -> str | None:
    for key in ("download_url", "url", "file_url"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _ok(status: int) -> bool:
    return 200 <= status < 300


def _looks_like_prediction(value: dict[str, Any]) -> bool:
    return any(key in value for key in (*ID_KEYS, "status", "outputs", "download_url"))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _text_message(body: bytes) -> str:
    """A readable line from a plain-text or HTML body."""
    text = body.decode("utf-8", errors="replace")
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return _clip(" ".join(text.split()))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
