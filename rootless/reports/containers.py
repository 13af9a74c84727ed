"""Container reports: ``docker inspect``'s document and ``docker ps``'s row.

:class:`ContainerInspect` renders ``GET /containers/{id}/json`` (Engine API v1.44,
``ContainerInspectResponse``); :class:`ContainerListRow` renders one entry of
``GET /containers/json`` and, through :meth:`ContainerListRow.ps_fields`, the fields
``docker ps --format`` templates see (docker/cli's ``ContainerContext``), derived here once.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rootless.timestamps import ZERO_TIME

# What docker shows for a port published on every address (no address is bound here).
ANY_ADDRESS = "0.0.0.0"  # noqa: S104
# Go's time.Time.String() layout for ps's CreatedAt: "2024-05-01 10:20:30 +0200 CEST".
_GO_TIME = "%Y-%m-%d %H:%M:%S %z %Z"


@dataclass(frozen=True, slots=True)
class PortBinding:
    """A published port: ``container_port`` is docker's key (``80/tcp``)."""

    container_port: str
    host_ip: str
    host_port: int

    @property
    def private(self) -> int:
        return int(self.container_port.partition("/")[0])

    @property
    def protocol(self) -> str:
        return self.container_port.partition("/")[2] or "tcp"

    def describe(self) -> str:
        """``0.0.0.0:8080->80/tcp``, as ``docker ps`` shows it."""
        host = f"[{self.host_ip}]" if ":" in self.host_ip else (self.host_ip or ANY_ADDRESS)
        return f"{host}:{self.host_port}->{self.container_port}"


def port_map(
    bindings: tuple[PortBinding, ...], exposed: tuple[str, ...] = ()
) -> dict[str, list[dict[str, str]] | None]:
    """``{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}``; exposed but
    unpublished ports map to null (``NetworkSettings.Ports``)."""
    out: dict[str, list[dict[str, str]] | None] = {port: None for port in exposed}
    for binding in sorted(bindings, key=lambda b: (b.private, b.protocol, b.host_port)):
        entry = {"HostIp": binding.host_ip or ANY_ADDRESS, "HostPort": str(binding.host_port)}
        out[binding.container_port] = [*(out.get(binding.container_port) or []), entry]
    return out


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A container's place on one network (``NetworkSettings.Networks[NAME]``)."""

    network_id: str = ""
    ip_address: str = ""
    prefix_len: int = 0
    gateway: str = ""
    mac_address: str = ""
    aliases: tuple[str, ...] = ()

    def to_docker(self) -> dict[str, Any]:
        return {
            "IPAMConfig": None,
            "Links": None,
            "Aliases": list(self.aliases) or None,
            "MacAddress": self.mac_address,
            "NetworkID": self.network_id,
            "EndpointID": "",
            "Gateway": self.gateway,
            "IPAddress": self.ip_address,
            "IPPrefixLen": self.prefix_len,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DriverOpts": None,
            "DNSNames": None,
        }


@dataclass(frozen=True, slots=True)
class MountReport:
    """One entry of ``Mounts``: a bind (``name`` "") or a named volume."""

    type: str
    source: str
    destination: str
    name: str = ""
    driver: str = ""
    mode: str = ""
    rw: bool = True
    propagation: str = "rprivate"

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": self.type}
        if self.name:
            out |= {"Name": self.name}
        out |= {"Source": self.source, "Destination": self.destination}
        if self.driver:
            out |= {"Driver": self.driver}
        return out | {"Mode": self.mode, "RW": self.rw, "Propagation": self.propagation}


@dataclass(frozen=True, slots=True)
class ContainerState:
    """``State``: times are RFC 3339 texts (Go's zero time when unknown)."""

    status: str  # created | running | paused | restarting | exited | dead
    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = False
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    health: Mapping[str, Any] | None = None  # {Status, FailingStreak, Log}, as docker's

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status,
            "Running": self.running,
            "Paused": self.paused,
            "Restarting": self.restarting,
            "OOMKilled": self.oom_killed,
            "Dead": self.dead,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }
        if self.health is not None:
            out["Health"] = dict(self.health)
        return out


