"""What the container use cases share: one user's container store, the user manager, the
image and volume services, the storage driver and the engine's callbacks.

:class:`ContainerContext` is built once per :class:`~rootless.containers.service.ContainerService`
and handed to its parts (``create``, ``lifecycle``, ``execs``, ``listing``, ``logs``), so they
share one D-Bus connection and one network service. It also holds the reads several parts
make: the image's layer directories and user files, a container's exit record and running
unit.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rctlbase.errors import ConflictError
from rootless.containers.lookup import Layers
from rootless.containers.netmode import NetworkDefaults
from rootless.containers.record import ContainerRecord, ContainerStore
from rootless.containers.runtime import DEFAULT_RUNTIME
from rootless.containers.untrusted import read_image_file
from rootless.eventlog import container_attributes, record_event
from rootless.images.layerjob import Jobs
from rootless.images.service import ImageService
from rootless.storage.drivers import Driver
from units.manager import UserManager

if TYPE_CHECKING:
    from collections.abc import Callable

    from rootless.contracts import ContainerHost
    from rootless.images.store import ImageRecord
    from rootless.networks.service import NetworkService
    from rootless.secrets.service import SecretService
    from rootless.volumes.service import VolumeService
    from uidmap.mapping import UsernsPlan

# The most rctl reads of an image's /etc/passwd or /etc/group. Real files hold tens of
# entries (a few KiB); 1 MiB is some 15,000 entries of 70 bytes, far beyond any image's,
# and small enough to hold and to write back into a keep-id container's root.
USER_FILE_LIMIT = 1 << 20


class ContainerContext:
    """The collaborators of one user's container use cases."""

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
        self.store = ContainerStore(data / "containers")
        self.default_runtime = default_runtime
        self.network_defaults = network_defaults or NetworkDefaults()
        self.runtime = runtime
        self.images = images
        self.host = host
        self.driver = driver
        self._volumes = volumes
        self._manager = manager
        self._secrets = secrets

    @property
    def volumes(self) -> VolumeService:
        """The volume service (the engine gives it; containers record their mounts)."""
        if self._volumes is None:
            raise RuntimeError("ContainerService was made without a volume service")
        return self._volumes

    @functools.cached_property
    def secrets(self) -> SecretService:
        """The secret service (the engine gives how to make it: ``run --secret`` alone
        needs it, and ``rctl run`` doesn't load it otherwise)."""
        if self._secrets is None:
            raise RuntimeError("ContainerService was made without a secret service")
        return self._secrets()

    @functools.cached_property
    def networks(self) -> NetworkService:
        """Bridge networks of this store (``rctl network``, ``--network NAME``, ``--link``)."""
        from rootless.networks.attach import NetworkPaths  # noqa: PLC0415 - start-up time
        from rootless.networks.service import NetworkService  # noqa: PLC0415

        paths = NetworkPaths.for_store(self.store.root.parent, self.runtime)
        return NetworkService(paths, self.store, self.host)

    def plan_userns(self) -> UsernsPlan:
        """The user's ID mapping."""
        return self.host.userns_plan

    def run_jobs(self, jobs: Jobs) -> None:
        """Run layer jobs in the user namespace."""
        self.host.run_layer_jobs(jobs)

    def pull(self, name: str, platform: str | None = None) -> ImageRecord:
        """Pull an image for ``run --pull``."""
        return self.host.pull_image(name, platform)

    def ensure_layers(self, image: ImageRecord) -> None:
        """Unpack what the storage driver in use lacks of ``image``."""
        self.host.unpack_missing(image)

    @property
    def manager(self) -> UserManager:
        """The user's systemd manager, connected on first use."""
        if self._manager is None:
            self._manager = UserManager()
        return self._manager

    def image_diffs(self, image: Any) -> list[Path]:
        """The image's layer directories that make its tree, top first: all of them for
        overlay layers, the top one for vfs (each vfs layer is a full tree)."""
        diffs = [
            self.images.store.layer_dir(layer.chain_id) / "diff" for layer in reversed(image.layers)
        ]
        return diffs[:1] if self.driver is Driver.VFS else diffs

    def image_user_files(self, image: Any) -> tuple[str | None, str | None]:
        """The image's /etc/passwd and /etc/group, read as
        :mod:`rootless.containers.untrusted` reads an image's files (resolved in the
        image's root, regular files of at most USER_FILE_LIMIT bytes); None for a file the
        image doesn't have."""
        layers = Layers(self.image_diffs(image))
        found: list[str | None] = []
        for name in ("passwd", "group"):
            data = read_image_file(
                layers, f"/etc/{name}", USER_FILE_LIMIT,
                what=f"the image's /etc/{name}",
                hint="rctl reads it to resolve the container's user: "
                "rebuild the image with a regular, smaller file",
            )  # fmt: skip
            found.append(None if data is None else data.decode(errors="replace"))
        return found[0], found[1]

    def held_console(self, container_id: str) -> Path:
        """The console socket of a container whose terminal its unit's holder relays
        (``run -dt``, API containers with a TTY: :mod:`rootless.containers.consolehold`)."""
        return self.runtime / f"console-{container_id[:16]}.sock"

    def exit_code(self, record: ContainerRecord) -> int | None:
        """How the container's last run ended (docker's exit code), None if it never did."""
        ended = self.exit_record(record)
        return None if ended is None else ended[0]

    def exit_record(self, record: ContainerRecord) -> tuple[int, float] | None:
        """The exit code and time of the container's last run; None if it never ended."""
        return self.store.exit_record(record.id)

    def event(self, record: ContainerRecord, action: str, **extra: str) -> None:
        """Log a container event (:mod:`rootless.eventlog`): its labels, image and name."""
        attributes = container_attributes(record.name, record.image_name, record.labels, **extra)
        record_event(str(self.store.root.parent), "container", action, record.id, attributes)

    def running_state(self, record: ContainerRecord) -> Any:
        """The unit state of a running container; a conflict when it is not running."""
        state = self.manager.unit_state(record.unit)
        if state is None or state.active_state != "active":
            raise not_running(record)
        return state


def not_running(record: ContainerRecord) -> ConflictError:
    """The error for a use case that needs the container running."""
    return ConflictError(f"container {record.name} is not running", hint="see 'rctl ps -a'")
