"""The per-user rootless network namespace's one slirp4netns: outbound access for every
bridge network inside it, and published ports added and removed while it runs.

Why slirp4netns here (and not pasta): the namespace outlives each container, so ports must
be added and removed at run time; slirp4netns has an API socket for that (``add_hostfwd``,
``remove_hostfwd``, slirp4netns(1) "API SOCKET"), while pasta's forwards are fixed when it
starts. The tap gets slirp4netns's default addresses: ``10.0.2.100/24`` with the gateway
``10.0.2.2`` and a DNS forwarder at ``10.0.2.3``. Connections through a published port
reach containers from ``10.0.2.2``: the client's source address is not kept on this path.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
from dataclasses import dataclass

from rctlbase.errors import ExternalError, HostError
from rctlbase.run import spawn_program

TAP = "tap0"
TAP_ADDRESS = "10.0.2.100"
DNS_ADDRESS = "10.0.2.3"
MTU = 65520
READY_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class HostForward:
    """One port slirp4netns listens on (host side) and forwards to the tap address."""

    protocol: str  # tcp | udp
    host_ip: str
    host_port: int
    guest_port: int = 0  # 0: the host port (bridge networks DNAT it inside)


def slirp4netns_argv(pid: int, api_socket: str, ready_fd: int) -> list[str]:
    """slirp4netns configuring ``pid``'s network namespace (joined through its user
    namespace), with an API socket and no access to the host's loopback."""
    return [
        "slirp4netns", "--configure", f"--mtu={MTU}", "--disable-host-loopback",
        f"--api-socket={api_socket}", f"--ready-fd={ready_fd}", str(pid), TAP,
    ]  # fmt: skip


def start_slirp4netns(pid: int, api_socket: str) -> int:
    """Start slirp4netns for ``pid``'s namespace; returns its pid once the tap is configured.

    It is not waited for: it lives in the caller's cgroup (the rootless namespace's unit)
    and ends with it.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(api_socket)
    read_end, write_end = os.pipe()
    try:
        proc = spawn_program(
            slirp4netns_argv(pid, api_socket, write_end), pass_fds=(write_end,), stdin="devnull"
        )
    finally:
        os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], READY_TIMEOUT)
        said = os.read(read_end, 1) if ready else b""
    finally:
        os.close(read_end)
    if said != b"1":
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        raise HostError(
            "slirp4netns did not configure the rootless network namespace",
            hint="'journalctl --user -u rctl-netns*' shows why; 'rctl doctor' checks /dev/net/tun",
        )
    return proc.pid


def _call(api_socket: str, request: dict[str, object]) -> dict[str, object]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(api_socket)
            s.sendall(json.dumps(request).encode())
            s.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError as exc:
        raise ExternalError(
            f"slirp4netns API ({api_socket}): {exc.strerror or exc}",
            hint="the rootless network namespace's helper is gone: stop and start the container",
        ) from exc
    reply: dict[str, object] = json.loads(data or b"{}")
    return reply


def add_forward(api_socket: str, forward: HostForward) -> int:
    """Listen on the host's ``host_ip:host_port`` and forward to the tap address's same
    port; returns slirp4netns's id of the forward."""
    reply = _call(
        api_socket,
        {
            "execute": "add_hostfwd",
            "arguments": {
                "proto": forward.protocol,
                "host_addr": forward.host_ip or "0.0.0.0",  # noqa: S104 - docker's default
                "host_port": forward.host_port,
                "guest_addr": TAP_ADDRESS,
                "guest_port": forward.guest_port or forward.host_port,
            },
        },
    )
    result = reply.get("return")
    if not isinstance(result, dict) or "id" not in result:
        error = reply.get("error")
        desc = error.get("desc") if isinstance(error, dict) else reply
        raise ExternalError(
            f"cannot publish port {forward.host_port}/{forward.protocol}: {desc}",
            hint="is the host port taken? choose another one",
        )
    return int(result["id"])


def remove_forward(api_socket: str, forward_id: int) -> None:
    """Stop forwarding the port slirp4netns knows as ``forward_id`` (gone already: fine)."""
    with contextlib.suppress(ExternalError):
        _call(api_socket, {"execute": "remove_hostfwd", "arguments": {"id": forward_id}})
