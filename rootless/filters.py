"""docker's ``--filter KEY=VALUE`` for lists and prunes, as one pure module (the CLI and a
REST API share it).

Semantics follow moby's ``api/types/filters`` and the daemon's list code:

- a filter is ``key=value``; the key is case-insensitive, both sides are trimmed; a key the
  command doesn't know is ``invalid filter 'KEY'``;
- values of one key are alternatives (any may match), different keys must all match;
- ``label`` is the exception: every ``label=KEY`` / ``label=KEY=VALUE`` must match
  (``MatchKVList``), and a prune's ``label!=...`` excludes what matches all of its values;
- ``name`` and ``id`` (containers, volumes, networks) are regular expressions searched in
  the text, or the exact text (``Args.Match``): ``name=web`` matches ``web-1``;
- ``reference`` (images) is a glob over docker's short names where ``*`` stops at ``/``
  (Go's ``path.Match``), tried on ``name:tag`` then on ``name``;
- ``until`` (prunes) is a timestamp or a duration ago: what was created before it goes.

Values that need the store (``before=NAME``, ``ancestor=IMAGE``) are resolved by the
caller through the callables given to the matchers; the facts matched are small typed
values built by the engine from its records.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from rctlbase.errors import UsageError

PS_KEYS = frozenset(
    {"ancestor", "before", "exited", "health", "id", "label", "name", "network", "pod",
     "since", "status", "volume"}
)  # fmt: skip
IMAGE_KEYS = frozenset({"before", "dangling", "label", "reference", "since", "until"})
VOLUME_KEYS = frozenset({"dangling", "driver", "label", "name"})
NETWORK_KEYS = frozenset({"driver", "id", "label", "name", "scope", "type"})
CONTAINER_PRUNE_KEYS = frozenset({"label", "label!", "until"})
IMAGE_PRUNE_KEYS = frozenset({"dangling", "label", "label!", "until"})
VOLUME_PRUNE_KEYS = frozenset({"label", "label!"})
NETWORK_PRUNE_KEYS = frozenset({"label", "label!", "until"})

# moby's container states (container.IsValidStateString) and health statuses.
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH = ("starting", "healthy", "unhealthy", "none")


@dataclass(frozen=True, slots=True)
class FilterSet:
    """Parsed filters: each key with its values, in the order given (no repeats)."""

    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fields)

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self.fields)

    def values(self, key: str) -> tuple[str, ...]:
        """The values given for ``key`` (none when absent)."""
        return next((v for k, v in self.fields if k == key), ())


def parse_filters(texts: Sequence[str], accepted: Collection[str]) -> FilterSet:
    """``--filter`` values into a :class:`FilterSet`; ``accepted`` are the command's keys."""
    found: dict[str, list[str]] = {}
    for text in texts:
        key, eq, value = text.partition("=")
        if not eq:
            raise UsageError(
                f"bad format of filter {text!r} (expected name=value)",
                hint="give --filter KEY=VALUE, e.g. --filter name=web",
            )
        key, value = key.strip().lower(), value.strip()
        if key not in accepted:
            raise UsageError(
                f"invalid filter '{key}'",
                hint="the command's filters: " + ", ".join(sorted(accepted)),
            )
        values = found.setdefault(key, [])
        if value not in values:
            values.append(value)
    return FilterSet(tuple((k, tuple(v)) for k, v in found.items()))


# -- docker's matching rules -------------------------------------------------------------------


def match_text(values: Sequence[str], text: str) -> bool:
    """moby's ``Args.Match``: a value equal to ``text`` or a regular expression found in it
    (a value that doesn't compile matches only itself)."""
    for value in values:
        if value == text:
            return True
        try:
            if re.search(value, text):
                return True
        except re.error:
            continue
    return False


def match_labels(values: Sequence[str], labels: Mapping[str, str]) -> bool:
    """moby's ``MatchKVList``: every ``KEY`` is set and every ``KEY=VALUE`` has that value."""
    for value in values:
        key, eq, wanted = value.partition("=")
        if key not in labels or (eq and labels[key] != wanted):
            return False
    return True


def match_prune_labels(filters: FilterSet, labels: Mapping[str, str]) -> bool:
    """A prune's ``label=`` must all match; its ``label!=`` spare what matches them all."""
    if not match_labels(filters.values("label"), labels):
        return False
    negated = filters.values("label!")
    return not (negated and match_labels(negated, labels))


