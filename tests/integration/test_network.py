"""A single container's network in the test host, as uid 1000:
pasta and slirp4netns with published TCP and UDP ports, the client's source address, -P and
``rctl port``, none and host, host loopback access, DNS and hosts flags, and no helper left
after the container is killed.

UDP needs a server the busybox images lack: :func:`nettools` imports an image made of the
test host's own ``socat`` and its libraries (``rctl import``), without touching the recipe.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, fetch, run, wait_for

R = "127.0.0.1:5000/test"
# pasta is a link to passt (or passt.avx2, which it execs on AVX2 hosts): that is its comm.
HELPERS = ("pasta", "pasta.avx2", "passt", "passt.avx2", "slirp4netns")
DRIVERS = ("pasta", "slirp4netns")


def units() -> set[str]:
    out = run(
        "systemctl", "--user", "list-units", "rctl-*", "--all", "--no-legend", "--plain"
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def helper_pids() -> set[int]:
    """Our user's pasta and slirp4netns processes, wherever they run."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (
                entry.stat().st_uid == os.getuid()
                and (entry / "comm").read_text().strip() in HELPERS
            ):
                found.add(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(autouse=True)
def nothing_left(rctl: Rctl) -> Iterator[None]:
    before_units, before_helpers = units(), helper_pids()
    yield
    for record in json.loads(rctl("ps", "-a", "--format", "json", check=False).stdout or "[]"):
        rctl("rm", "-f", record["id"], check=False)
    assert units() <= before_units, "a container unit outlived its test"
    wait_for("the network helpers to end", lambda: helper_pids() <= before_helpers, 10)


def host_address() -> str:
    """The test host's own non-loopback IPv4 address (what pasta copies into containers)."""
    out = run("ip", "-4", "-o", "addr", "show", "scope", "global").stdout
    return out.split()[3].split("/")[0]


def other_address(address: str) -> str:
    """An address of ``address``'s /24 that is not it: for a container, so that a client on
    this host comes from an address that is not the container's own."""
    net = ipaddress.ip_network(f"{address}/24", strict=False)
    return str(next(a for a in reversed(list(net.hosts())) if str(a) != address))


def cgroup_pids(unit: str) -> set[int]:
    group = run("systemctl", "--user", "show", "-p", "ControlGroup", "--value", unit).stdout.strip()
    pids: set[int] = set()
    for procs in (Path("/sys/fs/cgroup") / group.lstrip("/")).rglob("cgroup.procs"):
        pids |= {int(p) for p in procs.read_text().split()}
    return pids


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def nettools(rctl: Rctl, tmp_path: Path) -> str:
    """An image holding the host's socat and the libraries it needs (plus a /tmp)."""
    stage = tmp_path / "stage"
    (stage / "tmp").mkdir(parents=True)
    (stage / "tmp").chmod(0o1777)
    libs = run("ldd", "/usr/bin/socat").stdout.split()
    files = {"/usr/bin/socat", *(w for w in libs if w.startswith("/"))}
    for name in files:
        target = stage / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        run("cp", "-L", name, str(target))
    run("tar", "-C", str(stage), "-cf", str(tmp_path / "nettools.tar"), ".")
    rctl("import", str(tmp_path / "nettools.tar"), "nettools")
    return "nettools"


def udp_echo(port: int, payload: bytes, host: str = "127.0.0.1") -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(payload, (host, port))
        try:
            return s.recv(1024)
        except OSError:
            return None


@pytest.mark.parametrize("driver", DRIVERS)
def test_httpd_is_reachable_on_a_published_port(rctl: Rctl, driver: str) -> None:
    cid = rctl("run", "-d", "--network", driver, "-p", "80", "--name", "web", f"{R}/httpd")
    cid_text = cid.stdout.strip()
    (line,) = rctl("port", "web").stdout.splitlines()
    assert line.startswith("80/tcp -> 0.0.0.0:")
    port = int(line.rsplit(":", 1)[1])
    assert rctl("port", "web", "80/tcp").stdout == f"0.0.0.0:{port}\n"
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/")) == (
        "<h1>rctl test httpd</h1>\n"
    )
    rows = json.loads(rctl("ps", "--format", "json").stdout)
    assert rows[0]["ports"] == [f"0.0.0.0:{port}->80/tcp"]
    (info,) = json.loads(rctl("inspect", "web").stdout)
    assert info["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
    }
    assert info["HostConfig"]["NetworkMode"] == driver
    # The helper runs in the container's unit, next to the container.
    helpers = {comm(p) for p in cgroup_pids(f"rctl-{cid_text}.service")} & set(HELPERS)
    assert helpers and all((h == "slirp4netns") == (driver == "slirp4netns") for h in helpers)
    # A restart gets the same port again (slirp4netns: a new API socket, ports re-added).
    rctl("restart", "web")
    assert wait_for("the page after a restart", lambda: fetch(f"http://127.0.0.1:{port}/"))
    missing = rctl("port", "web", "81", check=False)
    assert missing.returncode == 125 and "no public port '81/tcp'" in missing.stderr


