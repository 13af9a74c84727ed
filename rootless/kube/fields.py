"""The fields ``rctl kube play`` carries over, per kind, and a warning for every other one.

A tree says what is handled: a mapping lists its keys (each with the tree of its value),
``[tree]`` is a list whose items have that tree, and ``None`` is a value taken whole. Any
key not in the tree is named in a warning (``Deployment web: spec.template.spec.nodeSelector
is not supported; ignored``): nothing is dropped silently. Types are the planner's to
check; the walk only names keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Tree = Mapping[str, Any] | list[Any] | None

_META = {"name": None, "labels": None, "annotations": None}
_KEY_REF = {"name": None, "key": None}
_ITEMS = [{"key": None, "path": None, "mode": None}]
CONTAINER: Tree = {
    "name": None,
    "image": None,
    "imagePullPolicy": None,
    "command": None,
    "args": None,
    "workingDir": None,
    "env": [
        {
            "name": None,
            "value": None,
            "valueFrom": {"configMapKeyRef": _KEY_REF, "secretKeyRef": _KEY_REF},
        }
    ],
    "envFrom": [{"prefix": None, "configMapRef": {"name": None}, "secretRef": {"name": None}}],
    "ports": [
        {"containerPort": None, "hostPort": None, "protocol": None, "hostIP": None, "name": None}
    ],
    "resources": {"limits": {"memory": None, "cpu": None}},
    "volumeMounts": [{"name": None, "mountPath": None, "readOnly": None, "subPath": None}],
    "securityContext": {
        "runAsUser": None,
        "runAsGroup": None,
        "readOnlyRootFilesystem": None,
        "privileged": None,
        "capabilities": {"add": None, "drop": None},
    },
    "livenessProbe": {
        "exec": {"command": None},
        "initialDelaySeconds": None,
        "periodSeconds": None,
        "timeoutSeconds": None,
        "failureThreshold": None,
    },
}
POD_SPEC: Tree = {
    "containers": [CONTAINER],
    "restartPolicy": None,
    "securityContext": {"runAsUser": None, "runAsGroup": None},
    "volumes": [
        {
            "name": None,
            "hostPath": {"path": None},
            "emptyDir": {},
            "persistentVolumeClaim": {"claimName": None, "readOnly": None},
            "configMap": {"name": None, "items": _ITEMS, "defaultMode": None},
            "secret": {"secretName": None, "items": _ITEMS, "defaultMode": None},
        }
    ],
}
KINDS: Mapping[str, Tree] = {
    "Pod": {"apiVersion": None, "kind": None, "metadata": _META, "spec": POD_SPEC},
    "Deployment": {
        "apiVersion": None,
        "kind": None,
        "metadata": _META,
        "spec": {
            "replicas": None,
            "selector": None,  # required by the API; one replica needs no selecting
            "template": {"metadata": _META, "spec": POD_SPEC},
        },
    },
    "ConfigMap": {
        "apiVersion": None, "kind": None, "metadata": _META, "data": None, "binaryData": None,
    },
    "Secret": {
        "apiVersion": None, "kind": None, "metadata": _META, "data": None, "stringData": None,
        "type": None,
    },
    "PersistentVolumeClaim": {
        "apiVersion": None,
        "kind": None,
        "metadata": _META,
        # A local volume has no access modes or size: the claim's request is accepted.
        "spec": {"accessModes": None, "resources": {"requests": {"storage": None}}},
    },
}  # fmt: skip


def _label(item: object, index: int) -> str:
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        return str(item["name"])
    return str(index)


def unsupported(value: object, tree: Tree, path: str = "") -> list[str]:
    """The dotted paths of ``value``'s keys that ``tree`` does not handle."""
    out: list[str] = []
    stack: list[tuple[object, Tree, str]] = [(value, tree, path)]
    while stack:
        item, shape, where = stack.pop()
        if shape is None:
            continue
        if isinstance(shape, list) and isinstance(item, list):
            stack.extend(
                (child, shape[0], f"{where}[{_label(child, i)}]")
                for i, child in reversed(list(enumerate(item)))
            )
        elif isinstance(shape, Mapping) and isinstance(item, Mapping):
            for key in reversed(list(item)):
                name = f"{where}.{key}" if where else str(key)
                if key in shape:
                    stack.append((item[key], shape[key], name))
                else:
                    out.append(name)
    return sorted(out)


def field_warnings(document: Mapping[str, Any], kind: str, name: str) -> list[str]:
    """A warning per field of ``document`` (of ``kind``) that rctl leaves out."""
    return [
        f"{kind} {name}: {path} is not supported; ignored"
        for path in unsupported(document, KINDS.get(kind))
    ]
