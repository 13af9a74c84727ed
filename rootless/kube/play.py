"""``rctl kube play``'s reading of YAML: Pods and Deployments as ``rctl run`` options, pure.

The YAML is hostile input: it is read with PyYAML's safe loader (no tags that build
objects), refused above :data:`MAX_YAML_BYTES`, and refused when it holds an alias at all
(an alias of an alias can make a few hundred bytes stand for billions of nodes, and
Kubernetes manifests have no need of them). Every field rctl does not carry over is named
in a warning, never dropped silently. A Deployment runs one replica here; claims and
Services are accepted and need no action (a claim's volume is made when mounted, a
Service's ports are the containers' ``hostPort``s).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from rctlbase.errors import UsageError
from rootless.kube.generate import dns_name
from rootless.kube.pods import group_in_pod
from rootless.models import PodCreateOptions, RunOptions
from rootless.volumes.parse import check_volume_name

MAX_YAML_BYTES = 1 << 20
_WORKLOADS = {("v1", "Pod"), ("apps/v1", "Deployment")}
# Kinds read but not acted on: a claim's volume is made when a container mounts it; a
# Service's ports are the containers' hostPorts here.
_PASSIVE = {("v1", "PersistentVolumeClaim"), ("v1", "Service")}
_CONTAINER_KEYS = {
    "name", "image", "command", "args", "env", "ports", "workingDir", "resources",
    "volumeMounts", "securityContext", "livenessProbe",
}  # fmt: skip
_SECURITY_KEYS = {"runAsUser", "runAsGroup", "readOnlyRootFilesystem", "capabilities", "privileged"}
_PROBE_KEYS = {"exec", "initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold"}
_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
_HINT = "give a Kubernetes Pod or Deployment (apiVersion v1 or apps/v1)"


@dataclass(frozen=True, slots=True)
class PlayPlan:
    """What a file makes: containers to run, and warnings for what it leaves out."""

    containers: tuple[RunOptions, ...]
    warnings: tuple[str, ...] = ()
    pods: tuple[PodCreateOptions, ...] = ()  # Pods of several containers (kube.pods)


def _bad(message: str) -> UsageError:
    return UsageError(message, hint=_HINT)


def load_documents(text: str) -> list[Mapping[str, Any]]:
    """The YAML stream's documents (mappings), checked as the module docstring says."""
    if len(text.encode()) > MAX_YAML_BYTES:
        raise _bad(f"the YAML is larger than {MAX_YAML_BYTES} bytes")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise _bad("the YAML uses an alias (*NAME); rctl refuses them")
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise _bad(f"invalid YAML: {' '.join(str(exc).split())}") from None
    if not all(isinstance(d, Mapping) for d in documents):
        raise _bad("a YAML document is not a mapping")
    return documents


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping; absent (None) is an empty one."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(f"{where} is not a mapping")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{where} is not a list of strings")
    return tuple(value)


def _unknown(keys: Iterable[str], known: set[str], where: str) -> list[str]:
    return [f"{where}.{key} is not supported; ignored" for key in keys if key not in known]


