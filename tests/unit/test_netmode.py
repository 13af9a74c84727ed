"""A single container's network: --network modes and options, helper argv, ports, /etc."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest

from netns.pasta import default_gateway, pasta_argv
from netns.ports import Protocol, PublishedPort
from netns.slirp4netns import (
    SlirpOptions,
    api_request,
    hostfwd_request,
    sandbox_flags,
    slirp4netns_argv,
)
from rctlbase.errors import ExternalError, NotFoundError, UsageError
from rootless.containers.netmode import (
    ContainerNetwork,
    NetworkChoice,
    NetworkDefaults,
    NetworkMode,
    hosts_file,
    network_for,
    parse_network,
    parse_slirp_options,
    plan_network,
    resolv_conf,
)
from rootless.containers.plan import LaunchPlan
from rootless.containers.spec import HostEntry
from rootless.models import RunOptions


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pasta", NetworkChoice(NetworkMode.PASTA)),
        ("pasta:-a,10.0.2.50,--mtu,1500", NetworkChoice(NetworkMode.PASTA, ("-a", "10.0.2.50", "--mtu", "1500"))),
        ("slirp4netns", NetworkChoice(NetworkMode.SLIRP4NETNS)),
        ("slirp4netns:mtu=1500,allow_host_loopback=true", NetworkChoice(NetworkMode.SLIRP4NETNS, ("mtu=1500", "allow_host_loopback=true"))),
        ("none", NetworkChoice(NetworkMode.NONE)),
        ("host", NetworkChoice(NetworkMode.HOST)),
        ("mynet", NetworkChoice(NetworkMode.BRIDGE, name="mynet")),
    ],
)  # fmt: skip
def test_network_modes_parse(value: str, expected: NetworkChoice) -> None:
    assert parse_network(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("host:x", "host takes no options"),
        ("container:abc", "not supported"),
        ("slirp4netns:port_handler=other", "unknown port_handler"),
        ("slirp4netns:mtu=20", "invalid mtu"),
        ("slirp4netns:mtu=abc", "invalid mtu"),
        ("slirp4netns:allow_host_loopback=maybe", "not a boolean"),
        ("slirp4netns:cidr=10.0.2.0/30", "too small"),
        ("slirp4netns:cidr=nope", "invalid cidr"),
        ("slirp4netns:nosuch=1", "unknown slirp4netns option"),
        ("slirp4netns:mtu", "unknown slirp4netns option"),
    ],
)
def test_bad_network_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_network(value)
    assert info.value.hint


def test_slirp_options_and_their_addresses() -> None:
    options = parse_slirp_options(
        ["mtu=1500", "allow_host_loopback=true", "enable_ipv6=false", "cidr=10.99.0.0/24",
         "outbound_addr=eth0"]
    )  # fmt: skip
    assert options == SlirpOptions(
        mtu=1500, cidr="10.99.0.0/24", allow_host_loopback=True, outbound_addr="eth0"
    )
    assert (options.gateway, options.dns, options.guest) == (
        "10.99.0.2",
        "10.99.0.3",
        "10.99.0.100",
    )


def test_slirp4netns_argv() -> None:
    assert slirp4netns_argv(42, SlirpOptions(), api_socket="/run/s.sock", ready_fd=5) == [
        "slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
        "--api-socket=/run/s.sock", "--ready-fd=5", "42", "tap0",
    ]  # fmt: skip
    argv = slirp4netns_argv(
        42,
        SlirpOptions(mtu=1500, cidr="10.99.0.0/24", allow_host_loopback=True, enable_ipv6=True),
        api_socket="/s",
        ready_fd=3,
    )
    assert "--disable-host-loopback" not in argv
    assert {"--mtu=1500", "--cidr=10.99.0.0/24", "--enable-ipv6"} <= set(argv)


def test_slirp4netns_argv_sandboxed() -> None:
    sandbox = ("--enable-sandbox", "--enable-seccomp")
    argv = slirp4netns_argv(42, SlirpOptions(), api_socket="/s", ready_fd=5, sandbox=sandbox)
    assert argv[:5] == [
        "slirp4netns", "--configure", "--mtu=65520", "--enable-sandbox", "--enable-seccomp",
    ]  # fmt: skip
    assert argv[-2:] == ["42", "tap0"]


FAKE_SLIRP = """#!/bin/sh
echo asked >> {log}
echo "Usage: $0 [OPTION]... PID|PATH [TAPNAME]"
echo "--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace"
{extra}
"""


def fake_slirp4netns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / "slirp4netns"
    program.write_text(FAKE_SLIRP.format(log=tmp_path / "asked", extra=extra))
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path / "asked"


def test_slirp4netns_sandbox_flags_from_its_help_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = 'echo "--enable-sandbox   create a new mount namespace"; echo "--enable-seccomp  x"'
    asked = fake_slirp4netns(tmp_path, monkeypatch, both)
    cache = tmp_path / "run"
    cache.mkdir()
    assert sandbox_flags(cache) == ("--enable-sandbox", "--enable-seccomp")
    assert sandbox_flags(cache) == ("--enable-sandbox", "--enable-seccomp")
    assert asked.read_text().count("asked") == 1  # the second answer came from the cache
    # Another binary (an upgrade, a downgrade): asked again.
    fake_slirp4netns(tmp_path, monkeypatch, 'echo "--enable-sandbox   create a new mount ns"')
    assert sandbox_flags(cache) == ("--enable-sandbox",)
    assert asked.read_text().count("asked") == 2
    # An old slirp4netns without either; a cache directory that can't be written.
    fake_slirp4netns(tmp_path, monkeypatch, "")
    assert sandbox_flags(tmp_path / "missing") == ()


def test_slirp4netns_sandbox_flags_without_slirp4netns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert sandbox_flags(tmp_path) == ()


def test_hostfwd_requests_for_tcp_and_udp() -> None:
    tcp = hostfwd_request(PublishedPort(Protocol.TCP, "", 8080, 80), "10.0.2.100")
    assert tcp == {
        "execute": "add_hostfwd",
        "arguments": {"proto": "tcp", "host_addr": "0.0.0.0", "host_port": 8080,
                      "guest_addr": "10.0.2.100", "guest_port": 80},
    }  # fmt: skip
    udp = hostfwd_request(PublishedPort(Protocol.UDP, "127.0.0.1", 5353, 53), "10.0.2.100")
    assert udp["arguments"]["proto"] == "udp" and udp["arguments"]["host_addr"] == "127.0.0.1"


def fake_api(path: Path, answer: bytes) -> threading.Thread:
    """A one-request API socket: records the request, answers ``answer``."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            data = b""
            while chunk := conn.recv(4096):  # until the client's SHUT_WR
                data += chunk
            seen.append(data)
            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.seen = seen  # type: ignore[attr-defined]
    thread.start()
    return thread


