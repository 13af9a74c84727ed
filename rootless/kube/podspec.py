"""A pod spec's containers as ``rctl run`` options, pure (``rctl kube play``).

Checked as it is read: a wrong type or value is one UsageError naming the field. Fields
that are well-formed but not carried over were already named by
:mod:`rootless.kube.fields`; here come the warnings that depend on values (a volume
without a source rctl knows).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rootless.kube.objects import KubeData, bad, check_label_name, check_subdomain
from rootless.models import RunOptions
from rootless.volumes.parse import check_volume_name

_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
_PULL = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
_ENV_NAME = re.compile(r"[^=\0]{1,4096}")
_DEFAULT_MODE = 0o644  # Kubernetes' defaultMode for configMap and secret volumes
POD_LABEL = "io.rctl.kube.pod"


@dataclass(frozen=True, slots=True)
class PodContext:
    """What a pod's containers may refer to: its name, the files' ConfigMaps and Secrets."""

    pod: str
    data: Mapping[tuple[str, str], KubeData] = field(default_factory=dict)

    def lookup(self, kind: str, name: object, where: str) -> KubeData:
        key = (kind, check_subdomain(name, f"{where}: {kind} name"))
        if key not in self.data:
            raise bad(f"{where}: {kind} {name} is not in the files given")
        return self.data[key]


@dataclass(frozen=True, slots=True)
class _Volume:
    """A pod volume: ``source`` for ``-v`` (a claim, a host path, "" for emptyDir), or
    ``files`` (key → rctl secret, mode) for configMap and secret volumes."""

    source: str | None = None
    files: tuple[tuple[str, str, int], ...] = ()  # (path in the volume, secret, mode)


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise bad(f"{where} is not a mapping")
    return value


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(f"{where} is not a list")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"{where} is not a list of strings")
    return tuple(value)


def _number(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad(f"{where} {value!r} is not a number from {low} to {high}")
    return value


def _files(
    context: PodContext, source: Mapping[str, Any], kind: str, name: object, where: str
) -> tuple[tuple[str, str, int], ...]:
    data = context.lookup(kind, name, where)
    mode = _number(source.get("defaultMode", _DEFAULT_MODE), f"{where}.defaultMode", 0, 0o777)
    items = _list(source.get("items"), f"{where}.items")
    if not items:
        return tuple((key, data.secret_name(key), mode) for key in sorted(data.values))
    out = []
    for raw in items:
        item = _mapping(raw, f"{where}.items")
        key, path = item.get("key"), item.get("path")
        if key not in data.values:
            raise bad(f"{where}.items: {kind} {data.name} has no key {key!r}")
        if not isinstance(path, str) or not _relative(path):
            raise bad(f"{where}.items: path {path!r} is not a relative path without '..'")
        item_mode = _number(item.get("mode", mode), f"{where}.items.mode", 0, 0o777)
        out.append((path, data.secret_name(str(key)), item_mode))
    return tuple(out)


def _relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "\0" not in path


def _volumes(context: PodContext, value: object) -> tuple[dict[str, _Volume], list[str]]:
    out: dict[str, _Volume] = {}
    warnings: list[str] = []
    for raw in _list(value, f"{context.pod}.volumes"):
        entry = _mapping(raw, f"{context.pod}.volumes")
        name = check_label_name(entry.get("name"), f"{context.pod}: volume name")
        where = f"{context.pod}.volumes[{name}]"
        claim = _mapping(entry.get("persistentVolumeClaim"), where)
        host = _mapping(entry.get("hostPath"), where)
        config = _mapping(entry.get("configMap"), f"{where}.configMap")
        secret = _mapping(entry.get("secret"), f"{where}.secret")
        if "claimName" in claim:
            out[name] = _Volume(check_volume_name(str(claim["claimName"]), flag=where))
        elif "path" in host:
            path = host["path"]
            if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
                raise bad(f"{where}.hostPath.path {path!r} is not an absolute path")
            out[name] = _Volume(posixpath.normpath(path))
        elif "emptyDir" in entry:
            out[name] = _Volume("")
        elif config:
            files = _files(context, config, "ConfigMap", config.get("name"), f"{where}.configMap")
            out[name] = _Volume(files=files)
        elif secret:
            files = _files(context, secret, "Secret", secret.get("secretName"), f"{where}.secret")
            out[name] = _Volume(files=files)
        else:
            warnings.append(f"Pod {context.pod}: volume {name} has no source rctl supports "
                            "(persistentVolumeClaim, hostPath, emptyDir, configMap, secret); "
                            "ignored")  # fmt: skip
            out[name] = _Volume()
    return out, warnings


def _mounts(
    value: object, volumes: Mapping[str, _Volume], where: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``-v`` values and ``--secret`` values of a container's volumeMounts."""
    binds: list[str] = []
    secrets: list[str] = []
    for raw in _list(value, f"{where}.volumeMounts"):
        mount = _mapping(raw, f"{where}.volumeMounts")
        name, path = mount.get("name"), mount.get("mountPath")
        if not isinstance(name, str) or not isinstance(path, str) or not path.startswith("/"):
            raise bad(f"{where}.volumeMounts needs a name and an absolute mountPath")
        if name not in volumes:
            raise bad(f"{where}.volumeMounts: no volume {name!r} in the pod")
        if "," in path or ":" in path or "\0" in path:
            raise bad(f"{where}.volumeMounts: mountPath {path!r} has ',', ':' or NUL")
        volume = volumes[name]
        sub = mount.get("subPath")
        if volume.files:
            chosen = volume.files
            if sub is not None:
                chosen = tuple(f for f in volume.files if f[0] == sub)
                if not chosen:
                    raise bad(f"{where}.volumeMounts: subPath {sub!r} is no key of {name}")
                secrets += [f"{s},target={path},mode={m:o}" for _, s, m in chosen]
                continue
            secrets += [f"{s},target={posixpath.join(path, p)},mode={m:o}" for p, s, m in chosen]
            continue
        if volume.source is None:
            continue
        if sub is not None:
            raise bad(f"{where}.volumeMounts: subPath is supported for configMap and secret "
                      "volumes only")  # fmt: skip
        suffix = ":ro" if mount.get("readOnly") is True else ""
        binds.append(f"{volume.source}:{path}{suffix}" if volume.source else f"{path}{suffix}")
    return tuple(binds), tuple(secrets)


