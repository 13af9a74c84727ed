"""Pure translations of a definition: to ``rctl run`` options, to a hash, to a unit file.

Nothing here reads the host: golden tests (tests/unit/golden/definitions/) hold an input
file and the expected unit text and options. The container's identity for ``rctl apply`` is
the hash of its normalised definition, restricted to the keys that change the container
itself (not ``wanted_by``, ``depends_on``, ``notify`` or the unit pass-through, which only
change the unit), stored in labels of the container next to short per-key hashes, so that a
later apply can say which keys changed without keeping the old file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from rootless.containers.unitspec import container_service, plan_unit_settings
from rootless.definitions.model import ContainerDef, HealthcheckDef, NetworkDef, PodDef, VolumeDef
from rootless.models import NetworkCreateOptions, PodCreateOptions, RunOptions
from units.properties import ExecCommand, KillMode
from units.unitfile import UnitSection, Value, Verbatim, render_unit_file
from units.unitrender import render_service

LABEL_HASH = "io.rctl.definition.hash"
LABEL_FILE = "io.rctl.definition.file"
LABEL_KEYS = "io.rctl.definition.keys"
LABEL_UNIT = "io.rctl.unit"  # set on containers run by a generated unit
# ``build`` too: what it makes is the image, whose ID the plan compares.
UNIT_ONLY_KEYS = (
    "file", "lines", "wanted_by", "depends_on", "notify", "unit", "service", "build",
)  # fmt: skip
# Keys added after definitions were in use: left out of the hash while at their default, so
# that a new rctl does not see every existing container as changed and recreate it.
LATER_KEYS = ("ulimits", "devices", "shm_size", "sysctls", "privileged", "secrets", "pod")
NETWORK_UNITS = frozenset({"pasta", "slirp4netns", "none", "host"})


def unit_name(name: str) -> str:
    """The generated unit of container ``name``."""
    return f"rctl-{name}.service"


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _digest(value: object) -> str:
    text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def container_keys(container: ContainerDef) -> dict[str, object]:
    """The keys that make the container (what the hash covers), by name."""
    return {
        f.name: getattr(container, f.name)
        for f in dataclasses.fields(container)
        if f.name not in UNIT_ONLY_KEYS
        and not (f.name in LATER_KEYS and getattr(container, f.name) == f.default)
    }


def definition_hash(container: ContainerDef) -> str:
    """sha256 of the container's normalised definition (container keys only)."""
    return _digest(container_keys(container))


def key_hashes(container: ContainerDef) -> dict[str, str]:
    """Short hashes of each key that differs from its default (the others are implied)."""
    defaults = {f.name: f.default for f in dataclasses.fields(ContainerDef)}
    return {
        key: _digest(value)[:10]
        for key, value in container_keys(container).items()
        if key in ("name", "image") or value != defaults.get(key)
    }


def encode_key_hashes(hashes: dict[str, str]) -> str:
    return ",".join(f"{key}:{value}" for key, value in sorted(hashes.items()))


def changed_keys(labels: dict[str, str], container: ContainerDef) -> list[str]:
    """The keys whose value differs from what made the container with ``labels``."""
    old = dict(item.split(":", 1) for item in labels.get(LABEL_KEYS, "").split(",") if ":" in item)
    new = key_hashes(container)
    defaults = {
        f.name: _digest(f.default)[:10]
        for f in dataclasses.fields(ContainerDef)
        if f.default is not dataclasses.MISSING
    }
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k, defaults.get(k)) != new.get(k, defaults.get(k))]


def definition_labels(container: ContainerDef) -> dict[str, str]:
    """The labels ``rctl apply`` puts on a container made from ``container``."""
    return {
        LABEL_HASH: definition_hash(container),
        LABEL_FILE: container.file,
        LABEL_KEYS: encode_key_hashes(key_hashes(container)),
    }


def _seconds(value: float) -> str:
    return f"{value:g}s"


def health_options(check: HealthcheckDef | None) -> dict[str, object]:
    """``--health-*`` option values for a definition's healthcheck."""
    if check is None:
        return {}
    kind, *argv = check.test
    cmd = argv[0] if kind == "CMD-SHELL" else json.dumps(argv)
    return {
        "health_cmd": cmd,
        "health_interval": _seconds(check.interval),
        "health_timeout": _seconds(check.timeout),
        "health_retries": check.retries,
        "health_start_period": _seconds(check.start_period),
        "health_on_failure": check.on_failure,
    }


def run_options(
    container: ContainerDef, *, extra_labels: dict[str, str] | None = None
) -> RunOptions:
    """The options ``rctl run -d`` would be given for ``container`` (labels included)."""
    labels = [f"{k}={v}" for k, v in container.labels]
    labels += [
        f"{k}={v}" for k, v in {**definition_labels(container), **(extra_labels or {})}.items()
    ]
    entrypoint = None
    if container.entrypoint is not None:
        entrypoint = json.dumps(list(container.entrypoint))
    names = tuple(ref.name for ref in container.networks)
    aliases = tuple(dict.fromkeys(a for ref in container.networks for a in ref.aliases))
    return RunOptions(
        image=container.image,
        command=container.command or (),
        detach=True,
        name=container.name,
        env=tuple(f"{k}={v}" for k, v in container.env),
        env_files=container.env_files,
        workdir=container.workdir,
        user=container.user,
        entrypoint=entrypoint,
        hostname=container.hostname,
        labels=tuple(labels),
        read_only=container.read_only,
        tmpfs=container.tmpfs,
        cap_add=container.cap_add,
        secrets=container.secrets,
        cap_drop=container.cap_drop,
        security_opt=container.security_opt,
        init=container.init,
        pull=container.pull,
        memory=container.memory,
        memory_swap=container.memory_swap,
        cpus=container.cpus,
        cpu_shares=container.cpu_shares,
        pids_limit=container.pids_limit,
        restart=container.restart,
        stop_timeout=container.stop_timeout,
        stop_signal=container.stop_signal,
        publish=container.ports,
        # As the CLI does with repeated --network: one is `network`, several `networks`.
        network=names[0] if len(names) == 1 else None,
        networks=names if len(names) > 1 else (),
        network_aliases=aliases,
        volumes=container.volumes,
        mounts=container.mounts,
        no_healthcheck=container.no_healthcheck,
        ulimit=tuple(f"{k}={v}" for k, v in container.ulimits),
        device=container.devices,
        shm_size=container.shm_size,
        sysctl=tuple(f"{k}={v}" for k, v in container.sysctls),
        privileged=container.privileged,
        pod=container.pod,
        **health_options(container.healthcheck),  # type: ignore[arg-type]
    )