@dataclass(frozen=True, slots=True)
class HealthcheckConfig:
    """``Config.Healthcheck``: durations in nanoseconds, as Go's time.Duration."""

    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    retries: int = 0

    def to_docker(self) -> dict[str, Any]:
        return {
            "Test": list(self.test),
            "Interval": self.interval_ns,
            "Timeout": self.timeout_ns,
            "StartPeriod": self.start_period_ns,
            "Retries": self.retries,
        }


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """``Config``: what the container runs, the image's defaults merged with the flags."""

    image: str
    hostname: str = ""
    user: str = ""
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    stop_timeout: int | None = None
    healthcheck: HealthcheckConfig | None = None
    tty: bool = False
    open_stdin: bool = False
    attached: bool = False  # run without -d: stdout and stderr are the client's

    def to_docker(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Hostname": self.hostname,
            "Domainname": "",
            "User": self.user,
            "AttachStdin": self.attached and self.open_stdin,
            "AttachStdout": self.attached,
            "AttachStderr": self.attached,
        }
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        out |= {
            "Tty": self.tty,
            "OpenStdin": self.open_stdin,
            "StdinOnce": self.attached and self.open_stdin,
            "Env": list(self.env),
            "Cmd": None if self.cmd is None else list(self.cmd),
        }
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_docker()
        out |= {
            "Image": self.image,
            "Volumes": {path: {} for path in self.volumes} or None,
            "WorkingDir": self.working_dir,
            "Entrypoint": None if self.entrypoint is None else list(self.entrypoint),
            "OnBuild": None,
            "Labels": dict(self.labels),
        }
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.stop_timeout is not None:
            out["StopTimeout"] = self.stop_timeout
        return out


@dataclass(frozen=True, slots=True)
class HostConfig:
    """``HostConfig``: the flags the container was made with; 0, "" or null where unset,
    as docker writes them."""

    network_mode: str
    runtime: str
    binds: tuple[str, ...] = ()
    port_bindings: tuple[PortBinding, ...] = ()
    restart_policy: str = "no"
    restart_retries: int = 0
    auto_remove: bool = False
    memory: int = 0
    memory_swap: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    pids_limit: int | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    readonly_rootfs: bool = False
    privileged: bool = False
    init: bool | None = None
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    userns_mode: str = ""
    publish_all: bool = False
    # The isolation flags' keys (ShmSize, Ulimits, IpcMode...), recorded in docker's shape
    # at create (rootless.containers.reporting.isolation_host_config), over the defaults.
    isolation: Mapping[str, Any] = field(default_factory=dict)

    def to_docker(self) -> dict[str, Any]:
        return {
            "Binds": list(self.binds) or None,
            "ContainerIDFile": "",
            "LogConfig": {"Type": "journald", "Config": {}},
            "NetworkMode": self.network_mode,
            "PortBindings": port_map(self.port_bindings),
            "RestartPolicy": {
                "Name": self.restart_policy,
                "MaximumRetryCount": self.restart_retries,
            },
            "AutoRemove": self.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": None,
            "ConsoleSize": [0, 0],
            "CapAdd": list(self.cap_add) or None,
            "CapDrop": list(self.cap_drop) or None,
            "CgroupnsMode": "private",
            "Dns": list(self.dns),
            "DnsOptions": list(self.dns_options),
            "DnsSearch": list(self.dns_search),
            "ExtraHosts": list(self.extra_hosts) or None,
            "GroupAdd": None,
            "IpcMode": "private",
            "Cgroup": "",
            "Links": None,
            "OomScoreAdj": 0,
            "PidMode": "",
            "Privileged": self.privileged,
            "PublishAllPorts": self.publish_all,
            "ReadonlyRootfs": self.readonly_rootfs,
            "SecurityOpt": list(self.security_opt) or None,
            "Tmpfs": dict(self.tmpfs) or None,
            "UTSMode": "",
            "UsernsMode": self.userns_mode,
            "ShmSize": 67108864,
            "Runtime": self.runtime,
            "Isolation": "",
            "CpuShares": self.cpu_shares,
            "Memory": self.memory,
            "NanoCpus": self.nano_cpus,
            "CgroupParent": "",
            "BlkioWeight": 0,
            "CpuPeriod": 0,
            "CpuQuota": 0,
            "CpusetCpus": "",
            "CpusetMems": "",
            "Devices": [],
            "MemoryReservation": 0,
            "MemorySwap": self.memory_swap,
            "MemorySwappiness": None,
            "OomKillDisable": None,
            "PidsLimit": self.pids_limit,
            "Ulimits": [],
            "Init": self.init,
            **self.isolation,
        }


