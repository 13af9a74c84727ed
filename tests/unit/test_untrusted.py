"""Reading an image's files on the host from hostile layer trees: links that leave the
layers, FIFOs, devices, huge files, loops (rootless.containers.untrusted, lookup.Layers)."""

from __future__ import annotations

import errno
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any

import pytest

from rootless.containers.context import USER_FILE_LIMIT, ContainerContext
from rootless.containers.lookup import Layers, check_command
from rootless.containers.untrusted import (
    UntrustedFileError,
    read_beneath,
    read_file,
    read_image_file,
)
from rootless.networks.attach import HOSTNAME_LIMIT, container_hostname
from rootless.storage.drivers import Driver

SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- the user's key\n"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n"
LIMIT = 4096


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A read that blocks (a FIFO opened for reading) fails the test instead of hanging."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("the read blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A host file outside the layers, as ~/.ssh/id_ed25519 is."""
    path = tmp_path / "home" / ".ssh" / "id_ed25519"
    path.parent.mkdir(parents=True)
    path.write_text(SECRET)
    return path


def layer_stack(tmp_path: Path, count: int = 2) -> list[Path]:
    """Layer directories as the store lays them out (LAYERS/CHAIN/diff), top first."""
    diffs = [tmp_path / "layers" / f"chain{i}" / "diff" for i in range(count)]
    for diff in diffs:
        diff.mkdir(parents=True)
    return diffs


def read(layers: Layers, path: str = "/etc/passwd") -> bytes | None:
    return read_image_file(layers, path, LIMIT, what=f"the image's {path}", hint="fix it")


def test_a_regular_file_of_a_lower_layer_is_read(tmp_path: Path) -> None:
    top, bottom = layer_stack(tmp_path)
    (bottom / "etc").mkdir()
    (bottom / "etc/passwd").write_text(PASSWD)
    (top / "etc").mkdir()
    assert read(Layers([top, bottom])) == PASSWD.encode()


def test_links_inside_the_image_are_followed_from_the_image_s_root(tmp_path: Path) -> None:
    top, bottom = layer_stack(tmp_path)
    (bottom / "usr/share/base").mkdir(parents=True)
    (bottom / "usr/share/base/passwd").write_text(PASSWD)
    (bottom / "usr/share/base/group").write_text("root:x:0:\n")
    (top / "etc").mkdir()
    (top / "etc/passwd").symlink_to("/usr/share/base/passwd")  # absolute: the image's /
    (top / "etc/group").symlink_to("../usr/share/base/group")  # relative
    (top / "lib").symlink_to("usr/share")  # a link in the middle of the path
    layers = Layers([top, bottom])
    assert read(layers) == PASSWD.encode()
    assert read(layers, "/etc/group") == b"root:x:0:\n"
    assert read(layers, "/lib/base/passwd") == PASSWD.encode()


def test_a_relative_link_out_of_the_layers_does_not_reach_the_host_file(
    tmp_path: Path, secret: Path
) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc").mkdir()
    # diff/etc/../../../.. is tmp_path on the host, but the image's / in the image.
    (diff / "etc/passwd").symlink_to("../../../../home/.ssh/id_ed25519")
    assert (diff / "etc/passwd").read_text() == SECRET  # what a plain read gives
    assert read(Layers([diff])) is None


def test_an_absolute_link_to_a_host_file_stays_in_the_image(tmp_path: Path, secret: Path) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc").mkdir()
    (diff / "etc/passwd").symlink_to(secret)
    (diff / "etc/group").symlink_to("/etc/passwd")  # a host file too, read by everyone
    assert read(Layers([diff])) is None
    assert read(Layers([diff]), "/etc/group") is None


def test_an_image_with_the_linked_path_gets_its_own_file(tmp_path: Path, secret: Path) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc").mkdir()
    (diff / "etc/passwd").symlink_to(secret)
    inside = diff / str(secret).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text(PASSWD)
    assert read(Layers([diff])) == PASSWD.encode()


def test_a_directory_link_in_a_lower_layer_under_an_upper_directory_is_not_walked(
    tmp_path: Path, secret: Path
) -> None:
    top, bottom = layer_stack(tmp_path)
    (top / "etc").mkdir()  # the merged /etc is this directory: the link below is hidden
    (bottom / "etc").symlink_to(secret.parent)  # the host's ~/.ssh
    (secret.parent / "passwd").write_text(SECRET)
    os.chmod(secret, 0o755)
    layers = Layers([top, bottom])
    assert read(layers) is None
    assert read(layers, "/etc/id_ed25519") is None
    # The command lookup walks the same way: the host's file is no command of the image.
    assert check_command(layers, "/etc/id_ed25519", [], "/")[0] == 127  # type: ignore[index]


def test_a_whiteout_and_an_opaque_directory_hide_the_lower_layers(tmp_path: Path) -> None:
    top, middle, bottom = layer_stack(tmp_path, 3)
    for diff in (middle, bottom):
        (diff / "etc").mkdir()
        (diff / "etc/passwd").write_text(PASSWD)
        (diff / "etc/group").write_text("root:x:0:\n")
    (top / "etc").mkdir()
    os.mknod(top / "etc/passwd", stat.S_IFCHR | 0o600, os.makedev(0, 0))  # deleted on top
    assert read(Layers([top, bottom])) is None
    os.setxattr(middle / "etc", "user.overlay.opaque", b"y")
    (middle / "etc/group").unlink()
    assert read(Layers([middle, bottom]), "/etc/group") is None
    assert read(Layers([middle, bottom])) == PASSWD.encode()


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc").mkdir()
    os.mkfifo(diff / "etc/passwd")
    with pytest.raises(UntrustedFileError, match="/etc/passwd is a FIFO, not a regular file"):
        read(Layers([diff]))
    # The descriptor-level check alone (the lookup's answer is not trusted either).
    dir_fd = os.open(diff / "etc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(UntrustedFileError, match="FIFO"):
            read_beneath(dir_fd, "passwd", LIMIT, what="passwd", hint="")
    finally:
        os.close(dir_fd)


def test_a_device_is_refused(tmp_path: Path) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc").mkdir()
    zero = os.stat("/dev/zero")
    try:
        os.mknod(diff / "etc/passwd", stat.S_IFCHR | 0o644, zero.st_rdev)
    except PermissionError:  # unprivileged: the link the image would carry instead
        (diff / "etc/passwd").symlink_to("/dev/zero")
        assert read(Layers([diff])) is None
        return
    with pytest.raises(UntrustedFileError, match="is a character device"):
        read(Layers([diff]))


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc/passwd").mkdir(parents=True)
    with pytest.raises(UntrustedFileError, match="is a directory"):
        read(Layers([diff]))


def test_a_file_larger_than_the_limit_is_refused_not_cut(tmp_path: Path) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc").mkdir()
    (diff / "etc/passwd").write_bytes(b"x" * LIMIT)
    assert read(Layers([diff])) == b"x" * LIMIT
    (diff / "etc/passwd").write_bytes(b"x" * (LIMIT + 1))
    with pytest.raises(UntrustedFileError, match=f"larger than {LIMIT} bytes"):
        read(Layers([diff]))


def test_a_link_loop_is_a_missing_file(tmp_path: Path) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc").mkdir()
    (diff / "etc/passwd").symlink_to("group")
    (diff / "etc/group").symlink_to("passwd")
    (diff / "etc/self").symlink_to("self")
    assert read(Layers([diff])) is None
    assert read(Layers([diff]), "/etc/self") is None


def test_read_file_refuses_a_link_at_the_last_component(tmp_path: Path, secret: Path) -> None:
    (tmp_path / "hostname").symlink_to(secret)
    with pytest.raises(OSError) as caught:
        read_file(str(tmp_path / "hostname"), LIMIT, what="hostname", hint="")
    assert caught.value.errno == errno.ELOOP
    (tmp_path / "name").write_text("web\n")
    assert read_file(str(tmp_path / "name"), LIMIT, what="hostname", hint="") == b"web\n"


def service_for(
    tmp_path: Path, diffs_top_first: list[Path], driver: Driver
) -> tuple[ContainerContext, Any]:
    """A ContainerContext with only what image_user_files uses, and an image record's stand-in."""
    service = object.__new__(ContainerContext)
    chains = {f"sha256:chain{i}": diff.parent for i, diff in enumerate(diffs_top_first)}
    images: Any = SimpleNamespace(store=SimpleNamespace(layer_dir=chains.__getitem__))
    service.images = images
    service.driver = driver
    # image.layers is bottom first, as in the image's manifest.
    image = SimpleNamespace(layers=[SimpleNamespace(chain_id=c) for c in reversed(chains)])
    return service, image


