"""``GET /events``: the query handed to the engine and the JSON lines streamed back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from rootless.api.http import Request, Stream
from rootless.api.system import events
from rootless.events import Event


class FakeEngine:
    def __init__(self, found: Sequence[Event]) -> None:
        self.found = found
        self.asked: list[Any] = []
        self.closed = False

    def events(
        self,
        since: str | None = None,
        until: str | None = None,
        filters: Sequence[str] = (),
        *,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Event]:
        self.asked.append((since, until, tuple(filters), should_stop))

        def produce() -> Iterator[Event]:
            try:
                yield from self.found
            finally:
                self.closed = True

        return produce()


class FakeApi:
    def __init__(self, engine: FakeEngine) -> None:
        self.eng = engine

    def engine(self) -> FakeEngine:
        return self.eng


def call(engine: FakeEngine, request: Request) -> Stream:
    response = events(cast(Any, FakeApi(engine)), request)
    assert isinstance(response, Stream)
    return response


def test_events_stream_one_json_document_a_line() -> None:
    died = Event("container", "die", "c" * 64, (("name", "web"),), 1_700_000_000_000_000_001)
    engine = FakeEngine([died, Event("image", "pull", "busybox:1", (), 2)])
    request = Request(
        "GET",
        "/events",
        {
            "since": ("1700000000.000000000",),
            "until": ("0",),
            "filters": (json.dumps({"type": ["container"], "event": {"die": True}}),),
        },
    )
    body = b"".join(call(engine, request).chunks)
    lines = body.split(b"\n")
    assert lines[-1] == b""
    first = json.loads(lines[0])
    assert (first["Type"], first["Action"], first["Actor"]["ID"]) == ("container", "die", "c" * 64)
    assert first["Actor"]["Attributes"] == {"name": "web"}
    assert first["timeNano"] == 1_700_000_000_000_000_001
    assert first["scope"] == "local"
    assert json.loads(lines[1])["Action"] == "pull"
    since, until, filters, should_stop = engine.asked[0]
    assert (since, until, filters) == (
        "1700000000.000000000",
        None,
        ("type=container", "event=die"),
    )
    assert not should_stop()
    request.gone.set()
    assert should_stop()
    assert engine.closed


def test_events_stop_when_the_client_leaves() -> None:
    engine = FakeEngine([Event("container", "start", "a", (), 1)] * 3)
    request = Request("GET", "/events")
    chunks = call(engine, request).chunks
    assert next(chunks).startswith(b"{")
    request.gone.set()
    assert list(chunks) == []
    assert engine.closed
    assert engine.asked[0][:2] == (None, None)
