"""docker's ``--filter`` semantics (moby api/types/filters and the daemon's list code), per
command and key: one key's values are alternatives, keys all apply, labels all apply."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import pytest

from rctlbase.errors import NotFoundError, UsageError
from rootless.filters import (
    CONTAINER_PRUNE_KEYS,
    IMAGE_KEYS,
    IMAGE_PRUNE_KEYS,
    NETWORK_KEYS,
    PS_KEYS,
    VOLUME_KEYS,
    VOLUME_PRUNE_KEYS,
    ContainerFacts,
    ImageFacts,
    NetworkFacts,
    VolumeFacts,
    container_matcher,
    glob_regex,
    image_matcher,
    network_matcher,
    parse_filters,
    parse_until,
    prune_matcher,
    shows_stopped,
    volume_matcher,
)

NOW = datetime.datetime(2026, 12, 7, 16, 0, tzinfo=datetime.UTC)
HOUR = 3600.0

CONTAINERS = [
    ContainerFacts("aaaa1111", "web-1", "running", 100.0, {"app": "web", "tier": "front"},
                   "sha256:img1", None, "healthy", ("data", "/srv/data"), ("front", "rctl",
                                                                          "bridge")),
    ContainerFacts("bbbb2222", "web-2", "exited", 200.0, {"app": "web"}, "sha256:img1", 0,
                   "none", ("/home/u/src", "/src"), ("slirp4netns",)),
    ContainerFacts("cccc3333", "db", "exited", 300.0, {"app": "db"}, "sha256:img2", 137,
                   "unhealthy", (), ("host",)),
    ContainerFacts("dddd4444", "cache", "paused", 400.0, {}, "sha256:img2", None, "starting",
                   (), ("none",)),
    ContainerFacts("eeee5555", "new", "created", 500.0, {"app": ""}, "sha256:img3", None,
                   "none", (), ("pasta",)),
]  # fmt: skip
CREATED = {c.name: c.created for c in CONTAINERS} | {c.id: c.created for c in CONTAINERS}
IMAGE_IDS = {"busybox": {"sha256:img1"}, "busybox:latest": {"sha256:img1"}, "img2": {"sha256:img2"}}


def created_of(ref: str) -> float:
    if ref not in CREATED:
        raise NotFoundError(f"no such container: {ref}")
    return CREATED[ref]


def ps(*texts: str) -> list[str]:
    keep = container_matcher(
        parse_filters(texts, PS_KEYS),
        created_of=created_of,
        image_ids_of=lambda ref: IMAGE_IDS.get(ref, set()),
    )
    return [c.name for c in CONTAINERS if keep(c)]


@pytest.mark.parametrize(
    ("texts", "names"),
    [
        ((), ["web-1", "web-2", "db", "cache", "new"]),
        (("name=web",), ["web-1", "web-2"]),  # a regular expression searched in the name
        (("name=^web-1$",), ["web-1"]),
        (("name=db", "name=cache"), ["db", "cache"]),  # one key: any value
        (("name=web", "status=exited"), ["web-2"]),  # two keys: both
        (("name=[",), []),  # a bad expression matches only itself
        (("id=aaaa",), ["web-1"]),
        (("id=1111",), ["web-1"]),  # moby searches IDs too
        (("id=aaaa", "id=cccc"), ["web-1", "db"]),
        (("status=exited",), ["web-2", "db"]),
        (("status=paused", "status=created"), ["cache", "new"]),
        (("status=running",), ["web-1"]),
        (("label=app",), ["web-1", "web-2", "db", "new"]),
        (("label=app=web",), ["web-1", "web-2"]),
        (("label=app=web", "label=tier"), ["web-1"]),  # every label filter must match
        (("label=app=web", "label=app=db"), []),
        (("label=app=",), ["new"]),  # KEY= is the empty value
        ((" LABEL = app=db ",), ["db"]),  # keys any case, both sides trimmed
        (("exited=0",), ["web-2"]),
        (("exited=0", "exited=137"), ["web-2", "db"]),
        (("exited=1",), []),
        (("before=db",), ["web-1", "web-2"]),
        (("since=db",), ["cache", "new"]),
        (("since=aaaa1111", "before=cccc3333"), ["web-2"]),
        (("ancestor=busybox",), ["web-1", "web-2"]),
        (("ancestor=busybox:latest", "ancestor=img2"), ["web-1", "web-2", "db", "cache"]),
        (("ancestor=nosuch",), []),
        (("volume=data",), ["web-1"]),
        (("volume=/src",), ["web-2"]),  # a destination
        (("volume=/home/u/src",), ["web-2"]),  # a bind's source
        (("network=front",), ["web-1"]),
        (("network=bridge",), ["web-1"]),  # the default bridge network by docker's name
        (("network=host", "network=none"), ["db", "cache"]),
        (("health=healthy",), ["web-1"]),
        (("health=none",), ["web-2", "new"]),
        (("health=starting", "health=unhealthy"), ["db", "cache"]),
    ],
)
def test_ps_filters(texts: Sequence[str], names: list[str]) -> None:
    assert ps(*texts) == names


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (("colour=red",), "invalid filter 'colour'"),
        (("label!=app",), "invalid filter 'label!'"),  # docker: only prunes take label!=
        (("until=1h",), "invalid filter 'until'"),
        (("name",), "bad format of filter 'name' (expected name=value)"),
        (("status=sleeping",), "invalid filter 'status=sleeping'"),
        (("health=fine",), "Unrecognised filter value for health: fine"),
        (("exited=x",), "invalid filter 'exited=x'"),
    ],
)
def test_ps_filter_errors(texts: Sequence[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        ps(*texts)
    assert caught.value.message == message and caught.value.exit_code == 125


def test_ps_before_an_unknown_container_is_an_error() -> None:
    with pytest.raises(NotFoundError, match="nosuch"):
        ps("before=nosuch")


def test_a_status_filter_lists_stopped_containers() -> None:
    assert shows_stopped(parse_filters(["status=exited"], PS_KEYS))
    assert not shows_stopped(parse_filters(["name=x", "exited=0"], PS_KEYS))


def test_repeated_values_count_once() -> None:
    parsed = parse_filters(["name=a", "name=a", "name=b"], PS_KEYS)
    assert parsed.values("name") == ("a", "b") and parsed.values("id") == ()
    assert bool(parsed) and not bool(parse_filters([], PS_KEYS))


IMAGES = [
    ImageFacts("sha256:1", 100.0, {"org": "x"}, False, "busybox:latest", "busybox"),
    ImageFacts("sha256:1", 100.0, {"org": "x"}, False, "busybox:1.36", "busybox"),
    ImageFacts("sha256:2", 200.0, {}, False, "quay.io/team/app:v1", "quay.io/team/app"),
    ImageFacts("sha256:3", 300.0, {"org": "y"}, True),
    ImageFacts("sha256:4", NOW.timestamp() - 10, {}, False, "library2/new:1", "library2/new"),
]
IMAGE_CREATED = {"busybox": 100.0, "quay.io/team/app:v1": 200.0}


def images(*texts: str, keys: frozenset[str] = IMAGE_KEYS) -> list[str]:
    keep = image_matcher(
        parse_filters(texts, keys), created_of=lambda ref: IMAGE_CREATED[ref], now=NOW
    )
    return [i.familiar or i.id for i in IMAGES if keep(i)]


@pytest.mark.parametrize(
    ("texts", "names"),
    [
        (("dangling=true",), ["sha256:3"]),
        (("dangling=1",), ["sha256:3"]),
        (
            ("dangling=false",),
            ["busybox:latest", "busybox:1.36", "quay.io/team/app:v1", "library2/new:1"],
        ),
        (("reference=busybox",), ["busybox:latest", "busybox:1.36"]),  # the name alone
        (("reference=busybox:1.*",), ["busybox:1.36"]),
        (("reference=*:v1",), []),  # * doesn't cross /
        (("reference=*/*/*:v1",), ["quay.io/team/app:v1"]),
        (
            ("reference=busy*", "reference=quay.io/*/app"),
            ["busybox:latest", "busybox:1.36", "quay.io/team/app:v1"],
        ),
        (("reference=busybox", "dangling=false"), ["busybox:latest", "busybox:1.36"]),
        (("label=org",), ["busybox:latest", "busybox:1.36", "sha256:3"]),
        (("label=org=y",), ["sha256:3"]),
        (("before=quay.io/team/app:v1",), ["busybox:latest", "busybox:1.36"]),
        (("since=busybox",), ["quay.io/team/app:v1", "sha256:3", "library2/new:1"]),
        (("until=1h",), ["busybox:latest", "busybox:1.36", "quay.io/team/app:v1", "sha256:3"]),
    ],
)
def test_images_filters(texts: Sequence[str], names: list[str]) -> None:
    assert images(*texts) == names


def test_image_filter_errors() -> None:
    for texts, message in (
        (("dangling=maybe",), "invalid filter 'dangling=maybe'"),
        (("dangling=true", "dangling=false"), "invalid filter 'dangling': both true and false"),
        (("name=x",), "invalid filter 'name'"),
        (("until=soon",), "invalid filter 'until=soon'"),
    ):
        with pytest.raises(UsageError) as caught:
            images(*texts)
        assert caught.value.message == message


def test_image_prune_takes_negative_labels() -> None:
    assert images("label!=org", keys=IMAGE_PRUNE_KEYS) == ["quay.io/team/app:v1", "library2/new:1"]
    assert images("label!=org=x", keys=IMAGE_PRUNE_KEYS) == [
        "quay.io/team/app:v1", "sha256:3", "library2/new:1"
    ]  # fmt: skip
    assert images("label=org", "label!=org=y", keys=IMAGE_PRUNE_KEYS) == [
        "busybox:latest", "busybox:1.36"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("busybox", "busybox", True),
        ("busy?ox", "busybox", True),
        ("*", "a/b", False),
        ("*/*", "a/b", True),
        ("[a-c]pp", "app", True),
        ("[!a]pp", "app", False),
        ("[^a]pp", "bpp", True),
        ("a\\*", "a*", True),
        ("a.b", "axb", False),  # regular expression characters are literal
    ],
)
def test_reference_globs_are_go_path_match(pattern: str, text: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).fullmatch(text)) is matches


VOLUMES = [
    VolumeFacts("web-data", "local", {"app": "web"}, in_use=True),
    VolumeFacts("db", "local", {"app": "db", "keep": ""}, in_use=False),
    VolumeFacts("3f2a9c", "local", {}, in_use=False),
]


def volumes(*texts: str, keys: frozenset[str] = VOLUME_KEYS) -> list[str]:
    keep = volume_matcher(parse_filters(texts, keys))
    return [v.name for v in VOLUMES if keep(v)]


@pytest.mark.parametrize(
    ("texts", "names"),
    [
        (("name=d",), ["web-data", "db"]),
        (("name=^d",), ["db"]),
        (("name=db", "name=web"), ["web-data", "db"]),
        (("dangling=true",), ["db", "3f2a9c"]),
        (("dangling=false",), ["web-data"]),
        (("driver=local", "label=app"), ["web-data", "db"]),
        (("driver=nfs",), []),
        (("label=app", "label=keep"), ["db"]),
    ],
)
def test_volume_filters(texts: Sequence[str], names: list[str]) -> None:
    assert volumes(*texts) == names


def test_volume_prune_filters() -> None:
    assert volumes("label!=keep", keys=VOLUME_PRUNE_KEYS) == ["web-data", "3f2a9c"]
    assert volumes("label=app", "label!=app=db", keys=VOLUME_PRUNE_KEYS) == ["web-data"]
    with pytest.raises(UsageError, match="invalid filter 'until'"):
        volumes("until=1h", keys=VOLUME_PRUNE_KEYS)  # docker: volumes have no until
    with pytest.raises(UsageError, match="invalid filter 'label!'"):
        volumes("label!=x")


NETWORKS = [
    NetworkFacts("b" * 64, "bridge", "bridge", {}, 0.0, builtin=True),
    NetworkFacts("1a2b3c" + "0" * 58, "front", "bridge", {"team": "x"}, 100.0),
    NetworkFacts("9f" * 32, "none", "null", {}, 0.0, builtin=True),
]


def networks(*texts: str) -> list[str]:
    keep = network_matcher(parse_filters(texts, NETWORK_KEYS), now=NOW)
    return [n.name for n in NETWORKS if keep(n)]


@pytest.mark.parametrize(
    ("texts", "names"),
    [
        (("name=on",), ["front", "none"]),
        (("name=^bridge$", "name=front"), ["bridge", "front"]),
        (("id=1a2b",), ["front"]),
        (("driver=bridge",), ["bridge", "front"]),
        (("driver=bridge", "label=team=x"), ["front"]),
        (("type=builtin",), ["bridge", "none"]),
        (("type=custom",), ["front"]),
        (("scope=local",), ["bridge", "front", "none"]),
        (("scope=swarm",), []),
    ],
)
def test_network_filters(texts: Sequence[str], names: list[str]) -> None:
    assert networks(*texts) == names


@pytest.mark.parametrize(
    ("texts", "kept"),
    [
        ((), [True, True, True]),
        (("until=1h",), [True, True, False]),  # made 2 h, 1.5 h, 10 min ago
        (("until=90m",), [True, False, False]),  # exactly at the bound is not before it
        (("until=1h30m",), [True, False, False]),
        (("until=1.75h",), [True, False, False]),
        (("until=2026-12-07T14:15:00Z",), [True, False, False]),
        (("until=2026-12-07T14:15:00",), [True, False, False]),  # no zone: UTC
        (("until=" + str(NOW.timestamp() - HOUR),), [True, True, False]),
        (("label=app",), [True, True, False]),
        (("label!=app",), [False, False, True]),
        (("label!=app=web",), [False, True, True]),
        (("label=app", "label!=app=web"), [False, True, False]),
        (("until=1h", "label=app=db"), [False, True, False]),
    ],
)
def test_prune_filters(texts: Sequence[str], kept: list[bool]) -> None:
    keep = prune_matcher(parse_filters(texts, CONTAINER_PRUNE_KEYS), NOW)
    now = NOW.timestamp()
    subjects: list[tuple[float, dict[str, str]]] = [
        (now - 2 * HOUR, {"app": "web"}),
        (now - 1.5 * HOUR, {"app": "db"}),
        (now - 600, {}),
    ]
    assert [keep(created, labels) for created, labels in subjects] == kept


def test_until_values() -> None:
    assert parse_until("24h", NOW) == NOW.timestamp() - 86400
    assert parse_until("1700000000", NOW) == 1700000000.0
    assert (
        parse_until("2026-12-07", NOW)
        == datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC).timestamp()
    )
    for bad in ("", "1d", "h", "1h2", "soon"):
        with pytest.raises(UsageError, match="invalid filter 'until="):
            parse_until(bad, NOW)


def test_every_command_refuses_unknown_keys() -> None:
    key_sets: list[frozenset[str]] = [
        PS_KEYS, IMAGE_KEYS, VOLUME_KEYS, NETWORK_KEYS, CONTAINER_PRUNE_KEYS, IMAGE_PRUNE_KEYS,
        VOLUME_PRUNE_KEYS,
    ]  # fmt: skip
    for keys in key_sets:
        with pytest.raises(UsageError, match=r"^invalid filter 'bogus'$"):
            parse_filters(["bogus=1"], keys)
