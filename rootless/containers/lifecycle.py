"""A container's life through its unit ``rctl-ID.service``: start (and its healthcheck's
timer), wait, stop, restart, kill, pause, unpause, rename and rm.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path

from rctlbase import timeline
from rctlbase.errors import ConflictError, NotFoundError
from rootless.containers import health
from rootless.containers.context import ContainerContext, not_running
from rootless.containers.exited import remove_as_user
from rootless.containers.isolation import Isolation
from rootless.containers.record import ContainerRecord, check_name
from rootless.containers.spec import ContainerSpec, Limits, parse_restart
from rootless.containers.unitspec import service_spec
from rootless.images.layerjob import RemoveJob
from units.properties import ExecCommand

# How long a start waits for the stop hook of the container's previous run to finish.
STOP_HOOK_WAIT = 60.0


class Lifecycle:
    """Start, stop and removal of one user's containers."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx

    def start(self, ref: str, *, stdio: tuple[int, int, int] | None = None) -> ContainerRecord:
        """Start the container's unit; returns once crun runs (the forking start is done)."""
        record = self.ctx.store.get(ref)
        state = self.ctx.manager.unit_state(record.unit)
        if state is not None and state.active_state == "deactivating":
            # Its last run's stop hook is still at work: the unit can't start before it
            # ended (with --rm, the hook removes the container: then there is none).
            with contextlib.suppress(NotFoundError):
                state = self.ctx.manager.wait_inactive(record.unit, timeout=STOP_HOOK_WAIT)
            record = self.ctx.store.get(record.id)
        if state is not None and state.active_state in ("active", "activating", "reloading"):
            return record
        if record.unit_name:  # run by its generated unit (definitions): start that
            self.ctx.manager.start(record.unit)
            return record
        if state is not None:
            with contextlib.suppress(NotFoundError):
                self.ctx.manager.reset_failed(record.unit)
        self.ctx.store.forget_exit(record.id)
        health.reset_state(self.ctx.store.dir(record.id))
        spec = self._spec_for_unit(record)
        unit = service_spec(record, spec, self.ctx.store.launch_file(record.id), stdio=stdio)
        if self.ctx.store.load_launch(record.id).network == "bridge":
            # bridge networks: detach (leases, peers' hosts, the rootless namespace's end)
            # before anything else of the stop, --rm included.
            detach = ExecCommand(
                (
                    sys.executable,
                    "-I",
                    "-m",
                    "rootless.networks.detach",
                    str(self.ctx.store.dir(record.id)),
                ),
                ignore_failure=True,
            )
            unit = dataclasses.replace(unit, exec_stop_post=(detach, *unit.exec_stop_post))
        if record.pod:
            # A pod's member: its pod's unit first; bound to it, it stops with it.
            from rootless.pods.unit import start_pod  # noqa: PLC0415 - pod members only

            pod_unit = start_pod(self.ctx.manager, self.ctx.store.root.parent, self.ctx.runtime,
                                 record.pod)  # fmt: skip
            unit = dataclasses.replace(unit, binds_to=(pod_unit,), after=(pod_unit,))
        if stdio is not None:
            # Keep the ended unit readable until we have its exit status (CollectMode).
            unit = dataclasses.replace(unit, add_ref=True)
        if traced := timeline.environment():
            unit = dataclasses.replace(unit, environment={**unit.environment, **traced})
        timeline.mark("cli: unit requested")
        self.ctx.manager.start_transient(unit, wait=True)
        timeline.mark("cli: unit started")
        self.start_health_timer(record)
        return record

    def start_health_timer(self, record: ContainerRecord) -> None:
        """Start the transient timer of the container's healthcheck, if it has one
        (:mod:`rootless.containers.health`); it stops with the container's unit."""
        config = health.load_config(self.ctx.store.dir(record.id))
        if config is None:
            return
        timer = health.timer_unit(record.unit)
        if self.ctx.manager.is_active(f"{timer}.timer"):
            return  # restarted with the container's unit (BindsTo= propagates restarts)
        # A previous run's units (a failed last check) would make the name taken.
        for unit in (f"{timer}.timer", f"{timer}.service"):
            with contextlib.suppress(NotFoundError):
                self.ctx.manager.reset_failed(unit)
        self.ctx.manager.start_transient_timer(
            health.timer_spec(record.unit, record.id, config, os.environ)
        )

    def _spec_for_unit(self, record: ContainerRecord) -> ContainerSpec:
        try:
            raw = self.ctx.store.load_unit_inputs(record.id)
        except FileNotFoundError:  # written last by create: it was killed before the end
            raise ConflictError(
                f"container {record.name} was not completely created (its create was interrupted)",
                hint=f"remove it (rctl rm {record.name}) and create it again",
            ) from None
        return ContainerSpec(
            name=record.name,
            image_ref=record.image_name,
            image_id=record.image_id,
            command=record.command,
            restart=parse_restart(raw["restart"]),
            stop_timeout=raw["stop_timeout"],
            stop_signal=raw["stop_signal"],
            limits=Limits(**raw["limits"]),
            isolation=Isolation(log_driver=raw.get("log_driver", "journald")),
        )

    def wait(self, ref: str) -> int:
        """Block until the container stops; its exit code (docker's: 128+N for signal N)."""
        record = self.ctx.store.get(ref)
        try:
            state = self.ctx.manager.wait_inactive(record.unit)
        except NotFoundError:
            state = None  # stopped and unloaded already: exit.json has its end
        # The unit's own record first: with --rm, ExecStopPost may already have removed
        # the directory holding exit.json (attached runs hold a reference on the unit).
        if state is not None and state.exit_status is not None:
            return state.exit_status
        code = self.ctx.exit_code(record)
        return 125 if code is None else code

    def stop(self, ref: str, timeout: int | None = None) -> ContainerRecord:
        """``rctl stop``: the stop signal, SIGKILL after ``timeout`` seconds (the
        container's stop timeout by default); returns once the unit's stop hook is done.
        A container that is not running, or whose unit ends and is collected meanwhile,
        is stopped: success, as docker's."""
        record = self.ctx.store.get(ref)
        self._stop_unit(record, None if timeout is None else float(timeout))
        self.ctx.event(record, "stop")
        return record

    def restart(self, ref: str) -> ContainerRecord:
        """Stop the container if it runs, then start it again."""
        record = self.ctx.store.get(ref)
        self._stop_unit(record, None)
        return self.start(record.id)

    def kill(self, ref: str, signum: int) -> ContainerRecord:
        """Signal the container's main process; a container that is not running (or ends
        meanwhile) is a conflict, as docker's."""
        record = self.ctx.store.get(ref)
        state = self.ctx.manager.unit_state(record.unit)
        if state is None or state.active_state != "active":
            raise not_running(record)
        try:
            self.ctx.manager.kill(record.unit, signum)
        except (NotFoundError, ConflictError) as exc:  # collected, or its main process gone
            raise not_running(record) from exc
        self.ctx.event(record, "kill", signal=str(signum))
        return record

    def relay_signal(self, unit: str, signum: int) -> None:
        """``rctl run``'s signal relay: pass ``signum`` to the container's main process,
        if the container still runs (a late Ctrl-C finds it ended: nothing to do)."""
        with contextlib.suppress(NotFoundError, ConflictError):
            self.ctx.manager.kill(unit, signum)

    def _stop_unit(self, record: ContainerRecord, timeout: float | None) -> None:
        """Stop the container's unit and wait for the stop, its stop hook included. A stop
        job, not a kill: no restart policy starts it again. A unit that is not loaded
        (ended and collected, before the call or during it) is a stopped container."""
        with contextlib.suppress(NotFoundError):
            self.ctx.manager.stop(record.unit, timeout=timeout)

    def remove(
        self, ref: str, *, force: bool = False, volumes: bool = False, in_unit: bool = False
    ) -> ContainerRecord:
        """``rm``: the unit, the record and the r/w layer; with ``volumes`` (``rm -v``), the
        anonymous volumes no other container uses. Named volumes are always kept.
        ``in_unit``: the caller is the container's own generated unit starting again (it
        replaces an outdated container), which is not to be stopped: the container it
        ran before has ended.

        Its unit may end and be collected at any moment, and the container be removed by
        someone else meanwhile (``--rm``'s stop hook, another ``rm``): the directory is
        taken out of the store in one rename after the unit ended, so exactly one removal
        deletes it and the others succeed without doing it again."""
        record = self.ctx.store.get(ref)
        state = None if in_unit else self.ctx.manager.unit_state(record.unit)
        if state is not None and not state.ended:
            if not force:
                raise ConflictError(
                    f"container {record.name} is running",
                    hint=f"stop it first (rctl stop {record.name}) or use rm -f",
                )
            # SIGKILL for every process while the main one runs (docker's rm -f), never
            # for the stop hook once it started (session.stop says why).
            self._stop_unit(record, 0)
        if state is not None:
            with contextlib.suppress(NotFoundError):  # collected once it ended
                self.ctx.manager.reset_failed(record.unit)
        doomed = self.ctx.store.take_out(record.id)
        if doomed is not None:
            self.delete_dir(doomed)
            self.ctx.event(record, "destroy")
        if volumes:
            self.ctx.volumes.remove_anonymous(record)
        return record

    def delete_dir(self, directory: Path) -> None:
        """Delete a stopped container's directory. Most of the r/w layer is the user's own
        (container root is the user); what belongs to other mapped IDs is deleted inside
        the user namespace, which costs a process, newuidmap and newgidmap."""
        if not remove_as_user(str(directory)):
            self.ctx.run_jobs([RemoveJob(str(directory))])

    def pause(self, ref: str) -> ContainerRecord:
        """Freeze every process of the container (the unit's cgroup freezer)."""
        record = self.ctx.store.get(ref)
        self.ctx.running_state(record)
        try:
            self.ctx.manager.freeze(record.unit)
        except NotFoundError as exc:  # ended and collected meanwhile
            raise not_running(record) from exc
        self.ctx.event(record, "pause")
        return record

    def unpause(self, ref: str) -> ContainerRecord:
        record = self.ctx.store.get(ref)
        self.ctx.running_state(record)
        try:
            self.ctx.manager.thaw(record.unit)
        except NotFoundError as exc:
            raise not_running(record) from exc
        self.ctx.event(record, "unpause")
        return record

    def rename(self, ref: str, new_name: str) -> ContainerRecord:
        """A new name; the journal keeps tagging the container's lines with its first name
        (``log_tag``), so ``rctl logs`` finds them all."""
        record = self.ctx.store.get(ref)
        with self.ctx.images.store.locked():
            self.ctx.store.check_free(check_name(new_name))
            renamed = dataclasses.replace(
                record, name=new_name, log_tag=record.log_tag or record.name
            )
            self.ctx.store.save(renamed)
        self.ctx.event(renamed, "rename", oldName=record.name)
        return renamed
