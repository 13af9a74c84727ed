"""What ``rctl create`` records of a container's flags, in docker's names: the record's
``options``, which inspect (:mod:`rootless.containers.reporting`) shows back as ``HostConfig``
and ``Config``. Apart from the reports so that creating a container doesn't load them.
"""

from __future__ import annotations

from typing import Any

from rootless.containers.ports import parse_exposed
from rootless.containers.spec import ContainerSpec
from rootless.models import RunOptions


def record_options(
    options: RunOptions,
    spec: ContainerSpec,
    *,
    network_mode: str,
    runtime: str,
    exposed_ports: tuple[str, ...],
    image_volumes: tuple[str, ...],
) -> dict[str, Any]:
    """What the record keeps for inspect, in docker's names: the flags as given
    (``HostConfig``) and the container's resolved process (``Config``)."""
    return {
        "NetworkMode": network_mode,
        "ExposedPorts": {f"{c}/{p}": {} for p, c in parse_exposed(exposed_ports)},
        "Volumes": list(image_volumes),
        "Tty": options.tty,
        "OpenStdin": options.interactive,
        "Attached": not options.detach,
        "Env": list(spec.process_env),
        "Cmd": list(spec.process_command),
        "Entrypoint": list(spec.process_entrypoint),
        "WorkingDir": spec.process_cwd,
        "User": options.user or spec.image.user or "",
        "Hostname": spec.hostname or "",
        "Runtime": runtime,
        "CapAdd": list(options.cap_add),
        "CapDrop": list(options.cap_drop),
        "ReadonlyRootfs": options.read_only,
        "Init": options.init,
        "Dns": list(options.dns),
        "DnsSearch": list(options.dns_search),
        "DnsOptions": list(options.dns_option),
        "ExtraHosts": list(options.add_host),
        "SecurityOpt": list(options.security_opt),
        "Tmpfs": list(options.tmpfs),
        "UsernsMode": options.userns or "",
        "PublishAllPorts": options.publish_all,
        "Privileged": options.privileged,
        "Secrets": list(options.secrets),
        **isolation_host_config(options, spec),
    }


# HostConfig's keys of the isolation flags, recorded by isolation_host_config as docker
# writes them, and shown by inspect as recorded.
ISOLATION_KEYS = (
    "LogConfig", "ContainerIDFile", "ShmSize", "Ulimits", "Devices", "Sysctls", "IpcMode",
    "PidMode", "UTSMode", "CgroupnsMode", "GroupAdd", "OomScoreAdj", "MemoryReservation",
    "CpusetCpus", "CpuQuota", "CpuPeriod", "BlkioWeight",
)  # fmt: skip


def isolation_host_config(options: RunOptions, spec: ContainerSpec) -> dict[str, Any]:
    """docker's ``HostConfig`` values of ``--ulimit``, ``--device``, ``--ipc``... (docker
    leaves ``Sysctls`` out when there are none)."""
    iso, limits = spec.isolation, spec.limits
    out: dict[str, Any] = {
        "LogConfig": {"Type": iso.log_driver, "Config": {}},
        "ContainerIDFile": options.cidfile or "",
        "ShmSize": iso.shm_size or 64 << 20,
        "Ulimits": [{"Name": u.name, "Hard": u.hard, "Soft": u.soft} for u in iso.ulimits],
        "Devices": [
            {"PathOnHost": d.source, "PathInContainer": d.destination, "CgroupPermissions": "rwm"}
            for d in iso.devices
        ],
        "IpcMode": options.ipc or "private",
        "PidMode": options.pid or "",
        "UTSMode": options.uts or "",
        "CgroupnsMode": options.cgroupns or "private",
        "GroupAdd": list(iso.group_add) or None,
        "OomScoreAdj": iso.oom_score_adj or 0,
        "MemoryReservation": limits.memory_reservation or 0,
        "CpusetCpus": limits.cpuset_cpus or "",
        "CpuQuota": limits.cpu_quota or 0,
        "CpuPeriod": limits.cpu_period or 0,
        "BlkioWeight": limits.blkio_weight or 0,
    }
    if iso.sysctls:
        out["Sysctls"] = dict(iso.sysctls)
    return out
