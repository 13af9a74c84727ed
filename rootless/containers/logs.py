"""``rctl logs``: a container's lines from the journal, read or followed until it ends."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rootless.containers.context import ContainerContext
from rootless.containers.timefmt import parse_time

if TYPE_CHECKING:
    from units.journal import JournalEntry


class ContainerLogs:
    """The journal of one user's containers."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx

    def logs(
        self,
        ref: str,
        *,
        since: str | None = None,
        until: str | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> Iterator[JournalEntry]:
        from units.journal import JournalFollower, JournalQuery, read_journal  # noqa: PLC0415

        record = self.ctx.store.get(ref)
        # systemd 252's user manager does not hand LogExtraFields (CONTAINER_ID...) to
        # journald (systemd#29956), so the container's lines are found by their syslog
        # identifier (the container's name) from its creation on.
        created = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        start = parse_time(since, "--since") if since else created
        query = JournalQuery(
            matches={"SYSLOG_IDENTIFIER": record.log_tag or record.name},
            since=max(start, created),
            until=parse_time(until, "--until") if until else None,
            lines=tail,
        )
        if not follow:
            yield from read_journal(query)
            return

        def ended() -> bool:
            state = self.ctx.manager.unit_state(record.unit)
            return state is None or state.active_state in ("inactive", "failed")

        with JournalFollower(query, should_stop=ended) as entries:
            yield from entries
