"""What apply reports while it runs: frozen events, each with one `to_json()`.

The executor and apply send them to an `on_event` callback; the CLI draws them as a
progress bar, plain lines, or JSON lines (`apply --json`, schemas/events.schema.json).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


class _Event:
    kind: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """{"event": kind, …fields}; tuples become lists and mappings plain dicts."""
        data: dict[str, Any] = {"event": self.kind}
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            data[item.name] = list(value) if isinstance(value, tuple) else \
                dict(value) if isinstance(value, Mapping) else value
        return data


@dataclass(frozen=True, slots=True)
class ApplyStarted(_Event):
    frames: int  # to generate
    requests: int  # to submit or re-attach to
    reused: int  # images an interrupted run left, used as they are
    reattached: int  # jobs of an interrupted run collected instead of paid again
    cost: float  # the plan's estimate
    kind: ClassVar[str] = "apply_started"


@dataclass(frozen=True, slots=True)
class JobSubmitted(_Event):
    job: str
    frames: tuple[str, ...]
    kind: ClassVar[str] = "job_submitted"


@dataclass(frozen=True, slots=True)
class JobReattached(_Event):
    job: str
    frames: tuple[str, ...]
    kind: ClassVar[str] = "job_reattached"


@dataclass(frozen=True, slots=True)
class JobFinished(_Event):
    """The service is done with a job (its images are being kept, or it failed)."""

    job: str
    kind: ClassVar[str] = "job_finished"


@dataclass(frozen=True, slots=True)
class JobForgotten(_Event):
    """A job an earlier run submitted is unknown to the service; its frames go out again."""

    job: str
    reason: str
    kind: ClassVar[str] = "job_lost"


@dataclass(frozen=True, slots=True)
class FrameDone(_Event):
    address: str
    reused: bool  # from an interrupted run
    cost: float  # spent so far in this run (US$)
    time: float  # epoch seconds
    kind: ClassVar[str] = "frame_done"


@dataclass(frozen=True, slots=True)
class FrameFailed(_Event):
    address: str
    reason: str
    not_done: bool = False  # never got to (interrupted, stopped, or its job still runs)
    kind: ClassVar[str] = "frame_failed"


@dataclass(frozen=True, slots=True)
class Stopping(_Event):
    """No more submits (the key or balance was refused); running jobs are still collected."""

    reason: str
    kind: ClassVar[str] = "stopping"


@dataclass(frozen=True, slots=True)
class VersionWritten(_Event):
    version: int
    path: str
    changes: Mapping[str, int] = field(default_factory=dict)
    kind: ClassVar[str] = "version_written"


@dataclass(frozen=True, slots=True)
class ApplyFinished(_Event):
    version: int | None  # None: nothing changed, no version written
    failed: Mapping[str, str]  # address -> why it was not made (not done ones included)
    interrupted: bool
    cost: float
    kind: ClassVar[str] = "apply_finished"


Event = (ApplyStarted | JobSubmitted | JobReattached | JobFinished | JobForgotten | FrameDone | FrameFailed
         | Stopping | VersionWritten | ApplyFinished)
EVENT_TYPES: tuple[type[Event], ...] = (ApplyStarted, JobSubmitted, JobReattached, JobFinished, JobForgotten,
                                        FrameDone, FrameFailed, Stopping, VersionWritten, ApplyFinished)
EventSink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The sink of a caller that does not listen."""