def test_the_engine_reads_passwd_and_group_through_the_image_s_root(
    tmp_path: Path, secret: Path
) -> None:
    top, bottom = layer_stack(tmp_path)
    (bottom / "etc").mkdir()
    (bottom / "etc/group").write_text("root:x:0:\n")
    (top / "etc").mkdir()
    (top / "etc/passwd").symlink_to("../../../../home/.ssh/id_ed25519")
    service, image = service_for(tmp_path, [top, bottom], Driver.OVERLAY)
    assert service.image_user_files(image) == (None, "root:x:0:\n")


@pytest.mark.parametrize("kind", ["fifo", "huge"])
def test_the_engine_refuses_a_hostile_passwd_with_a_message(tmp_path: Path, kind: str) -> None:
    (diff,) = layer_stack(tmp_path, 1)
    (diff / "etc").mkdir()
    if kind == "fifo":
        os.mkfifo(diff / "etc/passwd")
    else:
        with open(diff / "etc/passwd", "wb") as file:
            file.truncate(USER_FILE_LIMIT + 1)
    service, image = service_for(tmp_path, [diff], Driver.OVERLAY)
    with pytest.raises(UntrustedFileError, match="the image's /etc/passwd is ") as caught:
        service.image_user_files(image)
    assert caught.value.hint and "rebuild the image" in caught.value.hint