def test_api_request_round_trip_and_errors(tmp_path: Path) -> None:
    sock = tmp_path / "api.sock"
    thread = fake_api(sock, b'{"return": {"id": 7}}')
    assert api_request(str(sock), {"execute": "list_hostfwd"}) == {"id": 7}
    thread.join(2)
    assert json.loads(thread.seen[0]) == {"execute": "list_hostfwd"}  # type: ignore[attr-defined]
    os.unlink(sock)
    fake_api(sock, b'{"error": {"desc": "bad request"}}')
    with pytest.raises(ExternalError, match="refused add_hostfwd: bad request"):
        api_request(str(sock), {"execute": "add_hostfwd"})
    with pytest.raises(ExternalError, match="slirp4netns API"):
        api_request(str(tmp_path / "missing.sock"), {"execute": "list_hostfwd"})


def test_pasta_argv_defaults_and_user_options() -> None:
    ports = [
        PublishedPort(Protocol.TCP, "", 8080, 80),
        PublishedPort(Protocol.UDP, "127.0.0.1", 5353, 53),
    ]
    assert pasta_argv(42, ports) == [
        "pasta", "--config-net", "--quiet", "--ipv4-only", "-t", "8080:80",
        "-u", "127.0.0.1/5353:53", "-T", "none", "-U", "none", "--no-map-gw", "42",
    ]  # fmt: skip
    argv = pasta_argv(42, [], extra=("-6", "-T", "auto"), map_host_loopback=True)
    assert "--ipv4-only" not in argv and "--no-map-gw" not in argv
    assert argv[-4:] == ["-6", "-T", "auto", "42"]
    assert argv.count("-T") == 1 and argv[3:5] == ["-t", "none"]


