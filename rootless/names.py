"""Names of what the user's store holds, for shell completion.

Completion runs on every TAB: it reads the store's JSON records directly (containers'
``container.json``, ``images.json``, ``volumes/NAME/volume.json``, ``networks/NAME.json``),
never takes the store's lock, never talks to systemd and never raises. A record it cannot
read is left out; a missing store is an empty one.
"""

from __future__ import annotations

from collections.abc import Iterable

from rctlbase.errors import RctlError
from rootless.config import Paths
from rootless.containers.record import ContainerStore
from rootless.images.store import Store
from rootless.models import NameKind
from rootless.networks.builtin import BUILTIN_DRIVERS
from rootless.networks.store import NetworkStore
from rootless.volumes.store import VolumeStore

# A shell lists at most this many candidates; a store with more is answered in part.
MAX_NAMES = 1000


def list_names(paths: Paths, kind: NameKind, prefix: str = "") -> list[str]:
    """Sorted names of ``kind`` starting with ``prefix``; empty on any error."""
    try:
        found = set(_names(paths, kind))
    except (OSError, ValueError, KeyError, TypeError, RctlError, RecursionError):
        return []
    return sorted(name for name in found if name.startswith(prefix))[:MAX_NAMES]


def _names(paths: Paths, kind: NameKind) -> Iterable[str]:
    data = paths.data
    if kind is NameKind.CONTAINER:
        return (record.name for record in ContainerStore(data / "containers").all())
    if kind is NameKind.VOLUME:
        return VolumeStore(data / "volumes").names()
    if kind is NameKind.NETWORK:
        records = NetworkStore(data / "networks").all()
        return [*BUILTIN_DRIVERS, *(record.name for record in records)]
    images = Store(data, "overlay").load_images().values()
    return [*_short_names(name for image in images for name in image.names)]


def _short_names(names: Iterable[str]) -> Iterable[str]:
    """Each reference as stored and as users type it: ``docker.io/library/busybox:latest``
    is also ``busybox:latest`` and ``busybox``."""
    for name in names:
        yield name
        short = name.removeprefix("docker.io/").removeprefix("library/")
        yield short
        if short.endswith(":latest"):
            yield short.removesuffix(":latest")
