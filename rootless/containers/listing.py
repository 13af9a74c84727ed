"""What is known about containers: ``rctl ps`` rows, ``inspect``'s document, ``port``'s lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rctlbase.errors import NotFoundError
from rootless.containers import health
from rootless.containers.context import ContainerContext
from rootless.containers.ports import describe, network_settings_ports, port_lines
from rootless.containers.runtime import DEFAULT_RUNTIME
from rootless.containers.timefmt import ago
from rootless.models import ContainerSummary
from rootless.timestamps import rfc3339_from_ns, rfc3339_nano

USEC = 1_000_000


class ContainerListing:
    """ps, inspect and port of one user's containers."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx

    def port(self, ref: str, private: str | None = None) -> list[str]:
        """``rctl port``: the container's published ports, docker's lines."""
        record = self.ctx.store.get(ref)
        return port_lines(record.ports, private, name=record.name)

    def summaries(
        self, *, all_containers: bool = False, filters: Sequence[str] = ()
    ) -> list[ContainerSummary]:
        """``rctl ps`` (``-a``: stopped ones too), with docker's ``--filter``s."""
        keep = None
        if filters:
            from rootless.containers.facts import container_facts, ps_matcher  # noqa: PLC0415
            from rootless.filters import PS_KEYS, parse_filters, shows_stopped  # noqa: PLC0415

            parsed = parse_filters(filters, PS_KEYS)
            all_containers = all_containers or shows_stopped(parsed)
            keep = ps_matcher(parsed, self.ctx.store, self._image_ids)
        states = {s.name: s for s in self.ctx.manager.list_units("rctl-")}
        rows = []
        for record in self.ctx.store.all():
            state = states.get(record.unit)
            ended = self.ctx.exit_record(record)
            code = None if ended is None else ended[0]
            if state is not None and state.active_state in ("active", "activating", "reloading"):
                since = (
                    state.active_enter_usec / USEC if state.active_enter_usec else record.created
                )
                status, kind = f"Up {ago(since, suffix=False)}", "running"
                status += health.status_suffix(self.ctx.store.dir(record.id))
                if state.freezer_state in ("frozen", "freezing"):
                    status += " (Paused)"
            elif ended is not None:
                status, kind = f"Exited ({code}) {ago(ended[1])}", "exited"
            else:
                status, kind = "Created", "created"
            if kind != "running" and not all_containers:
                continue
            if keep is not None:
                paused = kind == "running" and status.endswith(" (Paused)")
                facts = container_facts(
                    record, self.ctx.store.dir(record.id), "paused" if paused else kind, code
                )
                if not keep(facts):
                    continue
            rows.append(
                ContainerSummary(
                    id=record.id,
                    name=record.name,
                    image=record.image_name,
                    command=" ".join(record.command),
                    created=record.created,
                    state=kind,
                    status=status,
                    exit_code=code,
                    ports=tuple(describe(p) for p in record.ports),
                )
            )
        return rows

    def _image_ids(self, ref: str) -> set[str]:
        """``ancestor=``: the ID an image reference stands for (none when unknown)."""
        try:
            return {self.ctx.images.get(ref).id}
        except NotFoundError:
            return set()

    def inspect(self, ref: str) -> dict[str, Any]:
        record = self.ctx.store.get(ref)
        state = self.ctx.manager.unit_state(record.unit)
        running = state is not None and state.active_state == "active"
        return {
            "Id": record.id,
            "Name": record.name,
            "Created": rfc3339_nano(record.created),
            "Image": record.image_id,
            "ImageName": record.image_name,
            "Path": record.command[0] if record.command else "",
            "Args": list(record.command[1:]),
            "State": {
                "Status": "running"
                if running
                else ("exited" if self.ctx.exit_code(record) is not None else "created"),
                "Running": running,
                "Pid": state.main_pid if state and running else 0,
                "ExitCode": self.ctx.exit_code(record) or 0,
                **_times_field(self.ctx.store.finished_at(record.id), state),
                **_health_field(self.ctx.store.dir(record.id)),
            },
            "Config": {**record.options, "Labels": record.labels, "Image": record.image_name},
            "HostConfig": {
                "AutoRemove": record.auto_remove,
                "NetworkMode": record.options.get("NetworkMode", ""),
                "Runtime": record.options.get("Runtime", DEFAULT_RUNTIME),
                "PortBindings": network_settings_ports(record.ports),
            },
            "NetworkSettings": {
                "Ports": network_settings_ports(
                    record.ports, record.options.get("ExposedPorts", ())
                ),
                "Networks": self.ctx.networks.container_networks(record.id),
            },
            "Mounts": [m.inspect() for m in record.mounts],
            "Driver": record.driver,
            "Unit": record.unit,
        }


def _times_field(finished: float, state: Any) -> dict[str, str]:
    """inspect's ``StartedAt``/``FinishedAt`` as docker writes them (Go's zero time when
    unknown): the start from the unit while systemd still has it, the end from the stop
    hook's record."""
    started = (state.exec_main_start_usec or state.active_enter_usec) if state else 0
    return {"StartedAt": rfc3339_from_ns(started * 1000), "FinishedAt": rfc3339_nano(finished)}


def _health_field(directory: Path) -> dict[str, Any]:
    """``{"Health": ...}`` for inspect's State, or nothing without a healthcheck."""
    found = health.inspect_health(directory)
    return {} if found is None else {"Health": found}
