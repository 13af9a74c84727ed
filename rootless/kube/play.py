"""``rctl kube play``'s reading of YAML: what to make, as values, pure.

Pods and Deployments become ``rctl run`` options (a Deployment runs one replica here),
ConfigMaps and Secrets rctl secrets (:mod:`rootless.kube.objects`), claims named volumes.
Containers get a ConfigMap's values as plain variables, a Secret's only as ``--secret``
(a file or a variable the record never holds), and both kinds' volumes as ``--secret``
files. The YAML is hostile (:mod:`rootless.kube.yamlload`); every field left out is named in
a warning (:mod:`rootless.kube.fields`); a wrong file is one UsageError before anything is
made. A Service makes nothing: the containers' ``hostPort``s publish their ports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rootless.kube.fields import field_warnings
from rootless.kube.objects import (
    KubeData,
    bad,
    check_label_name,
    check_subdomain,
    plan_data,
)
from rootless.kube.pods import group_in_pod
from rootless.kube.podspec import PodContext, pod_containers
from rootless.kube.yamlload import MAX_YAML_BYTES, load_documents
from rootless.models import PodCreateOptions, RunOptions
from rootless.volumes.parse import check_volume_name

__all__ = ["MAX_YAML_BYTES", "KubeSecretValue", "PlayPlan", "load_documents", "plan_play"]

_KINDS = {
    ("v1", "Pod"), ("apps/v1", "Deployment"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"), ("v1", "Service"),
}  # fmt: skip
CLAIM_LABEL = "io.rctl.kube.claim"


@dataclass(frozen=True, slots=True)
class KubeSecretValue:
    """One key of a ConfigMap or Secret, to keep as the rctl secret ``name``."""

    name: str
    value: bytes
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PlayPlan:
    """What files make: volumes (claims), secrets, containers; warnings for what they
    leave out."""

    containers: tuple[RunOptions, ...]
    warnings: tuple[str, ...] = ()
    secrets: tuple[KubeSecretValue, ...] = ()
    claims: tuple[str, ...] = ()
    pods: tuple[PodCreateOptions, ...] = ()  # Pods of several containers (kube.pods)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise bad(f"{where} is not a mapping")
    return value


def _workload(
    document: Mapping[str, Any], kind: str, name: str
) -> tuple[Mapping[str, Any], list[str]]:
    """The pod spec of a Pod or Deployment, and the Deployment's own warnings."""
    spec = _mapping(document.get("spec"), f"{name}.spec")
    if kind == "Pod":
        return spec, []
    warnings = []
    replicas = spec.get("replicas", 1)
    if replicas != 1:
        warnings.append(f"Deployment {name}: replicas {replicas!r} run as 1 here")
    template = _mapping(spec.get("template"), f"{name}.spec.template")
    return _mapping(template.get("spec"), f"{name}.spec.template.spec"), warnings


def _checked(
    documents: Sequence[Mapping[str, Any]],
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Each document's kind and name, both checked before anything else is read."""
    checked: list[tuple[str, str, Mapping[str, Any]]] = []
    for document in documents:
        api, kind = str(document.get("apiVersion")), str(document.get("kind"))
        if (api, kind) not in _KINDS:
            raise bad(f"kind {kind!r} of apiVersion {api!r} is not supported")
        meta = _mapping(document.get("metadata"), "metadata")
        if "name" not in meta:
            raise bad(f"the {kind} has no metadata.name")
        if kind in ("Pod", "Deployment"):
            name = check_label_name(meta["name"], f"{kind} name")
        else:
            name = check_subdomain(meta["name"], f"{kind} name")
        checked.append((kind, name, document))
    return checked


def _secrets(data: Mapping[tuple[str, str], KubeData]) -> tuple[KubeSecretValue, ...]:
    secrets: dict[str, KubeSecretValue] = {}
    for item in data.values():
        for key, value in item.values.items():
            secret = item.secret_name(key)
            if secret in secrets:
                raise bad(f"{item.kind} {item.name}: {secret!r} is also another object's key")
            secrets[secret] = KubeSecretValue(secret, value, item.labels(key))
    return tuple(secrets.values())


def _service_warnings(
    services: Sequence[tuple[str, Mapping[str, Any]]], containers: Sequence[RunOptions]
) -> list[str]:
    """A Service is made of the containers' hostPorts: a warning for each of its ports
    that no hostPort publishes (nothing else would serve it here)."""
    published = {p.rsplit(":", 1)[0].rsplit(":", 1)[-1] for c in containers for p in c.publish}
    out = []
    for name, document in services:
        spec = _mapping(document.get("spec"), f"Service {name}.spec")
        ports = spec.get("ports")
        for port in ports if isinstance(ports, list) else []:
            number = port.get("port") if isinstance(port, Mapping) else port
            if str(number) not in published:
                out.append(f"Service {name}: port {number!r} is no container's hostPort; ignored")
    return out


def plan_documents(
    documents: Sequence[Mapping[str, Any]], *, network: str | None = None
) -> PlayPlan:
    """The plan of every document together (a Secret of one file serves a Pod of another)."""
    checked = _checked(documents)
    services: list[tuple[str, Mapping[str, Any]]] = []
    data: dict[tuple[str, str], KubeData] = {}
    claims: list[str] = []
    warnings: list[str] = []
    for kind, name, document in checked:
        if kind == "Service":
            services.append((name, document))
            continue
        warnings += field_warnings(document, kind, name)
        if kind in ("ConfigMap", "Secret"):
            if (kind, name) in data:
                raise bad(f"{kind} {name} is given twice")
            data[(kind, name)] = plan_data(document, kind, name)
        elif kind == "PersistentVolumeClaim":
            claims.append(check_volume_name(name, flag="PersistentVolumeClaim name"))
    workloads: list[tuple[str, list[RunOptions]]] = []
    for kind, name, document in checked:
        if kind not in ("Pod", "Deployment"):
            continue
        spec, more = _workload(document, kind, name)
        warnings += more
        made, more = pod_containers(PodContext(name, data), spec)
        workloads.append((name, made))
        warnings += more
    everyone = [c for _, made in workloads for c in made]
    if not (everyone or data or claims):
        raise bad("the YAML describes no Pod, Deployment, ConfigMap, Secret or claim")
    warnings += _service_warnings(services, everyone)
    containers: list[RunOptions] = []
    pods: list[PodCreateOptions] = []
    for name, made in workloads:
        networked = made if network is None else [replace(c, network=network) for c in made]
        grouped, members = group_in_pod(name, networked)
        pods += [grouped] if grouped is not None else []
        containers += members
    return PlayPlan(tuple(containers), tuple(warnings), _secrets(data), tuple(claims), tuple(pods))


def plan_play(text: str | Sequence[str], *, network: str | None = None) -> PlayPlan:
    """The plan of one YAML text, or of several together."""
    texts = [text] if isinstance(text, str) else list(text)
    documents = [d for t in texts for d in load_documents(t)]
    return plan_documents(documents, network=network)
