"""``rctl kube generate``'s use case: read the containers or the definition file, then plan.

The reading is here (the container store, the definition files); what the documents say is
decided by the pure :mod:`rootless.kube.generate` and :mod:`rootless.kube.documents`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rctlbase.errors import UsageError
from rootless.definitions.load import load_definitions
from rootless.kube.documents import plan_documents, render_yaml
from rootless.kube.generate import (
    KubeContainer,
    KubeKind,
    container_from_definition,
    container_from_inspect,
)
from rootless.reports.containers import ContainerInspect


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
) -> str:
    """The YAML for the containers ``refs`` names, or for every container of the
    definition files it names (not both: a pod is one or the other)."""
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
    else:
        containers = [container_from_inspect(inspect(ref)) for ref in refs]
        name = containers[0].name if len(containers) == 1 else f"{containers[0].name}-pod"
    return render_yaml(plan_documents(name, containers, chosen, service=service))
