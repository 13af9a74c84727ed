"""``[pod.NAME]`` of a definition file, validated into a :class:`PodDef` with the same
checks as ``rctl pod create``'s flags (names, ``-p`` values, the network, ``share``)."""

from __future__ import annotations

from rctlbase.errors import UsageError
from rootless.containers.ports import parse_publish
from rootless.definitions.model import PodDef
from rootless.definitions.tables import Table
from rootless.pods.record import NAME, SHARES

POD_KEYS = ("ports", "network", "labels", "share", "hostname", "infra")
POD_NETWORKS = ("slirp4netns", "pasta", "none")


def parse_pod(table: Table) -> PodDef | None:
    """Validate ``[pod.NAME]``; None when it has problems (recorded in ``table``)."""
    before = len(table.problems)
    name = table.path[-1]
    if not NAME.fullmatch(name):
        table.problem("", f"invalid pod name {name!r} (letters, digits, _ . -)")
    ports = table.strings("ports")
    for value in ports:
        try:
            parse_publish(value)
        except UsageError as exc:
            table.problem("ports", exc.message)
    network = table.get("network", str, "slirp4netns, pasta or none")
    if network is not None and network not in POD_NETWORKS:
        table.problem("network", f"{network!r}: a pod's network is slirp4netns, pasta or none")
    share = table.strings("share") if "share" in table.raw else SHARES
    for kind in share:
        if kind not in SHARES:
            table.problem("share", f"{kind!r} can't be shared (net, ipc, uts)")
    infra = table.get("infra", bool, "true or false")
    if infra is False and (ports or network or "share" in table.raw):
        table.problem("infra", "a pod without infra has no network, ports or namespaces to share")
    result = PodDef(
        name=name,
        file=table.file,
        ports=ports,
        network=network,
        labels=table.mapping("labels"),
        share=tuple(k for k in SHARES if k == "net" or k in share),
        hostname=table.get("hostname", str, "a host name"),
        infra=infra is not False,
    )
    table.finish(POD_KEYS)
    return result if len(table.problems) == before else None