def test_default_gateway_from_proc_net_route() -> None:
    table = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
        "eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\n"
    )
    assert default_gateway(table) == "10.0.2.2"
    assert default_gateway(table.splitlines()[0] + "\n") is None


def test_ports_need_a_network_of_their_own() -> None:
    for mode in (NetworkMode.NONE, NetworkMode.HOST):
        with pytest.raises(UsageError, match="needs a network of its own"):
            plan_network(NetworkChoice(mode), publish=["80"])
    # -P is ignored there, as docker discards published ports with the host network.
    assert (
        plan_network(
            NetworkChoice(NetworkMode.HOST), publish_all_ports=True, exposed=["80/tcp"]
        ).ports
        == ()
    )
    with pytest.raises(UsageError, match="IPv6 host address"):
        plan_network(NetworkChoice(NetworkMode.SLIRP4NETNS), publish=["[::1]::80"])


def test_publish_all_adds_the_exposed_ports() -> None:
    net = plan_network(
        NetworkChoice(NetworkMode.PASTA), publish=["80"], publish_all_ports=True,
        exposed=["80/tcp", "53/udp"],
    )  # fmt: skip
    assert sorted((p.protocol, p.container_port) for p in net.ports) == [("tcp", 80), ("udp", 53)]


def test_host_gateway_per_container_and_by_switch() -> None:
    gw = [HostEntry("host.containers.internal", "host-gateway"), HostEntry("db", "192.0.2.1")]
    pasta = plan_network(NetworkChoice(NetworkMode.PASTA), add_hosts=gw, host_gateway="10.0.2.2")
    assert pasta.host_loopback
    assert pasta.hosts == (
        HostEntry("host.containers.internal", "10.0.2.2"),
        HostEntry("db", "192.0.2.1"),
    )
    slirp = plan_network(
        NetworkChoice(NetworkMode.SLIRP4NETNS, ("cidr=10.99.0.0/24",)), add_hosts=gw
    )
    assert slirp.hosts[0].address == "10.99.0.2"
    assert slirp.slirp == SlirpOptions(cidr="10.99.0.0/24", allow_host_loopback=True)
    assert slirp.helper_options == ()  # pasta's only
    on = NetworkDefaults(host_loopback=True)
    both = plan_network(NetworkChoice(NetworkMode.SLIRP4NETNS), defaults=on)
    assert [h.hostname for h in both.hosts] == ["host.containers.internal", "host.docker.internal"]
    assert (
        plan_network(NetworkChoice(NetworkMode.HOST), defaults=on).hosts[0].address == "127.0.0.1"
    )
    assert plan_network(NetworkChoice(NetworkMode.NONE), defaults=on).hosts == ()
    assert not plan_network(NetworkChoice(NetworkMode.PASTA)).host_loopback
    with pytest.raises(UsageError, match="host-gateway is not available"):
        plan_network(NetworkChoice(NetworkMode.NONE), add_hosts=gw)
    with pytest.raises(UsageError, match="no IPv4 default route"):
        plan_network(NetworkChoice(NetworkMode.PASTA), add_hosts=gw, host_gateway=None)
    with pytest.raises(UsageError, match="allow_host_loopback"):
        plan_network(
            NetworkChoice(NetworkMode.SLIRP4NETNS, ("allow_host_loopback=false",)), add_hosts=gw
        )


HOST_RESOLV = "search lan\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions edns0\n"


@pytest.mark.parametrize(
    ("choice", "host", "expected"),
    [
        (NetworkChoice(NetworkMode.PASTA), HOST_RESOLV, HOST_RESOLV),
        (NetworkChoice(NetworkMode.PASTA), "nameserver 127.0.0.53\n", "nameserver 169.254.1.1\n"),
        (NetworkChoice(NetworkMode.SLIRP4NETNS), HOST_RESOLV, "search lan\nnameserver 10.0.2.3\noptions edns0\n"),
        (NetworkChoice(NetworkMode.SLIRP4NETNS, ("cidr=10.99.0.0/24",)), "", "nameserver 10.99.0.3\n"),
        (NetworkChoice(NetworkMode.HOST), HOST_RESOLV, HOST_RESOLV),
        (NetworkChoice(NetworkMode.NONE), "nameserver 192.0.2.53\n", ""),
    ],
)  # fmt: skip
def test_resolv_conf_per_mode(choice: NetworkChoice, host: str, expected: str) -> None:
    assert resolv_conf(ContainerNetwork(choice), host) == expected


