"""slirp4netns: user-mode networking (libslirp) for a network namespace, ports over its API.

The sequence, for the namespaces of a paused process ``PID`` (slirp4netns(1), 1.2.0)::

    slirp4netns --configure --mtu=65520 --disable-host-loopback \\
                --enable-sandbox --enable-seccomp \\
                --api-socket SOCK --ready-fd W PID tap0
      │  joins PID's user and network namespaces in a child, makes tap0 (or attaches
      │  to the persistent one a container's launcher made: :mod:`netns.tap`),
      │  configures 10.0.2.100/24, default route via 10.0.2.2, lo up; DNS at 10.0.2.3
      ├─ sandbox: joins PID's user namespace as its root, binds SOCK, then a mount
      │  namespace of its own whose root is an empty read-only tmpfs with only /etc and
      │  /run of the host (read-only), all capabilities dropped, and a seccomp filter
      ├─ writes "1" to W once the network and the API socket are ready
      └─ add_hostfwd requests on SOCK (one JSON request per connection, then SHUT_WR):
         slirp4netns itself listens on the host port and forwards (``port_handler=
         slirp4netns``; by default rctl's relay forwards instead: netns/relay.py)

slirp4netns does not daemonize. It is started in a session of its own
(``setsid``), so that nothing aimed at the launcher's process group or session (a hangup,
a signal to the group) reaches it when the launcher exits after the container starts; it is
reparented to the service manager and stays in the unit's cgroup, which systemd kills
whole when the unit stops. That cgroup is its lifetime: no ``--exit-fd`` is given, because
no process of rctl's own lives as long as the container to hold the other end.

slirp4netns is the one helper that parses the container's packets on the host side, so it
is sandboxed as podman sandboxes it, when the binary has the options (slirp4netns >= 0.4,
and ``--enable-seccomp`` built with libseccomp): :func:`sandbox_flags` reads its ``--help``
once per binary and keeps the answer in rctl's runtime directory. The sandbox changes
nothing rctl relies on: the API socket is bound before the pivot (its path is in
``$XDG_RUNTIME_DIR``, under /run, which stays visible anyway), the ready pipe and the log
are inherited descriptors, the tap device is opened before, and DNS forwarding reads the
host's /etc/resolv.conf (or /run's stub file) in the mounts it keeps.
:func:`spawn_slirp4netns` starts it and :func:`finish_slirp4netns` waits for its ready pipe
and publishes the ports, so a caller can do other work in between (a container's launcher
has crun create the container meanwhile).

libslirp terminates a published port's connections on the host and opens new ones inside
with the client's address as their source, so a remote client's address reaches the
container (measured in the test host); clients on the host's loopback arrive from the
gateway (10.0.2.2), and a client whose address lies inside ``cidr`` can't be answered (the
namespace takes it for a neighbour on tap0). That keeps addresses but costs throughput
(libslirp's user-space TCP): rctl's default is its own relay (:mod:`netns.relay`), as
podman's is rootlessport.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netns.ports import PublishedPort
from rctlbase.errors import CommandFailed, ExternalError
from rctlbase.run import last_line, run_program, spawn_program

if TYPE_CHECKING:
    import subprocess

READY_TIMEOUT = 10.0
TAP = "tap0"
DEFAULT_CIDR = "10.0.2.0/24"


@dataclass(frozen=True, slots=True)
class SlirpOptions:
    """podman's ``slirp4netns:`` options, validated (the defaults are podman's)."""

    mtu: int = 65520
    cidr: str = DEFAULT_CIDR
    allow_host_loopback: bool = False
    enable_ipv6: bool = False
    outbound_addr: str = ""
    outbound_addr6: str = ""
    port_handler: str = "rctl"  # or slirp4netns: who forwards the published TCP ports

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def gateway(self) -> str:
        """The host as the namespace sees it (network address + 2)."""
        return str(self.network[2])

    @property
    def dns(self) -> str:
        """slirp4netns's built-in DNS forwarder (network address + 3)."""
        return str(self.network[3])

    @property
    def guest(self) -> str:
        """The address ``--configure`` gives tap0 (network address + 100)."""
        return str(self.network[100])


def slirp4netns_argv(
    pid: int,
    options: SlirpOptions,
    *,
    api_socket: str,
    ready_fd: int,
    sandbox: Sequence[str] = (),
) -> list[str]:
    """The slirp4netns command for ``pid``'s network namespace; ``sandbox`` are the
    options of :func:`sandbox_flags`."""
    argv = ["slirp4netns", "--configure", f"--mtu={options.mtu}", *sandbox]
    if options.cidr != DEFAULT_CIDR:
        argv.append(f"--cidr={options.cidr}")
    if not options.allow_host_loopback:
        argv.append("--disable-host-loopback")
    if options.enable_ipv6:
        argv.append("--enable-ipv6")
    if options.outbound_addr:
        argv.append(f"--outbound-addr={options.outbound_addr}")
    if options.outbound_addr6:
        argv.append(f"--outbound-addr6={options.outbound_addr6}")
    argv += [f"--api-socket={api_socket}", f"--ready-fd={ready_fd}", str(pid), TAP]
    return argv


# podman's checkSlirpFlags looks for the same two words in `slirp4netns --help`.
SANDBOX_FLAGS = ("--enable-sandbox", "--enable-seccomp")
FEATURES_FILE = "slirp4netns-features.json"