def _env_from(
    context: PodContext, spec: Mapping[str, Any], where: str
) -> tuple[dict[str, str], dict[str, str]]:
    """envFrom's variables: a ConfigMap's as values, a Secret's as rctl secrets."""
    env: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for raw in _list(spec.get("envFrom"), f"{where}.envFrom"):
        source = _mapping(raw, f"{where}.envFrom")
        prefix = source.get("prefix", "")
        if not isinstance(prefix, str):
            raise bad(f"{where}.envFrom.prefix is not a string")
        config = _mapping(source.get("configMapRef"), f"{where}.envFrom.configMapRef")
        secret = _mapping(source.get("secretRef"), f"{where}.envFrom.secretRef")
        if config:
            data = context.lookup("ConfigMap", config.get("name"), f"{where}.envFrom")
            env.update({prefix + k: v.decode(errors="replace") for k, v in data.values.items()})
        if secret:
            data = context.lookup("Secret", secret.get("name"), f"{where}.envFrom")
            secrets.update({prefix + k: data.secret_name(k) for k in data.values})
    return env, secrets


def _env(
    context: PodContext, spec: Mapping[str, Any], where: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``-e`` values and ``--secret …,type=env`` values: env, then envFrom under it (a
    variable of env wins, as in Kubernetes)."""
    env, secrets = _env_from(context, spec, where)
    for raw in _list(spec.get("env"), f"{where}.env"):
        item = _mapping(raw, f"{where}.env")
        name = item.get("name")
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise bad(f"{where}.env has an entry without a valid name")
        env.pop(name, None)
        secrets.pop(name, None)
        source = _mapping(item.get("valueFrom"), f"{where}.env.{name}.valueFrom")
        config = _mapping(source.get("configMapKeyRef"), f"{where}.env.{name}")
        secret = _mapping(source.get("secretKeyRef"), f"{where}.env.{name}")
        if config:
            data = context.lookup("ConfigMap", config.get("name"), f"{where}.env.{name}")
            if config.get("key") not in data.values:
                raise bad(f"{where}.env.{name}: ConfigMap {data.name} has no key "
                          f"{config.get('key')!r}")  # fmt: skip
            env[name] = data.values[str(config["key"])].decode(errors="replace")
        elif secret:
            data = context.lookup("Secret", secret.get("name"), f"{where}.env.{name}")
            if secret.get("key") not in data.values:
                raise bad(f"{where}.env.{name}: Secret {data.name} has no key "
                          f"{secret.get('key')!r}")  # fmt: skip
            secrets[name] = data.secret_name(str(secret["key"]))
        elif isinstance(item.get("value", ""), str):
            env[name] = item.get("value", "")
        else:
            raise bad(f"{where}.env.{name}: only string values are supported")
    if any("\0" in value for value in env.values()):
        raise bad(f"{where}.env: a value holds a NUL character")
    for name in secrets:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise bad(f"{where}.env: {name!r} from a Secret is not a variable name")
    return (
        tuple(f"{k}={v}" for k, v in env.items()),
        tuple(f"{s},type=env,target={k}" for k, s in secrets.items()),
    )


def _ports(value: object, where: str) -> tuple[str, ...]:
    out = []
    for raw in _list(value, f"{where}.ports"):
        port = _mapping(raw, f"{where}.ports")
        container, host = port.get("containerPort"), port.get("hostPort")
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP"):
            raise bad(f"{where}.ports: protocol {protocol!r} is not TCP or UDP")
        if not isinstance(container, int) or not 0 < container < 65536:
            raise bad(f"{where}.ports: containerPort {container!r} is not a port")
        if host is None:
            continue
        if not isinstance(host, int) or not 0 < host < 65536:
            raise bad(f"{where}.ports: hostPort {host!r} is not a port")
        address = port.get("hostIP")
        if address is not None and (
            not isinstance(address, str) or not re.fullmatch(r"[0-9a-fA-F.:]{2,45}", address)
        ):
            raise bad(f"{where}.ports: hostIP {address!r} is not an address")
        shown = f"[{address}]" if address and ":" in address else address
        prefix = f"{shown}:" if address else ""
        out.append(f"{prefix}{host}:{container}/{protocol.lower()}")
    return tuple(out)


def _security(value: object, pod_level: Mapping[str, Any], where: str) -> dict[str, Any]:
    context = _mapping(value, f"{where}.securityContext")
    caps = _mapping(context.get("capabilities"), f"{where}.securityContext.capabilities")
    out: dict[str, Any] = {
        "read_only": context.get("readOnlyRootFilesystem") is True,
        "privileged": context.get("privileged") is True,
    }
    user = context.get("runAsUser", pod_level.get("runAsUser"))
    group = context.get("runAsGroup", pod_level.get("runAsGroup"))
    if user is not None:
        user = _number(user, f"{where}.securityContext.runAsUser", 0, (1 << 32) - 2)
        if group is not None:
            group = _number(group, f"{where}.securityContext.runAsGroup", 0, (1 << 32) - 2)
        out["user"] = f"{user}:{group}" if group is not None else str(user)
    elif group is not None:
        raise bad(f"{where}.securityContext.runAsGroup needs runAsUser here")
    for key, name in (("add", "cap_add"), ("drop", "cap_drop")):
        if key in caps:
            out[name] = _strings(caps[key], f"{where}.securityContext.capabilities.{key}")
    return out


def _health(value: object, where: str) -> dict[str, Any]:
    """An exec liveness probe as a healthcheck (the CMD form: no shell added)."""
    probe = _mapping(value, f"{where}.livenessProbe")
    action = _mapping(probe.get("exec"), f"{where}.livenessProbe.exec")
    if "command" not in action:
        return {}

    def seconds(key: str) -> str | None:
        if probe.get(key) is None:
            return None
        return f"{_number(probe[key], f'{where}.livenessProbe.{key}', 0, 86400 * 365)}s"

    retries = probe.get("failureThreshold")
    return {
        "health_cmd": json.dumps(list(_strings(action["command"], f"{where}.livenessProbe"))),
        "health_interval": seconds("periodSeconds"),
        "health_timeout": seconds("timeoutSeconds"),
        "health_start_period": seconds("initialDelaySeconds"),
        "health_retries": None
        if retries is None
        else _number(retries, f"{where}.livenessProbe.failureThreshold", 1, 1000),
    }


def _cpus(value: object, where: str) -> str:
    """A CPU quantity (``500m``, ``1.5``, 2) as ``--cpus``."""
    text = str(value)
    if re.fullmatch(r"[0-9]{1,6}m", text):
        return str(int(text[:-1]) / 1000)
    if re.fullmatch(r"[0-9]{1,4}(\.[0-9]{1,3})?", text):
        return text
    raise bad(f"{where}.resources.limits.cpu {value!r} is not a CPU quantity")


def _memory(value: object, where: str) -> str:
    """A memory quantity (``64Mi``, ``1G``, bytes) as ``--memory``."""
    match = re.fullmatch(r"([0-9]{1,15})(Ki|Mi|Gi|Ti|k|M|G|T)?", str(value))
    if match is None:
        raise bad(f"{where}.resources.limits.memory {value!r} is not a memory quantity")
    number, unit = match.groups()
    factor = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
              "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}[unit]  # fmt: skip
    return str(int(number) * factor)


def _container(
    context: PodContext,
    spec: Mapping[str, Any],
    pod: Mapping[str, Any],
    volumes: Mapping[str, _Volume],
) -> RunOptions:
    name, image = spec.get("name"), spec.get("image")
    if not isinstance(name, str) or not isinstance(image, str) or not image:
        raise bad(f"{context.pod}: a container needs a name and an image")
    check_label_name(name, f"{context.pod}: container name")
    where = f"{context.pod}[{name}]"
    resources = _mapping(spec.get("resources"), f"{where}.resources")
    limits = _mapping(resources.get("limits"), f"{where}.resources.limits")
    workdir = spec.get("workingDir")
    if workdir is not None and not isinstance(workdir, str):
        raise bad(f"{where}.workingDir is not a string")
    command = _strings(spec["command"], f"{where}.command") if "command" in spec else None
    pull = spec.get("imagePullPolicy", "IfNotPresent")
    if pull not in _PULL:
        raise bad(f"{where}.imagePullPolicy {pull!r} is not Always, IfNotPresent or Never")
    env, env_secrets = _env(context, spec, where)
    binds, file_secrets = _mounts(spec.get("volumeMounts"), volumes, where)
    return RunOptions(
        image=image,
        name=f"{context.pod}-{name}",
        detach=True,
        pull=_PULL[pull],
        command=_strings(spec["args"], f"{where}.args") if "args" in spec else (),
        entrypoint=None if command is None else json.dumps(list(command)),
        env=env,
        secrets=(*file_secrets, *env_secrets),
        publish=_ports(spec.get("ports"), where),
        workdir=workdir,
        memory=_memory(limits["memory"], where) if "memory" in limits else None,
        cpus=_cpus(limits["cpu"], where) if "cpu" in limits else None,
        restart=_RESTART[str(pod.get("restartPolicy", "Always"))],
        labels=(f"{POD_LABEL}={context.pod}",),
        volumes=binds,
        **_security(spec.get("securityContext"), pod, where),
        **(_health(spec["livenessProbe"], where) if "livenessProbe" in spec else {}),
    )


def pod_containers(
    context: PodContext, spec: Mapping[str, Any]
) -> tuple[list[RunOptions], list[str]]:
    """The containers of a pod spec (a Pod's ``spec``, a Deployment's template's), and
    the warnings its values call for."""
    policy = spec.get("restartPolicy", "Always")
    if not isinstance(policy, str) or policy not in _RESTART:
        raise bad(f"{context.pod}: restartPolicy {policy!r} is not Always, OnFailure or Never")
    pod_security = _mapping(spec.get("securityContext"), f"{context.pod}.securityContext")
    volumes, warnings = _volumes(context, spec.get("volumes"))
    listed = spec.get("containers")
    if not isinstance(listed, list) or not listed:
        raise bad(f"{context.pod}: no containers")
    containers = []
    for entry in listed:
        if not isinstance(entry, Mapping):
            raise bad(f"{context.pod}: a container is not a mapping")
        merged = {**spec, "restartPolicy": policy, **pod_security}
        containers.append(_container(context, entry, merged, volumes))
    names = [c.name for c in containers]
    if len(set(names)) != len(names):
        raise bad(f"{context.pod}: two containers have the same name")
    return containers, warnings
