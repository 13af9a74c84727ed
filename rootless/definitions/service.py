"""Definition use cases: ``rctl apply``, ``rctl down``, ``rctl generate systemd``, and the
generated unit's own commands (``rctl container run-unit`` / ``stopped-unit``).

Containers are made with the same container service as ``rctl run`` (the definition becomes
a :class:`~rootless.models.RunOptions`, :func:`rootless.definitions.translate.run_options`),
volumes and networks with the volume and network services. Everything is validated (all
files, then the plan) before anything changes.

Two ways to run a definition's containers, not to be mixed for one container:

- ``rctl apply``: containers in transient units ``rctl-ID.service``, like ``rctl run -d``;
  they do not come back after a reboot.
- the generator (:mod:`rootless.definitions.generator`): a unit file ``rctl-NAME.service``
  per container whose ``ExecStart=`` is ``rctl container run-unit``, which (re)creates the
  container when its definition changed and runs it inside that unit (``Type=notify``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pwd
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rctlbase.errors import NotFoundError, RctlError, UsageError
from rctlbase.run import exec_program, run_program
from rootless.containers.health import rctl_command, reset_state
from rootless.definitions.apply import Existing, plan_apply, plan_down
from rootless.definitions.load import load_definitions, user_definition_dirs
from rootless.definitions.model import ContainerDef, DefinitionSet
from rootless.definitions.translate import (
    LABEL_FILE,
    LABEL_HASH,
    LABEL_UNIT,
    definition_hash,
    network_create_options,
    render_unit,
    run_options,
    unit_name,
    volume_create_kwargs,
)
from rootless.models import DefinitionAction

log = logging.getLogger(__name__)


def _volume_names(service: Any) -> set[str]:
    """Names of the user's volumes (``rctl volume ls``)."""
    listing = getattr(service, "ls", None) or service.list
    return {v.name for v in listing()}