def parse_bool(filters: FilterSet, key: str) -> bool | None:
    """``dangling=true|false|1|0``: None when absent; conflicting values are an error."""
    given = filters.values(key)
    if not given:
        return None
    chosen = set()
    for value in given:
        if value.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"invalid filter '{key}={value}'", hint=f"use {key}=true or false")
        chosen.add(value.lower() in ("true", "1"))
    if len(chosen) > 1:
        raise UsageError(f"invalid filter '{key}': both true and false", hint="give one value")
    return chosen.pop()


def parse_until(value: str, now: datetime.datetime) -> float:
    """``until``: RFC 3339 (date, date and time, with or without zone: UTC then), a Unix
    timestamp, or a Go duration ago (``24h``, ``1h30m``, ``90s``, ``1.5h``)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)).timestamp()
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise UsageError(
            f"invalid filter 'until={value}'",
            hint="give a duration (24h, 1h30m) or a timestamp (2024-01-31T10:00:00)",
        )
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return now.timestamp() - sum(float(n) * units[u] for n, u in parts)


def until_bound(filters: FilterSet, now: datetime.datetime) -> float | None:
    """The latest ``until`` moment (docker takes one; several keep the widest)."""
    moments = [parse_until(v, now) for v in filters.values("until")]
    return max(moments) if moments else None


_GLOB = re.compile(r"\\(.)|(\*)|(\?)|(\[(?:\^|!)?\]?[^\]]*\])|(.)", re.DOTALL)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's ``path.Match`` as a regular expression: ``*`` and ``?`` don't cross ``/``."""
    out = []
    for escaped, star, question, klass, other in _GLOB.findall(pattern):
        if star:
            out.append("[^/]*")
        elif question:
            out.append("[^/]")
        elif klass:
            body = klass[1:-1]
            if body[:1] in ("^", "!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
        else:
            out.append(re.escape(escaped or other))
    return re.compile("".join(out))


def match_reference(patterns: Sequence[str], familiar: str, repository: str) -> bool:
    """docker's ``reference.FamiliarMatch``: ``busybox:latest``, then ``busybox``."""
    for pattern in patterns:
        try:
            regex = glob_regex(pattern)
        except re.error:
            continue
        if regex.fullmatch(familiar) or regex.fullmatch(repository):
            return True
    return False


def prune_matcher(
    filters: FilterSet, now: datetime.datetime | None = None
) -> Callable[[float, Mapping[str, str]], bool]:
    """What a prune may remove by its creation time and labels (``until``, ``label``,
    ``label!``); the prune's own rule (stopped, unused) comes first."""
    until = until_bound(filters, now or datetime.datetime.now(datetime.UTC))

    def keep(created: float, labels: Mapping[str, str]) -> bool:
        if until is not None and created >= until:
            return False
        return match_prune_labels(filters, labels)

    return keep


# -- containers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """What ``ps --filter`` looks at in one container."""

    id: str
    name: str
    status: str  # one of STATUSES
    created: float
    labels: Mapping[str, str]
    image_id: str
    exit_code: int | None  # None until it has exited once
    health: str  # one of HEALTH
    mounts: tuple[str, ...] = ()  # volume names, bind sources and destinations
    networks: tuple[str, ...] = ()  # network names and IDs, or the mode (host, none...)
    pod: tuple[str, ...] = ()  # a member's pod: its ID and name (podman's pod=)


def shows_stopped(filters: FilterSet) -> bool:
    """A ``status`` filter lists stopped containers without ``-a`` (moby sets All)."""
    return "status" in filters


def container_matcher(
    filters: FilterSet,
    *,
    created_of: Callable[[str], float],
    image_ids_of: Callable[[str], Collection[str]],
) -> Callable[[ContainerFacts], bool]:
    """A predicate for ``ps --filter``. ``created_of`` gives a container's creation time by
    name or ID (``before``/``since``; raises when there is none), ``image_ids_of`` the IDs an
    image reference stands for (``ancestor``; empty when unknown)."""
    for value in filters.values("status"):
        if value not in STATUSES:
            raise UsageError(
                f"invalid filter 'status={value}'", hint="status is one of " + "|".join(STATUSES)
            )
    for value in filters.values("health"):
        if value not in HEALTH:
            raise UsageError(
                f"Unrecognised filter value for health: {value}",
                hint="health is one of " + "|".join(HEALTH),
            )
    codes = set()
    for value in filters.values("exited"):
        try:
            codes.add(int(value))
        except ValueError:
            raise UsageError(
                f"invalid filter 'exited={value}'", hint="exited takes an exit code"
            ) from None
    before = [created_of(v) for v in filters.values("before")]
    since = [created_of(v) for v in filters.values("since")]
    ancestors = {i for v in filters.values("ancestor") for i in image_ids_of(v)}

    def keep(facts: ContainerFacts) -> bool:
        values = filters.values
        checks: dict[str, Callable[[], bool]] = {
            "id": lambda: match_text(values("id"), facts.id),
            "name": lambda: match_text(values("name"), facts.name),
            "status": lambda: facts.status in values("status"),
            "label": lambda: match_labels(values("label"), facts.labels),
            "health": lambda: facts.health in values("health"),
            "exited": lambda: facts.status == "exited" and facts.exit_code in codes,
            "before": lambda: all(facts.created < moment for moment in before),
            "since": lambda: all(facts.created > moment for moment in since),
            "ancestor": lambda: facts.image_id in ancestors,
            "volume": lambda: bool(set(values("volume")) & set(facts.mounts)),
            "network": lambda: bool(set(values("network")) & set(facts.networks)),
            "pod": lambda: any(
                v in facts.pod or (len(v) >= 3 and facts.pod[0].startswith(v))
                for v in values("pod")
                if facts.pod
            ),
        }
        return all(check() for key, check in checks.items() if key in filters)

    return keep


# -- images ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What ``images --filter`` and ``image prune --filter`` look at in one row."""

    id: str
    created: float
    labels: Mapping[str, str]
    dangling: bool
    familiar: str = ""  # busybox:latest, quay.io/a/b:1 ('' when dangling)
    repository: str = ""  # busybox, quay.io/a/b


def image_matcher(
    filters: FilterSet, *, created_of: Callable[[str], float], now: datetime.datetime
) -> Callable[[ImageFacts], bool]:
    """A predicate for ``images --filter`` and ``image prune --filter``; ``created_of``
    gives an image's creation time by reference (``before``/``since``)."""
    dangling = parse_bool(filters, "dangling")
    until = until_bound(filters, now)
    before = [created_of(v) for v in filters.values("before")]
    since = [created_of(v) for v in filters.values("since")]

    def keep(facts: ImageFacts) -> bool:
        if dangling is not None and facts.dangling != dangling:
            return False
        if "reference" in filters and (
            facts.dangling
            or not match_reference(filters.values("reference"), facts.familiar, facts.repository)
        ):
            return False
        if until is not None and facts.created >= until:
            return False
        if any(facts.created >= moment for moment in before):
            return False
        if any(facts.created <= moment for moment in since):
            return False
        return match_prune_labels(filters, facts.labels)

    return keep


# -- volumes and networks ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    """What ``volume ls --filter`` and ``volume prune --filter`` look at."""

    name: str
    driver: str
    labels: Mapping[str, str]
    in_use: bool


def volume_matcher(filters: FilterSet) -> Callable[[VolumeFacts], bool]:
    """A predicate for ``volume ls --filter`` and ``volume prune --filter``."""
    dangling = parse_bool(filters, "dangling")

    def keep(facts: VolumeFacts) -> bool:
        if dangling is not None and facts.in_use == dangling:
            return False
        if "name" in filters and not match_text(filters.values("name"), facts.name):
            return False
        if "driver" in filters and facts.driver not in filters.values("driver"):
            return False
        return match_prune_labels(filters, facts.labels)

    return keep


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """What ``network ls --filter`` and ``network prune --filter`` look at."""

    id: str
    name: str
    driver: str
    labels: Mapping[str, str]
    created: float
    builtin: bool = False  # bridge, host, none, pasta, slirp4netns: docker's type=builtin


def network_matcher(
    filters: FilterSet, *, now: datetime.datetime
) -> Callable[[NetworkFacts], bool]:
    """A predicate for ``network ls --filter`` and ``network prune --filter``."""
    for value in filters.values("type"):
        if value not in ("custom", "builtin"):
            raise UsageError(f"invalid filter: 'type'='{value}'", hint="type is custom or builtin")
    until = until_bound(filters, now)

    def keep(facts: NetworkFacts) -> bool:
        kind = "builtin" if facts.builtin else "custom"
        checks: dict[str, Callable[[], bool]] = {
            "name": lambda: match_text(filters.values("name"), facts.name),
            "id": lambda: match_text(filters.values("id"), facts.id),
            "driver": lambda: facts.driver in filters.values("driver"),
            "scope": lambda: "local" in filters.values("scope"),
            "type": lambda: kind in filters.values("type"),
        }
        if not all(check() for key, check in checks.items() if key in filters):
            return False
        if until is not None and facts.created >= until:
            return False
        return match_prune_labels(filters, facts.labels)

    return keep
