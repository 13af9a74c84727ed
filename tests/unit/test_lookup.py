"""Finding a container's command in its image's layers (overlay format, whiteouts)."""

from __future__ import annotations

import os
from pathlib import Path

from rootless.containers.lookup import Layers, check_command

ENV = ["PATH=/usr/bin:/bin"]


def make_layers(tmp_path: Path) -> Layers:
    bottom, top = tmp_path / "bottom", tmp_path / "top"
    for layer in (bottom, top):
        (layer / "bin").mkdir(parents=True)
        (layer / "usr/bin").mkdir(parents=True)
    (bottom / "bin/busybox").write_text("")
    (bottom / "bin/busybox").chmod(0o755)
    (bottom / "bin/sh").symlink_to("busybox")
    (bottom / "bin/gone").write_text("")
    (bottom / "bin/gone").chmod(0o755)
    (bottom / "etc").mkdir()
    (bottom / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\n")
    (top / "usr/bin/env").symlink_to("/bin/busybox")
    os.mknod(top / "bin/gone", 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout
    return Layers([top, bottom])


def test_found_through_path_and_symlinks(tmp_path: Path) -> None:
    layers = make_layers(tmp_path)
    assert check_command(layers, "sh", ENV, "/") is None
    assert check_command(layers, "env", ENV, "/") is None
    assert check_command(layers, "/bin/sh", ENV, "/") is None


def test_missing_and_whited_out_commands_are_127(tmp_path: Path) -> None:
    layers = make_layers(tmp_path)
    assert check_command(layers, "nosuch", ENV, "/") == (
        127,
        "executable file `nosuch` not found in $PATH",
    )
    assert check_command(layers, "gone", ENV, "/")[0] == 127  # type: ignore[index]
    assert check_command(layers, "/bin/nosuch", ENV, "/") == (
        127,
        "/bin/nosuch: no such file or directory",
    )


def test_not_executable_is_126(tmp_path: Path) -> None:
    layers = make_layers(tmp_path)
    assert check_command(layers, "/etc/passwd", ENV, "/") == (126, "/etc/passwd: permission denied")
    assert check_command(layers, "/etc", ENV, "/") == (126, "/etc: is a directory")
    assert check_command(layers, "passwd", ENV, "/etc") == (
        127,
        "executable file `passwd` not found in $PATH",
    )
