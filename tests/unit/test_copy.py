"""``rctl cp``: argument parsing and docker's placement rules (pure); what a copy does to
the directory it goes into (both sides on this machine's filesystem, the child forked
without entering any namespace)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

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
    run_copy,
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


def enter_nothing(child: Callable[[], int]) -> int:
    """The child of ``run_copy`` forked in this very view: "container" paths are the host's."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child exits here
        code = 1
        try:
            code = child()
        finally:
            os._exit(code)
    return pid


OLD = 1_000_000_000  # a time that no copy would give


def directory(path: Path, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    os.utime(path, (OLD, OLD))
    return path


@pytest.fixture
def container_dir(tmp_path: Path) -> Path:
    """A directory of the container, world-writable, with a file and a subdirectory."""
    source = directory(tmp_path / "ctr" / "shared", 0o777)
    (source / "file").write_text("data")
    directory(source / "sub", 0o775)
    os.utime(source, (2 * OLD, 2 * OLD))
    if os.geteuid() == 0:  # an owner that is not the destination's (--archive keeps it)
        os.chown(source, 12345, 12345)
    return source


def meta(path: Path) -> tuple[int, int, int]:
    """Mode, owner, and whether the time is the copied directory's (entries made in a
    directory move its mtime to now, never back to the source's)."""
    st = path.stat()
    return stat.S_IMODE(st.st_mode), st.st_uid, int(st.st_mtime) == 2 * OLD


def test_dir_dot_out_of_a_container_leaves_the_existing_host_directory_as_it_was(
    tmp_path: Path, container_dir: Path
) -> None:
    dest = directory(tmp_path / "home" / "private", 0o700)
    before = meta(dest)
    assert before[2] is False
    # --archive keeps owners: the same test runs as root or not.
    run_copy(f"ctr:{container_dir}/.", str(dest), enter_nothing, archive=True)
    assert (dest / "file").read_text() == "data"
    assert stat.S_IMODE((dest / "sub").stat().st_mode) == 0o775
    assert meta(dest) == before  # not 0777, not the container's time


def test_a_directory_into_an_existing_one_of_its_name_leaves_that_one_as_it_was(
    tmp_path: Path, container_dir: Path
) -> None:
    home = directory(tmp_path / "home", 0o755)
    mine = directory(home / "shared", 0o700)
    before = meta(mine)
    run_copy(f"ctr:{container_dir}", str(home), enter_nothing, archive=True)
    assert (mine / "file").read_text() == "data"
    assert meta(mine) == before


def test_a_directory_that_did_not_exist_takes_the_source_s_metadata(
    tmp_path: Path, container_dir: Path
) -> None:
    home = directory(tmp_path / "home", 0o755)
    run_copy(f"ctr:{container_dir}", str(home / "new"), enter_nothing, archive=True)
    assert meta(home / "new")[0] == 0o777  # docker's: DEST is the copy
    assert meta(home / "new")[2]


def test_dir_dot_into_a_container_leaves_its_existing_directory_as_it_was(
    tmp_path: Path,
) -> None:
    source = directory(tmp_path / "host" / "site", 0o700)
    (source / "index.html").write_text("hello")
    os.utime(source, (2 * OLD, 2 * OLD))
    root = directory(tmp_path / "ctr" / "srv", 0o755)
    before = meta(root)
    run_copy(f"{source}/.", f"ctr:{root}", enter_nothing, archive=True)
    assert (root / "index.html").read_text() == "hello"
    assert meta(root) == before  # not the host's 0700: the container's users still read it
    run_copy(str(source), f"ctr:{root.parent}", enter_nothing, archive=True)  # into srv's parent
    assert meta(root) == before
    assert (tmp_path / "ctr" / "site").stat().st_mode & 0o777 == 0o700
