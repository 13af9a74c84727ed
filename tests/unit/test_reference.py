"""Image reference parsing: docker's normalisation, distribution's grammar, short names."""

from __future__ import annotations

import pytest

from rctlbase.errors import UsageError
from rootless.images.reference import (
    ImageReference,
    candidates,
    digest_problem,
    is_short_name,
    parse_reference,
)

D = "sha256:" + "0123456789abcdef" * 4
D512 = "sha512:" + "ab" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("library/busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
        ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
        ("alice/tool", "docker.io", "alice/tool", "latest", None),
        ("127.0.0.1:5000/test/busybox:latest", "127.0.0.1:5000", "test/busybox", "latest", None),
        ("localhost/foo", "localhost", "foo", "latest", None),
        ("localhost:5000/foo:v1", "localhost:5000", "foo", "v1", None),
        ("quay.io/a/b@" + D, "quay.io", "a/b", None, D),
        ("quay.io/a/b:1.0@" + D, "quay.io", "a/b", "1.0", D),
        ("busybox:1@" + D, "docker.io", "library/busybox", "1", D),
        ("busybox@" + D512, "docker.io", "library/busybox", None, D512),
        ("[::1]:5000/x/y", "[::1]:5000", "x/y", "latest", None),
        ("ghcr.io/o/p/q/r:TAG_1.x-y", "ghcr.io", "o/p/q/r", "TAG_1.x-y", None),
        (
            "reg.example.com/a.b/c__d/e-f/g---h",
            "reg.example.com",
            "a.b/c__d/e-f/g---h",
            "latest",
            None,
        ),
        ("Example.COM/foo", "Example.COM", "foo", "latest", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # docker agrees
        ("a:" + "t" * 128, "docker.io", "library/a", "t" * 128, None),
    ],
)
def test_parse_valid(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("quay.io/a/b@" + D, "quay.io/a/b@" + D),
        ("busybox:1@" + D, "docker.io/library/busybox:1@" + D),
        ("127.0.0.1:5000/test/busybox", "127.0.0.1:5000/test/busybox:latest"),
    ],
)
def test_name_is_normalised(text: str, name: str) -> None:
    ref = parse_reference(text)
    assert ref.name == name
    assert str(ref) == name
    assert parse_reference(ref.name) == ref  # the normal form parses to itself


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("library/BusyBox", "lowercase"),
        ("docker.io/library/Busybox:1", "lowercase"),
        ("busybox:", "bad tag ''"),
        ("busybox:.hidden", "bad tag '.hidden'"),
        ("busybox:-x", "bad tag '-x'"),
        ("busybox:" + "t" * 129, "bad tag"),
        ("busybox:a/b", "bad registry 'busybox:a'"),  # a ':' before the '/' means a registry
        ("busybox:1.0:2", "bad repository component 'busybox:1.0'"),
        ("foo//bar", "bad repository component ''"),
        ("foo/", "bad repository component ''"),
        ("-foo", "bad repository component '-foo'"),
        ("foo_", "bad repository component 'foo_'"),
        ("foo..bar", "bad repository component 'foo..bar'"),
        ("foo___bar", "bad repository component"),
        ("foo bar", "bad repository component"),
        ("bad_host.com/foo", "bad registry 'bad_host.com'"),
        ("-host.com/foo", "bad registry"),
        ("host.com:port/foo", "bad registry 'host.com:port'"),
        ("busybox@", "ALGORITHM:HEX"),
        ("busybox@sha256", "ALGORITHM:HEX"),
        ("busybox@sha256:abc", "64 lowercase hex"),
        ("busybox@sha256:" + "A" * 64, "64 lowercase hex"),
        ("busybox@sha256:" + "a" * 65, "64 lowercase hex"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("busybox@" + D + "@" + D, "64 lowercase hex"),
        ("0123456789abcdef" * 4, "image ID"),
        ("a/" + "b" * 260, "longer than 255"),
    ],
)
def test_parse_invalid(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_reference(text)
    assert needle in info.value.message
    assert "\n" not in info.value.message
    assert info.value.hint


def test_error_hint_spells_the_lowercase_name() -> None:
    with pytest.raises(UsageError) as info:
        parse_reference("Quay.io/Foo/Bar")
    assert info.value.hint is not None and "foo/bar" in info.value.hint


def test_properties_for_the_registry_api() -> None:
    hub = parse_reference("busybox:1.36")
    assert hub.repository_path == "library/busybox"
    assert hub.api_reference == "1.36"
    assert hub.api_host == "registry-1.docker.io"
    assert hub.repository_name == "docker.io/library/busybox"
    pinned = parse_reference("127.0.0.1:5000/test/busybox:latest@" + D)
    assert pinned.api_reference == D  # the digest wins over the tag
    assert pinned.api_host == "127.0.0.1:5000"
    assert pinned.repository_path == "test/busybox"


@pytest.mark.parametrize(
    ("text", "familiar"),
    [
        ("busybox", "busybox:latest"),
        ("docker.io/library/busybox:1", "busybox:1"),
        ("alice/tool:2", "alice/tool:2"),
        ("docker.io/library/a/b", "library/a/b:latest"),
        ("quay.io/a/b:1", "quay.io/a/b:1"),
        ("localhost/foo", "localhost/foo:latest"),
    ],
)
def test_familiar_name(text: str, familiar: str) -> None:
    assert parse_reference(text).familiar_name == familiar


def test_with_digest_keeps_tag_and_validates() -> None:
    ref = parse_reference("quay.io/a/b:1").with_digest(D)
    assert ref == ImageReference("quay.io", "a/b", "1", D)
    with pytest.raises(UsageError):
        ref.with_digest("sha256:nothex")


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("busybox", True),
        ("busybox:1", True),
        ("library/busybox", True),
        ("alice/tool@" + D, True),
        ("docker.io/busybox", False),
        ("localhost/foo", False),
        ("host:5000/foo", False),
        ("Upper/foo", False),
        ("quay.io/a/b", False),
    ],
)
def test_is_short_name(text: str, short: bool) -> None:
    assert is_short_name(text) is short


