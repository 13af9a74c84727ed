"""rctl's port relay (netns/relay.py) under load in the test host, as uid 1000: a thousand TCP
connections at once through ``-p``, then a burst of 5000 UDP clients, and the same relay
still serving both afterwards, with modest memory.

The relay is the default port handler of slirp4netns. The container echoes both protocols
with the test host's own ``socat`` (a child per connection or datagram, a listen backlog
of 4096: busybox httpd's 9 would make the clients wait on SYN retransmissions), imported
as an image (``rctl import``) as test_network.py does.
"""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, free_port, run, wait_for

CONNECTIONS = 1000
UDP_CLIENTS = 5000


@pytest.fixture
def many_fds() -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE raised to the hard one: 5000 sockets at once."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert before[1] >= UDP_CLIENTS + 200, f"hard RLIMIT_NOFILE {before[1]} is too low"
    resource.setrlimit(resource.RLIMIT_NOFILE, (before[1], before[1]))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def servers_image(rctl: Rctl, tmp_path: Path) -> str:
    """An image of the host's static busybox, and socat with its libraries."""
    stage = tmp_path / "stage"
    for directory in ("tmp", "bin"):
        (stage / directory).mkdir(parents=True)
    (stage / "tmp").chmod(0o1777)
    libs = run("ldd", "/usr/bin/socat").stdout.split()
    for name in {"/bin/busybox", "/usr/bin/socat", *(w for w in libs if w.startswith("/"))}:
        target = stage / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        run("cp", "-L", name, str(target))
    run("tar", "-C", str(stage), "-cf", str(tmp_path / "servers.tar"), ".")
    rctl("import", str(tmp_path / "servers.tar"), "relayload")
    return "relayload"


def relay_pid(cid: str) -> int:
    """The relay process in the container's unit (forked from the launcher)."""
    group = run("systemctl", "--user", "show", "-p", "ControlGroup", "--value",
                f"rctl-{cid}.service").stdout.strip()  # fmt: skip
    for procs in (Path("/sys/fs/cgroup") / group.lstrip("/")).rglob("cgroup.procs"):
        for pid in procs.read_text().split():
            with contextlib.suppress(OSError):
                if b"rootless.containers.launch" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
    raise AssertionError(f"no relay in {group}")


def status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def echo_on_each(port: int, count: int, timeout: float = 60) -> list[bytes]:
    """``count`` connections opened at once, then on each a line sent and the sending side
    shut, then every answer read to its end (all within ``timeout``)."""
    deadline = time.monotonic() + timeout
    clients: list[socket.socket] = []
    answers = []
    try:
        with contextlib.suppress(OSError):
            for _ in range(count):
                left = max(deadline - time.monotonic(), 0.01)
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=left))
        for n, client in enumerate(clients):
            with contextlib.suppress(OSError):
                client.sendall(b"%d\n" % n)
                client.shutdown(socket.SHUT_WR)
        for client in clients:
            answer = b""
            with contextlib.suppress(OSError):
                client.settimeout(max(deadline - time.monotonic(), 0.01))
                while chunk := client.recv(4096):
                    answer += chunk
            answers.append(answer)
        return answers
    finally:
        for client in clients:
            client.close()


def udp_burst(port: int, count: int, timeout: float = 10) -> int:
    """``count`` clients each send a datagram at once; how many get it back."""
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    with selectors.DefaultSelector() as selector:
        try:
            for n, client in enumerate(clients):
                client.sendto(b"%d" % n, ("127.0.0.1", port))
                selector.register(client, selectors.EVENT_READ, b"%d" % n)
            answered = 0
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and (ready := selector.select(2)):
                for key, _ in ready:
                    with contextlib.suppress(OSError):
                        answered += key.fileobj.recv(100) == key.data  # type: ignore[union-attr]
                    selector.unregister(key.fileobj)
            return answered
        finally:
            for client in clients:
                client.close()


def tcp_echo(port: int) -> bool:
    return echo_on_each(port, 1, timeout=2) == [b"0\n"]


def udp_echo(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(0.5)
        client.sendto(b"still", ("127.0.0.1", port))
        try:
            return client.recv(100) == b"still"
        except OSError:
            return False


def test_the_relay_serves_1000_tcp_connections_and_survives_5000_udp_clients(
    rctl: Rctl, tmp_path: Path, many_fds: None
) -> None:
    image = servers_image(rctl, tmp_path)
    tcp_port, udp_port = free_port(), free_port()
    cid = rctl(
        "run", "-d", "--network", "slirp4netns", "-p", f"{tcp_port}:80",
        "-p", f"{udp_port}:9999/udp", "--name", "load", image, "/bin/busybox", "sh", "-c",
        "/usr/bin/socat TCP-LISTEN:80,fork,reuseaddr,backlog=4096 PIPE & "
        "exec /usr/bin/socat UDP4-RECVFROM:9999,fork PIPE",
    ).stdout.strip()  # fmt: skip
    assert wait_for("the TCP echo", lambda: tcp_echo(tcp_port))
    assert wait_for("the UDP echo", lambda: udp_echo(udp_port))
    relay = relay_pid(cid)
    rss_before = status(relay, "VmRSS")

    started = time.monotonic()
    answers = echo_on_each(tcp_port, CONNECTIONS)
    tcp_seconds = time.monotonic() - started
    served = sum(a == b"%d\n" % n for n, a in enumerate(answers))
    assert served == CONNECTIONS, f"{served} of {CONNECTIONS} served in {tcp_seconds:.0f} s"

    started = time.monotonic()
    answered = udp_burst(udp_port, UDP_CLIENTS)
    udp_seconds = time.monotonic() - started
    rss_after = status(relay, "VmRSS")
    print(f"{CONNECTIONS} TCP connections in {tcp_seconds:.1f} s; {answered} of "
          f"{UDP_CLIENTS} UDP clients answered in {udp_seconds:.1f} s; relay RSS "
          f"{rss_before} KiB before, {rss_after} KiB after")  # fmt: skip

    # The same relay still serves both protocols.
    assert relay_pid(cid) == relay
    assert wait_for("the TCP echo after the burst", lambda: tcp_echo(tcp_port), 30)
    assert wait_for("the UDP echo after the burst", lambda: udp_echo(udp_port), 30)
    assert rss_after - rss_before < 8 * 1024, "the relay's memory grew with its clients"