def test_vfs_images_are_read_from_their_top_layer_alone(tmp_path: Path) -> None:
    top, bottom = layer_stack(tmp_path)  # vfs: each layer a full tree, deletions applied
    (bottom / "etc").mkdir()
    (bottom / "etc/passwd").write_text(PASSWD)
    (top / "etc").mkdir()
    service, image = service_for(tmp_path, [top, bottom], Driver.VFS)
    assert service.image_user_files(image) == (None, None)
    service, image = service_for(tmp_path, [top, bottom], Driver.OVERLAY)
    assert service.image_user_files(image) == (PASSWD, None)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("web\n", "web"),
        ("  web  \nsecond line\n", "web"),
        ("", "configured"),
        ("x" * (HOSTNAME_LIMIT + 1), "configured"),  # grown by the container: not read
        ("fifo", "configured"),
        ("link", "configured"),
    ],
)
def test_a_container_s_hostname_file_is_read_as_an_untrusted_file(
    tmp_path: Path, secret: Path, content: str, expected: str
) -> None:
    etc = tmp_path / "ctr" / "etc"
    etc.mkdir(parents=True)
    if content == "fifo":
        os.mkfifo(etc / "hostname")
    elif content == "link":
        (etc / "hostname").symlink_to(secret)
    else:
        (etc / "hostname").write_text(content)
    record = {"id": "0123456789abcdef", "options": {"Hostname": "configured"}}
    assert container_hostname(etc.parent, record) == expected
    assert container_hostname(etc.parent, {**record, "options": {}}) in (expected, "0123456789ab")
