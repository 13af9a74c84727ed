"""``rctl system service``'s socket: the URI, socket activation, owner-only binding."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from rctlbase.errors import UsageError
from rootless.api.service import activated_socket, bind_unix, parse_uri


def test_uris() -> None:
    assert parse_uri("unix:///run/user/1000/rctl/rctl.sock") == (
        "unix",
        "/run/user/1000/rctl/rctl.sock",
    )
    assert parse_uri("tcp://127.0.0.1:2375") == ("tcp", ("127.0.0.1", 2375))
    assert parse_uri("tcp://[::1]:2375") == ("tcp", ("::1", 2375))


@pytest.mark.parametrize(
    "uri",
    [
        "tcp://0.0.0.0:2375",
        "tcp://192.168.1.2:2375",
        "tcp://localhost",
        "unix://rel.sock",
        "http://x",
    ],
)
def test_refused_uris(uri: str) -> None:
    with pytest.raises(UsageError):
        parse_uri(uri)


def test_socket_activation_needs_our_pid() -> None:
    assert activated_socket({"LISTEN_PID": "1", "LISTEN_FDS": "1"}, os.getpid()) is None
    assert activated_socket({}, os.getpid()) is None
    assert (
        activated_socket({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0"}, os.getpid()) is None
    )


def test_activated_socket_is_fd_3() -> None:
    listener = socket.socket(socket.AF_UNIX)
    saved = os.dup(3) if _is_open(3) else None
    try:
        os.dup2(listener.fileno(), 3)
        env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1"}
        found = activated_socket(env, os.getpid())
        assert found is not None
        assert found.fileno() == 3
        assert found.family == socket.AF_UNIX
        found.detach()
    finally:
        listener.close()
        if saved is not None:
            os.dup2(saved, 3)
            os.close(saved)
        else:
            os.close(3)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_bound_socket_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "rt" / "rctl.sock"
    sock = bind_unix(str(path))
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        sock.close()
    again = bind_unix(str(path))  # a stale socket file is replaced
    again.close()


def test_a_shared_directory_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UsageError, match="not owner-only"):
        bind_unix(str(shared / "rctl.sock"))
