"""``rctl auto-update``: newer images for the containers that ask for them, with rollback.

A container asks with the label ``io.rctl.autoupdate`` (``--label``, or a definition's
``auto_update`` key): ``registry`` pulls its image's reference again and updates when that
gives another image; ``local`` updates when the store's image of that reference changed (a
``pull``, ``load`` or ``tag`` by hand). Only containers run by a generated unit (definition
files and the generator) are updated: restarting that unit is what recreates the container
on the new image (``DefinitionService.run_unit`` compares image IDs), as podman's
auto-update needs systemd units too. Other labelled containers are reported, not touched.

After the restart the unit must be active and stay so without restarting, and the
container's healthcheck, if it has one, must say healthy, within the timeout. Otherwise,
with rollback (the default), the reference is tagged back to the previous image (still in
the store: the new pull only moved the tag) and the unit restarted on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rctlbase.errors import RctlError
from rootless.models import AutoUpdateReport

LABEL = "io.rctl.autoupdate"
POLICIES = ("registry", "local")
# Without a healthcheck, how long a restarted unit must stay active to count as started.
SETTLE = 5.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A labelled container, as its record says."""

    name: str
    unit: str  # its generated unit, "" when it has none
    image_name: str
    image_id: str
    policy: str


@dataclass(frozen=True, slots=True)
class UnitProbe:
    """What the wait after a restart sees of the unit (None: the unit is gone)."""

    active_state: str
    n_restarts: int


@dataclass(frozen=True, slots=True)
class Host:
    """The operations auto-update needs, given by the engine (fakes in the tests)."""

    image_id: Callable[[str], str | None]  # the store's image of a reference, if any
    pull: Callable[[str], str]  # pull a reference; the image ID it now names
    remote_differs: Callable[[str, str], bool]  # (reference, image ID): would a pull change it?
    tag: Callable[[str, str], object]  # (image ID, reference)
    restart: Callable[[str], object]  # restart a unit, raising RctlError if it fails to start
    probe: Callable[[str], UnitProbe | None]
    health: Callable[[str], str | None]  # a container's health status, None without a check
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def candidates(records: Iterable[tuple[str, str, str, str, dict[str, str]]]) -> list[Candidate]:
    """The containers labelled for auto-update, from (name, unit, image name, image ID,
    labels) rows; an unknown policy is reported as such by :func:`auto_update`."""
    found = []
    for name, unit, image_name, image_id, labels in records:
        policy = labels.get(LABEL)
        if policy is not None:
            found.append(Candidate(name, unit, image_name, image_id, policy))
    return sorted(found, key=lambda c: c.name)


def auto_update(
    found: Iterable[Candidate], host: Host, *, dry_run: bool, rollback: bool, timeout: float
) -> list[AutoUpdateReport]:
    """Update each candidate in turn; one report per candidate."""
    reports = []
    for candidate in found:

        def report(updated: str, c: Candidate = candidate) -> AutoUpdateReport:
            return AutoUpdateReport(c.unit, c.name, c.image_name, c.policy, updated)

        if candidate.policy not in POLICIES:
            reports.append(report(f"skipped: policy {candidate.policy!r} is not registry/local"))
        elif not candidate.unit:
            reports.append(report("skipped: not run by a generated unit"))
        else:
            try:
                reports.append(report(_update(candidate, host, dry_run, rollback, timeout)))
            except RctlError as exc:
                reports.append(report(f"failed: {exc.message}"))
    return reports


def _update(c: Candidate, host: Host, dry_run: bool, rollback: bool, timeout: float) -> str:
    if dry_run:
        if c.policy == "registry":
            changed = host.remote_differs(c.image_name, c.image_id)
        else:
            changed = host.image_id(c.image_name) not in (None, c.image_id)
        return "pending" if changed else "false"
    new = host.pull(c.image_name) if c.policy == "registry" else host.image_id(c.image_name)
    if new is None or new == c.image_id:
        return "false"
    if _restarted(c, host, timeout):
        return "true"
    if not rollback:
        return "failed: the unit did not start on the new image"
    host.tag(c.image_id, c.image_name)
    if _restarted(c, host, timeout):
        return "rolled back"
    return "failed: the unit did not start on the new image, nor on the previous one"


def _restarted(c: Candidate, host: Host, timeout: float) -> bool:  # noqa: PLR0911 - each way out
    """Restart the unit; whether it came up (and healthy, with a check) within ``timeout``."""
    try:
        host.restart(c.unit)
    except RctlError:
        return False
    start = host.clock()
    first = host.probe(c.unit)
    if first is None:
        return False
    while True:
        state = host.probe(c.unit)
        if state is None or state.active_state in ("failed", "inactive", "deactivating"):
            return False
        if state.n_restarts != first.n_restarts:
            return False  # it crashed and its Restart= brought it back
        health = host.health(c.name)
        if health == "unhealthy":
            return False
        elapsed = host.clock() - start
        if state.active_state == "active" and (
            health == "healthy" or (health is None and elapsed >= min(SETTLE, timeout))
        ):
            return True
        if elapsed > timeout:
            return False
        host.sleep(0.5)
