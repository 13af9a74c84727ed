"""What ``--format`` templates see: docker's field names over rctl's reports.

docker's formatter gives a template a row object per line (``ContainerContext``: ``.ID``,
``.Names``, ``.Status``, ``.Label "k"``...) whose methods shape the text as its table does,
and ``inspect`` the inspect document as a Go struct. These adapters build the same from
rctl's summaries and documents (the field names are docker's, see docker/cli
cli/command/formatter/*.go), with each list's header names for ``table`` formats. The
template values are imported when a row is made: every ``rctl ps`` imports this module, and
only a ``--format`` template needs them.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rootless.cli.render import age, human_size

if TYPE_CHECKING:
    from rootless.cli.gotemplate.values import Struct
    from rootless.models import ImageSummary, NetworkSummary
    from rootless.reports.containers import ContainerListRow
    from rootless.reports.images import HistoryRow

CONTAINER_HEADERS = {
    "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
    "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Label": "LABEL",
    "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
    "Pod": "POD ID", "PodName": "POD",
}  # fmt: skip
IMAGE_HEADERS = {
    "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
    "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}  # fmt: skip
VOLUME_HEADERS = {
    "Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS", "Label": "LABEL", "Links": "LINKS", "Size": "SIZE",
}  # fmt: skip
NETWORK_HEADERS = {
    "ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
    "Internal": "INTERNAL", "Labels": "LABELS", "Label": "LABEL", "CreatedAt": "CREATED AT",
    "Subnet": "SUBNET",
}  # fmt: skip
HISTORY_HEADERS = {
    "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}  # fmt: skip
DF_HEADERS = {
    "Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}  # fmt: skip

# Fields of inspect documents that are Go maps (a missing key is <no value>, not an error):
# the rest are structs, as in docker's types.
MAP_FIELDS = frozenset(
    {"Labels", "Options", "ExposedPorts", "Volumes", "Networks", "Ports", "PortBindings",
     "Containers", "Data", "Annotations", "DriverOpts", "Sysctls", "Tmpfs", "StorageOpt"}
)  # fmt: skip


def ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut to ``width`` characters, the last one "…"."""
    return text if len(text) <= width else text[: width - 1] + "…"


def go_time(moment: float) -> str:
    """Go's time.Time.String() in local time: ``2024-05-01 10:20:30 +0200 CEST``."""
    when = datetime.datetime.fromtimestamp(moment).astimezone()
    return when.strftime("%Y-%m-%d %H:%M:%S %z %Z")


def _timestamp(rfc3339: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _labels(labels: Mapping[str, str]) -> dict[str, Any]:
    """``.Labels`` (k=v,k2=v2 in key order) and ``.Label "k"``."""
    from rootless.cli.gotemplate.values import Method  # noqa: PLC0415

    return {
        "Labels": Method(lambda: ",".join(f"{k}={v}" for k, v in sorted(labels.items()))),
        "Label": Method(lambda key: labels.get(key, ""), ("string",)),
    }


def container_row(row: ContainerListRow, *, no_trunc: bool, now: float | None = None) -> Struct:
    """docker's ContainerContext: the row's ``ps_fields``, ``.Label "k"`` a method."""
    from rootless.cli.gotemplate.values import Method, Struct  # noqa: PLC0415

    fields: dict[str, Any] = dict(
        row.ps_fields(now=time.time() if now is None else now, no_trunc=no_trunc)
    )
    for name in ("Labels", "Mounts", "LocalVolumes", "Networks"):  # docker's are methods
        fields[name] = Method(lambda text=fields[name]: text)
    fields["Label"] = Method(lambda key: row.labels.get(key, ""), ("string",))
    fields["Pod"] = row.pod if no_trunc else row.pod[:12]  # podman's
    fields["PodName"] = row.pod_name
    return Struct("container row", fields, json_sorted=True)


def image_row(row: ImageSummary) -> Struct:
    """docker's ImageContext."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    moment = _timestamp(row.created)
    return Struct(
        "image row",
        {
            "ID": row.short_id,
            "Repository": row.repository,
            "Tag": row.tag,
            "Digest": row.digest or "<none>",
            "CreatedSince": age(row.created),
            "CreatedAt": go_time(moment) if moment is not None else row.created,
            "Size": human_size(row.size),
            "Containers": "N/A",
            "VirtualSize": human_size(row.size),
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
        },
        json_sorted=True,
    )


def volume_row(document: Mapping[str, Any]) -> Struct:
    """docker's volumeContext, over a volume's inspect document."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    labels = dict(document.get("Labels") or {})
    return Struct(
        "volume row",
        {
            "Name": document.get("Name", ""),
            "Driver": document.get("Driver", ""),
            "Scope": document.get("Scope", "local"),
            "Mountpoint": document.get("Mountpoint", ""),
            **_labels(labels),
            "Links": "N/A",
            "Size": "N/A",
        },
        json_sorted=True,
    )


def network_row(row: NetworkSummary, *, no_trunc: bool = False) -> Struct:
    """docker's networkContext (plus rctl's subnet)."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    return Struct(
        "network row",
        {
            "ID": row.id if no_trunc else row.id[:12],
            "Name": row.name,
            "Driver": row.driver,
            "Scope": "local",
            "IPv6": "false",
            "Internal": "true" if row.internal else "false",
            **_labels(row.labels),
            "CreatedAt": go_time(row.created),
            "Subnet": row.subnet,
        },
        json_sorted=True,
    )


def history_row(row: HistoryRow, *, no_trunc: bool) -> Struct:
    """docker's historyContext."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    created_by = row.created_by.replace("\t", " ")
    moment = _timestamp(row.created)
    return Struct(
        "history row",
        {
            "ID": row.id,
            "CreatedSince": age(row.created),
            "CreatedAt": go_time(moment) if moment is not None else row.created,
            "CreatedBy": created_by if no_trunc else ellipsis(created_by, 45),
            "Size": human_size(row.size),
            "Comment": row.comment,
        },
        json_sorted=True,
    )


def df_row(cells: list[str]) -> Struct:
    """docker's diskUsage row context over a line of ``system df``'s table."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    kind, total, active, size, reclaimable = cells
    return Struct(
        "disk usage row",
        {"Type": kind, "TotalCount": total, "Active": active, "Size": size,
         "Reclaimable": reclaimable},
        json_sorted=True,
    )  # fmt: skip


def inspect_view(type_name: str) -> Callable[[Any], Any]:
    """An inspect document as docker's typed struct: ``{{.Nope}}`` is an error, while a
    missing key of a map field (``{{.Config.Labels.nope}}``) is ``<no value>``."""
    from rootless.cli.gotemplate.values import Struct  # noqa: PLC0415

    def convert(value: Any, name: str) -> Any:
        if isinstance(value, Mapping):
            return Struct(name, {k: member(k, v, f"{name}.{k}") for k, v in value.items()})
        if isinstance(value, (list, tuple)):
            return [convert(v, name) for v in value]
        return value

    def member(key: str, value: Any, name: str) -> Any:
        if key in MAP_FIELDS and isinstance(value, Mapping):
            return {str(k): convert(v, name) for k, v in value.items()}
        return convert(value, name)

    return lambda document: convert(document, type_name)
