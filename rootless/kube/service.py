"""``rctl kube generate`` and ``kube play``'s use cases: read, plan (pure), then act.

The reading is here (the container store, the definition files, the YAML files) and the
acting (containers run or removed through the container service); what the documents say
is decided by the pure :mod:`rootless.kube.generate`, :mod:`rootless.kube.documents` and
:mod:`rootless.kube.play`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rctlbase.errors import NotFoundError, RctlError, UsageError
from rootless.definitions.load import load_definitions
from rootless.kube.documents import plan_documents, render_yaml
from rootless.kube.generate import (
    KubeContainer,
    KubeKind,
    KubePort,
    container_from_definition,
    container_from_inspect,
)
from rootless.kube.play import MAX_YAML_BYTES, PlayPlan, plan_play
from rootless.kube.pods import pod_containers
from rootless.reports.containers import ContainerInspect

if TYPE_CHECKING:
    from rootless.containers.service import ContainerService
    from rootless.pods.service import PodService


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
        containers = [container_from_inspect(inspect(ref)) for ref in refs]
        name = containers[0].name if len(containers) == 1 else f"{containers[0].name}-pod"
    return render_yaml(plan_documents(name, containers, chosen, service=service))


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


def plan_files(paths: Sequence[Path]) -> PlayPlan:
    """Every file's plan, together: one bad file and nothing is made."""
    plans = [plan_play(read_yaml(path)) for path in paths]
    return PlayPlan(
        tuple(c for p in plans for c in p.containers),
        tuple(w for p in plans for w in p.warnings),
        tuple(d for p in plans for d in p.pods),
    )


def play_files(
    paths: Sequence[Path],
    containers: ContainerService,
    *,
    down: bool,
    pods: PodService,
) -> PlayPlan:
    """``rctl kube play``: make the files' pods, run their containers (detached), or with
    ``down`` remove them; when one fails to start, what this call made is removed again."""
    plan = plan_files(paths)
    if down:
        for options in plan.containers:
            with contextlib.suppress(NotFoundError):
                containers.remove(options.name or "", force=True)
        for pod in plan.pods:
            with contextlib.suppress(NotFoundError):
                pods.remove(pod.name or "", force=True)
        return plan
    started: list[str] = []
    made: list[str] = []
    try:
        for pod in plan.pods:
            made.append(pods.create(pod).id)
        for options in plan.containers:
            record, _ = containers.run(options, None, _ignore)
            started.append(record.id)
    except BaseException:
        for container_id in started:
            with contextlib.suppress(RctlError):
                containers.remove(container_id, force=True)
        for pod_id in made:
            with contextlib.suppress(RctlError):
                pods.remove(pod_id, force=True)
        raise
    return plan


def _ignore(_unit: str) -> None:
    """Detached containers forward no signals."""