@dataclass(frozen=True, slots=True)
class RctlFields:
    """rctl's own facts, under ``Rctl``: the systemd unit that runs the container, the
    journal identifier its output is logged under, the image's name at create, the
    ``--secret`` values it was given (names and targets, never a secret's value)."""

    unit: str
    log_tag: str
    image_name: str
    secrets: tuple[str, ...] = ()

    def to_docker(self) -> dict[str, Any]:
        return {
            "Unit": self.unit,
            "LogTag": self.log_tag,
            "ImageName": self.image_name,
            "Secrets": list(self.secrets),
        }


@dataclass(frozen=True, slots=True)
class ContainerInspect:
    """``docker inspect CONTAINER``."""

    id: str
    name: str
    created: str  # RFC 3339
    image_id: str
    path: str
    args: tuple[str, ...]
    state: ContainerState
    config: ContainerConfig
    host_config: HostConfig
    driver: str
    rctl: RctlFields
    ports: tuple[PortBinding, ...] = ()
    networks: Mapping[str, Endpoint] = field(default_factory=dict)
    mounts: tuple[MountReport, ...] = ()
    restart_count: int = 0
    directory: str = ""  # the container's directory: hosts, hostname and resolv.conf

    def to_docker(self) -> dict[str, Any]:
        etc = f"{self.directory}/etc" if self.directory else ""
        return {
            "Id": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": list(self.args),
            "State": self.state.to_docker(),
            "Image": self.image_id,
            "ResolvConfPath": f"{etc}/resolv.conf" if etc else "",
            "HostnamePath": f"{etc}/hostname" if etc else "",
            "HostsPath": f"{etc}/hosts" if etc else "",
            "LogPath": "",
            "Name": f"/{self.name}",
            "RestartCount": self.restart_count,
            "Driver": self.driver,
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": None,
            "HostConfig": self.host_config.to_docker(),
            "GraphDriver": {"Data": None, "Name": self.driver},
            "Mounts": [m.to_docker() for m in self.mounts],
            "Config": self.config.to_docker(),
            "NetworkSettings": self.network_settings(),
            "Rctl": self.rctl.to_docker(),
        }

    def network_settings(self) -> dict[str, Any]:
        """``NetworkSettings``: the top-level address is the first network's, as docker's
        default bridge fills it."""
        first = next(iter(self.networks.values()), Endpoint())
        return {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "Ports": port_map(self.ports, self.config.exposed_ports),
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": first.gateway,
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": first.ip_address,
            "IPPrefixLen": first.prefix_len,
            "IPv6Gateway": "",
            "MacAddress": first.mac_address,
            "Networks": {name: e.to_docker() for name, e in self.networks.items()},
        }


