"""Definition use cases: ``rctl apply``, ``rctl down``, ``rctl generate systemd``, and the
generated units' own commands (``rctl container run-unit`` / ``stopped-unit``, and
``prepare-unit`` of the network, volume and image units).

Containers are made with the same container service as ``rctl run`` (the definition becomes
a :class:`~rootless.models.RunOptions`, :func:`rootless.definitions.translate.run_options`),
volumes, networks and pods with the volume, network and pod services. Everything is validated (all
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
import time
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rctlbase.errors import ConflictError, NotFoundError, RctlError, UsageError
from rctlbase.run import exec_program, run_program
from rootless.containers.health import rctl_command, reset_state
from rootless.definitions.apply import Existing, plan_apply, plan_down
from rootless.definitions.fileunits import pod_unit_name, volume_sources
from rootless.definitions.generator import collect_files
from rootless.definitions.load import load_definitions, user_definition_dirs
from rootless.definitions.model import ContainerDef, DefinitionSet, NetworkDef, VolumeDef
from rootless.definitions.translate import (
    LABEL_FILE,
    LABEL_HASH,
    LABEL_UNIT,
    definition_hash,
    network_create_options,
    pod_create_options,
    render_unit,
    run_options,
    unit_name,
    volume_create_kwargs,
)
from rootless.models import BuildOptions, DefinitionAction

if TYPE_CHECKING:
    from rootless.containers.service import ContainerService
    from rootless.contracts import Services
    from rootless.images.service import ImageService
    from rootless.volumes.service import VolumeService

log = logging.getLogger(__name__)
_REGENERATE = (
    "the file changed since the units were made: systemctl --user daemon-reload; "
    "the user manager's journal has the generator's report of each problem"
)


def _volume_names(service: VolumeService) -> set[str]:
    """Names of the user's volumes (``rctl volume ls``)."""
    return {v.name for v in service.ls()}


