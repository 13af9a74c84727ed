"""Netlink work inside the per-user rootless network namespace: bridges, veth pairs,
addresses, routes (pyroute2) and the few netfilter rules (iptables) of bridge networks.

Moving a veth end into a container's network namespace needs CAP_NET_ADMIN over the user
namespaces owning both network namespaces; that is why every bridged container shares the
user namespace of the rootless network namespace, and why this work runs *inside* it:
:func:`run_ops` enters the holder's user and network namespaces with ``nsenter`` (as uid 0
there, with the full capability set of that namespace) and runs
``python -m netns.netctl``, which reads the operations as JSON on stdin and does them in
order. One process per batch: a container's start is one batch.

The operations are plain typed values (:class:`BridgeOp`, :class:`VethOp`...); nothing here
knows about containers or networks' names beyond the interface names it is given.

Netfilter rules (iptables-nft, which works in an unprivileged network namespace):

- a non-internal network: ``nat POSTROUTING -s SUBNET ! -o BRIDGE -j MASQUERADE`` (outbound
  through the namespace's slirp4netns tap);
- an internal network: ``filter FORWARD -i BRIDGE ! -o BRIDGE -j DROP`` and the reverse
  (containers get no default route either);
- a published port: ``nat PREROUTING -d TAP_ADDRESS -p PROTO --dport HOSTPORT -j DNAT
  --to-destination CONTAINER:PORT`` (slirp4netns forwards the host's port to the tap address).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rctlbase.errors import CommandFailed, ExternalError, reported_message, run_main
from rctlbase.run import run_program

Rule = tuple[str, ...]  # (table, chain, match and target arguments...)


@dataclass(frozen=True, slots=True)
class InitOp:
    """The namespace itself: loopback up, IPv4 forwarding on."""

    op: str = "init"


@dataclass(frozen=True, slots=True)
class BridgeOp:
    """Make sure bridge ``name`` exists, holds ``address`` (CIDR) and its rules are in place;
    with ``remove``, delete the bridge and its rules."""

    name: str
    address: str
    subnet: str
    internal: bool = False
    remove: bool = False
    op: str = "bridge"


@dataclass(frozen=True, slots=True)
class VethOp:
    """A veth pair: ``host_ifname`` on ``bridge``, its peer moved into ``pid``'s network
    namespace as ``ifname`` with ``address`` (CIDR) and a default route via ``gateway``
    (none: no default route). With ``remove``, delete ``host_ifname`` (its peer goes too)."""

    host_ifname: str
    bridge: str = ""
    pid: int = 0
    ifname: str = ""
    address: str = ""
    gateway: str = ""
    remove: bool = False
    op: str = "veth"


@dataclass(frozen=True, slots=True)
class RuleOp:
    """Add (or with ``remove`` delete) one netfilter rule; adding is idempotent."""

    rule: Rule
    remove: bool = False
    op: str = "rule"


Op = InitOp | BridgeOp | VethOp | RuleOp
_KINDS: dict[str, Any] = {"init": InitOp, "bridge": BridgeOp, "veth": VethOp, "rule": RuleOp}


def encode_ops(ops: Sequence[Op]) -> bytes:
    return json.dumps([asdict(op) for op in ops]).encode()


def decode_ops(data: bytes) -> list[Op]:
    ops: list[Op] = []
    for raw in json.loads(data):
        if raw["op"] == "rule":
            raw["rule"] = tuple(raw["rule"])
        ops.append(_KINDS[raw["op"]](**raw))
    return ops


# -- rules (pure) ----------------------------------------------------------------------------


def bridge_rules(bridge: str, subnet: str, *, internal: bool) -> list[Rule]:
    """The netfilter rules a bridge network needs (see the module docstring)."""
    if internal:
        return [
            ("filter", "FORWARD", "-i", bridge, "!", "-o", bridge, "-j", "DROP"),
            ("filter", "FORWARD", "-o", bridge, "!", "-i", bridge, "-j", "DROP"),
        ]
    return [("nat", "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE")]


def dnat_rule(protocol: str, tap_address: str, host_port: int, address: str, port: int) -> Rule:
    """Traffic slirp4netns forwards to ``tap_address:host_port`` goes to the container."""
    return (
        "nat", "PREROUTING", "-d", tap_address, "-p", protocol, "--dport", str(host_port),
        "-j", "DNAT", "--to-destination", f"{address}:{port}",
    )  # fmt: skip


def iptables_argv(action: str, rule: Rule) -> list[str]:
    """``iptables -w -t TABLE -A|-C|-D CHAIN ARGS...`` for ``rule``."""
    table, chain, *args = rule
    return ["iptables", "-w", "-t", table, action, chain, *args]


# -- running a batch (outside) --------------------------------------------------------------


def run_ops(holder_pid: int, ops: Sequence[Op]) -> None:
    """Do ``ops`` inside the user and network namespaces of ``holder_pid``."""
    if not ops:
        return
    argv = [
        "nsenter", "-t", str(holder_pid), "-U", "-n", "--",
        sys.executable, "-I", "-m", "netns.netctl",
    ]  # fmt: skip
    try:
        run_program(argv, input_data=encode_ops(ops), timeout=60)
    except CommandFailed as exc:
        said = reported_message(exc.stderr) or exc.message
        raise ExternalError(
            f"network setup in the rootless network namespace failed: {said}",
            hint="run with --debug; 'journalctl --user -u rctl-netns*' shows its helper",
        ) from exc


# -- doing a batch (inside) -----------------------------------------------------------------


def _netlink_error(action: str, exc: Exception) -> ExternalError:
    return ExternalError(
        f"netlink: cannot {action}: {exc}",
        hint="run with --debug; 'rctl doctor' checks the host's network tools",
    )


def do_init() -> None:
    from pyroute2 import IPRoute  # noqa: PLC0415 - imported only inside the namespace

    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")


def do_rule(op: RuleOp) -> None:
    present = run_program(iptables_argv("-C", op.rule), check=False).returncode == 0
    if op.remove and present:
        run_program(iptables_argv("-D", op.rule))
    elif not op.remove and not present:
        run_program(iptables_argv("-A", op.rule))


def do_bridge(op: BridgeOp) -> None:
    from pyroute2 import IPRoute  # noqa: PLC0415
    from pyroute2.netlink.exceptions import NetlinkError  # noqa: PLC0415

    rules = bridge_rules(op.name, op.subnet, internal=op.internal)
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=op.name)
            if op.remove:
                if found:
                    ipr.link("del", index=found[0])
            else:
                if not found:
                    ipr.link("add", ifname=op.name, kind="bridge")
                    found = ipr.link_lookup(ifname=op.name)
                index = found[0]
                address, _, prefix = op.address.partition("/")
                have = {a.get("IFA_ADDRESS") for a in ipr.get_addr(index=index)}
                if address not in have:
                    ipr.addr("add", index=index, address=address, mask=int(prefix))
                ipr.link("set", index=index, state="up")
    except NetlinkError as exc:
        raise _netlink_error(
            f"{'remove' if op.remove else 'set up'} bridge {op.name}", exc
        ) from exc
    for rule in rules:
        do_rule(RuleOp(rule, remove=op.remove))


def do_veth(op: VethOp) -> None:
    from pyroute2 import IPRoute  # noqa: PLC0415
    from pyroute2.netlink.exceptions import NetlinkError  # noqa: PLC0415

    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=op.host_ifname)
            if op.remove:
                if found:
                    ipr.link("del", index=found[0])
                return
            # The peer gets a unique temporary name here, its real name in its namespace.
            temp = "p" + op.host_ifname[1:]
            for stale in (*found, *ipr.link_lookup(ifname=temp)):
                ipr.link("del", index=stale)
            ipr.link("add", ifname=op.host_ifname, kind="veth", peer={"ifname": temp})
            host = ipr.link_lookup(ifname=op.host_ifname)[0]
            bridge = ipr.link_lookup(ifname=op.bridge)[0]
            ipr.link("set", index=host, master=bridge)
            ipr.link("set", index=host, state="up")
            ipr.link("set", index=ipr.link_lookup(ifname=temp)[0], net_ns_pid=op.pid)
        with IPRoute(netns=f"/proc/{op.pid}/ns/net", flags=0) as inside:
            peer = inside.link_lookup(ifname=temp)[0]
            inside.link("set", index=peer, ifname=op.ifname)
            address, _, prefix = op.address.partition("/")
            inside.addr("add", index=peer, address=address, mask=int(prefix))
            inside.link("set", index=peer, state="up")
            if op.gateway:
                inside.route("add", dst="0.0.0.0/0", gateway=op.gateway, oif=peer)
    except NetlinkError as exc:
        action = "remove" if op.remove else "attach"
        raise _netlink_error(f"{action} {op.host_ifname} ({op.ifname})", exc) from exc


def do_ops(ops: Sequence[Op]) -> None:
    """Do each operation in order (inside the namespace)."""
    for op in ops:
        if isinstance(op, InitOp):
            do_init()
        elif isinstance(op, BridgeOp):
            do_bridge(op)
        elif isinstance(op, VethOp):
            do_veth(op)
        else:
            do_rule(op)


def main() -> int:
    def body() -> int:
        try:
            do_ops(decode_ops(sys.stdin.buffer.read()))
        except OSError as exc:
            raise ExternalError(
                f"{exc}", hint="the rootless network namespace's helper may have ended"
            ) from exc
        return 0

    return run_main(body, error_code=1)


if __name__ == "__main__":
    os.environ.pop("RCTL_USERNS", None)
    sys.exit(main())
