"""Bridge networks without a namespace: IPAM, hosts planning, leases, option parsing, the
netfilter rules and netlink batches, and the network records' use cases on a temporary
store."""

from __future__ import annotations

import os
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netns.ipam import Subnet, allocate_address, parse_subnet, plan_subnet
from netns.netctl import (
    BridgeOp,
    InitOp,
    Op,
    RuleOp,
    VethOp,
    bridge_rules,
    decode_ops,
    dnat_rule,
    encode_ops,
    iptables_argv,
)
from rctlbase.errors import ConflictError, NotFoundError, UsageError
from rootless.containers.plan import LaunchPlan
from rootless.containers.record import ContainerRecord, ContainerStore
from rootless.models import NetworkCreateOptions
from rootless.networks.attach import (
    Attachment,
    ContainerNetworks,
    NetworkPaths,
    attachment_ops,
    host_ifname,
    load_container_networks,
    save_container_networks,
)
from rootless.networks.builtin import builtin_id
from rootless.networks.hosts import BASE, plan_hosts, write_in_place
from rootless.networks.leases import (
    Holder,
    Lease,
    LeaseState,
    lease_is_live,
    load_leases,
    netns_of,
    save_leases,
    split_stale,
    start_time,
)
from rootless.networks.service import (
    BridgeRequest,
    NetworkService,
    bridge_request,
    is_network_mode,
    parse_link,
)
from rootless.networks.store import NetworkRecord, check_network_name, next_bridge_name

# -- IPAM ------------------------------------------------------------------------------------


def test_default_subnets_are_the_first_free_10_89_n() -> None:
    taken: list[IPv4Network] = []
    for n in range(3):
        subnet = plan_subnet(None, None, taken)
        assert subnet.network == IPv4Network(f"10.89.{n}.0/24")
        assert subnet.gateway == IPv4Address(f"10.89.{n}.1")
        taken.append(subnet.network)
    # a hole is reused, a user subnet covering 10.89.3-4 is skipped
    taken = [IPv4Network("10.89.0.0/24"), IPv4Network("10.89.2.0/24")]
    assert plan_subnet(None, None, taken).network == IPv4Network("10.89.1.0/24")
    taken = [IPv4Network("10.89.0.0/23"), IPv4Network("10.89.2.0/24")]
    assert plan_subnet(None, None, taken).network == IPv4Network("10.89.3.0/24")


def test_every_default_subnet_taken_is_a_conflict() -> None:
    with pytest.raises(ConflictError, match="every default subnet"):
        plan_subnet(None, None, [IPv4Network("10.89.0.0/16")])


@pytest.mark.parametrize(
    ("subnet", "taken"),
    [
        ("10.89.0.0/24", "10.89.0.0/24"),
        ("10.89.0.128/25", "10.89.0.0/24"),
        ("10.0.0.0/8", "10.89.5.0/24"),
    ],
)
def test_overlapping_subnets_are_refused(subnet: str, taken: str) -> None:
    with pytest.raises(ConflictError, match=f"overlaps {taken}"):
        plan_subnet(subnet, None, [IPv4Network("192.168.0.0/24"), IPv4Network(taken)])


