"""``rctl kube generate`` and ``kube play``'s use cases: read, plan (pure), then act.

The reading is here (the container store, the definition files, the YAML files) and the
acting (containers run or removed through the container service); what the documents say
is decided by the pure :mod:`rootless.kube.generate`, :mod:`rootless.kube.documents` and
:mod:`rootless.kube.play`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rctlbase.errors import ConflictError, NotFoundError, RctlError, UsageError
from rootless.definitions.load import load_definitions
from rootless.kube.documents import plan_documents, render_yaml
from rootless.kube.generate import (
    KubeContainer,
    KubeKind,
    KubePort,
    container_from_definition,
    container_from_inspect,
    secret_uses,
)
from rootless.kube.objects import KIND_LABEL
from rootless.kube.play import CLAIM_LABEL, MAX_YAML_BYTES, PlayPlan, plan_play
from rootless.kube.pods import pod_containers
from rootless.kube.podspec import POD_LABEL
from rootless.reports.containers import ContainerInspect

if TYPE_CHECKING:
    from rootless.containers.service import ContainerService
    from rootless.pods.service import PodService
    from rootless.secrets.service import SecretService
    from rootless.volumes.service import VolumeService


def parse_kind(value: str) -> KubeKind:
    """``--type pod|deployment``."""
    try:
        return KubeKind(value.lower())
    except ValueError:
        raise UsageError(
            f"invalid --type {value!r}", hint="use --type pod or --type deployment"
        ) from None


def is_definition_file(ref: str) -> bool:
    return ref.endswith(".toml")


def generate_yaml(
    refs: Sequence[str],
    inspect: Callable[[str], ContainerInspect],
    kind: str = "pod",
    *,
    service: bool = False,
    pods: PodService | None = None,
    secret_labels: Callable[[str], Mapping[str, str]] | None = None,
) -> str:
    """The YAML for the containers ``refs`` names, for every member of the rctl pod it
    names, or for every container of the definition files it names (one kind at a time:
    a Pod is one or the other)."""
    chosen = parse_kind(kind)
    if not refs:
        raise UsageError("no container given", hint="name containers or a definition FILE.toml")
    files = [ref for ref in refs if is_definition_file(ref)]
    containers: list[KubeContainer]
    if files:
        if len(files) != len(refs):
            raise UsageError(
                "definition files and containers given together",
                hint="generate from either containers or definition files",
            )
        definitions = load_definitions([Path(f) for f in files])
        containers = [container_from_definition(c) for c in definitions.containers]
        if not containers:
            raise UsageError(
                f"{', '.join(files)} defines no container", hint="add a [container.NAME] table"
            )
        name = Path(files[0]).stem
    elif len(refs) == 1 and pods is not None and (report := pods.find_report(refs[0])):
        members = [container_from_inspect(inspect(m.id)) for m in report.members]
        if not members:
            raise UsageError(f"pod {report.name} has no container", hint="add one: rctl run --pod")
        published = [KubePort(p.container_port, p.protocol, p.host_port) for p in report.ports]
        containers, name = pod_containers(report.name, members, published), report.name
    else:
        reports = [inspect(ref) for ref in refs]
        labels_of = secret_labels or _no_labels
        containers = [
            replace(container_from_inspect(r), secrets=secret_uses(r.rctl.secrets, labels_of))
            for r in reports
        ]
        name = containers[0].name if len(containers) == 1 else f"{containers[0].name}-pod"
        played = {r.config.labels.get(POD_LABEL) for r in reports}
        pod = played.pop() if len(played) == 1 else None
        if pod and all(c.name.startswith(f"{pod}-") for c in containers):
            # Containers kube play made: the pod and container names they were played from.
            name = pod
            containers = [replace(c, name=c.name.removeprefix(f"{pod}-")) for c in containers]
    return render_yaml(plan_documents(name, containers, chosen, service=service))


def _no_labels(_name: str) -> Mapping[str, str]:
    return {}


def read_yaml(path: Path) -> str:
    """A YAML file's text, refused above :data:`MAX_YAML_BYTES` without reading the rest."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", hint="give a YAML file") from None
    if len(data) > MAX_YAML_BYTES:
        raise UsageError(
            f"{path} is larger than {MAX_YAML_BYTES} bytes", hint="split it into several files"
        )
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text", hint="give a YAML file") from None