def test_slirp4netns_runs_sandboxed(rctl: Rctl) -> None:
    """slirp4netns gets podman's sandbox (a mount namespace of its own, no capabilities, a
    seccomp filter), and still publishes ports through its API socket."""
    network = "slirp4netns:port_handler=slirp4netns"
    cid = rctl("run", "-d", "--network", network, "-p", "80", f"{R}/httpd").stdout.strip()
    port = int(rctl("port", cid, "80/tcp").stdout.strip().rsplit(":", 1)[1])
    (pid,) = [p for p in cgroup_pids(f"rctl-{cid}.service") if comm(p) == "slirp4netns"]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--enable-sandbox" in argv and b"--enable-seccomp" in argv
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    status = dict(
        line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    assert status["Seccomp"].strip() == "2"
    assert int(status["CapEff"], 16) & ~(1 << 10) == 0  # CAP_NET_BIND_SERVICE at most
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/")) == (
        "<h1>rctl test httpd</h1>\n"
    )


# Known failure, kept visible: the datagram reaches the container through both drivers'
# published UDP ports (socat logs it), but its reply never reaches the client on the host.
# strict: the day replies arrive, this test fails until the marker is removed.
@pytest.mark.parametrize(
    ("network", "ctr_port"),
    [
        # The host port is an ephemeral one (32768-60999): above 9999, below 61000. pasta
        # relays the second itself; the first, and every UDP port of slirp4netns and of
        # bridge networks, goes through rctl's relay (netns/relay.py says why).
        ("pasta", 9999),
        ("pasta", 61000),
        ("slirp4netns", 9999),
        ("bridge", 9999),
    ],
)
def test_udp_ports_are_published(rctl: Rctl, tmp_path: Path, network: str, ctr_port: int) -> None:
    image = nettools(rctl, tmp_path)
    if network == "bridge":
        network = rctl("network", "create", "udpnet").stdout.strip()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    assert 9999 < port < 61000
    rctl("run", "-d", "--network", network, "-p", f"{port}:{ctr_port}/udp", "--name", "echo",
         image, "/usr/bin/socat", f"UDP4-RECVFROM:{ctr_port},fork", "PIPE")  # fmt: skip
    assert rctl("port", "echo").stdout == f"{ctr_port}/udp -> 0.0.0.0:{port}\n"
    assert wait_for("the UDP echo", lambda: udp_echo(port, b"ping")) == b"ping"
    # One client's datagrams keep their flow: several in a row are all answered.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(2)
        for n in range(3):
            client.sendto(b"n%d" % n, ("127.0.0.1", port))
            assert client.recv(100) == b"n%d" % n
    # The UDP port is taken now: another container can't publish it.
    taken = rctl("create", "-p", f"{port}:9999/udp", f"{R}/busybox", "true", check=False)
    assert taken.returncode == 125
    assert f"host port {port}/udp is already in use" in taken.stderr


@pytest.mark.parametrize(
    ("driver", "network"),
    [
        # The container gets an address other than the host's: pasta would otherwise show a
        # connection from the host's own address as coming from the gateway.
        ("pasta", lambda host: f"pasta:-a,{other_address(host)}"),
        # slirp4netns's default 10.0.2.0/24 may hold the host's address (it does in the
        # test host's vm tier): such a client could not be answered. libslirp forwards the
        # port (rctl's relay, the default, shows every client as 127.0.0.1).
        ("slirp4netns", lambda host: "slirp4netns:cidr=10.99.2.0/24,port_handler=slirp4netns"),
    ],
)
def test_the_client_source_address_reaches_the_container(
    rctl: Rctl, driver: str, network: object
) -> None:
    host = host_address()
    assert callable(network)
    rctl("run", "-d", "--network", network(host), "-p", "80", "--name", "web", f"{R}/httpd")
    port = int(rctl("port", "web", "80").stdout.rsplit(":", 1)[1])
    assert wait_for("the page", lambda: fetch(f"http://{host}:{port}/"))
    log = wait_for("httpd's log", lambda: rctl("logs", "web").stdout)
    assert f"[::ffff:{host}]:" in str(log), f"{driver}: {log}"
    assert "10.0.2.2" not in str(log) and "127.0.0.1" not in str(log)


