"""The units a definition file's other tables become: one per network, volume, pod and image.

Pure, like :mod:`rootless.definitions.translate`. A ``[network.NAME]`` becomes
``rctl-network-NAME.service`` and a ``[volume.NAME]`` ``rctl-volume-NAME.service``: oneshot
units with ``RemainAfterExit=yes`` that make the network or volume if it is missing
(``rctl container prepare-unit``). Each container's image gets ``rctl-image-NAME.service``
(NAME the container's), which pulls it when the container's ``pull`` policy says so, with a
start timeout that suits a pull (``IMAGE_TIMEOUT``) instead of the container unit's; a
container with ``build`` gets ``rctl-build-NAME.service`` instead, which builds its image
when it is missing or its context changed (``BUILD_TIMEOUT``).

A ``[pod.NAME]`` becomes ``rctl-pod-NAME.service``: not a oneshot but the pod's holder of
its shared namespaces (``Type=forking``, ``rctl pod run-unit`` making the pod if missing,
then :mod:`rootless.pods.holder`), with a PID file under ``%t`` so systemd supervises it.

A container unit ``Requires=`` and is ordered ``After=`` the units of what it uses
(:func:`container_needs`): its networks and volumes that the files define (others must
exist already, as for ``rctl run``), its pod's unit, and its image or build unit. A
member is also ``BindsTo=`` its pod's unit: it stops when the pod stops or its holder dies.

Why no ``network-online.target``: the user manager has no such target (the system's are not
its units), and waiting for the system's from a user unit is what makes podman's user units
hang for 90 s at boot when nothing ever reports the network online. Here nothing waits for
the network unless it needs it: an image that is present needs none (``pull = "missing"``,
the default), and a pull that finds no network yet retries with a back-off within the image
unit's own timeout (``DefinitionService.prepare_image``), so a container starts as soon as
its image can be had.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rootless.definitions.model import ContainerDef, NetworkDef, PodDef, VolumeDef
from units.unitfile import UnitSection, Value, Verbatim, quote_argv, render_unit_file

# How long an image unit may take: a pull of a large image over a slow line, with retries
# while the network comes up.
IMAGE_TIMEOUT = "30min"
PREPARE_TIMEOUT = "5min"
BUILD_TIMEOUT = "1h"  # a build of a definition's image: its RUN steps may take long
ENVIRONMENT_KEYS = ("Environment", "EnvironmentFile")


def network_unit_name(name: str) -> str:
    return f"rctl-network-{name}.service"


def volume_unit_name(name: str) -> str:
    return f"rctl-volume-{name}.service"


def pod_unit_name(name: str) -> str:
    return f"rctl-pod-{name}.service"


def image_unit_name(container: str) -> str:
    return f"rctl-image-{container}.service"


def build_unit_name(container: str) -> str:
    return f"rctl-build-{container}.service"


def volume_sources(container: ContainerDef) -> list[str]:
    """Names of the named volumes ``container`` mounts (``-v NAME:/path``,
    ``--mount type=volume,src=NAME``), in order, each once."""
    names: list[str] = []
    for text in container.volumes:
        source, sep, _ = text.partition(":")
        if sep and source and not source.startswith(("/", ".", "~")):
            names.append(source)
    for text in container.mounts:
        fields = dict(part.partition("=")[::2] for part in text.split(","))
        if fields.get("type", "volume") == "volume":
            source = fields.get("src") or fields.get("source") or ""
            if source:
                names.append(source)
    return list(dict.fromkeys(names))


def container_needs(
    container: ContainerDef,
    networks: Iterable[str],
    volumes: Iterable[str],
    pods: Iterable[str] = (),
) -> list[str]:
    """The units ``container``'s unit requires: of the defined ``networks``, ``volumes`` and
    ``pods`` those it uses, and its build unit, or its image unit unless it never pulls."""
    defined_networks, defined_volumes = set(networks), set(volumes)
    units = [network_unit_name(n.name) for n in container.networks if n.name in defined_networks]
    units += [volume_unit_name(v) for v in volume_sources(container) if v in defined_volumes]
    if container.pod is not None and container.pod in set(pods):
        units.append(pod_unit_name(container.pod))
    if container.build is not None:
        units.append(build_unit_name(container.name))
    elif container.pull != "never":
        units.append(image_unit_name(container.name))
    return units


def _prepare_unit(
    description: str,
    file: str,
    rctl: Sequence[str],
    what: Sequence[str],
    timeout: str,
    environment: Sequence[tuple[str, str]] = (),
) -> str:
    run = quote_argv([*rctl, "container", "prepare-unit", "--definition", file, *what])
    unit: tuple[tuple[str, Value], ...] = (
        ("Description", description),
        ("Documentation", "man:rctl(1)"),
        ("SourcePath", file),
    )
    service: tuple[tuple[str, Value], ...] = (
        ("Type", "oneshot"),
        ("RemainAfterExit", "yes"),
        ("ExecStart", run),
        ("TimeoutStartSec", timeout),
        *((key, Verbatim(value)) for key, value in environment),
    )
    header = (f"Generated by rctl from {file}: edit that file, not this one.",)
    return render_unit_file([UnitSection("Unit", unit), UnitSection("Service", service)], header)


def render_network_unit(network: NetworkDef, rctl: Sequence[str]) -> str:
    """``rctl-network-NAME.service``: make the network if it is missing."""
    return _prepare_unit(
        f"rctl network {network.name}", network.file, rctl, ("--network", network.name),
        PREPARE_TIMEOUT,
    )  # fmt: skip


def render_volume_unit(volume: VolumeDef, rctl: Sequence[str]) -> str:
    """``rctl-volume-NAME.service``: make the volume if it is missing."""
    return _prepare_unit(
        f"rctl volume {volume.name}", volume.file, rctl, ("--volume", volume.name),
        PREPARE_TIMEOUT,
    )  # fmt: skip


def pod_pid_file(name: str) -> str:
    """The PID file of pod NAME's holder, in the user manager's runtime directory (``%t``)."""
    return f"%t/rctl-pod-{name}.pid"


def render_pod_unit(pod: PodDef, rctl: Sequence[str]) -> str:
    """``rctl-pod-NAME.service``: the pod's holder, made from its definition if missing."""
    run = quote_argv([*rctl, "pod", "run-unit", "--definition", pod.file])
    unit: tuple[tuple[str, Value], ...] = (
        ("Description", f"rctl pod {pod.name}"),
        ("Documentation", "man:rctl(1)"),
        ("SourcePath", pod.file),
    )
    service: tuple[tuple[str, Value], ...] = (
        ("Type", "forking"),
        # The name is a checked pod name: no specifier, quote or space in it.
        ("ExecStart", Verbatim(f"{run.text} --pid-file {pod_pid_file(pod.name)} {pod.name}")),
        ("PIDFile", Verbatim(pod_pid_file(pod.name))),
        ("TimeoutStartSec", PREPARE_TIMEOUT),
        ("TimeoutStopSec", "10s"),
    )
    header = (f"Generated by rctl from {pod.file}: edit that file, not this one.",)
    return render_unit_file([UnitSection("Unit", unit), UnitSection("Service", service)], header)


def render_image_unit(container: ContainerDef, rctl: Sequence[str]) -> str:
    """``rctl-image-NAME.service``: the image of container NAME, pulled per its policy, in
    the container's environment (its ``service`` table's ``Environment=`` and
    ``EnvironmentFile=``: a store or a proxy set there is the pull's too)."""
    environment = [(k, v) for k, v in container.service if k in ENVIRONMENT_KEYS]
    return _prepare_unit(
        f"rctl image of {container.name} ({container.image})", container.file, rctl,
        ("--image", container.name), IMAGE_TIMEOUT, environment,
    )  # fmt: skip


def render_build_unit(container: ContainerDef, rctl: Sequence[str]) -> str:
    """``rctl-build-NAME.service``: the image of container NAME built from its ``build``
    when missing or when its context changed, in the container's environment."""
    environment = [(k, v) for k, v in container.service if k in ENVIRONMENT_KEYS]
    return _prepare_unit(
        f"rctl build of {container.name} ({container.image})", container.file, rctl,
        ("--build", container.name), BUILD_TIMEOUT, environment,
    )  # fmt: skip
