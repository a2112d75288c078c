"""The events apply reports are typed, and each one's JSON is what schemas/events.schema.json says."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import REPO

from storyboard.run import events

SAMPLES: list[events.Event] = [
    events.ApplyStarted(frames=31, requests=7, reused=2, reattached=1, cost=1.12),
    events.JobSubmitted("job-1", ("morning/skyline", "morning/pour")),
    events.JobReattached("job-0", ("commute/bike",)),
    events.JobFinished("job-1"),
    events.JobForgotten("job-0", "the service does not know prediction job-0 (HTTP 404)"),
    events.FrameDone("morning/pour", reused=False, cost=0.036, time=1767225600.0),
    events.FrameFailed("morning/pour", "blocked by the content filter", not_done=False),
    events.Stopping("the Atlas Cloud balance is too low"),
    events.VersionWritten(3, "out/v0003", {"create": 1, "failed": 0}),
    events.ApplyFinished(3, {"packshot/hero": "not started: the run was interrupted"}, True, 0.5),
]


def schema() -> dict:
    return json.loads((REPO / "schemas/events.schema.json").read_text())


def test_every_event_type_has_a_sample_and_the_schema_knows_every_kind() -> None:
    assert {type(sample) for sample in SAMPLES} == set(events.EVENT_TYPES)
    kinds = set(schema()["properties"]["event"]["enum"])
    assert kinds == {event_type.kind for event_type in events.EVENT_TYPES} | {"plan"}


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.kind)
def test_each_event_serialises_to_what_the_schema_says(event: events.Event) -> None:
    from storyboard.project.schema import validator

    data = event.to_json()
    assert data["event"] == event.kind
    json.dumps(data)  # plain JSON: lists, dicts, numbers, strings
    validator("events").validate(data)


def test_a_broken_event_is_refused_by_the_schema() -> None:
    from storyboard.project.schema import validator

    data = events.FrameDone("a/b", reused=False, cost=0.0, time=0.0).to_json()
    del data["address"]
    with pytest.raises(jsonschema.ValidationError):
        validator("events").validate(data)


def test_events_are_frozen() -> None:
    event = events.JobFinished("job-1")
    with pytest.raises(AttributeError):
        event.job = "other"  # type: ignore[misc]