class DefinitionService:
    """Definitions of one user, acting through the engine's services."""

    def __init__(
        self,
        containers: Any,
        images: Any,
        volumes: Callable[[], Any],
        networks: Callable[[], Any],
        config_home: Path,
    ) -> None:
        self.containers = containers
        self.images = images
        self.volumes = volumes
        self.networks = networks
        self.config_home = config_home

    # -- what exists -----------------------------------------------------------------------

    def existing(self) -> list[Existing]:
        states = {s.name: s for s in self.containers.manager.list_units("rctl-")}
        found = []
        for record in self.containers.store.all():
            state = states.get(record.unit)
            running = state is not None and state.active_state in ("active", "activating")
            found.append(
                Existing(
                    record.id, record.name, dict(record.labels), record.image_id, running,
                    record.unit_name,
                )
            )  # fmt: skip
        return found

    def _image_ids(self, wanted: DefinitionSet) -> dict[str, str | None]:
        ids: dict[str, str | None] = {}
        for container in wanted.containers:
            try:
                ids[container.image] = self.images.get(container.image).id
            except NotFoundError:
                ids[container.image] = None
        return ids

    def _volume_names(self) -> set[str]:
        return _volume_names(self.volumes())

    def _network_names(self, wanted: DefinitionSet) -> set[str]:
        if not wanted.networks:
            return set()  # no need to look (nor to load the network service)
        return {n.name for n in self.networks().summaries()}

    # -- apply and down --------------------------------------------------------------------

    def plan(self, paths: Iterable[Path]) -> tuple[DefinitionSet, list[DefinitionAction]]:
        """Validate every file, then plan ``apply`` (raises before anything changes)."""
        paths = list(paths)
        wanted = load_definitions(paths)
        dirs = [p.absolute() for p in paths if p.is_dir()]
        actions = plan_apply(
            wanted,
            self.existing(),
            self._image_ids(wanted),
            self._volume_names(),
            self._network_names(wanted),
            dirs,
        )
        return wanted, actions

    def apply(
        self,
        paths: Iterable[Path],
        *,
        dry_run: bool = False,
        report: Callable[[DefinitionAction], None] = lambda _a: None,
    ) -> list[DefinitionAction]:
        """``rctl apply``: carry out the plan, reporting each step once done."""
        wanted, actions = self.plan(paths)
        if dry_run:
            return actions
        for action in actions:
            self._act(action, wanted)
            report(action)
        return actions

    def _act(self, action: DefinitionAction, wanted: DefinitionSet) -> None:
        if action.kind == "volume":
            volume = next(v for v in wanted.volumes if v.name == action.name)
            self.volumes().create(**volume_create_kwargs(volume))
        elif action.kind == "network":
            network = next(n for n in wanted.networks if n.name == action.name)
            self.networks().create(network_create_options(network))
        elif action.verb in ("recreate", "remove"):
            self._remove_container(action.container_id)
            if action.verb == "recreate":
                self._create_container(wanted.container(action.name))
        elif action.verb == "create":
            self._create_container(wanted.container(action.name))
        elif action.verb == "start":
            self.containers.start(action.container_id)

    def _create_container(self, container: ContainerDef | None) -> None:
        assert container is not None  # planned from the same set
        record = self.containers.create(run_options(container))
        try:
            self.containers.start(record.id)
        except BaseException:
            with contextlib.suppress(RctlError):
                self.containers.remove(record.id, force=True)
            raise

    def _remove_container(self, container_id: str) -> None:
        """Stop gracefully (the stop timeout), then remove."""
        with contextlib.suppress(RctlError):
            self.containers.stop(container_id)
        self.containers.remove(container_id, force=True)

    def down(
        self,
        paths: Iterable[Path],
        *,
        volumes: bool = False,
        report: Callable[[DefinitionAction], None] = lambda _a: None,
    ) -> list[DefinitionAction]:
        """``rctl down``: remove what the files define (volumes only with ``volumes``)."""
        wanted = load_definitions(list(paths))
        actions = plan_down(
            wanted,
            self.existing(),
            self._volume_names(),
            self._network_names(wanted),
            remove_volumes=volumes,
        )
        for action in actions:
            if action.kind == "container":
                self._remove_container(action.container_id)
            elif action.kind == "volume":
                self.volumes().remove([action.name])
            else:
                self.networks().remove([action.name])
            report(action)
        return actions

    # -- units -----------------------------------------------------------------------------

    def definition_dirs(self) -> list[Path]:
        return user_definition_dirs(self.config_home, pwd.getpwuid(os.getuid()).pw_name)

    def find_definition(self, name: str) -> ContainerDef:
        """The container ``name`` among the user's definition directories."""
        dirs = [d for d in self.definition_dirs() if d.is_dir()]
        if dirs:
            wanted = load_definitions(dirs)
            found = wanted.container(name)
            if found is not None:
                return found
        raise NotFoundError(
            f"no definition of a container {name!r}",
            hint=f"looked in {', '.join(str(d) for d in self.definition_dirs())}; or give the file",
        )

    def generate(self, ref: str) -> list[tuple[str, str]]:
        """``rctl generate systemd NAME|FILE``: (unit name, unit text) for each container."""
        path = Path(ref)
        if ref.endswith(".toml") or path.is_file() or path.is_dir():
            wanted = load_definitions([path])
            containers = list(wanted.containers)
        else:
            containers = [self.find_definition(ref)]
        rctl = [rctl_command()]
        return [(unit_name(c.name), render_unit(c, rctl)) for c in containers]

    def run_unit(self, definition: Path, name: str) -> None:
        """The generated unit's ``ExecStart=``: (re)create the container when its
        definition or image changed, launch it in this unit, and notify systemd."""
        wanted = load_definitions([definition])
        container = wanted.container(name)
        if container is None:
            raise NotFoundError(
                f"{definition} defines no container {name!r}",
                hint="its containers are the [container.NAME] tables of the definition file",
            )
        volumes = self.volumes()
        have = _volume_names(volumes)
        for volume in wanted.volumes:
            if volume.name not in have:
                volumes.create(**volume_create_kwargs(volume))
        record = self._current(container)
        if record is None:
            options = run_options(container, extra_labels={LABEL_UNIT: unit_name(name)})
            made = self.containers.create(options)
            record = dataclasses.replace(made, unit_name=unit_name(name))
            self.containers.store.save(record)
        directory = self.containers.store.dir(record.id)
        if not self._restarted_by_policy(name):
            # A start by a user: the launcher sees no exit.json and forgets the restart
            # delays (rootless.containers.backoff).
            self.containers.store.forget_exit(record.id)
        reset_state(directory)
        # The healthcheck timer first: this process becomes the container's runtime below.
        # It is bound to this unit, which is activating now: it stops and restarts with it.
        try:
            self.containers.start_health_timer(record)
        except RctlError as exc:  # a missing timer must not keep the container from running
            log.warning("healthcheck timer not started: %s", exc.message)
        # The launcher of every container unit, in place of this process (the unit's main
        # process from start to end): it enters the container's namespaces, sends READY=1
        # to $NOTIFY_SOCKET (or, with RCTL_CONTAINER_NOTIFY=1, leaves it to the container
        # through crun) and execs the runtime.
        if container.notify:
            os.environ["RCTL_CONTAINER_NOTIFY"] = "1"
        plan = self.containers.store.launch_file(record.id)
        exec_program([sys.executable, "-I", "-m", "rootless.containers.launch", str(plan)])

    def _restarted_by_policy(self, name: str) -> bool:
        """Whether the manager started the unit again by its ``Restart=``: ``NRestarts``
        counts those restarts and is reset by a start from a user (systemd's service.c)."""
        try:
            state = self.containers.manager.unit_state(unit_name(name))
        except RctlError:
            return False
        return state is not None and state.n_restarts > 0

    def _current(self, container: ContainerDef) -> Any | None:
        """The existing container for ``container`` if it is up to date; None after
        removing an outdated one. A container of that name not made from a definition is
        left alone (an error)."""
        try:
            record = self.containers.store.get(container.name)
        except NotFoundError:
            return None
        if record.name != container.name:
            return None  # an ID prefix matched, not the name
        if LABEL_FILE not in record.labels:
            raise UsageError(
                f"container {container.name} exists and was not made from a definition",
                hint=f"remove it (rctl rm -f {container.name}) or rename it",
            )
        current = record.labels.get(LABEL_HASH) == definition_hash(container)
        if current and record.unit_name:
            try:
                current = self.images.get(container.image).id == record.image_id
            except NotFoundError:
                current = False
        if current and record.unit_name:
            return record
        self.containers.remove(record.id, force=True)
        return None

    def stopped_unit(self, name: str) -> None:
        """The generated unit's ``ExecStopPost=``: record how the container ended (the
        transient units' stop hook, :mod:`rootless.containers.exited`)."""
        try:
            record = self.containers.store.get(name)
        except NotFoundError:
            return
        bundle = self.containers.store.bundle(record.id)
        run_program(
            [sys.executable, "-I", "-m", "rootless.containers.exited", str(bundle)], check=False
        )
