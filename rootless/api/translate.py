"""Docker's container-create body (``Config``, ``HostConfig``, ``NetworkingConfig``) into
rctl's :class:`~rootless.models.RunOptions`: the API's one translation, pure.

The body is hostile: every field used is checked for its JSON type here and named when it
is wrong (``HostConfig.Binds: expected a list of strings``); values are then validated by
the engine like the CLI's flags. Fields rctl cannot honour (``Privileged``, devices) are
refused, not ignored; fields without an effect on a rootless container are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rctlbase.errors import UsageError
from rootless.models import RunOptions

NS = 1_000_000_000


class Body:
    """Typed reads of one object of the body, naming the field on a wrong type."""

    def __init__(self, value: object, where: str) -> None:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise bad(where, "expected an object")
        self.value: dict[str, Any] = value
        self.where = where

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def string(self, key: str) -> str | None:
        value = self.value.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise bad(self.name(key), "expected a string")
        return value

    def boolean(self, key: str) -> bool:
        value = self.value.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise bad(self.name(key), "expected true or false")
        return value

    def integer(self, key: str) -> int | None:
        value = self.value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(self.name(key), "expected an integer")
        return value

    def strings(self, key: str) -> tuple[str, ...] | None:
        """A list of strings (docker also takes one string for Cmd/Entrypoint)."""
        value = self.value.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(self.name(key), "expected a list of strings")
        return tuple(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.value.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise bad(self.name(key), "expected an object")
        return value

    def objects(self, key: str) -> list[Body]:
        value = self.value.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad(self.name(key), "expected a list of objects")
        return [Body(v, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]

    def sub(self, key: str) -> Body:
        return Body(self.value.get(key), self.name(key))


def bad(field: str, what: str) -> UsageError:
    return UsageError(
        f"invalid container config: {field}: {what}",
        hint="see the Docker Engine API's ContainerCreate body",
    )


def run_options(body: object, name: str | None = None) -> RunOptions:
    """The options of ``POST /containers/create?name=NAME`` with ``body``."""
    config = Body(body, "")
    host = config.sub("HostConfig")
    networking = config.sub("NetworkingConfig")
    image = config.string("Image")
    if image is None:
        raise UsageError("invalid container config: Image is required", hint="give an image")
    for refused in ("Privileged",):
        if host.boolean(refused):
            raise UsageError(
                f"HostConfig.{refused} is not supported by rctl", hint="drop it for rootless use"
            )
    if host.objects("Devices"):
        raise UsageError("HostConfig.Devices is not supported by rctl", hint="drop the devices")
    entrypoint, command = _command(config)
    network, networks, aliases = _networks(host, networking)
    health = _health(config.sub("Healthcheck"))
    return RunOptions(
        image=image,
        command=command,
        detach=True,
        interactive=config.boolean("OpenStdin"),
        tty=config.boolean("Tty"),
        remove=host.boolean("AutoRemove"),
        name=name or None,
        env=config.strings("Env") or (),
        workdir=config.string("WorkingDir"),
        user=config.string("User"),
        entrypoint=entrypoint,
        hostname=config.string("Hostname"),
        labels=_pairs(config, "Labels"),
        read_only=host.boolean("ReadonlyRootfs"),
        tmpfs=_tmpfs(host),
        cap_add=host.strings("CapAdd") or (),
        cap_drop=host.strings("CapDrop") or (),
        security_opt=host.strings("SecurityOpt") or (),
        init=host.boolean("Init"),
        userns=host.string("UsernsMode"),
        pull="never",  # docker's create answers 404 for a missing image; clients pull
        memory=_positive(host, "Memory"),
        memory_swap=_swap(host),
        cpus=_cpus(host),
        cpu_shares=host.integer("CpuShares") or None,
        pids_limit=_positive(host, "PidsLimit"),
        restart=_restart(host.sub("RestartPolicy")),
        stop_timeout=config.integer("StopTimeout"),
        stop_signal=config.string("StopSignal"),
        publish=_publish(host),
        network=network,
        networks=networks,
        network_aliases=aliases,
        links=host.strings("Links") or (),
        publish_all=host.boolean("PublishAllPorts"),
        add_host=host.strings("ExtraHosts") or (),
        dns=host.strings("Dns") or (),
        dns_search=host.strings("DnsSearch") or (),
        dns_option=host.strings("DnsOptions") or (),
        runtime=host.string("Runtime"),
        volumes=(*(host.strings("Binds") or ()), *_anonymous(config, host)),
        mounts=_mounts(host),
        volumes_from=host.strings("VolumesFrom") or (),
        **health,
    )


def _command(config: Body) -> tuple[str | None, tuple[str, ...]]:
    """``(entrypoint, command)``: Entrypoint given as a JSON array (the engine's
    ``--entrypoint '[...]'``), ``""`` for an empty one (cleared, as docker)."""
    cmd = config.strings("Cmd") or ()
    entry = config.strings("Entrypoint")
    if entry is None:
        return None, cmd
    if not entry or entry == ("",):
        return "", cmd
    return json.dumps(list(entry)), cmd


def _pairs(body: Body, key: str) -> tuple[str, ...]:
    found = []
    for k, v in body.mapping(key).items():
        if not isinstance(v, str):
            raise bad(body.name(f"{key}.{k}"), "expected a string")
        found.append(f"{k}={v}")
    return tuple(found)


def _tmpfs(host: Body) -> tuple[str, ...]:
    found = []
    for path, opts in host.mapping("Tmpfs").items():
        if not isinstance(opts, str):
            raise bad(host.name(f"Tmpfs.{path}"), "expected a string of options")
        found.append(f"{path}:{opts}" if opts else path)
    return tuple(found)


def _positive(host: Body, key: str) -> str | None:
    """Memory, PidsLimit: 0 (and -1 for pids) mean no limit."""
    value = host.integer(key)
    return str(value) if value is not None and value > 0 else None


def _swap(host: Body) -> str | None:
    value = host.integer("MemorySwap")
    if value is None or value == 0:
        return None
    return "-1" if value < 0 else str(value)


def _cpus(host: Body) -> str | None:
    nano = host.integer("NanoCpus")
    if nano:
        return f"{nano / NS:g}"
    quota, period = host.integer("CpuQuota"), host.integer("CpuPeriod")
    if quota and quota > 0:
        return f"{quota / (period or 100_000):g}"
    return None


def _restart(policy: Body) -> str:
    name = policy.string("Name") or "no"
    retries = policy.integer("MaximumRetryCount")
    if name == "on-failure" and retries:
        return f"on-failure:{retries}"
    return name


def _publish(host: Body) -> tuple[str, ...]:
    """``PortBindings`` as ``-p`` values: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``
    → ``8080:80/tcp``; no binding or an empty host port: a random one."""
    found = []
    for port, bindings in host.mapping("PortBindings").items():
        where = host.name(f"PortBindings.{port}")
        listed = [{}] if bindings is None else bindings
        if not isinstance(listed, list):
            raise bad(where, "expected a list of bindings")
        for i, raw in enumerate(listed or [{}]):
            binding = Body(raw, f"{where}[{i}]")
            ip, host_port = binding.string("HostIp"), binding.string("HostPort")
            if ip and ":" in ip:
                ip = f"[{ip}]"
            if ip:
                found.append(f"{ip}:{host_port or ''}:{port}")
            elif host_port:
                found.append(f"{host_port}:{port}")
            else:
                found.append(port)
    return tuple(found)


def _anonymous(config: Body, host: Body) -> tuple[str, ...]:
    """``Config.Volumes`` (``{"/data": {}}``): anonymous volumes, except where a bind, a
    mount or a tmpfs is given for the same path (compose sends both, as docker run -v)."""
    taken = set(host.mapping("Tmpfs"))
    for bind in host.strings("Binds") or ():
        parts = bind.split(":")
        taken.add(parts[1] if len(parts) > 1 else parts[0])
    for mount in host.objects("Mounts"):
        taken.add(mount.string("Target") or "")
    return tuple(
        p for p in config.mapping("Volumes") if p.rstrip("/") not in taken and p not in taken
    )


def _mounts(host: Body) -> tuple[str, ...]:
    found = []
    for mount in host.objects("Mounts"):
        kind = mount.string("Type") or "volume"
        target = mount.string("Target")
        if target is None:
            raise bad(mount.name("Target"), "required")
        parts = [f"type={kind}"]
        if source := mount.string("Source"):
            parts.append(f"source={source}")
        parts.append(f"target={target}")
        if mount.boolean("ReadOnly"):
            parts.append("readonly")
        tmpfs = mount.sub("TmpfsOptions")
        if size := tmpfs.integer("SizeBytes"):
            parts.append(f"tmpfs-size={size}")
        for part in parts:
            if "," in part:
                raise bad(mount.name("Source"), "a comma in a mount's field is not supported")
        found.append(",".join(parts))
    return tuple(found)


def _networks(host: Body, networking: Body) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    """``(network, networks, aliases)``: ``NetworkMode`` and ``EndpointsConfig`` (every
    network a container joins at create, with its aliases)."""
    mode = host.string("NetworkMode")
    if mode == "default":
        mode = None
    endpoints = networking.mapping("EndpointsConfig")
    names: list[str] = [mode] if mode else []
    aliases: list[str] = []
    for net, raw in endpoints.items():
        endpoint = Body(raw, networking.name(f"EndpointsConfig.{net}"))
        if net not in names:
            names.append(net)
        for alias in endpoint.strings("Aliases") or ():
            if alias not in aliases:
                aliases.append(alias)
    if len(names) > 1:
        return None, tuple(names), tuple(aliases)
    return (names[0] if names else None), (), tuple(aliases)


def _health(check: Body) -> Mapping[str, Any]:
    test = check.strings("Test")
    found: dict[str, Any] = {}
    if test is None or not test:
        pass
    elif test[0] == "NONE":
        return {"no_healthcheck": True}
    elif test[0] in ("CMD", "CMD-SHELL"):
        found["health_cmd"] = json.dumps(list(test))
    else:
        raise bad(check.name("Test"), 'expected ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]')
    for key, option in (
        ("Interval", "health_interval"),
        ("Timeout", "health_timeout"),
        ("StartPeriod", "health_start_period"),
    ):
        value = check.integer(key)
        if value:
            found[option] = f"{value // 1_000_000}ms"
    retries = check.integer("Retries")
    if retries:
        found["health_retries"] = retries
    return found
