"""Planning ``rctl apply`` and ``rctl down``: pure functions from what the files say and
what exists to a list of actions (create, recreate with the changed keys, start, keep,
remove). :mod:`rootless.definitions.service` carries them out, or prints them (--dry-run).

Which existing containers belong to the files: those whose ``io.rctl.definition.file``
label names one of the files applied, or a file in one of the directories applied (so a
file deleted from a directory takes its containers with it on the next apply of the
directory).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rctlbase.errors import ConflictError
from rootless.definitions.model import DefinitionSet
from rootless.definitions.translate import LABEL_FILE, LABEL_HASH, changed_keys
from rootless.models import DefinitionAction as Action


@dataclass(frozen=True, slots=True)
class Existing:
    """A container as ``apply`` sees it."""

    id: str
    name: str
    labels: dict[str, str]
    image_id: str
    running: bool
    unit_name: str = ""  # run by a generated unit


def owned_by(labels: dict[str, str], files: Sequence[str], dirs: Sequence[Path]) -> bool:
    """Whether a container with ``labels`` was made from one of ``files`` or ``dirs``."""
    source = labels.get(LABEL_FILE)
    if not source:
        return False
    return source in files or any(Path(source).parent == d for d in dirs)


def plan_apply(
    wanted: DefinitionSet,
    existing: Sequence[Existing],
    image_ids: dict[str, str | None],
    volumes: set[str],
    networks: set[str],
    dirs: Sequence[Path] = (),
    pods: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Action]:
    """Actions that bring ``existing`` to ``wanted``: networks, volumes and pods first, then
    removals, then containers in dependency order. ``image_ids`` maps each definition's
    image reference to the ID it resolves to locally now (None: not pulled yet); ``pods``
    the existing pods' labels by name. A pod that exists is kept as it is (its members are
    recreated as their own keys say)."""
    actions = [
        Action("create", "network", n.name) for n in wanted.networks if n.name not in networks
    ]
    actions += [Action("create", "volume", v.name) for v in wanted.volumes if v.name not in volumes]
    actions += [Action("create", "pod", d.name) for d in wanted.pods if d.name not in (pods or {})]
    by_name = {c.name: c for c in existing}
    names = {c.name for c in wanted.containers}
    for container in existing:
        if container.name not in names and owned_by(container.labels, wanted.files, dirs):
            actions.append(Action("remove", "container", container.name, container_id=container.id))
    for definition in wanted.containers:
        current = by_name.get(definition.name)
        if current is None:
            actions.append(Action("create", "container", definition.name))
            continue
        if current.labels.get(LABEL_HASH) is None:
            raise ConflictError(
                f"container {definition.name} exists and was not made from a definition",
                hint=f"remove it (rctl rm -f {definition.name}) or rename it, then apply again",
            )
        if current.unit_name:
            raise ConflictError(
                f"container {definition.name} is run by its unit {current.unit_name}",
                hint=f"use systemctl --user restart {current.unit_name}, not apply",
            )
        keys = changed_keys(current.labels, definition)
        image_id = image_ids.get(definition.image)
        if not keys and image_id is not None and image_id != current.image_id:
            keys = ["image (new image ID)"]
        if keys:
            actions.append(
                Action("recreate", "container", definition.name, tuple(keys), current.id)
            )
        elif not current.running:
            actions.append(Action("start", "container", definition.name, container_id=current.id))
        else:
            actions.append(Action("keep", "container", definition.name, container_id=current.id))
    return actions


def plan_down(
    wanted: DefinitionSet,
    existing: Sequence[Existing],
    volumes: set[str],
    networks: set[str],
    *,
    remove_volumes: bool,
    pods: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Action]:
    """Remove the files' containers (dependents first), then their pods (made from these
    files, by their labels), networks and, when asked, their volumes. Containers of that
    name not made from these files are left."""
    actions = []
    by_name = {c.name: c for c in existing}
    for definition in reversed(wanted.containers):
        current = by_name.get(definition.name)
        if current is not None and owned_by(current.labels, wanted.files, ()):
            actions.append(Action("remove", "container", definition.name, container_id=current.id))
    actions += [
        Action("remove", "pod", d.name)
        for d in wanted.pods
        if owned_by(dict((pods or {}).get(d.name, {})), wanted.files, ())
    ]
    actions += [Action("remove", "network", n.name) for n in wanted.networks if n.name in networks]
    if remove_volumes:
        actions += [Action("remove", "volume", v.name) for v in wanted.volumes if v.name in volumes]
    return actions
