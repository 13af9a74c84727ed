"""Published ports under load: many clients at once through ``-p`` with slirp4netns, where
both tools forward with a proxy process of their own (rctl its relay, podman its
rootlessport).

One ``test/busybox`` container per tool publishes TCP port 80 and UDP port 9999, where the
host's ``socat`` echoes (copied in with its libraries, as network.py copies iperf3; a
child per connection or datagram, a listen backlog of 4096: busybox httpd's 9 would
measure SYN retransmissions). Each round:

- **1000 TCP connections at once**: all opened, then on each a line sent and the sending
  side shut, then every answer read to its end; the wall time, and how many got their
  line back;
- **a burst of 5000 UDP clients**: each sends a datagram, all at once; how many get it
  back within 2 s of quiet (the rest overflow a socket buffer somewhere on the way: the
  proxy's, or socat's, which forks a child per datagram);
- afterwards, whether one more echo of each protocol comes through within 30 s (the
  proxy still serves), and the proxy's RSS (rctl: the relay process; podman: its
  rootlessport processes).
"""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from kit import (
    REG,
    Result,
    Sample,
    Samples,
    Step,
    StepFailed,
    Tool,
    measure,
    scenario_tools,
    summarize,
)
from memory import comm, status_kib, user_pids
from network import program_tarball

GROUP = "portload"
SOCAT = "/usr/bin/socat"
CONNECTIONS = 1000
UDP_CLIENTS = 5000
SOCAT_RUN = "/opt/socat/ld.so --library-path /opt/socat /opt/socat/socat"
SERVE = (
    "while [ ! -e /opt/socat/ready ]; do sleep 0.1; done; "
    f"{SOCAT_RUN} TCP-LISTEN:80,fork,reuseaddr,backlog=4096 PIPE & "
    f"exec {SOCAT_RUN} UDP4-RECVFROM:9999,fork PIPE"
)


def raise_fd_limit() -> None:
    """5000 sockets at once: the soft RLIMIT_NOFILE up to the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < UDP_CLIENTS + 200:
        raise StepFailed(f"the hard RLIMIT_NOFILE ({hard}) is below {UDP_CLIENTS + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def tcp_echo(port: int) -> bool:
    return tcp_at_once(port, 1, timeout=2) == 1


def udp_echo(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(0.5)
        client.sendto(b"echo", ("127.0.0.1", port))
        try:
            return client.recv(100) == b"echo"
        except OSError:
            return False


def wait_until(what: str, predicate: Callable[[], object], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise StepFailed(f"no {what} after {timeout:.0f} s")
        time.sleep(0.2)


def tcp_at_once(port: int, count: int, timeout: float = 120) -> int:
    """``count`` connections opened at once, then on each a line sent and the sending side
    shut, then every answer read to its end (all within ``timeout``): how many got their
    line back."""
    deadline = time.monotonic() + timeout
    clients: list[socket.socket] = []
    try:
        with contextlib.suppress(OSError):
            for _ in range(count):
                left = max(deadline - time.monotonic(), 0.01)
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=left))
        for n, client in enumerate(clients):
            with contextlib.suppress(OSError):
                client.sendall(b"%d\n" % n)
                client.shutdown(socket.SHUT_WR)
        served = 0
        for n, client in enumerate(clients):
            answer = b""
            with contextlib.suppress(OSError):
                client.settimeout(max(deadline - time.monotonic(), 0.01))
                while chunk := client.recv(4096):
                    answer += chunk
            served += answer == b"%d\n" % n
        return served
    finally:
        for client in clients:
            client.close()


def udp_burst(port: int, count: int) -> int:
    """``count`` clients each send a datagram at once: how many get it back."""
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    with selectors.DefaultSelector() as selector:
        try:
            for n, client in enumerate(clients):
                client.sendto(b"%d" % n, ("127.0.0.1", port))
                selector.register(client, selectors.EVENT_READ, b"%d" % n)
            answered = 0
            while ready := selector.select(2):
                for key, _ in ready:
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    with contextlib.suppress(OSError):
                        answered += sock.recv(100) == key.data
                    selector.unregister(sock)
            return answered
        finally:
            for client in clients:
                client.close()


def proxy_pids(before: set[int]) -> set[int]:
    """The port proxies started since ``before``: rctl's relay (a fork of its launcher,
    ``python3 -m rootless.containers.launch``), podman's rootlessport processes."""
    found = set()
    for pid in user_pids() - before:
        name = comm(pid)
        if name.startswith("rootlessport"):
            found.add(pid)
        elif name.startswith("python"):
            with contextlib.suppress(OSError):
                if b"rootless.containers.launch" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.add(pid)
    return found