def test_publish_all_uses_the_image_s_exposed_ports(rctl: Rctl) -> None:
    rctl("run", "-d", "-P", "--name", "web", f"{R}/httpd")
    (line,) = rctl("port", "web").stdout.splitlines()
    port = int(line.rsplit(":", 1)[1])
    assert line == f"80/tcp -> 0.0.0.0:{port}"
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/"))
    # A host range for one container port: a free port of the range, recorded.
    rctl("run", "-d", "-p", f"127.0.0.1:{port}-{port + 20}:80", "--name", "web2", f"{R}/httpd")
    (second,) = rctl("port", "web2", "80").stdout.split()
    host_ip, _, number = second.rpartition(":")
    assert host_ip == "127.0.0.1" and port < int(number) <= port + 20
    assert wait_for("the second page", lambda: fetch(f"http://127.0.0.1:{number}/"))


def test_a_taken_port_fails_at_create_and_leaves_nothing(rctl: Rctl) -> None:
    before = units()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("0.0.0.0", 0))
        tcp.bind(("0.0.0.0", 0))
        tcp.listen()
        uport, tport = udp.getsockname()[1], tcp.getsockname()[1]
        for args, named in [
            (["-p", f"{uport}:53/udp"], f"host port {uport}/udp is already in use"),
            (["-p", f"{tport - 1}-{tport}:79-80"], f"host port {tport}/tcp is already in use"),
        ]:
            for network in DRIVERS:
                out = rctl("run", "-d", "--network", network, *args, f"{R}/httpd", check=False)
                assert out.returncode == 125 and named in out.stderr, out.stderr
    assert rctl("ps", "-aq").stdout == ""
    assert not list((rctl.data / "containers").glob("*"))
    assert units() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--network", "slirp4netns:port_handler=other"], "unknown port_handler"),
        (["--network", "slirp4netns:mtu=abc"], "invalid mtu"),
        (["--network", "none", "-p", "80"], "--publish needs a network of its own"),
        (["--network", "host", "-p", "80"], "--publish needs a network of its own"),
        (["-p", "8000-8001:80-82"], "2 host ports for 3 container ports"),
        (["--add-host", "db"], "--add-host"),
        (["--network", "none", "--add-host", "h:host-gateway"], "host-gateway"),
    ],
)
def test_bad_network_flags_are_refused(rctl: Rctl, args: list[str], message: str) -> None:
    out = rctl("create", *args, f"{R}/busybox", "true", check=False)
    assert out.returncode == 125 and message in out.stderr, out.stderr
    assert rctl("ps", "-aq").stdout == ""


def test_network_none_has_only_loopback(rctl: Rctl) -> None:
    out = rctl("run", "--rm", "--network", "none", f"{R}/busybox", "sh", "-c",
               "ip -o link; echo ROUTES; ip route; echo END; nc -w 2 10.0.2.2 80 </dev/null"
               " && echo CONNECTED", check=False)  # fmt: skip
    links, _, rest = out.stdout.partition("ROUTES\n")
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    assert rest.startswith("END") and "CONNECTED" not in rest


