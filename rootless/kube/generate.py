"""Kubernetes documents from a container report or a definition: pure, no host access.

A container, whether read from ``rctl inspect``'s report (:class:`ContainerInspect`) or from
a TOML definition (:class:`ContainerDef`), is first reduced to a :class:`KubeContainer`,
the part Kubernetes can express; :func:`plan_documents` then builds the documents as plain
dicts (a v1 Pod or an apps/v1 Deployment, a PersistentVolumeClaim per named volume, a
Service for the published ports) and :func:`render_yaml` dumps them. Field names and
meanings follow the Kubernetes API reference (core/v1 Container, PodSpec, Probe,
SecurityContext, Service; apps/v1 Deployment).

What Kubernetes cannot say is left out rather than guessed: a user given by name (a pod's
``runAsUser`` is numeric), labels that are not valid Kubernetes labels (kept as
annotations), restart counts. A Deployment's pods always restart (the API refuses any
other ``restartPolicy`` there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rctlbase.errors import UsageError
from rootless.containers.ports import parse_publish
from rootless.containers.spec import parse_cpus, parse_memory
from rootless.definitions.model import ContainerDef
from rootless.kube.objects import KEY_LABEL, KIND_LABEL, NAME_LABEL
from rootless.reports.containers import ContainerInspect
from rootless.secrets.parse import SecretKind, parse_secret
from rootless.volumes.parse import MountKind, VolumeRequest, parse_mount, parse_volume

# DNS-1123 label (RFC 1123): what Kubernetes accepts as a pod, container, volume or
# service name.
_DNS_LABEL_MAX = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
# A label's name part and value (Kubernetes "Labels and Selectors": 63 characters,
# alphanumerics with -_. inside); a key may carry a DNS-subdomain prefix and a slash.
_LABEL_PART = re.compile(r"([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")
_LABEL_PREFIX = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
NS_PER_SECOND = 1e9


class KubeKind(StrEnum):
    """What holds the containers: a bare Pod, or a Deployment of one replica."""

    POD = "pod"
    DEPLOYMENT = "deployment"


@dataclass(frozen=True, slots=True)
class KubePort:
    """A container port, with the host port it is published on (0: not published)."""

    container_port: int
    protocol: str  # tcp | udp
    host_port: int = 0


@dataclass(frozen=True, slots=True)
class KubeMount:
    """A bind mount (``source`` a host path) or a named volume (``source`` its name)."""

    kind: MountKind
    source: str
    destination: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class KubeProbe:
    """A healthcheck as a liveness probe: argv and whole seconds."""

    command: tuple[str, ...]
    period: int
    timeout: int
    failures: int
    initial_delay: int


@dataclass(frozen=True, slots=True)
class KubeSecretUse:
    """A key of a ConfigMap or Secret given to a container: the variable ``target``
    (``env``) or a file at ``target`` with ``mode``."""

    kind: str  # ConfigMap | Secret
    name: str
    key: str
    target: str
    env: bool = False
    mode: int = 0o444


@dataclass(frozen=True, slots=True)
class KubeContainer:
    """The part of a container that Kubernetes can express."""

    name: str
    image: str
    command: tuple[str, ...] | None = None  # the entrypoint
    args: tuple[str, ...] | None = None  # the cmd
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    ports: tuple[KubePort, ...] = ()
    mounts: tuple[KubeMount, ...] = ()
    memory: int = 0  # bytes, 0 unlimited
    millicpus: int = 0  # 0 unlimited
    user: str = ""
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    read_only: bool = False
    privileged: bool = False
    probe: KubeProbe | None = None
    restart: str = "no"
    labels: tuple[tuple[str, str], ...] = ()
    secrets: tuple[KubeSecretUse, ...] = ()


def dns_name(name: str) -> str:
    """``name`` as a DNS-1123 label: lower case, runs of other characters as one ``-``,
    alphanumerics at both ends, at most 63 characters."""
    label = _NOT_DNS.sub("-", name.lower())[:_DNS_LABEL_MAX].strip("-")
    if not label:
        raise UsageError(
            f"{name!r} gives no valid Kubernetes name",
            hint="give the container a name with letters or digits",
        )
    return label


def is_label(key: str, value: str) -> bool:
    """Whether ``key=value`` is a valid Kubernetes label."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and _LABEL_PREFIX.fullmatch(prefix)):
        return False
    return (
        bool(name)
        and len(name) <= _DNS_LABEL_MAX
        and bool(_LABEL_PART.fullmatch(name))
        and len(value) <= _DNS_LABEL_MAX
        and bool(_LABEL_PART.fullmatch(value))
    )


def _seconds(value: float, least: int) -> int:
    return max(least, math.ceil(value))


