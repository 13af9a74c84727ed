"""The schema of definition files, and its validation into :mod:`rootless.definitions.model`.

A file holds ``[container.NAME]``, ``[volume.NAME]``, ``[network.NAME]`` and ``[pod.NAME]``
tables (docs/definitions.md; pods are :mod:`rootless.definitions.podtable`'s). Every problem
is reported as ``FILE:LINE: [TABLE] KEY: what``:
unknown keys (with a "did you mean"), wrong types, values the matching ``rctl run`` flag
would refuse (the flag parsers of :mod:`rootless.containers.spec` and
:mod:`rootless.containers.ports` check them, so a definition and the command line accept
the same things), an image that is not an image reference, relative bind paths in system
definitions. Problems are collected, not raised one by one, so that a user sees all of a
file's mistakes at once (:mod:`rootless.definitions.tables` holds that machinery,
:mod:`rootless.definitions.unitkeys` the checks of what reaches the unit file).
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

from rctlbase.errors import UsageError
from rootless.containers.health import parse_duration
from rootless.containers.isolation import parse_device, parse_sysctl, parse_ulimit
from rootless.containers.ports import parse_publish
from rootless.containers.spec import (
    parse_capability,
    parse_cpus,
    parse_memory,
    parse_memory_swap,
    parse_pids_limit,
    parse_restart,
    parse_signal,
    parse_stop_timeout,
    parse_tmpfs,
    parse_user,
)
from rootless.definitions.buildkey import image_and_pull, parse_build
from rootless.definitions.model import (
    DEFAULT_WANTED_BY,
    ContainerDef,
    DefinitionLocation,
    HealthcheckDef,
    NetworkDef,
    NetworkRef,
    VolumeDef,
)
from rootless.definitions.tables import DefinitionError, Problem, Table
from rootless.definitions.unitkeys import parse_targets, parse_unit_section
from rootless.images.reference import parse_reference
from rootless.pods.record import NAME as POD_NAME
from rootless.secrets.parse import parse_secret

__all__ = ["DefinitionError", "Problem", "Table", "parse_container", "parse_network",
           "parse_volume"]  # fmt: skip

NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
IMAGE_ID = re.compile(r"(sha256:)?[a-f0-9]{64}")
SPECIAL_NETWORKS = ("pasta", "slirp4netns", "none", "host")


# ---- tables -------------------------------------------------------------------------------

CONTAINER_KEYS = (
    "image", "command", "entrypoint", "env", "env_files", "ports", "volumes", "mounts",
    "tmpfs", "network", "networks", "restart", "memory", "memory_swap", "cpus",
    "cpu_shares", "pids_limit", "user", "workdir", "hostname", "labels", "read_only", "init",
    "cap_add", "cap_drop", "security_opt", "stop_timeout", "stop_signal", "pull", "build",
    "healthcheck", "depends_on", "notify", "wanted_by", "unit", "service", "ulimits",
    "devices", "shm_size", "sysctls", "privileged", "auto_update", "secrets", "pod",
)  # fmt: skip
# auto_update = "registry" | "local" is the label rctl auto-update looks for (a label, so
# that it is part of the container like any other and no existing definition's hash moves).
AUTO_UPDATE_LABEL = "io.rctl.autoupdate"
AUTO_UPDATE_POLICIES = ("registry", "local")


def _secrets(table: Table) -> tuple[str, ...]:
    """``secrets``: ``--secret`` values, each checked as the flag is."""
    values = table.strings("secrets")
    for value in values:
        table.check("secrets", parse_secret, value)
    return values


def _with_auto_update(
    table: Table, labels: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """``labels`` with ``auto_update``'s label, when the key is there."""
    policy = table.get("auto_update", str, "a string")
    if policy is None:
        return labels
    if policy not in AUTO_UPDATE_POLICIES:
        table.problem("auto_update", f"{policy!r} is not registry or local")
    return (*(kv for kv in labels if kv[0] != AUTO_UPDATE_LABEL), (AUTO_UPDATE_LABEL, policy))


HEALTH_KEYS = ("cmd", "interval", "timeout", "retries", "start_period", "on_failure", "disable")