@dataclass(frozen=True, slots=True)
class ContainerListRow:
    """One container of ``docker ps`` / ``GET /containers/json``.

    ``status`` is docker's STATUS text ("Up 3 seconds", "Exited (0) 2 minutes ago"),
    worded by the service, which knows the unit's times.
    """

    id: str
    name: str
    image: str
    image_id: str
    command: str
    created: float
    state: str  # created | running | paused | exited
    status: str
    exit_code: int | None = None
    ports: tuple[PortBinding, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[MountReport, ...] = ()
    network_mode: str = ""
    networks: Mapping[str, Endpoint] = field(default_factory=dict)
    pod: str = ""  # the pod's ID and name (podman's ps --pod), not in docker's document
    pod_name: str = ""

    def to_docker(self) -> dict[str, Any]:
        """``GET /containers/json``'s entry."""
        ports = sorted(self.ports, key=lambda p: (p.private, p.protocol, p.host_port))
        return {
            "Id": self.id,
            "Names": [f"/{self.name}"],
            "Image": self.image,
            "ImageID": self.image_id,
            "Command": self.command,
            "Created": int(self.created),
            "Ports": [
                {
                    "IP": p.host_ip or ANY_ADDRESS,
                    "PrivatePort": p.private,
                    "PublicPort": p.host_port,
                    "Type": p.protocol,
                }
                for p in ports
            ],
            "Labels": dict(self.labels),
            "State": self.state,
            "Status": self.status,
            "HostConfig": {"NetworkMode": self.network_mode},
            "NetworkSettings": {
                "Networks": {name: e.to_docker() for name, e in self.networks.items()}
            },
            "Mounts": [m.to_docker() for m in self.mounts],
        }

    def to_json(self) -> dict[str, Any]:
        """The row ``rctl ps --format json`` has always printed (scripts read it)."""
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "command": self.command,
            "created": self.created,
            "state": self.state,
            "status": self.status,
            "exit_code": self.exit_code,
            "ports": [p.describe() for p in self.ports],
        }

    def ps_fields(self, *, now: float, no_trunc: bool = False) -> dict[str, str]:
        """The text of docker/cli's ``ContainerContext`` fields at time ``now``, as
        ``docker ps`` prints them (``.Label "k"`` is :attr:`labels`): IDs cut to 12
        characters and the command and mount names shortened unless ``no_trunc``;
        ``.Command`` is Go-quoted."""
        command = self.command if no_trunc else ellipsis(self.command, 20)
        names = [m.name or m.source for m in self.mounts]
        local = sum(1 for m in self.mounts if m.driver == "local")
        when = datetime.datetime.fromtimestamp(self.created).astimezone()
        return {
            "ID": self.id if no_trunc else self.id[:12],
            "Image": self.image,
            "Command": go_quote(command),
            "CreatedAt": when.strftime(_GO_TIME),
            "RunningFor": human_duration(now - self.created) + " ago",
            "Ports": ", ".join(p.describe() for p in self.ports),
            "State": self.state,
            "Status": self.status,
            "Size": "0B",
            "Names": self.name,
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(self.labels.items())),
            "Mounts": ",".join(n if no_trunc else ellipsis(n, 15) for n in names),
            "LocalVolumes": str(local),
            "Networks": ",".join(
                sorted(self.networks) or [self.network_mode][: bool(self.network_mode)]
            ),
        }


def human_duration(seconds_float: float) -> str:  # noqa: PLR0911 - go-units' ladder
    """go-units' HumanDuration, which docker's CREATED column and ``.RunningFor`` use."""
    seconds = int(seconds_float)
    minutes, hours = seconds // 60, int(seconds_float / 3600 + 0.5)
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    if hours < 48:
        return "About an hour" if hours == 1 else f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds_float / 3600) // 24 // 365} years"


def ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut to ``width`` characters, the last one "…"."""
    return text if len(text) <= width else text[: width - 1] + "…"


def go_quote(text: str) -> str:
    """Go's strconv.Quote, which ``.Command`` applies: double quotes, escapes for
    backslash, quote and control characters."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