def sandbox_flags(cache_dir: Path) -> tuple[str, ...]:
    """The options of :data:`SANDBOX_FLAGS` the slirp4netns on PATH has.

    Its ``--help`` is read once per binary: the answer is kept in ``cache_dir`` (rctl's
    runtime directory, gone at logout or reboot) with the binary's path, inode, size and
    mtime, so an upgraded slirp4netns is asked again. No slirp4netns: no options (starting
    it says it is missing)."""
    binary = _find_program("slirp4netns")
    if binary is None:
        return ()
    st = os.stat(binary)
    key = [binary, st.st_ino, st.st_size, st.st_mtime_ns]
    cache = cache_dir / FEATURES_FILE
    with contextlib.suppress(OSError, ValueError):
        cached = json.loads(cache.read_text())
        if cached["binary"] == key:
            return tuple(f for f in cached["flags"] if f in SANDBOX_FLAGS)
    said = run_program([binary, "--help"], check=False, timeout=10)
    text = (said.stdout + said.stderr).decode(errors="replace")
    flags = tuple(f for f in SANDBOX_FLAGS if f in text)
    with contextlib.suppress(OSError):
        partial = cache.with_name(f".{FEATURES_FILE}.{os.getpid()}")
        partial.write_text(json.dumps({"binary": key, "flags": flags}))
        partial.replace(cache)
    return flags


def _find_program(name: str) -> str | None:
    """``name``'s path on PATH, as exec would find it."""
    for directory in os.get_exec_path():
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK) and os.path.isfile(path):
            return path
    return None


def hostfwd_request(port: PublishedPort, guest: str) -> dict[str, Any]:
    """The API request publishing ``port`` (slirp4netns(1), "API SOCKET")."""
    return {
        "execute": "add_hostfwd",
        "arguments": {
            "proto": str(port.protocol),
            "host_addr": port.host_ip or "0.0.0.0",  # noqa: S104 - what -p without an IP means
            "host_port": port.host_port,
            "guest_addr": guest,
            "guest_port": port.container_port,
        },
    }


def api_request(path: str, request: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to slirp4netns's API socket; its ``return`` value.

    The API reads a request until the client shuts down its writing side, answers, and
    closes. An ``error`` answer becomes ExternalError carrying slirp4netns's description.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(json.dumps(request).encode())
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    except OSError as exc:
        raise ExternalError(
            f"slirp4netns API {path}: {exc.strerror or exc}",
            hint="slirp4netns may have exited; see the container's journal",
        ) from exc
    try:
        answer = json.loads(b"".join(chunks))
    except json.JSONDecodeError as exc:
        raise ExternalError(
            f"slirp4netns API answered {b''.join(chunks)[:100]!r}",
            hint="check slirp4netns ('slirp4netns --version') and run with --debug",
        ) from exc
    if "error" in answer:
        error = answer["error"]
        said = error.get("desc", error) if isinstance(error, dict) else error
        raise ExternalError(
            f"slirp4netns refused {request['execute']}: {said}",
            hint="check slirp4netns ('slirp4netns --version') and run with --debug",
        )
    result: dict[str, Any] = answer.get("return", {})
    return result


def spawn_slirp4netns(
    pid: int,
    options: SlirpOptions,
    *,
    api_socket: str,
    log_file: str,
    ready_fd: int,
    sandbox: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start slirp4netns for ``pid``'s namespaces without waiting for it: it writes "1" on
    ``ready_fd`` once the network is up (:func:`finish_slirp4netns` waits for that). It
    runs in a session of its own, with its output in ``log_file``, sandboxed with the
    ``sandbox`` options (:func:`sandbox_flags`)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(api_socket)  # left by a previous start of the same container
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        argv = slirp4netns_argv(
            pid, options, api_socket=api_socket, ready_fd=ready_fd, sandbox=sandbox
        )
        return spawn_program(
            argv, pass_fds=(ready_fd,), stdin="devnull", stdout=log, stderr=log,
            new_session=True,
        )  # fmt: skip
    finally:
        os.close(log)


def finish_slirp4netns(
    ready_fd: int,
    options: SlirpOptions,
    ports: Sequence[PublishedPort],
    *,
    api_socket: str,
    log_file: str,
    timeout: float = READY_TIMEOUT,
) -> None:
    """Wait until slirp4netns said it is ready on the read end of its ready pipe (every
    copy of the write end but its own closed), then publish ``ports`` through its API.
    Raises CommandFailed with the last line of its log when it ended or was not ready in
    time, and ExternalError when the API refuses a port. Killing it is the caller's
    business (it is not the caller's child)."""
    if not _wait_ready(ready_fd, timeout):
        said = last_line(Path(log_file).read_bytes())
        raise CommandFailed(
            f"slirp4netns failed: {said or 'not ready in time'}",
            hint=f"its output is in {log_file}",
            returncode=1,
        )
    for port in ports:
        api_request(api_socket, hostfwd_request(port, options.guest))


def _wait_ready(fd: int, timeout: float) -> bool:
    """True once slirp4netns wrote "1" on its ready pipe; False on end of file or timeout."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            data = os.read(fd, 16)
            return data.startswith(b"1")
    return False
