"""Container use cases: create, start, run, ps, stop, kill, rm, logs, wait, inspect.

A container is a record (:mod:`rootless.containers.record`), an OCI bundle and a transient
systemd user unit ``rctl-ID.service`` (:mod:`rootless.containers.unitspec`) whose main
process is first the launcher (:mod:`rootless.containers.launch`), then the container's
own first process, which systemd supervises: restart policy, stop timeout, limits, logs
(journal fields CONTAINER_ID, CONTAINER_NAME, IMAGE_NAME). The exit status is written into
the container's directory by the unit's ``ExecStopPost=``, so it survives the unit being
garbage-collected.

:class:`ContainerService` is the façade the engine exposes; the use cases live in its
parts, which share one :class:`~rootless.containers.context.ContainerContext`: create
planning (:mod:`.create`, the bundle in :mod:`.bundle`), the unit's life (:mod:`.lifecycle`),
commands inside (:mod:`.execs`), reports (:mod:`.listing`) and logs (:mod:`.logs`). What
spans parts (``run``, ``prune``) is here.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rctlbase import timeline
from rctlbase.errors import NotFoundError, RctlError
from rootless.containers.context import ContainerContext
from rootless.containers.create import ContainerCreator
from rootless.containers.execs import ContainerExec
from rootless.containers.lifecycle import Lifecycle
from rootless.containers.logs import ContainerLogs
from rootless.containers.netmode import NetworkDefaults
from rootless.containers.record import ContainerRecord, ContainerStore
from rootless.containers.runtime import DEFAULT_RUNTIME
from rootless.filters import CONTAINER_PRUNE_KEYS, parse_filters, prune_matcher
from rootless.images.service import ImageService
from rootless.models import ContainerUpdate, RunOptions
from rootless.storage.drivers import Driver
from units.manager import UserManager

if TYPE_CHECKING:
    from rootless.containers.listing import ContainerListing
    from rootless.contracts import ContainerHost
    from rootless.networks.service import NetworkService
    from rootless.reports.containers import ContainerInspect, ContainerListRow
    from rootless.secrets.service import SecretService
    from rootless.volumes.service import VolumeService
    from units.state import UnitState

# A directory taken out for deletion this long ago belongs to a removal that was killed.
LEFTOVER_AGE = 600.0


class ContainerService:
    """Containers of one user."""

    def __init__(
        self,
        data: Path,
        runtime: Path,
        images: ImageService,
        host: ContainerHost,
        driver: Driver,
        network_defaults: NetworkDefaults | None = None,
        volumes: VolumeService | None = None,
        default_runtime: str = DEFAULT_RUNTIME,
        manager: UserManager | None = None,
        secrets: Callable[[], SecretService] | None = None,
    ) -> None:
        self.ctx = ContainerContext(
            data, runtime, images, host, driver, network_defaults, volumes, default_runtime,
            manager, secrets,
        )  # fmt: skip
        creator = ContainerCreator(self.ctx)
        lifecycle = Lifecycle(self.ctx)
        execs = ContainerExec(self.ctx)
        self.lifecycle = lifecycle
        self.create = creator.create
        self.resolve_image = creator.resolve_image
        self.start = lifecycle.start
        self.start_health_timer = lifecycle.start_health_timer
        self.wait = lifecycle.wait
        self.stop = lifecycle.stop
        self.restart = lifecycle.restart
        self.kill = lifecycle.kill
        self.relay_signal = lifecycle.relay_signal
        self.remove = lifecycle.remove
        self.pause = lifecycle.pause
        self.unpause = lifecycle.unpause
        self.rename = lifecycle.rename
        self.exec = execs.exec
        self.exec_argv = execs.exec_argv
        self.top = execs.top
        self.copy = execs.copy
        self.logs = ContainerLogs(self.ctx).logs
        self.running_state = self.ctx.running_state
        self.exit_code = self.ctx.exit_code

    def update(self, ref: str, change: ContainerUpdate) -> ContainerRecord:
        """``update``: new limits (live when the container runs) and restart policy."""
        from rootless.containers.update import update_container  # noqa: PLC0415

        return update_container(self.ctx, ref, change)

    def resize_terminal(self, ref: str, rows: int, columns: int) -> bool:
        """Set the window size of a running container's terminal (one its unit holds);
        False when it has none."""
        from rootless.containers.consolehold import resize_console  # noqa: PLC0415

        record = self.ctx.store.get(ref)
        return resize_console(str(self.ctx.held_console(record.id)), rows, columns)

    @functools.cached_property
    def listing(self) -> ContainerListing:
        """``ps``, ``inspect`` and ``port``: built on first use, so that ``rctl run`` doesn't
        load the container reports (docker's documents, some 20 ms of imports)."""
        from rootless.containers.listing import ContainerListing  # noqa: PLC0415

        return ContainerListing(self.ctx)

    def summaries(
        self, *, all_containers: bool = False, filters: Sequence[str] = ()
    ) -> list[ContainerListRow]:
        """``rctl ps`` (``-a``: stopped ones too), with docker's ``--filter``s."""
        return self.listing.summaries(all_containers=all_containers, filters=filters)

    def inspect(self, ref: str) -> ContainerInspect:
        """``rctl inspect``: docker's document of the container."""
        return self.listing.inspect(ref)

    def port(self, ref: str, private: str | None = None) -> list[str]:
        """``rctl port``: the container's published ports, docker's lines."""
        return self.listing.port(ref, private)

    def get(self, ref: str) -> ContainerRecord:
        """The container ``ref`` names (its ID, an ID prefix or its name)."""
        return self.ctx.store.get(ref)

    def unit_state(self, record: ContainerRecord) -> UnitState | None:
        """What systemd knows of the container's unit now; None when it has no such unit
        (never started, or ended and collected). The API's wait and attach read it; a
        record taken before a removal still names the unit (its exit status may be kept)."""
        return self.ctx.manager.unit_state(record.unit)

    def last_exit(self, ref: str) -> tuple[int, float] | None:
        """The exit code and time of the container's last run; None if it never ended."""
        return self.ctx.exit_record(self.ctx.store.get(ref))

    @property
    def store(self) -> ContainerStore:
        """The records and directories of the user's containers."""
        return self.ctx.store

    @property
    def manager(self) -> UserManager:
        """The user's systemd manager, connected on first use."""
        return self.ctx.manager

    @property
    def volumes(self) -> VolumeService:
        """The volume service (the engine gives it; containers record their mounts)."""
        return self.ctx.volumes

    @property
    def networks(self) -> NetworkService:
        """Bridge networks of this store (``rctl network``, ``--network NAME``, ``--link``)."""
        return self.ctx.networks

    def run(
        self,
        options: RunOptions,
        stdio: tuple[int, int, int] | None,
        forward: Callable[[str], None],
    ) -> tuple[ContainerRecord, int | None]:
        """``rctl run``: create and start; attached, wait and return the exit code.

        ``forward(unit)`` is called once the unit runs, for the CLI to forward signals.
        Nothing is left behind when the start fails (no unit, no record, no r/w layer).
        """
        record = self.create(options)
        try:
            self.start(record.id, stdio=None if options.detach else stdio)
        except BaseException:
            # Leave nothing behind, but report the start's failure, not the cleanup's
            # (with --rm, ExecStopPost may have removed the container already).
            with contextlib.suppress(RctlError):
                self.remove(record.id, force=True)
            with contextlib.suppress(RctlError):
                self.volumes.remove_anonymous(record)  # the ones this run made
            raise
        if options.detach:
            return record, None
        forward(record.unit)
        code = self.wait(record.id)
        timeline.mark("cli: container ended")
        if options.remove:
            with contextlib.suppress(NotFoundError):
                self.remove(record.id, force=True)
            self.volumes.remove_anonymous(record)  # the unit's stop hook may have done it
        return record, code

    def prune(self, filters: Sequence[str] = ()) -> list[str]:
        """Remove every container that is not running (``filters``: docker's until=,
        label=, label!=), and what removals that were killed half-way left behind."""

        keep = prune_matcher(parse_filters(filters, CONTAINER_PRUNE_KEYS))
        for leftover in self.ctx.store.leftovers(older_than=LEFTOVER_AGE):
            self.lifecycle.delete_dir(leftover)
        records = {record.id: record for record in self.ctx.store.all()}
        doomed = [
            row.id for row in self.summaries(all_containers=True)
            if row.state != "running" and row.id in records
            and keep(records[row.id].created, records[row.id].labels)
        ]  # fmt: skip
        removed = []
        for container_id in doomed:
            with contextlib.suppress(NotFoundError):  # removed by someone else meanwhile
                self.remove(container_id)
                removed.append(container_id)
        return removed