def _env(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad(f"{where}.env is not a list")
    out = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise _bad(f"{where}.env has an entry without a name")
        if not isinstance(item.get("value"), str):
            raise _bad(f"{where}.env.{item['name']}: only string values are supported")
        out.append(f"{item['name']}={item['value']}")
    return tuple(out)


def _ports(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad(f"{where}.ports is not a list")
    out = []
    for port in value:
        if not isinstance(port, Mapping):
            raise _bad(f"{where}.ports has an entry that is not a mapping")
        container, host = port.get("containerPort"), port.get("hostPort")
        protocol = str(port.get("protocol", "TCP")).lower()
        if not isinstance(container, int) or not 0 < container < 65536:
            raise _bad(f"{where}.ports: containerPort {container!r} is not a port")
        if host is None:
            continue
        if not isinstance(host, int) or not 0 < host < 65536:
            raise _bad(f"{where}.ports: hostPort {host!r} is not a port")
        out.append(f"{host}:{container}/{protocol}")
    return tuple(out)


def _pod_volumes(value: object, pod: str, warnings: list[str]) -> dict[str, str | None]:
    """The pod's volumes by name, as ``-v`` sources: a claim's name, a host path, ``""``
    for an emptyDir (an anonymous volume), None for a kind rctl does not carry over."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _bad(f"{pod}.volumes is not a list")
    out: dict[str, str | None] = {}
    for item in value:
        entry = _mapping(item, f"{pod}.volumes")
        name = entry.get("name")
        if not isinstance(name, str):
            raise _bad(f"{pod}.volumes has an entry without a name")
        claim = _mapping(entry.get("persistentVolumeClaim"), f"{pod}.volumes[{name}]")
        host = _mapping(entry.get("hostPath"), f"{pod}.volumes[{name}]")
        if "claimName" in claim:
            out[name] = check_volume_name(str(claim["claimName"]), flag=f"{pod}.volumes[{name}]")
        elif isinstance(host.get("path"), str) and host["path"].startswith("/"):
            out[name] = host["path"]
        elif "emptyDir" in entry:
            out[name] = ""
        else:
            warnings.append(f"{pod}.volumes[{name}]: only persistentVolumeClaim, hostPath "
                            "(absolute) and emptyDir are supported; ignored")  # fmt: skip
            out[name] = None
    return out


def _mounts(value: object, volumes: Mapping[str, str | None], where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad(f"{where}.volumeMounts is not a list")
    out = []
    for item in value:
        mount = _mapping(item, f"{where}.volumeMounts")
        name, path = mount.get("name"), mount.get("mountPath")
        if not isinstance(name, str) or not isinstance(path, str) or not path.startswith("/"):
            raise _bad(f"{where}.volumeMounts needs a name and an absolute mountPath")
        if name not in volumes:
            raise _bad(f"{where}.volumeMounts: no volume {name!r} in the pod")
        source = volumes[name]
        if source is None:
            continue
        suffix = ":ro" if mount.get("readOnly") is True else ""
        out.append(f"{source}:{path}{suffix}" if source else f"{path}{suffix}")
    return tuple(out)


def _security(value: object, where: str, warnings: list[str]) -> dict[str, Any]:
    context = _mapping(value, f"{where}.securityContext")
    warnings += _unknown(context, _SECURITY_KEYS, f"{where}.securityContext")
    out: dict[str, Any] = {}
    user, group = context.get("runAsUser"), context.get("runAsGroup")
    if user is not None:
        if not isinstance(user, int) or isinstance(user, bool) or user < 0:
            raise _bad(f"{where}.securityContext.runAsUser is not a user ID")
        if group is not None and (not isinstance(group, int) or group < 0):
            raise _bad(f"{where}.securityContext.runAsGroup is not a group ID")
        out["user"] = f"{user}:{group}" if group is not None else str(user)
    out["read_only"] = context.get("readOnlyRootFilesystem") is True
    out["privileged"] = context.get("privileged") is True
    caps = _mapping(context.get("capabilities"), f"{where}.securityContext.capabilities")
    for key, field in (("add", "cap_add"), ("drop", "cap_drop")):
        if key in caps:
            out[field] = _strings(caps[key], f"{where}.securityContext.capabilities.{key}")
    return out


def _seconds(probe: Mapping[str, Any], key: str, where: str) -> str | None:
    value = probe.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad(f"{where}.livenessProbe.{key} is not a number of seconds")
    return f"{value}s"


def _health(value: object, where: str, warnings: list[str]) -> dict[str, Any]:
    """An exec liveness probe as a healthcheck (the CMD form: no shell added)."""
    probe = _mapping(value, f"{where}.livenessProbe")
    warnings += _unknown(probe, _PROBE_KEYS, f"{where}.livenessProbe")
    action = _mapping(probe.get("exec"), f"{where}.livenessProbe.exec")
    if "command" not in action:
        return {}
    retries = probe.get("failureThreshold")
    if retries is not None and (not isinstance(retries, int) or retries < 1):
        raise _bad(f"{where}.livenessProbe.failureThreshold is not a positive number")
    return {
        "health_cmd": json.dumps(list(_strings(action["command"], f"{where}.livenessProbe"))),
        "health_interval": _seconds(probe, "periodSeconds", where),
        "health_timeout": _seconds(probe, "timeoutSeconds", where),
        "health_start_period": _seconds(probe, "initialDelaySeconds", where),
        "health_retries": retries,
    }


def _container(
    pod: str,
    spec: Mapping[str, Any],
    restart: str,
    volumes: Mapping[str, str | None],
    warnings: list[str],
) -> RunOptions:
    name = spec.get("name")
    image = spec.get("image")
    if not isinstance(name, str) or not isinstance(image, str) or not image:
        raise _bad(f"{pod}: a container needs a name and an image")
    where = f"{pod}[{name}]"
    warnings += _unknown(spec, _CONTAINER_KEYS, where)
    resources = _mapping(spec.get("resources"), f"{where}.resources")
    limits = _mapping(resources.get("limits"), f"{where}.resources.limits")
    workdir = spec.get("workingDir")
    if workdir is not None and not isinstance(workdir, str):
        raise _bad(f"{where}.workingDir is not a string")
    command = _strings(spec["command"], f"{where}.command") if "command" in spec else None
    return RunOptions(
        image=image,
        name=f"{pod}-{dns_name(name)}",
        detach=True,
        command=_strings(spec["args"], f"{where}.args") if "args" in spec else (),
        entrypoint=None if command is None else json.dumps(list(command)),
        env=_env(spec["env"], where) if "env" in spec else (),
        publish=_ports(spec["ports"], where) if "ports" in spec else (),
        workdir=workdir,
        memory=str(limits["memory"]).replace("i", "").lower() if "memory" in limits else None,
        cpus=_cpus(str(limits["cpu"]), where) if "cpu" in limits else None,
        restart=restart,
        labels=(f"io.rctl.kube.pod={pod}",),
        volumes=_mounts(spec["volumeMounts"], volumes, where) if "volumeMounts" in spec else (),
        **_security(spec.get("securityContext"), where, warnings),
        **(_health(spec["livenessProbe"], where, warnings) if "livenessProbe" in spec else {}),
    )


def _cpus(value: str, where: str) -> str:
    """A CPU quantity (``500m``, ``1.5``) as ``--cpus``."""
    if value.endswith("m") and value[:-1].isdigit():
        return str(int(value[:-1]) / 1000)
    if value.endswith("m"):
        raise _bad(f"{where}.resources.limits.cpu {value!r} is not a CPU quantity")
    return value


def plan_play(text: str) -> PlayPlan:
    """The containers the YAML's Pods and Deployments describe (UsageError if none)."""
    warnings: list[str] = []
    containers: list[RunOptions] = []
    pods: list[PodCreateOptions] = []
    for document in load_documents(text):
        kind = (str(document.get("apiVersion")), str(document.get("kind")))
        if kind in _PASSIVE:
            continue
        if kind not in _WORKLOADS:
            raise _bad(f"kind {kind[1]!r} of apiVersion {kind[0]!r} is not supported")
        meta = _mapping(document.get("metadata"), "metadata")
        if not isinstance(meta.get("name"), str):
            raise _bad(f"the {kind[1]} has no metadata.name")
        pod = dns_name(meta["name"])
        spec = _mapping(document.get("spec"), f"{pod}.spec")
        if kind[1] == "Deployment":
            if spec.get("replicas", 1) != 1:
                warnings.append(f"{pod}: replicas {spec['replicas']!r} run as 1 here")
            template = _mapping(spec.get("template"), f"{pod}.spec.template")
            spec = _mapping(template.get("spec"), f"{pod}.spec.template.spec")
        policy = spec.get("restartPolicy", "Always")
        if not isinstance(policy, str) or policy not in _RESTART:
            raise _bad(f"{pod}: restartPolicy {policy!r} is not Always, OnFailure or Never")
        warnings += _unknown(spec, {"containers", "restartPolicy", "volumes"}, pod)
        volumes = _pod_volumes(spec.get("volumes"), pod, warnings)
        listed = spec.get("containers")
        if not isinstance(listed, list) or not listed:
            raise _bad(f"{pod}: no containers")
        members = []
        for entry in listed:
            if not isinstance(entry, Mapping):
                raise _bad(f"{pod}: a container is not a mapping")
            members.append(_container(pod, entry, _RESTART[policy], volumes, warnings))
        grouped, members = group_in_pod(pod, members)
        pods += [grouped] if grouped else []
        containers += members
    if not containers:
        raise _bad("the YAML describes no Pod or Deployment")
    return PlayPlan(tuple(containers), tuple(warnings), tuple(pods))
