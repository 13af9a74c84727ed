"""``ps --filter`` and ``container prune --filter``: the facts of a container that docker's
filters look at (:mod:`rootless.filters`), read from its record and its directory."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from rctlbase.errors import NotFoundError
from rootless.containers import health
from rootless.containers.record import ContainerRecord, ContainerStore
from rootless.filters import ContainerFacts, FilterSet, container_matcher


def container_facts(
    record: ContainerRecord,
    directory: Path,
    status: str,
    exit_code: int | None,
    pods: Mapping[str, str] | None = None,
) -> ContainerFacts:
    """The facts of one container whose live ``status`` (docker's word) is known."""
    # The network code is loaded only when a filter is given.
    from rootless.networks.attach import load_container_networks  # noqa: PLC0415
    from rootless.networks.store import DEFAULT_NETWORK  # noqa: PLC0415

    attached = load_container_networks(directory).names()
    mode = str(record.options.get("NetworkMode", "")).split(":", 1)[0]
    # docker scripts know the default bridge network (--network bridge) as "bridge".
    networks = [*attached, *(["bridge"] if DEFAULT_NETWORK in attached else [])]
    if not attached and mode:
        networks.append(mode)
    if health.load_config(directory) is None:
        healthy = "none"
    else:
        state = health.load_state(directory)
        healthy = state.status if state else "starting"
    mounts = [m.name or m.source for m in record.mounts] + [m.destination for m in record.mounts]
    return ContainerFacts(
        id=record.id,
        name=record.name,
        status=status,
        created=record.created,
        labels=dict(record.labels),
        image_id=record.image_id,
        exit_code=exit_code,
        health=healthy,
        mounts=tuple(mounts),
        networks=tuple(networks),
        pod=(record.pod, (pods or {}).get(record.pod, "")) if record.pod else (),
    )


def ps_matcher(
    filters: FilterSet, store: ContainerStore, image_ids_of: Callable[[str], Collection[str]]
) -> Callable[[ContainerFacts], bool]:
    """:func:`rootless.filters.container_matcher` with ``before``/``since`` read from the
    store (an unknown container is an error, as docker's)."""

    def created_of(ref: str) -> float:
        try:
            return store.get(ref).created
        except NotFoundError:
            raise NotFoundError(
                f"no such container: {ref}", hint="before= and since= take a container's name or ID"
            ) from None

    return container_matcher(filters, created_of=created_of, image_ids_of=image_ids_of)
