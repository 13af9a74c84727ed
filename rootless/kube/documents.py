"""Kubernetes documents as plain dicts, and their YAML: pure.

:func:`plan_documents` turns :class:`~rootless.kube.generate.KubeContainer` values into a
v1 Pod or an apps/v1 Deployment (one replica), a v1 PersistentVolumeClaim per named volume
and, asked for, a v1 Service for the published ports. Every name is a DNS-1123 label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from rootless.kube.generate import (
    KubeContainer,
    KubeKind,
    KubeMount,
    KubeProbe,
    KubeSecretUse,
    dns_name,
    is_label,
)
from rootless.volumes.parse import MountKind

# docker's restart policies as a pod's restartPolicy (core/v1 PodSpec).
_RESTART = {
    "no": "Never",
    "on-failure": "OnFailure",
    "always": "Always",
    "unless-stopped": "Always",
}
# What a PersistentVolumeClaim asks for when the volume has no size: the cluster's
# storage class decides the rest.
CLAIM_SIZE = "1Gi"
APP_LABEL = "app"
_REF = {"ConfigMap": "configMapKeyRef", "Secret": "secretKeyRef"}


def _quantity_memory(size: int) -> str:
    for suffix, unit in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def _capability(name: str) -> str:
    """Kubernetes names capabilities without the ``CAP_`` prefix."""
    upper = name.upper()
    return upper.removeprefix("CAP_")


def _security_context(container: KubeContainer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    user, _, group = container.user.partition(":")
    if user.isdigit():
        out["runAsUser"] = int(user)
        if group.isdigit():
            out["runAsGroup"] = int(group)
    caps: dict[str, Any] = {}
    if container.cap_add:
        caps["add"] = [_capability(c) for c in container.cap_add]
    if container.cap_drop:
        caps["drop"] = [_capability(c) for c in container.cap_drop]
    if caps:
        out["capabilities"] = caps
    if container.privileged:
        out["privileged"] = True
    if container.read_only:
        out["readOnlyRootFilesystem"] = True
    return out


class _Volumes:
    """The pod's volumes: one per named volume or host path, named once."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.names: dict[tuple[MountKind, str], str] = {}
        self.claims: list[str] = []
        self.data: dict[tuple[str, str, int], dict[str, Any]] = {}

    def name_of(self, mount: KubeMount) -> str:
        key = (mount.kind, mount.source)
        if key in self.names:
            return self.names[key]
        taken = {str(e["name"]) for e in self.entries}
        if mount.kind is MountKind.VOLUME:
            base = dns_name(mount.source)
        else:
            base = dns_name("host-" + (mount.source.strip("/").replace("/", "-") or "root"))
        name, n = base, 1
        while name in taken:
            n += 1
            suffix = f"-{n}"
            name = base[: 63 - len(suffix)].rstrip("-") + suffix
        self.names[key] = name
        if mount.kind is MountKind.VOLUME:
            self.claims.append(name)
            self.entries.append({"name": name, "persistentVolumeClaim": {"claimName": name}})
        else:
            self.entries.append({"name": name, "hostPath": {"path": mount.source}})
        return name

    def name_of_data(self, use: KubeSecretUse) -> str:
        """The volume of a ConfigMap's or Secret's files (one per object and mode), with
        ``use``'s key among its items."""
        key = (use.kind, use.name, use.mode)
        if key in self.data:
            entry = self.data[key]
        else:
            taken = {e["name"] for e in self.entries}
            base = dns_name(f"{use.kind}-{use.name}")
            name, n = base, 1
            while name in taken:
                n += 1
                name = base[: 63 - len(str(n)) - 1].rstrip("-") + f"-{n}"
            field = "secretName" if use.kind == "Secret" else "name"
            source = {field: use.name, "items": [], "defaultMode": use.mode}
            entry = {"name": name, "secret" if use.kind == "Secret" else "configMap": source}
            self.data[key] = entry
            self.entries.append(entry)
        source = entry["secret" if use.kind == "Secret" else "configMap"]
        if not any(item["key"] == use.key for item in source["items"]):
            source["items"].append({"key": use.key, "path": use.key})
        return str(entry["name"])


def _ports(container: KubeContainer) -> list[dict[str, Any]]:
    ports = []
    for port in container.ports:
        entry: dict[str, Any] = {"containerPort": port.container_port}
        if port.host_port:
            entry["hostPort"] = port.host_port
        ports.append(entry | {"protocol": port.protocol.upper()})
    return ports


