"""What is known about containers: ``rctl ps`` rows and ``inspect``'s document (reports of
:mod:`rootless.reports.containers`), ``port``'s lines."""

from __future__ import annotations

from collections.abc import Sequence

from rctlbase.errors import NotFoundError
from rootless.containers import health
from rootless.containers.context import ContainerContext
from rootless.containers.ports import port_lines
from rootless.containers.record import ContainerRecord
from rootless.containers.reporting import UnitInputs, inspect_report, list_row, live_state
from rootless.containers.timefmt import ago
from rootless.filters import PS_KEYS, parse_filters, shows_stopped
from rootless.reports.containers import ContainerInspect, ContainerListRow

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
    ) -> list[ContainerListRow]:
        """``rctl ps`` (``-a``: stopped ones too), with docker's ``--filter``s."""
        keep = None
        if filters:
            from rootless.containers.facts import container_facts, ps_matcher  # noqa: PLC0415

            parsed = parse_filters(filters, PS_KEYS)
            all_containers = all_containers or shows_stopped(parsed)
        records = self.ctx.store.all()
        pods = self._pod_names(records)
        if filters:
            keep = ps_matcher(parsed, self.ctx.store, self._image_ids)
        states = {s.name: s for s in self.ctx.manager.list_units("rctl-")}
        rows = []
        for record in records:
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
                    record, self.ctx.store.dir(record.id), "paused" if paused else kind, code, pods
                )
                if not keep(facts):
                    continue
            rows.append(
                list_row(
                    record,
                    state=kind,
                    status=status,
                    exit_code=code,
                    networks=self.ctx.networks.container_networks(record.id)
                    if self.ctx.store.has_networks(record.id)
                    else {},
                    pod_name=pods.get(record.pod, ""),
                )
            )
        return rows

    def _pod_names(self, records: Sequence[ContainerRecord]) -> dict[str, str]:
        """The names of the pods of ``records`` by ID (the pod code only for members)."""
        if not any(r.pod for r in records):
            return {}
        from rootless.pods.unit import pod_store  # noqa: PLC0415 - pod members only

        return {p.id: p.name for p in pod_store(self.ctx.store.root.parent, self.ctx.runtime).all()}

    def _image_ids(self, ref: str) -> set[str]:
        """``ancestor=``: the ID an image reference stands for (none when unknown)."""
        try:
            return {self.ctx.images.get(ref).id}
        except NotFoundError:
            return set()

    def inspect(self, ref: str) -> ContainerInspect:
        """``rctl inspect``: docker's document of the container."""
        record = self.ctx.store.get(ref)
        directory = self.ctx.store.dir(record.id)
        state = self.ctx.manager.unit_state(record.unit)
        try:
            inputs = UnitInputs.from_json(self.ctx.store.load_unit_inputs(record.id))
        except (FileNotFoundError, ValueError, TypeError, AttributeError):
            inputs = UnitInputs()
        return inspect_report(
            record,
            str(directory),
            live_state(state, self.ctx.exit_record(record), health.inspect_health(directory)),
            inputs,
            health.load_config(directory),
            self.ctx.networks.container_networks(record.id),
        )