def parse_container(  # noqa: PLR0915 - one statement per key
    table: Table, base: FsPath, location: str
) -> ContainerDef | None:  # fmt: skip
    """Validate ``[container.NAME]``; None when it has problems (recorded in ``table``)."""
    before = len(table.problems)
    name = table.path[-1]
    if not NAME.fullmatch(name):
        table.problem("", f"invalid container name {name!r} (letters, digits, _ . -)")
    image = table.get("image", str, "a string (an image reference)")
    build = parse_build(table, base, location == DefinitionLocation.SYSTEM)
    if image is not None and not IMAGE_ID.fullmatch(image):
        table.check("image", parse_reference, image)
    command = _argv(table, "command")
    entrypoint = _argv(table, "entrypoint")
    env = table.mapping("env")
    for key, _ in env:
        if not key or "=" in key or any(c.isspace() for c in key):
            table.problem("env", f"invalid variable name {key!r}")
    env_files = tuple(
        str(_path(table, "env_files", p, base, location, must_exist=True))
        for p in table.strings("env_files")
    )
    ports = _ports(table)
    volumes, mounts = _volumes(table, base, location)
    tmpfs = table.strings("tmpfs")
    for value in tmpfs:
        table.check("tmpfs", parse_tmpfs, value)
    networks = _networks(table)
    restart = table.get("restart", str, "a string") or "no"
    table.check("restart", parse_restart, restart)
    memory = _size(table, "memory", parse_memory)
    memory_swap = _size(table, "memory_swap", None)
    table.check("memory_swap", lambda swap: _swap_limits(memory, swap), memory_swap)
    cpus_raw = table.get("cpus", (int, float, str), "a number of CPUs")
    cpus = None if cpus_raw is None else str(cpus_raw)
    table.check("cpus", parse_cpus, cpus)
    cpu_shares = table.get("cpu_shares", int, "an integer")
    pids_raw = table.get("pids_limit", int, "an integer")
    pids_limit = None if pids_raw is None else str(pids_raw)
    table.check("pids_limit", parse_pids_limit, pids_limit)
    user = table.get("user", (str, int), "a user (NAME or UID[:GID])")
    user = None if user is None else str(user)
    table.check("user", parse_user, user)
    workdir = table.get("workdir", str, "an absolute path")
    if workdir is not None and not workdir.startswith("/"):
        table.problem("workdir", f"{workdir!r} is not an absolute path")
    cap_add = table.strings("cap_add")
    cap_drop = table.strings("cap_drop")
    for key, values in (("cap_add", cap_add), ("cap_drop", cap_drop)):
        for value in values:
            table.check(key, parse_capability, value)
    stop_signal = table.get("stop_signal", str, "a signal name")
    table.check("stop_signal", parse_signal, stop_signal)
    stop_timeout = table.get("stop_timeout", int, "an integer (seconds)")
    table.check("stop_timeout", parse_stop_timeout, stop_timeout)
    pull = table.get("pull", str, "missing, always or never") or "missing"
    image, pull = image_and_pull(table, build, image, pull)
    if pull not in ("missing", "always", "never"):
        table.problem("pull", f"{pull!r} is not missing, always or never")
    health, no_health = _healthcheck(table)
    wanted_by = parse_targets(table, "wanted_by", DEFAULT_WANTED_BY)
    unit = parse_unit_section(table, "unit")
    service = parse_unit_section(table, "service")
    depends_on = table.strings("depends_on")
    for dep in depends_on:
        if not NAME.fullmatch(dep):
            table.problem("depends_on", f"{dep!r} is not a container name")
    labels = _with_auto_update(table, table.mapping("labels"))
    result = ContainerDef(
        name=name,
        file=table.file,
        image=image or "",
        command=command,
        entrypoint=entrypoint,
        env=env,
        env_files=env_files,
        ports=ports,
        volumes=volumes,
        mounts=mounts,
        tmpfs=tmpfs,
        networks=networks,
        restart=restart,
        memory=memory,
        memory_swap=memory_swap,
        cpus=cpus,
        cpu_shares=cpu_shares,
        pids_limit=pids_limit,
        user=user,
        workdir=workdir,
        hostname=table.get("hostname", str, "a host name"),
        labels=labels,
        read_only=bool(table.get("read_only", bool, "true or false")),
        init=bool(table.get("init", bool, "true or false")),
        cap_add=cap_add,
        cap_drop=cap_drop,
        security_opt=table.strings("security_opt"),
        stop_timeout=stop_timeout,
        stop_signal=stop_signal,
        pull=pull,
        secrets=_secrets(table),
        build=build,
        **_isolation(table),
        healthcheck=health,
        no_healthcheck=no_health,
        depends_on=depends_on,
        pod=_pod(table),
        notify=bool(table.get("notify", bool, "true or false")),
        wanted_by=wanted_by,
        unit=unit,
        service=service,
        lines={key: table.line(key) for key in (*table.raw, "")},
    )
    table.finish(CONTAINER_KEYS)
    return result if len(table.problems) == before else None