def test_network_host_sees_the_host_s_interfaces(rctl: Rctl) -> None:
    ours = {line.split(":")[1].strip() for line in run("ip", "-o", "link").stdout.splitlines()}
    # Through exec in a long-lived container: a `run --rm` whose command ends at once can
    # lose the race for the unit's PIDFile= (the launcher's business, reported separately).
    rctl("run", "-d", "--name", "h", "--network", "host", f"{R}/busybox", "sleep", "60")
    out = rctl("exec", "h", "ip", "-o", "link").stdout
    published = rctl("create", "--network", "host", "-p", "80", f"{R}/busybox", check=False)
    assert published.returncode == 125
    theirs = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    assert theirs == {name.split("@")[0] for name in ours} and len(theirs) > 1


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """An HTTP server on the host's 127.0.0.1 only; its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"host loopback\n")

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def get_from_container(rctl: Rctl, *args: str, host: str, port: int) -> str:
    # wget, not `nc` fed by a pipe: nc shuts its sending side down once the request is
    # sent, and Debian 12's pasta (2023-03) garbles what the server still sends after such
    # a half-close (docs/troubleshooting.md); HTTP clients don't half-close. (Debian's
    # busybox 1.35 wget crashes with -T: `timeout` bounds it.)
    script = f"timeout 8 wget -qO- http://{host}:{port}/ | head -c 300; echo; cat /etc/hosts"
    return rctl("run", "--rm", *args, f"{R}/busybox", "sh", "-c", script, check=False).stdout


@pytest.mark.parametrize("driver", DRIVERS)
def test_host_loopback_only_when_asked(rctl: Rctl, loopback_server: int, driver: str) -> None:
    name = "host.containers.internal"
    gateway = ["--add-host", f"{name}:host-gateway"]
    asked = get_from_container(rctl, "--network", driver, *gateway, host=name, port=loopback_server)
    assert "host loopback" in asked
    hosts = {line.split()[1]: line.split()[0] for line in asked.splitlines() if "\t" in line}
    if driver == "slirp4netns":
        assert hosts[name] == "10.0.2.2"
    # Without it, the gateway address is not the host's loopback.
    address = hosts[name]
    plain = get_from_container(rctl, "--network", driver, host=address, port=loopback_server)
    assert "host loopback" not in plain and name not in plain


def test_host_loopback_switch_in_rctl_toml(rctl: Rctl, loopback_server: int) -> None:
    config = rctl.root / "config" / "rctl"
    config.mkdir(parents=True)
    # Without rctl.toml: slirp4netns, and no way to the host's loopback.
    out = get_from_container(rctl, host="10.0.2.2", port=loopback_server)
    assert "host loopback" not in out and "host.docker.internal" not in out
    addr = rctl("run", "--rm", f"{R}/busybox", "sh", "-c", "ip -o -4 addr; cat /etc/resolv.conf")
    assert "10.0.2.100/24" in addr.stdout and "nameserver 10.0.2.3" in addr.stdout
    (config / "rctl.toml").write_text('[network]\ndefault = "pasta"\nhost_loopback = true\n')
    out = get_from_container(rctl, host="host.docker.internal", port=loopback_server)
    assert "host loopback" in out
    hosts = {line.split()[1]: line.split()[0] for line in out.splitlines() if "\t" in line}
    assert hosts["host.docker.internal"] == hosts["host.containers.internal"]
    # The default driver came from rctl.toml too.
    rctl("create", "--name", "c", f"{R}/busybox", "true")
    (info,) = json.loads(rctl("inspect", "c").stdout)
    assert info["HostConfig"]["NetworkMode"] == "pasta"


def test_dns_and_add_host_flags_land_in_etc(rctl: Rctl) -> None:
    out = rctl(
        "run", "--rm", "--dns", "192.0.2.53", "--dns-search", "example.org",
        "--dns-option", "ndots:2", "--add-host", "db:192.0.2.10", "--add-host", "v6=[2001:db8::1]",
        f"{R}/busybox", "cat", "/etc/resolv.conf", "/etc/hosts",
    ).stdout  # fmt: skip
    assert "search example.org\nnameserver 192.0.2.53\noptions ndots:2\n" in out
    assert "192.0.2.10\tdb\n" in out and "2001:db8::1\tv6\n" in out


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("how", ["kill -9", "systemctl kill"])
def test_no_helper_survives_a_killed_container(rctl: Rctl, driver: str, how: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        udp_port = probe.getsockname()[1]
    # The UDP port (above the container's) goes through rctl's relay with both drivers.
    cid = rctl("run", "-d", "--network", driver, "-p", "80", "-p", f"{udp_port}:53/udp",
               f"{R}/httpd").stdout.strip()  # fmt: skip
    unit = f"rctl-{cid}.service"
    port = int(rctl("port", cid, "80").stdout.rsplit(":", 1)[1])
    assert wait_for("the page", lambda: fetch(f"http://127.0.0.1:{port}/"))
    pids = cgroup_pids(unit)
    relays = {p for p in pids if "rootless.containers.launch" in cmdline(p)}
    helpers = {p for p in pids if comm(p) in HELPERS} | relays
    assert relays and helpers - relays, f"{unit}: {[comm(p) for p in pids]}"
    if how == "kill -9":
        for pid in pids - helpers:
            os.kill(pid, signal.SIGKILL)
    else:
        run("systemctl", "--user", "kill", "--signal=KILL", unit)
    wait_for("the unit to end", lambda: unit not in {u for u in units() if is_active(u)}, 20)
    wait_for("the helper to end", lambda: not any(comm(p) in HELPERS for p in helpers), 10)
    assert not helper_pids() & helpers
    # Nothing listens on the host ports any more.
    wait_for("the port to be closed", lambda: not listening(port), 5)
    wait_for("the relay to end", lambda: not any(cmdline(p) for p in relays), 5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("0.0.0.0", udp_port))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def is_active(unit: str) -> bool:
    out = run("systemctl", "--user", "is-active", unit, check=False).stdout.strip()
    return out in ("active", "activating", "deactivating")
