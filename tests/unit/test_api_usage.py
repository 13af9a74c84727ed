"""``GET /containers/{id}/stats``: one reading, a stream, the interval asked of the engine."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, cast

import pytest

from rctlbase.errors import NotFoundError
from rootless.api.http import Reply, Request, Stream
from rootless.api.usage import stats
from rootless.containers.stats import ContainerStats


class FakeEngine:
    def __init__(self, readings: Sequence[list[ContainerStats]]) -> None:
        self.readings = readings
        self.asked: list[tuple[tuple[str, ...], float]] = []
        self.closed = False

    def stats(self, refs: Sequence[str] = (), *, interval: float = 1.0) -> Iterator[Any]:
        self.asked.append((tuple(refs), interval))

        def produce() -> Iterator[list[ContainerStats]]:
            try:
                yield from self.readings
            finally:
                self.closed = True

        return produce()


class FakeApi:
    def __init__(self, engine: FakeEngine) -> None:
        self.eng = engine

    def engine(self) -> FakeEngine:
        return self.eng


def reading(n: int) -> list[ContainerStats]:
    return [ContainerStats("c" * 64, "web", read_ns=n, running=True, memory_usage=n)]


def call(engine: FakeEngine, **query: str) -> Any:
    request = Request(
        "GET", "/containers/web/stats", {k: (v,) for k, v in query.items()}, params={"id": "web"}
    )
    return stats(cast(Any, FakeApi(engine)), request)


def test_one_reading_without_a_stream() -> None:
    engine = FakeEngine([reading(1), reading(2)])
    reply = call(engine, stream="false")
    assert isinstance(reply, Reply)
    document = json.loads(reply.body)
    assert (document["name"], document["memory_stats"]["usage"]) == ("/web", 1)
    assert engine.asked == [(("web",), 1.0)]
    assert engine.closed


def test_one_shot_asks_for_no_wait() -> None:
    engine = FakeEngine([reading(1)])
    assert isinstance(call(engine, stream="0", **{"one-shot": "1"}), Reply)
    assert engine.asked == [(("web",), 0.0)]


def test_a_removed_container_ends_the_stream() -> None:
    engine = FakeEngine([reading(1), reading(2), [], reading(3)])
    response = call(engine)
    assert isinstance(response, Stream)
    lines = b"".join(response.chunks).splitlines()
    assert [json.loads(line)["memory_stats"]["usage"] for line in lines] == [1, 2]
    assert engine.closed


def test_no_reading_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        call(FakeEngine([]), stream="false")