def pod_create_options(pod: PodDef) -> PodCreateOptions:
    """The options ``rctl pod create`` would be given for ``pod``, labelled with its file."""
    return PodCreateOptions(
        name=pod.name,
        publish=pod.ports,
        network=pod.network,
        labels={**dict(pod.labels), LABEL_FILE: pod.file},
        share=",".join(pod.share),
        infra=pod.infra,
        hostname=pod.hostname,
    )


def volume_create_kwargs(volume: VolumeDef) -> dict[str, Any]:
    """Keyword arguments of the volume service's ``create`` (``rctl volume create``)."""
    return {
        "name": volume.name,
        "labels": dict(volume.labels),
        "options": [f"{k}={v}" for k, v in volume.options],
        "driver": volume.driver,
    }


def network_create_options(network: NetworkDef) -> NetworkCreateOptions:
    """What ``rctl network create`` would be given for ``network``."""
    return NetworkCreateOptions(
        name=network.name,
        subnet=network.subnet,
        gateway=network.gateway,
        internal=network.internal,
        labels=tuple(f"{k}={v}" for k, v in network.labels),
        driver=network.driver,
    )


# ---- the unit ------------------------------------------------------------------------------


# A generated unit gives the container its stop timeout and then this long before SIGKILL.
STOP_GRACE_USEC = 5_000_000
START_TIMEOUT_USEC = 15 * 60 * 1_000_000


def render_unit(container: ContainerDef, rctl: Sequence[str], needs: Sequence[str] = ()) -> str:
    """The ``rctl-NAME.service`` unit for ``container``; ``rctl`` is how to run rctl;
    ``needs`` are more units it requires and starts after (the generator's network, volume
    and image units, :mod:`rootless.definitions.fileunits`).

    The unit runs the container in itself (``Type=notify``): ``rctl container run-unit``
    (re)creates the container from the definition when needed and execs the launcher, which
    tells systemd the runtime's PID and that it is ready (or leaves READY=1 to the container
    with ``notify = true``, relayed by the runtime, also the main process then): only the
    main process notifies. Stopping is systemd's: ``KillSignal=`` to the main process alone
    (the container's first process, as ``docker stop`` does), so that the network helper and
    the port relay still serve the container while it shuts down; SIGKILL to everything left
    after ``TimeoutStopSec=`` or once the container is gone; ``ExecStopPost=`` records how
    the container ended. The pass-through ``unit`` and ``service`` settings are written as
    they are (systemd syntax, specifiers included); every other value has its ``%`` doubled.
    """
    service = container_service(
        plan_unit_settings(run_options(container)),
        name=unit_name(container.name),
        description=f"rctl container {container.name} ({container.image})",
        exec_start=(*rctl, "container", "run-unit", "--definition", container.file, container.name),
        exec_stop_post=(
            ExecCommand((*rctl, "container", "stopped-unit", container.name), ignore_failure=True),
        ),
        kill_mode=KillMode.MIXED,
        syslog_identifier=container.name,
        stop_grace_usec=STOP_GRACE_USEC,
    )
    # run-unit may pull the image and create the container before READY=1. The journal
    # fields are the transient units' but the ID, which is made at the unit's start; they
    # reach journald only where the user manager exports them (rctl doctor says).
    fields = {"CONTAINER_NAME": container.name, "IMAGE_NAME": container.image}
    lines = render_service(
        dataclasses.replace(service, timeout_start_usec=START_TIMEOUT_USEC, log_extra_fields=fields)
    )
    deps = [*needs, *(unit_name(d) for d in container.depends_on)]
    unit_lines: list[tuple[str, Value]] = [
        *lines.unit,
        ("Documentation", "man:rctl(1)"),
        ("SourcePath", container.file),
        *[("Requires", d) for d in deps],
        *[("After", d) for d in deps],
        # A pod's member stops with its pod's unit (which the generator made a need).
        *[
            ("BindsTo", d)
            for d in needs
            if container.pod and d == f"rctl-pod-{container.pod}.service"
        ],
        *[(key, Verbatim(value)) for key, value in container.unit],
    ]
    service_lines = [*lines.service, *[(key, Verbatim(value)) for key, value in container.service]]
    install: list[tuple[str, Value]] = [("WantedBy", target) for target in container.wanted_by]
    header = (
        f"Generated by rctl from {container.file}: edit that file, not this one.",
        "Container: " + container.name,
    )
    return render_unit_file(
        [
            UnitSection("Unit", tuple(unit_lines)),
            UnitSection("Service", tuple(service_lines)),
            UnitSection("Install", tuple(install)),
        ],
        header,
    )
