"""``rctl cp``: argument parsing and docker's placement rules (pure)."""

from __future__ import annotations

import pytest

from rctlbase.errors import UsageError
from rootless.containers.copy import (
    CopyPath,
    Kind,
    Placement,
    contents_only,
    parse_copy_args,
    parse_copy_path,
    plan_placement,
)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("web:/etc/hosts", CopyPath("web", "/etc/hosts")),
        ("web:etc/hosts", CopyPath("web", "/etc/hosts")),  # relative to the container's root
        ("./a:b", CopyPath(None, "./a:b")),  # a host path with a colon
        ("/tmp/x:y", CopyPath(None, "/tmp/x:y")),
        ("plain", CopyPath(None, "plain")),
        (":odd", CopyPath(None, ":odd")),
    ],
)
def test_paths_are_docker_s(arg: str, expected: CopyPath) -> None:
    assert parse_copy_path(arg) == expected


def test_a_container_without_a_path_is_refused() -> None:
    with pytest.raises(UsageError, match="no path after web:"):
        parse_copy_path("web:")


@pytest.mark.parametrize(("src", "dst"), [("a", "b"), ("c1:/a", "c2:/b")])
def test_exactly_one_side_is_a_container(src: str, dst: str) -> None:
    with pytest.raises(UsageError):
        parse_copy_args(src, dst)


def test_contents_only() -> None:
    assert contents_only("/dir/.") and contents_only(".")
    assert not contents_only("/dir") and not contents_only("/dir/..")


@pytest.mark.parametrize(
    ("src", "contents", "dest", "dest_kind", "expected"),
    [
        # a file
        (Kind.FILE, False, "/new.txt", Kind.MISSING, Placement("/", "new.txt")),
        (Kind.FILE, False, "/srv/old.txt", Kind.FILE, Placement("/srv", "old.txt")),
        (Kind.FILE, False, "/srv", Kind.DIR, Placement("/srv", "")),
        (Kind.FILE, False, "out", Kind.MISSING, Placement(".", "out")),
        # a directory
        (Kind.DIR, False, "/srv/site", Kind.MISSING, Placement("/srv", "site")),
        (Kind.DIR, False, "/srv", Kind.DIR, Placement("/srv", "")),
        (Kind.DIR, True, "/srv", Kind.DIR, Placement("/srv", ".")),
        (Kind.DIR, True, "/srv/new", Kind.MISSING, Placement("/srv", "new")),
    ],
)
def test_placement_follows_docker(
    src: Kind, contents: bool, dest: str, dest_kind: Kind, expected: Placement
) -> None:
    assert plan_placement(src, contents, dest, dest_kind) == expected


def test_a_directory_onto_a_file_is_refused() -> None:
    with pytest.raises(UsageError, match="cannot copy a directory to a file"):
        plan_placement(Kind.DIR, False, "/etc/hosts", Kind.FILE)


def test_a_file_into_a_missing_directory_is_refused() -> None:
    with pytest.raises(UsageError, match="does not exist"):
        plan_placement(Kind.FILE, False, "/nowhere/", Kind.MISSING)