def test_adjacent_subnets_do_not_overlap() -> None:
    subnet = plan_subnet("10.89.1.0/24", None, [IPv4Network("10.89.0.0/24")])
    assert subnet == Subnet(IPv4Network("10.89.1.0/24"), IPv4Address("10.89.1.1"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.1.2.3/24", "host bits"),
        ("300.1.2.0/24", "invalid --subnet"),
        ("10.1.2.0", "no prefix"),
        ("10.1.2.0/31", "too small"),
        ("fd00::/64", "invalid --subnet"),
        ("", "invalid --subnet"),
    ],
)
def test_invalid_subnets(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_subnet(text)


def test_gateways() -> None:
    assert plan_subnet("10.7.0.0/24", "10.7.0.254", []).gateway == IPv4Address("10.7.0.254")
    for bad in ("10.8.0.1", "10.7.0.0", "10.7.0.255", "nope"):
        with pytest.raises(UsageError, match="gateway"):
            plan_subnet("10.7.0.0/24", bad, [])
    with pytest.raises(UsageError, match="--gateway needs --subnet"):
        plan_subnet(None, "10.89.0.1", [])


def test_addresses_are_never_handed_out_twice_until_exhaustion() -> None:
    subnet = plan_subnet("10.5.5.0/24", None, [])
    used: list[IPv4Address] = []
    for _ in range(253):  # 254 hosts minus the gateway
        address = allocate_address(subnet, used)
        assert address not in used and address != subnet.gateway
        used.append(address)
    assert len(set(used)) == 253
    with pytest.raises(ConflictError, match="no free address"):
        allocate_address(subnet, used)
    # the lowest released address comes back first
    used.remove(IPv4Address("10.5.5.77"))
    assert allocate_address(subnet, used) == IPv4Address("10.5.5.77")


def test_a_gateway_in_the_middle_is_skipped() -> None:
    subnet = plan_subnet("10.6.0.0/30", "10.6.0.1", [])
    assert allocate_address(subnet, []) == IPv4Address("10.6.0.2")
    with pytest.raises(ConflictError):
        allocate_address(subnet, [IPv4Address("10.6.0.2")])


# -- hosts -------------------------------------------------------------------------------------


def lease(cid: str, name: str, network: str, address: str, **kw: object) -> Lease:
    return Lease(
        container_id=cid, name=name, network=network, address=address,
        host_ifname=host_ifname(cid, network), ifname="eth0", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_hosts_list_own_names_peers_and_links_once() -> None:
    state = LeaseState(
        leases=(
            lease("a", "web", "front", "10.89.0.2", aliases=("www",), hostname="abc"),
            lease("a", "web", "back", "10.89.1.2", aliases=("www",)),
            lease("b", "db", "back", "10.89.1.3", aliases=("database",)),
            lease("c", "cli", "front", "10.89.0.3", links=(("db", "store"), ("web", "site"))),
            lease("d", "far", "other", "10.89.2.2"),
        )
    )
    hosts_a = plan_hosts(state, "a")
    assert hosts_a.startswith(BASE)
    assert "10.89.0.2\tabc web www\n" in hosts_a
    assert "10.89.1.2\t" not in hosts_a  # its names are taken by its first address
    assert "10.89.1.3\tdb database\n" in hosts_a and "10.89.0.3\tcli\n" in hosts_a
    assert "far" not in hosts_a  # not on a shared network
    hosts_c = plan_hosts(state, "c")
    # the link to db is dropped (no network in common), the one to web names its alias
    assert "10.89.0.2\tsite web www\n" in hosts_c and "db" not in hosts_c
    assert plan_hosts(state, "nobody") == BASE
    extra = LeaseState(leases=(replace(state.leases[0], extra_hosts=(("1.2.3.4", "web"),)),))
    assert plan_hosts(extra, "a").endswith("10.89.0.2\tabc web www\n1.2.3.4\tweb\n")


def test_hosts_are_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("a much longer original text than the new one\n")
    inode = path.stat().st_ino
    assert write_in_place(path, "short\n")
    assert path.read_text() == "short\n" and path.stat().st_ino == inode
    assert not write_in_place(tmp_path / "gone", "x")


# -- leases ------------------------------------------------------------------------------------


def test_lease_liveness_follows_the_network_namespace_or_the_launcher() -> None:
    me = os.getpid()
    live = lease("a", "x", "n", "10.0.0.2", pid=me, netns=netns_of(me))
    assert lease_is_live(live)
    assert not lease_is_live(replace(live, netns="net:[1]"))
    assert not lease_is_live(replace(live, pid=2**22 + 1))
    pending = lease("a", "x", "n", "10.0.0.2", owner_pid=me, owner_start=start_time(me))
    assert lease_is_live(pending)
    assert not lease_is_live(replace(pending, owner_start="1"))
    assert not lease_is_live(lease("a", "x", "n", "10.0.0.2"))


def test_stale_leases_are_split_off_and_state_round_trips(tmp_path: Path) -> None:
    keep = lease("a", "x", "n", "10.0.0.2", forwards=((1, "tcp", "", 8080, 80),))
    drop = lease("b", "y", "n", "10.0.0.3", rules=(("nat", "PREROUTING", "-j", "X"),))
    state = LeaseState(Holder(1, "user:[2]", "/s", "u.service"), (keep, drop))
    fresh, stale = split_stale(state, lambda x: x.container_id == "a")
    assert fresh.leases == (keep,) and stale == [drop]
    path = tmp_path / "leases.json"
    save_leases(path, state)
    assert load_leases(path) == state
    assert load_leases(tmp_path / "missing.json") == LeaseState()


# -- option parsing ------------------------------------------------------------------------------


def test_network_modes_are_not_network_names() -> None:
    for mode in ("none", "host", "pasta", "pasta:-T,80", "slirp4netns:mtu=1500"):
        assert is_network_mode(mode)
        assert bridge_request(mode, (), (), ()) is None
    assert bridge_request(None, (), (), ()) is None
    assert not is_network_mode("front")


def test_bridge_requests() -> None:
    assert bridge_request("front", (), ("www",), ()) == BridgeRequest(("front",), ("www",))
    assert bridge_request(None, ("a", "b", "a"), (), ()) == BridgeRequest(("a", "b"))
    assert bridge_request("bridge", (), (), ()) == BridgeRequest(("rctl",))
    assert bridge_request(None, (), (), ("db",)) == BridgeRequest((), (), ("db",))
    with pytest.raises(UsageError, match="can't be combined"):
        bridge_request(None, ("front", "none"), (), ())
    with pytest.raises(UsageError, match="--network-alias needs"):
        bridge_request(None, (), ("www",), ())
    with pytest.raises(UsageError, match="--link needs"):
        bridge_request("pasta", (), (), ("db",))


def test_links() -> None:
    assert parse_link("db") == ("db", "db")
    assert parse_link("db:database") == ("db", "database")
    for bad in (":x", "a:b:c"):
        with pytest.raises(UsageError, match="--link"):
            parse_link(bad)


def test_network_names() -> None:
    assert check_network_name("front-1.a_b") == "front-1.a_b"
    for bad in ("bad/name", "-x", "", "host", "none", "x" * 65):
        with pytest.raises(UsageError):
            check_network_name(bad)
    assert next_bridge_name({"rctl0", "rctl2"}) == "rctl1"


# -- rules and netlink batches ----------------------------------------------------------------


def test_rules() -> None:
    assert bridge_rules("rctl0", "10.89.0.0/24", internal=False) == [
        ("nat", "POSTROUTING", "-s", "10.89.0.0/24", "!", "-o", "rctl0", "-j", "MASQUERADE")
    ]
    internal = bridge_rules("rctl1", "10.89.1.0/24", internal=True)
    assert all(r[:2] == ("filter", "FORWARD") and r[-1] == "DROP" for r in internal)
    assert not any("MASQUERADE" in r for r in internal)
    rule = dnat_rule("udp", "10.0.2.100", 5353, "10.89.0.2", 53)
    assert iptables_argv("-A", rule) == [
        "iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-d", "10.0.2.100", "-p", "udp",
        "--dport", "5353", "-j", "DNAT", "--to-destination", "10.89.0.2:53",
    ]  # fmt: skip


def test_ops_round_trip() -> None:
    ops: list[Op] = [
        InitOp(),
        BridgeOp("rctl0", "10.89.0.1/24", "10.89.0.0/24"),
        VethOp("vabc", bridge="rctl0", pid=7, ifname="eth0", address="10.89.0.2/24"),
        RuleOp(("nat", "PREROUTING", "-j", "X"), remove=True),
    ]
    assert decode_ops(encode_ops(ops)) == ops


def record(name: str, subnet: str, bridge: str, *, internal: bool = False) -> NetworkRecord:
    net = IPv4Network(subnet)
    return NetworkRecord(name, name * 8, subnet, str(net.network_address + 1), bridge, internal)


def test_the_default_route_goes_through_the_first_routed_network() -> None:
    records = {
        "intra": record("intra", "10.89.0.0/24", "rctl0", internal=True),
        "front": record("front", "10.89.1.0/24", "rctl1"),
        "back": record("back", "10.89.2.0/24", "rctl2"),
    }
    leases = [
        lease("c", "x", "intra", "10.89.0.2"),
        lease("c", "x", "front", "10.89.1.2"),
        lease("c", "x", "back", "10.89.2.2"),
    ]
    ops = attachment_ops(leases, records, 42, default_route=True)
    veths = [op for op in ops if isinstance(op, VethOp)]
    assert [v.gateway for v in veths] == ["", "10.89.1.1", ""]
    assert [v.address for v in veths] == ["10.89.0.2/24", "10.89.1.2/24", "10.89.2.2/24"]
    assert all(v.pid == 42 for v in veths)
    bridges = [op for op in ops if isinstance(op, BridgeOp)]
    assert [b.name for b in bridges] == ["rctl0", "rctl1", "rctl2"] and bridges[0].internal
    assert not any(v.gateway for v in attachment_ops(leases, records, 1, default_route=False)
                   if isinstance(v, VethOp))  # fmt: skip


def test_interface_names_fit_and_differ() -> None:
    names = {host_ifname(c, n) for c in ("a", "b") for n in ("x", "y")}
    assert len(names) == 4 and all(len(n) <= 15 for n in names)


def test_one_namespace_unit_per_store(tmp_path: Path) -> None:
    default = NetworkPaths.for_store(Path.home() / ".local/share/rctl", tmp_path)
    assert default.unit == "rctl-netns.service" and default.state == tmp_path / "netns"
    other = NetworkPaths.for_store(tmp_path / "data", tmp_path)
    assert other.unit.startswith("rctl-netns-") and other.unit != default.unit
    assert other.store == tmp_path / "data" / "networks"


# -- the use cases on a temporary store --------------------------------------------------------


class Removals(list[str]):
    """A ContainerRemover that records what it was asked to remove."""

    def remove_container(self, ref: str) -> None:
        self.append(ref)


@pytest.fixture
def service(tmp_path: Path) -> NetworkService:
    paths = NetworkPaths(tmp_path / "networks", tmp_path / "state", "rctl-netns-test.service")
    return NetworkService(paths, ContainerStore(tmp_path / "containers"))


def add_container(service: NetworkService, name: str, networks: tuple[str, ...]) -> str:
    cid = (name * 64)[:64]
    directory = service.containers.dir(cid)
    service.containers.bundle(cid).mkdir(parents=True)
    rec = ContainerRecord(cid, name, "img", "img", ("true",), 1.0, "overlay")
    service.containers.save(rec)
    plan = LaunchPlan(
        container_id=cid, uid_maps=(), gid_maps=(), network="bridge", ports=(), pidfile="",
        bundle=str(service.containers.bundle(cid)), runtime="crun", runtime_root="", rootfs={},
    )  # fmt: skip
    service.containers.save_launch(cid, plan)
    save_container_networks(directory, ContainerNetworks(tuple(Attachment(n) for n in networks)))
    return cid


def test_create_list_and_filter(service: NetworkService) -> None:
    a = service.create(NetworkCreateOptions("a", labels=("team=x",)))
    b = service.create(NetworkCreateOptions("b", subnet="10.99.0.0/16", internal=True))
    c = service.create(NetworkCreateOptions("c"))
    assert (a.subnet, b.subnet, c.subnet) == ("10.89.0.0/24", "10.99.0.0/16", "10.89.1.0/24")
    assert (a.bridge, b.bridge, c.bridge) == ("rctl0", "rctl1", "rctl2")
    assert [r.name for r in service.summaries()] == ["a", "b", "c"]
    assert [r.name for r in service.summaries(["label=team=x"])] == ["a"]
    assert [r.name for r in service.summaries(["label=team"])] == ["a"]
    assert [r.name for r in service.summaries([f"id={b.id[:6]}"])] == ["b"]
    with pytest.raises(UsageError, match="invalid filter 'colour'"):
        service.summaries(["colour=red"])
    with pytest.raises(ConflictError, match="already exists"):
        service.create(NetworkCreateOptions("a"))
    with pytest.raises(ConflictError, match="overlaps"):
        service.create(NetworkCreateOptions("d", subnet="10.99.3.0/24"))
    with pytest.raises(UsageError, match="driver"):
        service.create(NetworkCreateOptions("d", driver="macvlan"))
    assert [r.name for r in service.summaries()] == ["a", "b", "c"]  # nothing half-created


def test_rm_is_refused_while_in_use_and_prune_keeps_used(service: NetworkService) -> None:
    for name in ("used", "idle", "idle2"):
        service.create(NetworkCreateOptions(name))
    add_container(service, "web", ("used",))
    with pytest.raises(ConflictError, match=r"in use by container.*web"):
        service.remove(["idle", "used"])
    assert {r.name for r in service.summaries()} == {"used", "idle", "idle2"}
    with pytest.raises(NotFoundError):
        service.remove(["nosuch"])
    assert service.prune() == ["idle", "idle2"]
    removed = Removals()
    service.remover = removed
    assert service.remove(["used"], force=True) == ["used"] and len(removed) == 1


def test_builtin_networks_are_listed_inspected_and_kept(service: NetworkService) -> None:
    service.create(NetworkCreateOptions("mine", labels=("team=x",)))
    rows = service.summaries(builtin=True)
    assert [(r.name, r.driver) for r in rows] == [
        ("bridge", "bridge"), ("host", "host"), ("mine", "bridge"), ("none", "null"),
        ("pasta", "pasta"), ("slirp4netns", "slirp4netns"),
    ]  # fmt: skip
    assert rows[0].id == builtin_id("bridge") and len(rows[0].id) == 64
    assert rows[0].subnet == ""  # the default bridge network isn't made yet
    assert [r.name for r in service.summaries(["type=custom"], builtin=True)] == ["mine"]
    assert [r.name for r in service.summaries(["driver=null"], builtin=True)] == ["none"]
    assert [r.name for r in service.summaries(["name=^h"], builtin=True)] == ["host"]
    with pytest.raises(UsageError, match="invalid filter: 'type'='odd'"):
        service.summaries(["type=odd"], builtin=True)
    # `rctl network ls` only: definitions read the records alone
    assert [r.name for r in service.summaries()] == ["mine"]
    for name in ("bridge", "host", "none", "pasta", "slirp4netns"):
        with pytest.raises(ConflictError, match=f"^{name} is a pre-defined network"):
            service.remove([name])
    assert service.inspect("none").to_docker()["Driver"] == "null"
    assert service.inspect("host").to_docker()["Containers"] == {}
    service.default_network()
    bridge = service.inspect("bridge").to_docker()
    assert bridge["Name"] == "bridge" and bridge["IPAM"]["Config"][0]["Subnet"] == "10.88.0.0/16"
    assert service.summaries(["name=bridge"], builtin=True)[0].subnet == "10.88.0.0/16"


def test_prune_filters(service: NetworkService) -> None:
    service.create(NetworkCreateOptions("keep", labels=("keep=1",)))
    service.create(NetworkCreateOptions("old"))
    with pytest.raises(UsageError, match="invalid filter 'name'"):
        service.prune(["name=old"])
    assert service.prune(["until=1h"]) == []  # both made just now
    assert service.prune(["label!=keep"]) == ["old"]
    assert service.prune(["label=keep=1"]) == ["keep"]


def test_planning_a_container_s_networks(service: NetworkService) -> None:
    service.create(NetworkCreateOptions("front"))
    planned = service.plan_container(BridgeRequest(("front",), ("www",)))
    assert planned == ContainerNetworks((Attachment("front", ("www",)),))
    with pytest.raises(NotFoundError, match="--network nosuch"):
        service.plan_container(BridgeRequest(("front", "nosuch")))
    with pytest.raises(UsageError, match="--network-alias"):
        service.plan_container(BridgeRequest(("front",), ("bad/alias",)))
    # the default network is made on first use, on podman's default subnet
    assert service.plan_container(BridgeRequest(("rctl",))).names() == ["rctl"]
    assert service.store.get("rctl").subnet == "10.88.0.0/16"
    # links: the target must exist and share a network; without --network, join its first
    with pytest.raises(NotFoundError, match="--link db"):
        service.plan_container(BridgeRequest((), (), ("db",)))
    add_container(service, "db", ("front",))
    linked = service.plan_container(BridgeRequest((), (), ("db:store",)))
    assert linked == ContainerNetworks((Attachment("front"),), (("db", "store"),))
    with pytest.raises(UsageError, match="no network in common"):
        service.plan_container(BridgeRequest(("rctl",), (), ("db",)))


def test_connect_and_disconnect_a_stopped_container(service: NetworkService) -> None:
    service.create(NetworkCreateOptions("one"))
    service.create(NetworkCreateOptions("two"))
    cid = add_container(service, "web", ("one",))
    directory = service.containers.dir(cid)
    service.connect("two", "web", ("w2",))
    assert load_container_networks(directory).attachments == (
        Attachment("one"),
        Attachment("two", ("w2",)),
    )
    with pytest.raises(ConflictError, match="already connected"):
        service.connect("two", "web")
    with pytest.raises(NotFoundError, match="no such network"):
        service.connect("three", "web")
    with pytest.raises(NotFoundError, match="no such container"):
        service.connect("two", "nobody")
    service.disconnect("one", "web")
    assert load_container_networks(directory).names() == ["two"]
    with pytest.raises(ConflictError, match="not connected"):
        service.disconnect("one", "web")
    # docker's name of the default bridge network
    service.connect("bridge", "web")
    assert load_container_networks(directory).names() == ["two", "rctl"]
    service.disconnect("bridge", "web")
    assert load_container_networks(directory).names() == ["two"]


def test_teardown_removes_rules_and_empty_bridges_and_live_veths_only() -> None:
    from rootless.networks.attach import _teardown_ops  # noqa: PLC0415

    me = os.getpid()
    rule = ("nat", "PREROUTING", "-j", "X")
    dead = lease("a", "x", "front", "10.89.1.2", pid=2**22 + 1, netns="net:[1]", rules=(rule,))
    live = lease("b", "y", "back", "10.89.2.2", pid=me, netns=netns_of(me))
    stays = lease("c", "z", "back", "10.89.2.3", pid=me, netns=netns_of(me))
    records = {"front": record("front", "10.89.1.0/24", "rctl1"),
               "back": record("back", "10.89.2.0/24", "rctl2")}  # fmt: skip
    state = LeaseState(leases=(stays,))
    ops = _teardown_ops(state, [dead, live], records)
    assert VethOp(live.host_ifname, remove=True) in ops
    assert not any(isinstance(op, VethOp) and op.host_ifname == dead.host_ifname for op in ops)
    assert RuleOp(rule, remove=True) in ops
    bridges = [op for op in ops if isinstance(op, BridgeOp)]
    assert [(b.name, b.remove) for b in bridges] == [("rctl1", True)]  # back still has c


def test_collect_drops_leases_of_vanished_containers(tmp_path: Path) -> None:
    from rootless.networks.attach import collect  # noqa: PLC0415
    from rootless.networks.store import NetworkStore  # noqa: PLC0415

    paths = NetworkPaths(tmp_path / "networks", tmp_path / "state", "rctl-netns-test.service")
    paths.store.mkdir()
    me = os.getpid()
    hosts = tmp_path / "hosts"
    hosts.write_text("old\n")
    alive = lease("a", "web", "n", "10.89.0.2", pid=me, netns=netns_of(me), hosts_path=str(hosts))
    gone = lease("b", "db", "n", "10.89.0.3", pid=2**22 + 1, netns="net:[1]")
    save_leases(paths.leases, LeaseState(None, (alive, gone)))
    with NetworkStore(paths.store).locked():
        state = collect(paths, NetworkStore(paths.store))
    assert state.leases == (alive,) and load_leases(paths.leases).leases == (alive,)
    assert "db" not in hosts.read_text() and "web" in hosts.read_text()