def load_round(ports: tuple[int, int], proxies: set[int]) -> Sample:
    tcp_port, udp_port = ports
    started = time.perf_counter()
    served = tcp_at_once(tcp_port, CONNECTIONS)
    tcp_time = time.perf_counter() - started
    answered = udp_burst(udp_port, UDP_CLIENTS)
    alive = 1.0
    for what, check in (("TCP", partial(tcp_echo, tcp_port)), ("UDP", partial(udp_echo, udp_port))):
        try:
            wait_until(f"{what} echo after the load", check, 30)
        except StepFailed:
            alive = 0.0
    return {
        "tcp": tcp_time,
        "served": served,
        "udp": answered,
        "alive": alive,
        "rss": sum(status_kib(pid, "VmRSS") for pid in proxies),
    }


def start(tool: Tool, ports: tuple[int, int], tarball: bytes) -> set[int]:
    """The servers' container behind ``ports``; its port proxy's processes."""
    before = user_pids()
    cid = tool.run(
        "run", "-d", "--network", "slirp4netns", "-p", f"{ports[0]}:80",
        "-p", f"{ports[1]}:9999/udp", f"{REG}/test/busybox", "sh", "-c", SERVE,
    ).split()[-1]  # fmt: skip
    tool.run("exec", "-i", cid, "busybox", "tar", "-x", "-C", "/", stdin=tarball)
    wait_until("TCP echo", partial(tcp_echo, ports[0]))
    wait_until("UDP echo", partial(udp_echo, ports[1]))
    proxies = proxy_pids(before)
    if not proxies:
        raise StepFailed("no port proxy process found")
    return proxies


def port_load(rounds: int, work: Path, base_port: int = 15230) -> list[Result]:
    """1000 TCP connections and 5000 UDP clients at once through ``-p``, for both tools."""
    raise_fd_limit()
    tarball = program_tarball(SOCAT, "socat")
    with scenario_tools(work, "port-load") as tools:
        steps: dict[str, Step] = {}
        failed: dict[str, str] = {}
        for index, (name, tool) in enumerate(tools.items()):
            ports = (base_port + 2 * index, base_port + 2 * index + 1)
            try:
                tool.pull("test/busybox")
                proxies = start(tool, ports, tarball)
            except StepFailed as exc:
                failed[name] = str(exc)
                continue
            steps[name] = Step(partial(load_round, ports, proxies))
        samples: Samples = measure(rounds, steps)
        samples.failed.update(failed)
    served = "; ".join(
        f"{name} served {min(samples.of(name, 'served')):.0f}-{max(samples.of(name, 'served')):.0f}"
        for name in steps
        if samples.of(name, "served")
    )
    alive = "; ".join(
        f"{name} answered again after {sum(samples.of(name, 'alive')):.0f} of "
        f"{len(samples.of(name, 'alive'))} rounds"
        for name in steps
        if samples.of(name, "alive")
    )
    proxy = "the proxy: rctl's relay, podman's rootlessport processes"
    return [
        summarize(
            f"{CONNECTIONS} TCP connections at once through -p, slirp4netns", GROUP, "s",
            samples, "tcp",
            note=f"opened, then a line and a half-close on each, then every answer read "
            f"(socat echoes); of {CONNECTIONS}, {served}",
        ),
        summarize(
            f"{UDP_CLIENTS} UDP clients at once through -p, slirp4netns: answered", GROUP,
            "clients", samples, "udp", better="higher",
            note="socat echoes (a child per datagram); the rest overflow a socket buffer on "
            f"the way; one more echo of each protocol within 30 s afterwards: {alive}",
        ),
        summarize(
            "port proxy RSS after the load", GROUP, "KiB", samples, "rss", note=proxy,
        ),
    ]  # fmt: skip