class DefinitionService:
    """Definitions of one user, acting through the engine's services."""

    def __init__(self, services: Services, config_home: Path) -> None:
        self.services = services
        self.config_home = config_home

    @property
    def containers(self) -> ContainerService:
        return self.services.containers

    @property
    def images(self) -> ImageService:
        return self.services.images

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
        return _volume_names(self.services.volumes)

    def _network_names(self, wanted: DefinitionSet) -> set[str]:
        if not wanted.networks:
            return set()  # no need to look (nor to load the network service)
        return {n.name for n in self.services.networks.summaries()}

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
            self._pod_labels(wanted),
        )
        return wanted, actions

    def _pod_labels(self, wanted: DefinitionSet) -> dict[str, dict[str, str]]:
        """The existing pods' labels by name (none looked up when the files have no pod)."""
        if not wanted.pods:
            return {}
        return {row.name: dict(row.labels) for row in self.services.pods.summaries()}

    def apply(
        self,
        paths: Iterable[Path],
        *,
        dry_run: bool = False,
        report: Callable[[DefinitionAction], None] = lambda _a: None,
    ) -> list[DefinitionAction]:
        """``rctl apply``: carry out the plan, reporting each step once done."""
        paths = list(paths)
        wanted, actions = self.plan(paths)
        if dry_run:
            return actions
        built = [c for c in wanted.containers if c.build is not None and self._ensure_built(c)]
        for container in built:
            report(DefinitionAction("build", "image", container.image))
        if built:  # new image IDs: the containers of those images are recreated
            wanted, actions = self.plan(paths)
        for action in actions:
            self._act(action, wanted)
            report(action)
        return actions

    def _act(self, action: DefinitionAction, wanted: DefinitionSet) -> None:
        if action.kind == "volume":
            volume = next(v for v in wanted.volumes if v.name == action.name)
            self.services.volumes.create(**volume_create_kwargs(volume))
        elif action.kind == "network":
            network = next(n for n in wanted.networks if n.name == action.name)
            self.services.networks.create(network_create_options(network))
        elif action.kind == "pod":
            pod = next(d for d in wanted.pods if d.name == action.name)
            self.services.pods.create(pod_create_options(pod))
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
            pods=self._pod_labels(wanted),
        )
        for action in actions:
            if action.kind == "container":
                self._remove_container(action.container_id)
            elif action.kind == "pod":
                self.services.pods.remove(action.name, force=True)
            elif action.kind == "volume":
                self.services.volumes.remove([action.name])
            else:
                self.services.networks.remove([action.name])
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
        wanted, container = _unit_definition(definition, name)
        used = set(volume_sources(container))
        for volume in wanted.volumes:
            if volume.name in used:
                self._ensure_volume(volume)
        for network in wanted.networks:
            if network.name in {ref.name for ref in container.networks}:
                self._ensure_network(network)
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

    def run_pod_unit(self, definition: Path, name: str, pid_file: Path) -> None:
        """A generated pod unit's ``ExecStart=``: the pod made (or brought to its
        definition), then the holder's start in place of this process (``Type=forking``)."""
        pod = next((d for d in _unit_definition(definition).pods if d.name == name), None)
        if pod is None:
            raise NotFoundError(f"{definition} defines no usable pod {name!r}", hint=_REGENERATE)
        pods = self.services.pods
        record = pods.unit_record(pod_create_options(pod), pod_unit_name(name))
        holder = [sys.executable, "-I", "-m", "rootless.pods.holder"]
        exec_program([*holder, *pods.unit_paths(record), str(pid_file)])

    # -- the generator's network, volume and image units (fileunits.py) ------------------

    def prepare_network(self, definition: Path, name: str) -> None:
        """``rctl-network-NAME.service``: make the file's network NAME if it is missing."""
        network = next((n for n in _unit_definition(definition).networks if n.name == name), None)
        if network is None:
            raise NotFoundError(
                f"{definition} defines no usable network {name!r}", hint=_REGENERATE
            )
        self._ensure_network(network)

    def prepare_volume(self, definition: Path, name: str) -> None:
        """``rctl-volume-NAME.service``: make the file's volume NAME if it is missing."""
        volume = next((v for v in _unit_definition(definition).volumes if v.name == name), None)
        if volume is None:
            raise NotFoundError(f"{definition} defines no usable volume {name!r}", hint=_REGENERATE)
        self._ensure_volume(volume)

    def prepare_image(self, definition: Path, name: str, *, patience: float = 25 * 60) -> None:
        """``rctl-image-NAME.service``: container NAME's image, pulled per its ``pull``
        policy. A pull that fails for want of the network (at boot, before the user's
        network is up) is tried again with a growing delay for ``patience`` seconds, inside
        the unit's start timeout: no wait at all when the image is there."""
        container = _unit_definition(definition, name)[1]
        deadline = time.monotonic() + patience
        delay = 1.0
        while True:
            try:
                self.containers.resolve_image(container.image, container.pull)
                return
            except (UsageError, NotFoundError, ConflictError):
                raise  # not the network's fault: waiting won't help
            except RctlError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("pulling %s: %s (again in %.0f s)", container.image, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def prepare_build(self, definition: Path, name: str) -> None:
        """``rctl-build-NAME.service``: container NAME's image, built when it is missing or
        its context changed."""
        self._ensure_built(_unit_definition(definition, name)[1])

    def _ensure_built(self, container: ContainerDef) -> bool:
        """Build ``container``'s image if it is missing or stale; whether it was built. The
        steps' output goes to standard error (the journal, in a unit)."""
        build = container.build
        assert build is not None
        options = BuildOptions(
            context=build.context,
            dockerfile=build.file,
            tags=(container.image,),
            build_args=tuple(f"{k}={v}" for k, v in build.args),
            target=build.target,
        )
        with open(os.devnull, "rb") as devnull:
            made = self.services.builds.ensure_built(options, log.info, (devnull.fileno(), 2, 2))
        return made is not None

    def _ensure_volume(self, volume: VolumeDef) -> None:
        volumes = self.services.volumes
        if volume.name not in _volume_names(volumes):
            with contextlib.suppress(ConflictError):  # made meanwhile by another unit
                volumes.create(**volume_create_kwargs(volume))

    def _ensure_network(self, network: NetworkDef) -> None:
        networks = self.services.networks
        if network.name not in {n.name for n in networks.summaries()}:
            with contextlib.suppress(ConflictError):  # made meanwhile by another unit
                networks.create(network_create_options(network))

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
        # This runs in the generated unit (ExecStart=): when the container is that unit's
        # own, stopping its unit would end this very start (an apply's is stopped).
        own = record.unit_name == unit_name(container.name)
        self.containers.remove(record.id, force=True, in_unit=own)
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


@typing.overload
def _unit_definition(definition: Path) -> DefinitionSet: ...
@typing.overload
def _unit_definition(definition: Path, name: str) -> tuple[DefinitionSet, ContainerDef]: ...
def _unit_definition(
    definition: Path, name: str | None = None
) -> DefinitionSet | tuple[DefinitionSet, ContainerDef]:
    """What a generated unit's file defines that can run, as the generator saw it: a problem
    elsewhere in the file doesn't stop this unit. With ``name``, also that container."""
    found, problems = collect_files([definition])
    if name is None:
        return found
    container = found.container(name)
    if container is None:
        mine = [str(p) for p in problems if p.table in ("", f"container.{name}")]
        raise NotFoundError(
            f"{definition} defines no usable container {name!r}" + (f": {mine[0]}" if mine else ""),
            hint="its containers are the [container.NAME] tables of the definition file; "
            "the user manager's journal has the generator's report of each problem",
        )
    return found, container
