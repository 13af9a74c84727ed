"""``rctl events``: what happened to containers, images, volumes and networks, as docker's
events (``Type``, ``Action``, ``Actor{ID, Attributes}``, ``time``, ``timeNano``, ``scope``).

Events are written by whoever acts (the container service, the image, volume and network
services, the stop hook for ``die``) with :func:`rootless.eventlog.record_event` into the
append-only log of :mod:`rootless.eventlog` (which says why a log and not the journal).

Reading: past events between ``--since`` and ``--until``, then, unless ``--until`` is
given, new ones as they come; ``--filter`` with docker's keys (same key: any value, keys:
all). The log is rctl's own, but still checked line by line: a line that is not an event
is skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rootless.eventlog import follow_lines, log_path, message, read_lines
from rootless.filters import FilterSet, match_labels, parse_filters

TYPES = ("container", "image", "volume", "network")
EVENT_KEYS = frozenset(
    {"container", "event", "image", "label", "network", "scope", "type", "volume"}
)


@dataclass(frozen=True, slots=True)
class Event:
    """One event, as docker's ``events/Message``."""

    type: str
    action: str
    actor_id: str
    attributes: tuple[tuple[str, str], ...] = ()
    time_nano: int = 0
    scope: str = "local"

    @property
    def attribute_map(self) -> dict[str, str]:
        return dict(self.attributes)

    def to_docker(self) -> dict[str, Any]:
        """docker's JSON for the event (``GET /events`` streams these)."""
        found = message(self.type, self.action, self.actor_id, self.attribute_map, self.time_nano)
        return {**found, "scope": self.scope}

    def to_line(self) -> bytes:
        """The event as a line of the log."""
        return json.dumps(self.to_docker(), separators=(",", ":")).encode()


def parse_event(line: bytes) -> Event | None:
    """An event from a line of the log; None for anything that is not one."""
    try:
        raw = json.loads(line)
        actor = raw["Actor"]
        attributes = actor.get("Attributes") or {}
        fields = (raw["Type"], raw["Action"], actor["ID"], raw.get("scope", "local"))
        stamp = raw["timeNano"]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if not all(isinstance(f, str) for f in fields) or type(stamp) is not int:
        return None
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        return None
    kind, action, actor_id, scope = fields
    return Event(kind, action, actor_id, tuple(attributes.items()), stamp, scope)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """What ``rctl events`` asks: a time window (ns since the epoch) and filters."""

    since_ns: int | None = None
    until_ns: int | None = None
    filters: FilterSet = field(default_factory=FilterSet)


def parse_event_filters(texts: Sequence[str]) -> FilterSet:
    """``--filter`` for events, docker's keys (``type=`` one of :data:`TYPES`)."""
    from rctlbase.errors import UsageError  # noqa: PLC0415

    parsed = parse_filters(texts, EVENT_KEYS)
    for value in parsed.values("type"):
        if value not in TYPES:
            raise UsageError(f"invalid filter 'type={value}'", hint="types: " + ", ".join(TYPES))
    return parsed


def event_matcher(filters: FilterSet) -> Callable[[Event], bool]:
    """docker's event filters: ``container``/``image``/``volume``/``network`` by ID or
    name, ``event`` the action, ``type``, ``label`` (every one), ``scope``."""

    def matches(event: Event) -> bool:
        attributes = event.attribute_map
        names = {event.actor_id, attributes.get("name", "")} - {""}
        checks = {
            "type": lambda values: event.type in values,
            "event": lambda values: event.action in values or _base(event.action) in values,
            "scope": lambda values: event.scope in values,
            "label": lambda values: match_labels(values, attributes),
        }
        for key, values in filters.fields:
            if key in checks:
                if not checks[key](values):
                    return False
            elif key == "image" and event.type == "container":
                if not _refers(values, {attributes.get("image", "")}):
                    return False
            elif event.type != key or not _refers(values, names):
                return False
        return True

    return matches


def _base(action: str) -> str:
    """``exec_start: sh`` is ``exec_start`` for ``event=``."""
    return action.partition(":")[0]


def _refers(values: Sequence[str], names: set[str]) -> bool:
    """A filter value naming one of ``names``: equal, or an ID's prefix (12+ digits or
    a ``sha256:`` one)."""
    for value in values:
        short = value.removeprefix("sha256:")
        for name in names:
            bare = name.removeprefix("sha256:")
            if value in (name, bare) or (len(short) >= 12 and bare.startswith(short)):
                return True
    return False


def read_events(
    data_root: str,
    query: EventQuery,
    *,
    follow: bool,
    should_stop: Callable[[], bool] = lambda: False,
    poll: float = 0.2,
) -> Iterator[Event]:
    """The events of ``query``: past ones (from ``since``), then, when ``follow``, new
    ones until ``until`` passes or ``should_stop()``. Without ``since``, only new ones."""
    keep = event_matcher(query.filters)
    until = query.until_ns
    past_only = until is not None and until <= time.time_ns()
    if not follow or past_only:
        lines: Iterator[bytes] = read_lines(log_path(data_root))
    else:

        def stop() -> bool:
            return should_stop() or (until is not None and time.time_ns() >= until)

        lines = follow_lines(
            log_path(data_root), stop, history=query.since_ns is not None, poll=poll
        )
    for line in lines:
        event = parse_event(line)
        if event is None:
            continue
        if query.since_ns is not None and event.time_nano < query.since_ns:
            continue
        if until is not None and event.time_nano > until:
            if not follow or past_only:
                continue
            return
        if keep(event):
            yield event
