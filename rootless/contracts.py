"""What the engine's services need of each other, as ``Protocol``\\ s.

A service takes its collaborators as typed values: another service's class when it uses
its use cases (``ImageService`` for the container service), or one of these protocols
when it needs a piece of the engine that would otherwise be a cycle or a lambda (the
volume and network services remove containers; the container service pulls images and
runs layer jobs in the user namespace). :class:`rootless.engine.Engine` implements them
all; tests pass small fakes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rootless.build.service import BuildService
    from rootless.containers.service import ContainerService
    from rootless.images.layerjob import Jobs
    from rootless.images.service import ImageService
    from rootless.images.store import ImageRecord
    from rootless.networks.service import NetworkService
    from rootless.pods.service import PodService
    from rootless.volumes.service import VolumeService
    from uidmap.mapping import UsernsPlan


class ContainerRemover(Protocol):
    """Removes containers (``rm -f``): volumes and networks in use by a container that is
    removed with them (``volume rm -f``, ``network rm -f``)."""

    def remove_container(self, ref: str) -> None:
        """Remove the container ``ref``, stopping it first."""


class Services(Protocol):
    """The engine's services, for a service that acts through the others (definitions):
    each is built when first used."""

    @property
    def containers(self) -> ContainerService:
        """Container use cases."""

    @property
    def images(self) -> ImageService:
        """Image use cases over the store."""

    @property
    def volumes(self) -> VolumeService:
        """Volume use cases."""

    @property
    def networks(self) -> NetworkService:
        """Bridge network use cases."""

    @property
    def builds(self) -> BuildService:
        """Images built from Dockerfiles (definitions' ``build``)."""

    @property
    def pods(self) -> PodService:
        """Pod use cases."""


class ContainerHost(ContainerRemover, Protocol):
    """What the container use cases need of the engine that built them."""

    @property
    def userns_plan(self) -> UsernsPlan:
        """The user's ID mapping (0 → the user, 1.. → the subordinate ranges)."""

    def pull_image(self, name: str, platform: str | None = None) -> ImageRecord:
        """Pull ``name`` (for ``platform``, else this host's) without progress output
        (``run --pull``, ``--platform``)."""

    def unpack_missing(self, image: ImageRecord) -> None:
        """Unpack the layers of ``image`` that the storage driver in use lacks."""

    def run_layer_jobs(self, jobs: Jobs) -> None:
        """Run layer jobs (copies, removals) in the user namespace."""