def _argv(table: Table, key: str) -> tuple[str, ...] | None:
    """A command: a list of strings (argv), or a string split like a shell would."""
    value = table.get(key, (str, list), "a string or a list of strings")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            table.problem(key, f"cannot split {value!r}: {exc}")
            return None
    if not all(isinstance(item, str) for item in value):
        table.problem(key, "expected a list of strings")
        return None
    return tuple(value)


def _isolation(table: Table) -> dict[str, Any]:
    """``ulimits``, ``devices``, ``shm_size``, ``sysctls``, ``privileged``: as the flags."""
    ulimits = table.mapping("ulimits")
    for key, value in ulimits:
        table.check("ulimits", parse_ulimit, f"{key}={value}")
    devices = table.strings("devices")
    for value in devices:
        table.check("devices", parse_device, value)
    sysctls = table.mapping("sysctls")
    for key, value in sysctls:
        table.check("sysctls", parse_sysctl, f"{key}={value}")
    return {
        "ulimits": ulimits,
        "devices": devices,
        "shm_size": _size(table, "shm_size", functools.partial(parse_memory, flag="shm_size")),
        "sysctls": sysctls,
        "privileged": bool(table.get("privileged", bool, "true or false")),
    }


def _swap_limits(memory: str | None, swap: str) -> None:
    """memory_swap goes with memory, as ``--memory-swap`` with ``--memory`` (a bad memory
    is memory's problem alone)."""
    swap_bytes = parse_memory_swap(swap)
    try:
        memory_bytes = parse_memory(memory) if memory is not None else None
    except UsageError:
        return
    hint = "memory_swap is memory plus swap: give memory too, and a total at least as large"
    if swap_bytes != -1 and memory_bytes is None:
        raise UsageError("needs memory too", hint=hint)
    if swap_bytes != -1 and memory_bytes is not None and swap_bytes < memory_bytes:
        raise UsageError(f"{swap} is smaller than memory ({memory})", hint=hint)


def _size(table: Table, key: str, parse: Callable[..., object] | None) -> str | None:
    value = table.get(key, (int, str), "a size (512m, 1g) or a number of bytes")
    if value is None:
        return None
    text = str(value)
    if parse is not None:
        table.check(key, parse, text)
    return text


def _path(
    table: Table, key: str, value: str, base: FsPath, location: str, *, must_exist: bool = False
) -> FsPath:
    """An absolute path from ``value`` (relative ones against the file's directory)."""
    path = FsPath(value).expanduser()
    if not path.is_absolute():
        if location == DefinitionLocation.SYSTEM:
            table.problem(
                key, f"{value!r} is relative: system definitions need absolute host paths"
            )
        path = base / path
    path = FsPath(*path.parts)  # normalise // and trailing /
    if must_exist and not path.exists():
        table.problem(key, f"{value!r}: no such file ({path})")
    return path


def _ports(table: Table) -> tuple[str, ...]:
    value = table.get("ports", list, "a list of ports")
    if value is None:
        return ()
    ports = []
    for raw in value:
        item = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
        if isinstance(item, dict):
            item = _port_table(table, item)
            if item is None:
                continue
        if not isinstance(item, str):
            table.problem("ports", f'expected "HOST:CONTAINER" or a table, got {item!r}')
            continue
        table.check("ports", parse_publish, item)
        ports.append(item)
    return tuple(ports)


def _port_table(table: Table, item: dict[str, Any]) -> str | None:
    unknown = set(item) - {"host", "container", "protocol", "host_ip"}
    if unknown:
        table.problem("ports", f"unknown port key {sorted(unknown)[0]!r} (host, container, "
                      "protocol, host_ip)")  # fmt: skip
        return None
    container = item.get("container")
    if container is None:
        table.problem("ports", "a port table needs 'container'")
        return None
    text = str(container)
    if "host" in item:
        text = f"{item['host']}:{text}"
    if "host_ip" in item:
        text = f"{item['host_ip']}:{text if 'host' in item else ':' + text}"
    if "protocol" in item:
        text += f"/{item['protocol']}"
    return text