@dataclass(frozen=True, slots=True)
class PlayRequest:
    """``rctl kube play``'s flags."""

    down: bool = False
    replace: bool = False
    start: bool = True
    network: str | None = None
    force: bool = False  # with down: the claims' volumes too


def plan_files(paths: Sequence[Path], network: str | None = None) -> PlayPlan:
    """Every file's plan, together: one bad file and nothing is made."""
    return plan_play([read_yaml(path) for path in paths], network=network)


def _is_kube_secret(secrets: SecretService, name: str) -> bool:
    """Whether the rctl secret ``name`` exists and was made by ``kube play``."""
    try:
        return KIND_LABEL in secrets.inspect(name).labels
    except NotFoundError:
        return False


def _is_kube_volume(volumes: VolumeService, name: str) -> bool:
    try:
        return volumes.inspect(name).labels.get(CLAIM_LABEL) == name
    except NotFoundError:
        return False


def take_down(
    plan: PlayPlan,
    containers: ContainerService,
    secrets: SecretService,
    volumes: VolumeService,
    *,
    force: bool = False,
    pods: PodService | None = None,
) -> None:
    """Remove what ``plan`` makes: its containers and pods, the secrets play made, and
    (``force``) the claims' volumes play made. Secrets and volumes of the user's own stay."""
    for options in plan.containers:
        with contextlib.suppress(NotFoundError):
            containers.remove(options.name or "", force=True)
    for pod in plan.pods:
        with contextlib.suppress(NotFoundError):
            if pods is not None:
                pods.remove(pod.name or "", force=True)
    kube_secrets = [s.name for s in plan.secrets if _is_kube_secret(secrets, s.name)]
    if kube_secrets:
        secrets.remove(kube_secrets)
    claims = [c for c in plan.claims if _is_kube_volume(volumes, c)]
    if force and claims:
        volumes.remove(claims)


def play_files(
    paths: Sequence[Path],
    containers: ContainerService,
    secrets: SecretService,
    volumes: VolumeService,
    request: PlayRequest,
    pods: PodService,
) -> PlayPlan:
    """``rctl kube play``: make the files' claims (volumes), secrets and containers
    (started unless ``request.start`` is false), or with ``down`` remove them. When one
    step fails, what this call made is removed again."""
    plan = plan_files(paths, request.network)
    if request.down or request.replace:
        take_down(
            plan, containers, secrets, volumes, force=request.down and request.force, pods=pods
        )
        if request.down:
            return plan
    made_volumes: list[str] = []
    made_secrets: list[str] = []
    made: list[str] = []
    made_pods: list[str] = []
    try:
        for claim in plan.claims:
            try:
                volumes.inspect(claim)
            except NotFoundError:  # an existing volume of that name is the claim's
                volumes.create(claim, {CLAIM_LABEL: claim})
                made_volumes.append(claim)
        for secret in plan.secrets:
            if secrets.exists(secret.name) and not _is_kube_secret(secrets, secret.name):
                raise ConflictError(
                    f"secret {secret.name} exists and was not made by kube play",
                    hint="remove or rename it ('rctl secret rm'), then play again",
                )
            secrets.create(secret.name, secret.value, dict(secret.labels), replace=True)
            made_secrets.append(secret.name)
        for pod in plan.pods:
            made_pods.append(pods.create(pod).id)
        for options in plan.containers:
            if request.start:
                record, _ = containers.run(options, None, _ignore)
            else:
                record = containers.create(options)
            made.append(record.id)
    except BaseException:
        for container_id in made:
            with contextlib.suppress(RctlError):
                containers.remove(container_id, force=True)
        _undo(pods, made_pods, secrets, made_secrets, volumes, made_volumes)
        raise
    return plan


def _undo(
    pods: PodService,
    made_pods: Sequence[str],
    secrets: SecretService,
    made_secrets: Sequence[str],
    volumes: VolumeService,
    made_volumes: Sequence[str],
) -> None:
    """Remove the pods, secrets and volumes a failed play made (its containers first)."""
    for pod_id in made_pods:
        with contextlib.suppress(RctlError):
            pods.remove(pod_id, force=True)
    with contextlib.suppress(RctlError):
        secrets.remove(list(made_secrets))
    with contextlib.suppress(RctlError):
        volumes.remove(list(made_volumes))


def _ignore(_unit: str) -> None:
    """Detached containers forward no signals."""