def _probe(
    test: Sequence[str], interval: float, timeout: float, retries: int, start: float
) -> KubeProbe | None:
    """Docker's ``Test`` (``CMD …``, ``CMD-SHELL cmd``) as a probe; NONE or empty is none."""
    if not test or test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        return None
    command = ("/bin/sh", "-c", test[1]) if test[0] == "CMD-SHELL" else tuple(test[1:])
    return KubeProbe(
        command=command,
        period=_seconds(interval or 30, 1),
        timeout=_seconds(timeout or 30, 1),
        failures=max(1, retries or 3),
        initial_delay=_seconds(start, 0),
    )


def _env_pairs(env: Iterable[str]) -> tuple[tuple[str, str], ...]:
    return tuple((key, value) for key, _, value in (item.partition("=") for item in env))


def container_from_inspect(report: ContainerInspect) -> KubeContainer:
    """What a created container (its ``inspect`` report) gives Kubernetes."""
    config, host = report.config, report.host_config
    check = config.healthcheck
    exposed = {
        (int(p.partition("/")[0]), p.partition("/")[2] or "tcp") for p in config.exposed_ports
    }
    bound = {(b.private, b.protocol): b.host_port for b in host.port_bindings}
    ports = tuple(
        KubePort(port, protocol, bound.get((port, protocol), 0))
        for port, protocol in sorted(exposed | set(bound))
    )
    mounts = tuple(
        KubeMount(
            MountKind.VOLUME if m.type == "volume" else MountKind.BIND,
            m.name if m.type == "volume" else m.source,
            m.destination,
            not m.rw,
        )
        for m in report.mounts
        if m.type in ("volume", "bind")
    )
    return KubeContainer(
        name=report.name,
        image=report.rctl.image_name or config.image,
        command=config.entrypoint,
        args=config.cmd,
        env=_env_pairs(config.env),
        working_dir=config.working_dir,
        ports=ports,
        mounts=mounts,
        memory=host.memory,
        millicpus=host.nano_cpus // 1_000_000,
        user=config.user,
        cap_add=host.cap_add,
        cap_drop=host.cap_drop,
        read_only=host.readonly_rootfs,
        privileged=host.privileged,
        probe=None
        if check is None
        else _probe(
            check.test,
            check.interval_ns / NS_PER_SECOND,
            check.timeout_ns / NS_PER_SECOND,
            check.retries,
            check.start_period_ns / NS_PER_SECOND,
        ),
        restart=host.restart_policy or "no",
        labels=tuple(sorted(config.labels.items())),
    )


def _definition_mount(request: VolumeRequest) -> KubeMount | None:
    if request.kind is MountKind.BIND or (request.kind is MountKind.VOLUME and request.source):
        return KubeMount(request.kind, request.source, request.destination, request.read_only)
    return None


def container_from_definition(container: ContainerDef) -> KubeContainer:
    """What a ``[container.NAME]`` definition gives Kubernetes (already validated)."""
    ports: list[KubePort] = []
    for text in container.ports:
        spec = parse_publish(text)
        # A host port chosen at create (none given, or one of a range) is not known here.
        fixed = dict((ctr, host) for host, ctr in spec.fixed)
        low, high = spec.container_ports
        ports += [KubePort(p, str(spec.protocol), fixed.get(p, 0)) for p in range(low, high + 1)]
    requests = [parse_volume(v) for v in container.volumes] + [
        m for m in map(parse_mount, container.mounts) if isinstance(m, VolumeRequest)
    ]
    mounts = tuple(m for m in map(_definition_mount, requests) if m is not None)
    check = container.healthcheck
    return KubeContainer(
        name=container.name,
        image=container.image,
        command=container.entrypoint,
        args=container.command,
        env=container.env,
        working_dir=container.workdir or "",
        ports=tuple(ports),
        mounts=mounts,
        memory=parse_memory(container.memory) if container.memory else 0,
        millicpus=round(parse_cpus(container.cpus) * 1000) if container.cpus else 0,
        user=container.user or "",
        cap_add=container.cap_add,
        cap_drop=container.cap_drop,
        read_only=container.read_only,
        privileged=container.privileged,
        probe=None
        if check is None or container.no_healthcheck
        else _probe(check.test, check.interval, check.timeout, check.retries, check.start_period),
        restart=container.restart,
        labels=container.labels,
    )


def secret_uses(
    values: Iterable[str], labels_of: Callable[[str], Mapping[str, str]]
) -> tuple[KubeSecretUse, ...]:
    """A container's ``--secret`` values as keys of ConfigMaps and Secrets: where ``kube
    play`` made the rctl secret, the object and key its labels name; another secret is
    the key of the same name in a Secret of (about) the same name, for the user to make
    in the cluster."""
    uses = []
    for value in values:
        request = parse_secret(value)
        labels = labels_of(request.name)
        kind = labels.get(KIND_LABEL, "Secret")
        name = labels.get(NAME_LABEL) or dns_name(request.name.replace("_", "-"))
        key = labels.get(KEY_LABEL) or request.name
        uses.append(
            KubeSecretUse(
                kind if kind in ("ConfigMap", "Secret") else "Secret",
                name,
                key,
                request.target,
                env=request.kind is SecretKind.ENV,
                mode=request.mode,
            )
        )
    return tuple(uses)