def _limits(container: KubeContainer) -> dict[str, str]:
    limits: dict[str, str] = {}
    if container.memory:
        limits["memory"] = _quantity_memory(container.memory)
    if container.millicpus:
        limits["cpu"] = f"{container.millicpus}m"
    return limits


def _probe(probe: KubeProbe) -> dict[str, Any]:
    return {
        "exec": {"command": list(probe.command)},
        "initialDelaySeconds": probe.initial_delay,
        "periodSeconds": probe.period,
        "timeoutSeconds": probe.timeout,
        "failureThreshold": probe.failures,
    }


def _container(container: KubeContainer, volumes: _Volumes) -> dict[str, Any]:
    out: dict[str, Any] = {"name": dns_name(container.name), "image": container.image}
    if container.command:
        out["command"] = list(container.command)
    if container.args:
        out["args"] = list(container.args)
    if container.working_dir:
        out["workingDir"] = container.working_dir
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in container.env]
    env += [
        {"name": use.target, "valueFrom": {_REF[use.kind]: {"name": use.name, "key": use.key}}}
        for use in container.secrets
        if use.env
    ]
    if env:
        out["env"] = env
    if container.ports:
        out["ports"] = _ports(container)
    if limits := _limits(container):
        out["resources"] = {"limits": limits}
    mounts = [
        {"name": volumes.name_of(m), "mountPath": m.destination}
        | ({"readOnly": True} if m.read_only else {})
        for m in container.mounts
    ]
    # A file each, as rctl mounts them: subPath leaves the rest of the directory alone.
    mounts += [
        {"name": volumes.name_of_data(use), "mountPath": use.target, "subPath": use.key,
         "readOnly": True}
        for use in container.secrets
        if not use.env
    ]  # fmt: skip
    if mounts:
        out["volumeMounts"] = mounts
    if container.probe is not None:
        out["livenessProbe"] = _probe(container.probe)
    if security := _security_context(container):
        out["securityContext"] = security
    return out


def _metadata(name: str, containers: Sequence[KubeContainer]) -> dict[str, Any]:
    labels = {APP_LABEL: name}
    annotations: dict[str, str] = {}
    for container in containers:
        for key, value in container.labels:
            if is_label(key, value) and key != APP_LABEL:
                labels.setdefault(key, value)
            else:
                annotations.setdefault(key, value)
    out: dict[str, Any] = {"name": name, "labels": labels}
    return out | ({"annotations": annotations} if annotations else {})


def plan_documents(
    name: str, containers: Sequence[KubeContainer], kind: KubeKind, *, service: bool = False
) -> list[dict[str, Any]]:
    """The documents for ``containers`` in one pod called ``name`` (made DNS-1123): the
    claims first, then the Pod or Deployment, then the Service."""
    name = dns_name(name)
    volumes = _Volumes()
    spec: dict[str, Any] = {"containers": [_container(c, volumes) for c in containers]}
    if volumes.entries:
        spec["volumes"] = volumes.entries
    metadata = _metadata(name, containers)
    if kind is KubeKind.POD:
        first = containers[0].restart.partition(":")[0] if containers else "no"
        spec["restartPolicy"] = _RESTART.get(first, "Never")
        workload: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": spec,
        }
    else:
        # A Deployment keeps its pods running: Always is the only policy the API takes.
        spec["restartPolicy"] = "Always"
        workload = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {APP_LABEL: name}},
                "template": {"metadata": {"labels": dict(metadata["labels"])}, "spec": spec},
            },
        }
    documents = [_claim(claim) for claim in volumes.claims]
    documents.append(workload)
    published = [(port, c) for c in containers for port in c.ports if port.host_port]
    if service and published:
        documents.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": {APP_LABEL: name}},
                "spec": {
                    "selector": {APP_LABEL: name},
                    "ports": [
                        {
                            "name": f"{port.protocol}-{port.host_port}",
                            "port": port.host_port,
                            "targetPort": port.container_port,
                            "protocol": port.protocol.upper(),
                        }
                        for port, _ in published
                    ],
                },
            }
        )
    return documents


def _claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": CLAIM_SIZE}},
        },
    }


def render_yaml(documents: Sequence[dict[str, Any]]) -> str:
    """The documents as one YAML stream, keys in the order they were built."""
    return yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False)


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two places twice: a cluster's tools read anchors, but a
    person editing the file should see each field where it applies."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
