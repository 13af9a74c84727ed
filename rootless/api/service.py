"""``rctl system service``: listen, serve the API, exit when idle.

The socket is systemd's when the service is socket-activated (``LISTEN_FDS``/``LISTEN_PID``,
sd_listen_fds(3): the first passed descriptor, 3), else bound here: ``unix://PATH`` (default
``$XDG_RUNTIME_DIR/rctl/rctl.sock``, 0600 in the owner-only runtime directory) or, only when
asked, ``tcp://127.0.0.1:PORT`` (loopback only: the API gives whoever connects the user's
containers). With no connection for ``idle`` seconds the service exits (0: never); socket
activation starts it again on the next connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import stat
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from rctlbase.errors import UsageError
from rootless.api.app import Api
from rootless.api.server import Limits, Server, log_bug
from rootless.engine import Engine

LISTEN_FDS_START = 3


def activated_socket(env: dict[str, str] | os._Environ[str], pid: int) -> socket.socket | None:
    """The listening socket systemd passed, if this process was socket-activated."""
    if env.get("LISTEN_PID") != str(pid):
        return None
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count < 1:
        return None
    fd = LISTEN_FDS_START
    os.set_inheritable(fd, False)
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


def parse_uri(uri: str) -> tuple[str, str | tuple[str, int]]:
    """``("unix", PATH)`` or ``("tcp", (HOST, PORT))``; TCP only on a loopback address."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme == "unix":
        path = parts.path or parts.netloc
        if not path.startswith("/"):
            raise UsageError(f"invalid URI {uri!r}", hint="give unix:///absolute/path.sock")
        return "unix", path
    if parts.scheme == "tcp":
        try:
            host = parts.hostname or ""
            port = parts.port
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback, port = False, None
        if not loopback or port is None:
            raise UsageError(
                f"refusing to listen on {uri!r}: only loopback TCP addresses are served",
                hint="use unix:// (the default), or tcp://127.0.0.1:PORT",
            )
        return "tcp", (host, port)
    raise UsageError(f"invalid URI {uri!r}", hint="use unix:///PATH or tcp://127.0.0.1:PORT")


def bind_unix(path: str) -> socket.socket:
    """A listening unix socket at ``path``, owner-only from the start."""
    directory = Path(path).parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise UsageError(
            f"{directory} is not owner-only: the API socket won't be placed there",
            hint=f"chmod 700 {directory}, or give another unix:// path",
        )
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(256)
    sock.setblocking(False)
    return sock


def bind_tcp(address: tuple[str, int]) -> socket.socket:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(256)
    sock.setblocking(False)
    return sock


def serve(
    uri: str | None,
    idle: float,
    warn: Callable[[str], None],
    make_engine: Callable[[], Engine] = Engine,
) -> None:
    """Serve until idle for ``idle`` seconds (0: until SIGTERM/SIGINT)."""
    sock = activated_socket(os.environ, os.getpid())
    if sock is None:
        if uri is None:
            uri = f"unix://{make_engine().api_socket_path()}"
        kind, address = parse_uri(uri)
        if kind == "unix":
            assert isinstance(address, str)
            sock = bind_unix(address)
        else:
            assert isinstance(address, tuple)
            warn(f"the API listens on {uri}: anyone on this host who connects runs your containers")
            sock = bind_tcp(address)
    api = Api(make_engine)
    api.on_bug = log_bug
    server = Server(api, Limits())
    try:
        asyncio.run(_serve(server, sock, idle or None))
    finally:
        server.close()
        sock.close()


async def _serve(server: Server, sock: socket.socket, idle: float | None) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(server.serve(sock, idle))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    sys.stderr.flush()