def test_dns_flags_replace_the_host_s_lines() -> None:
    net = ContainerNetwork(
        NetworkChoice(NetworkMode.PASTA), dns=("1.1.1.1",), dns_search=("example.org",),
        dns_options=("ndots:2", "edns0"),
    )  # fmt: skip
    assert resolv_conf(net, HOST_RESOLV) == (
        "search example.org\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"
    )
    no_search = ContainerNetwork(NetworkChoice(NetworkMode.PASTA), dns_search=(".",))
    assert "search" not in resolv_conf(no_search, HOST_RESOLV)


def test_hosts_file() -> None:
    text = hosts_file("web", [HostEntry("db", "192.0.2.1"), HostEntry("v6", "2001:db8::1")])
    assert text.splitlines()[2:] == ["127.0.1.1\tweb", "192.0.2.1\tdb", "2001:db8::1\tv6"]


def test_network_for_reads_the_flags_and_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rootless.containers.netmode.read_default_gateway", lambda: "10.0.2.2")
    options = RunOptions(
        image="x", add_host=("h:host-gateway",), dns=("192.0.2.53",), dns_search=("lan",),
        dns_option=("ndots:1",),
    )  # fmt: skip
    net = network_for(options, NetworkDefaults(default="slirp4netns"), ())
    assert net.mode is NetworkMode.SLIRP4NETNS and net.hosts == (HostEntry("h", "10.0.2.2"),)
    assert (net.dns, net.dns_search, net.dns_options) == (("192.0.2.53",), ("lan",), ("ndots:1",))
    assert network_for(RunOptions(image="x"), NetworkDefaults(), ()).mode is NetworkMode.SLIRP4NETNS
    with pytest.raises(UsageError, match=r"rctl\.toml"):
        network_for(RunOptions(image="x"), NetworkDefaults(default="slirp4netns:mtu=1"), ())
    with pytest.raises(NotFoundError, match="network nosuch not found"):
        network_for(RunOptions(image="x", network="nosuch"), NetworkDefaults(), ())
    with pytest.raises(UsageError, match="--dns-search"):
        network_for(RunOptions(image="x", dns_search=("a b",)), NetworkDefaults(), ())


def test_launch_plan_keeps_the_network_fields() -> None:
    plan = LaunchPlan(
        container_id="c", uid_maps=((0, 1000, 1),), gid_maps=((0, 1000, 1),),
        network="slirp4netns", ports=(PublishedPort(Protocol.UDP, "", 5353, 53),), pidfile="p",
        bundle="b", runtime="crun", runtime_root="r", rootfs={},
        slirp=SlirpOptions(mtu=1500, port_handler="slirp4netns"), host_loopback=True,
    )  # fmt: skip
    again = LaunchPlan.from_json(plan.to_json())
    assert again.slirp == SlirpOptions(mtu=1500, port_handler="slirp4netns") and again.host_loopback
    assert again.ports == (PublishedPort(Protocol.UDP, "", 5353, 53),)
    assert '"ports": [\n  [\n   "udp",' in plan.to_json()  # the same JSON as before


def test_a_launch_plan_of_before_has_its_slirp4netns_options_read_once() -> None:
    # Plans written when slirp4netns's options were kept as KEY=VALUE strings still start.
    raw = json.loads(
        LaunchPlan(
            container_id="c", uid_maps=(), gid_maps=(), network="slirp4netns", ports=(),
            pidfile="p", bundle="b", runtime="crun", runtime_root="r", rootfs={},
        ).to_json()
    )  # fmt: skip
    raw["network_options"] = ["mtu=1500", "allow_host_loopback=true"]
    again = LaunchPlan.from_json(json.dumps(raw))
    assert again.slirp == SlirpOptions(mtu=1500, allow_host_loopback=True)
    assert again.network_options == ()


def test_slirp4netns_options_are_read_when_the_network_is_chosen() -> None:
    choice = parse_network("slirp4netns:mtu=1500,port_handler=slirp4netns")
    assert choice.slirp == SlirpOptions(mtu=1500, port_handler="slirp4netns")
    assert NetworkChoice(NetworkMode.SLIRP4NETNS).slirp == SlirpOptions()
    assert NetworkChoice(NetworkMode.PASTA, ("-6",)).slirp is None