def _volumes(
    table: Table, base: FsPath, location: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:  # fmt: skip
    """``volumes`` as ``-v`` strings, ``mounts`` as ``--mount`` strings."""
    value = table.get("volumes", list, "a list of volumes")
    volumes = []
    for raw in value or ():
        item = raw
        if isinstance(raw, dict):
            item = _volume_table(table, raw)
            if item is None:
                continue
        if not isinstance(item, str):
            table.problem("volumes", f'expected "SOURCE:TARGET[:OPTIONS]", got {item!r}')
            continue
        parts = item.split(":")
        if len(parts) == 1:  # an anonymous volume at that path
            if not item.startswith("/"):
                table.problem("volumes", f"{item!r}: the container path must be absolute")
            volumes.append(item)
            continue
        if len(parts) > 3:
            table.problem("volumes", f"{item!r} is not SOURCE:TARGET[:OPTIONS]")
            continue
        source, target = parts[0], parts[1]
        if not target.startswith("/"):
            table.problem("volumes", f"{item!r}: the container path {target!r} is not absolute")
        if source.startswith(("/", ".", "~")):
            source = str(_path(table, "volumes", source, base, location))
        elif not NAME.fullmatch(source):
            table.problem("volumes", f"{item!r}: {source!r} is neither a path nor a volume name")
        volumes.append(":".join([source, *parts[1:]]))
    mounts = []
    for text in table.strings("mounts"):
        fields = dict(f.partition("=")[::2] for f in text.split(","))
        bind_source = fields.get("source") or fields.get("src")
        if fields.get("type", "volume") == "bind" and bind_source:
            absolute = _path(table, "mounts", bind_source, base, location)
            text = text.replace(f"={bind_source}", f"={absolute}", 1)  # noqa: PLW2901
        mounts.append(text)
    return tuple(volumes), tuple(mounts)


def _volume_table(table: Table, item: dict[str, Any]) -> str | None:
    unknown = set(item) - {"source", "target", "read_only", "type", "options"}
    if unknown:
        table.problem("volumes", f"unknown volume key {sorted(unknown)[0]!r} (source, target, "
                      "read_only, type, options)")  # fmt: skip
        return None
    target = item.get("target")
    if not isinstance(target, str):
        table.problem("volumes", "a volume table needs 'target' (the path in the container)")
        return None
    kind = item.get("type")
    if kind == "tmpfs":
        table.problem("volumes", "use the 'tmpfs' key for tmpfs mounts")
        return None
    options = [str(o) for o in item.get("options", [])]
    if item.get("read_only"):
        options.insert(0, "ro")
    source = item.get("source")
    if source is None:
        return target
    return ":".join([str(source), target, *([",".join(options)] if options else [])])


def _networks(table: Table) -> tuple[NetworkRef, ...]:
    single = table.get("network", str, "a network name")
    many = table.get("networks", list, "a list of networks")
    if single is not None and many is not None:
        table.problem("networks", "give either 'network' or 'networks', not both")
    refs: list[NetworkRef] = []
    if single is not None:
        refs.append(NetworkRef(single))
    for item in many or ():
        if isinstance(item, str):
            refs.append(NetworkRef(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            aliases = item.get("aliases", [])
            extra = set(item) - {"name", "aliases"}
            if (
                extra
                or not isinstance(aliases, list)
                or not all(isinstance(a, str) for a in aliases)
            ):
                table.problem("networks", f"a network table has 'name' and 'aliases': {item!r}")
                continue
            refs.append(NetworkRef(item["name"], tuple(aliases)))
        else:
            table.problem("networks", f"expected a network name or {{name=, aliases=}}: {item!r}")
    names = [r.name for r in refs]
    special = [n for n in names if n in SPECIAL_NETWORKS]
    if special and len(names) > 1:
        table.problem("networks", f"{special[0]!r} cannot be combined with other networks")
    for ref in refs:
        if ref.aliases and ref.name in SPECIAL_NETWORKS:
            table.problem("networks", f"aliases need a bridge network, not {ref.name!r}")
    return tuple(refs)


def _pod(table: Table) -> str | None:
    """``pod = "NAME"``: a member has no network or published port of its own."""
    pod: str | None = table.get("pod", str, "a pod name")
    if pod is None:
        return None
    if not POD_NAME.fullmatch(pod):
        table.problem("pod", f"invalid pod name {pod!r} (letters, digits, _ . -)")
    for key in ("ports", "network", "networks", "hostname"):
        if key in table.raw:
            table.problem(key, f"a member of pod {pod!r} can't set {key}: set it on the pod")
    return pod


def _healthcheck(table: Table) -> tuple[HealthcheckDef | None, bool]:
    raw = table.get("healthcheck", dict, "a table ([container.NAME.healthcheck])")
    if raw is None:
        return None, False
    sub = Table(table.file, table.index, (*table.path, "healthcheck"), raw, table.problems)
    disable = bool(sub.get("disable", bool, "true or false"))
    cmd = _argv(sub, "cmd")
    sub_cmd = sub.raw.get("cmd")
    durations = {}
    for key, default in (("interval", 30.0), ("timeout", 30.0), ("start_period", 0.0)):
        if key in sub.raw:
            sub.seen.add(key)
            seconds = parse_duration(sub.raw[key])
            if seconds is None:
                sub.problem(key, f"{sub.raw[key]!r} is not a duration (30s, 1m30s, 500ms)")
            durations[key] = default if seconds is None else seconds
        else:
            durations[key] = default
    for key in ("interval", "timeout"):
        if key in sub.raw and durations[key] < 1:
            sub.problem(key, "must be at least 1s")
    retries = sub.get("retries", int, "an integer")
    if retries is not None and retries < 1:
        sub.problem("retries", "must be at least 1")
    on_failure = sub.get("on_failure", str, '"restart" or "none"') or "none"
    if on_failure not in ("restart", "none"):
        sub.problem("on_failure", f'{on_failure!r} is not "restart" or "none"')
    sub.finish(HEALTH_KEYS)
    if disable:
        if cmd:
            sub.problem("disable", "a disabled healthcheck has no 'cmd'")
        return None, True
    if not cmd:
        sub.problem("cmd", "missing: the command to run (a string for sh -c, or a list)")
        return None, False
    test = ("CMD-SHELL", sub_cmd) if isinstance(sub_cmd, str) else ("CMD", *cmd)
    return (
        HealthcheckDef(
            test=test,
            interval=durations["interval"],
            timeout=durations["timeout"],
            retries=retries if retries is not None else 3,
            start_period=durations["start_period"],
            on_failure=on_failure,
        ),
        False,
    )


VOLUME_KEYS = ("driver", "labels", "options")
NETWORK_KEYS = ("driver", "subnet", "gateway", "internal", "labels")


def parse_volume(table: Table) -> VolumeDef | None:
    """Validate ``[volume.NAME]``."""
    before = len(table.problems)
    name = table.path[-1]
    if not NAME.fullmatch(name):
        table.problem("", f"invalid volume name {name!r} (letters, digits, _ . -)")
    result = VolumeDef(
        name=name,
        file=table.file,
        driver=table.get("driver", str, "a driver name") or "local",
        labels=table.mapping("labels"),
        options=table.mapping("options"),
    )
    table.finish(VOLUME_KEYS)
    return result if len(table.problems) == before else None


def parse_network(table: Table) -> NetworkDef | None:
    """Validate ``[network.NAME]``."""
    before = len(table.problems)
    name = table.path[-1]
    if not NAME.fullmatch(name) or name in SPECIAL_NETWORKS:
        table.problem("", f"invalid network name {name!r}")
    driver = table.get("driver", str, "a driver name") or "bridge"
    if driver != "bridge":
        table.problem("driver", f"{driver!r}: only bridge networks can be defined")
    result = NetworkDef(
        name=name,
        file=table.file,
        driver=driver,
        subnet=table.get("subnet", str, "a CIDR like 10.89.0.0/24"),
        gateway=table.get("gateway", str, "an address"),
        internal=bool(table.get("internal", bool, "true or false")),
        labels=table.mapping("labels"),
    )
    table.finish(NETWORK_KEYS)
    return result if len(table.problems) == before else None