def test_candidates_of_a_short_name_follow_the_search_list() -> None:
    found = candidates("busybox:1", ["quay.io", "docker.io", "127.0.0.1:5000"])
    assert [ref.name for ref in found] == [
        "quay.io/busybox:1",
        "docker.io/library/busybox:1",
        "127.0.0.1:5000/busybox:1",
    ]


def test_candidates_default_to_docker_io() -> None:
    assert [ref.name for ref in candidates("alice/tool")] == ["docker.io/alice/tool:latest"]
    assert [ref.name for ref in candidates("busybox@" + D)] == ["docker.io/library/busybox@" + D]


def test_candidates_of_a_qualified_name_are_itself() -> None:
    found = candidates("127.0.0.1:5000/test/busybox", ["quay.io"])
    assert found == [ImageReference("127.0.0.1:5000", "test/busybox", "latest", None)]


def test_candidates_are_deduplicated() -> None:
    found = candidates("busybox", ["docker.io", "index.docker.io"])
    assert [ref.name for ref in found] == ["docker.io/library/busybox:latest"]


def test_candidates_need_a_search_registry_for_short_names() -> None:
    with pytest.raises(UsageError) as info:
        candidates("busybox", [])
    assert "short name" in info.value.message
    # the hint names rctl.toml's own key, which the settings loader accepts
    assert info.value.hint is not None and "search = [" in info.value.hint
    assert "[registries]" in info.value.hint
    assert candidates("quay.io/a/b", [])[0].registry == "quay.io"  # qualified names don't


def test_candidates_refuse_a_bad_search_registry() -> None:
    with pytest.raises(UsageError, match="'bad_reg'"):
        candidates("busybox", ["bad_reg"])


def test_candidates_validate_the_name() -> None:
    with pytest.raises(UsageError, match="lowercase"):
        candidates("BusyBox", ["docker.io"])


@pytest.mark.parametrize(
    ("digest", "ok"),
    [
        (D, True),
        ("sha384:" + "c" * 96, True),
        (D512, True),
        ("sha256:" + "0" * 63, False),
        ("sha256:" + "g" * 64, False),
        ("sha1:" + "a" * 40, False),
        ("sha256-" + "a" * 64, False),
        (":" + "a" * 64, False),
        ("1sha:" + "a" * 64, False),
    ],
)
def test_digest_problem(digest: str, ok: bool) -> None:
    assert (digest_problem(digest) is None) is ok
