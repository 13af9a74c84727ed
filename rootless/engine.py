"""The engine: one object per user session holding the use cases the CLI and API call.

It owns the user's store and settings and wires the domain modules (images, containers...)
to the adapters (``uidmap`` for the user namespace, ``units`` for systemd, ``netns`` for the
network). Entry points build an :class:`Engine` and call its methods with option values from
:mod:`rootless.models`; they never reach past it.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rctlbase.errors import ExternalError, NotFoundError, UsageError
from rctlbase.run import last_line
from rootless.config import Paths, Settings, load_settings
from rootless.containers import health
from rootless.containers.health import run_check
from rootless.containers.netmode import NetworkDefaults
from rootless.containers.record import ContainerStore
from rootless.containers.service import ContainerService
from rootless.containers.timefmt import parse_time
from rootless.filters import CONTAINER_PRUNE_KEYS, parse_filters
from rootless.images.layerjob import Jobs, encode_jobs
from rootless.images.manifest import host_platform, parse_platform
from rootless.images.reference import parse_reference
from rootless.images.service import ImageService
from rootless.images.store import ImageRecord, Store
from rootless.models import (
    AutoUpdateReport,
    BuildOptions,
    CommitOptions,
    ContainerChange,
    KubePlayResult,
    NameKind,
    PullEvent,
    PullOptions,
    RegistryAuth,
    SystemPruneReport,
)
from rootless.storage.drivers import parse_driver
from rootless.volumes.service import VolumeService
from rootless.volumes.userjob import encode_jobs as encode_volume_jobs
from uidmap.mapping import UsernsPlan
from uidmap.userns import current_user, load_plan

if TYPE_CHECKING:
    from rootless.build.service import BuildService
    from rootless.containers.stats import ContainerStats
    from rootless.definitions.service import DefinitionService
    from rootless.doctor import Finding
    from rootless.events import Event
    from rootless.networks.service import NetworkService
    from rootless.pods.service import PodService
    from rootless.reports.system import DiskUsageReport, InfoReport, VersionReport
    from rootless.secrets.service import SecretService
    from rootless.volumes.userjob import VolumeJob


class Engine:
    """Use cases of one user's rctl."""

    def __init__(self, paths: Paths | None = None, settings: Settings | None = None) -> None:
        self.paths = paths or Paths.from_env()
        self.settings = settings or load_settings(self.paths)
        driver = self.settings.storage_driver
        self.layer_format = "vfs" if driver == "vfs" else "overlay"
        self.store = Store(self.paths.data, self.layer_format)
        self.images = ImageService(
            self.store, self.settings.search_registries, self.run_layer_jobs, self.images_in_use
        )

    @functools.cached_property
    def containers(self) -> ContainerService:
        """Container use cases (units over D-Bus are connected on first use)."""
        driver = parse_driver(self.settings.storage_driver or "overlay")
        return ContainerService(
            self.paths.ensure_data(),
            self.paths.ensure_runtime(),
            self.images,
            self,
            driver,
            volumes=self.volumes,
            network_defaults=self.network_defaults,
            default_runtime=self.settings.runtime,
            secrets=lambda: self.secrets,
        )

    @property
    def network_defaults(self) -> NetworkDefaults:
        """rctl.toml's ``[network]``, with the built-in default mode where it says none."""
        if self.settings.network:
            return NetworkDefaults(self.settings.network, self.settings.host_loopback)
        return NetworkDefaults(host_loopback=self.settings.host_loopback)

    @functools.cached_property
    def secrets(self) -> SecretService:
        """Secret use cases (``rctl secret``; ``run --secret``)."""
        from rootless.secrets.service import SecretService  # noqa: PLC0415 - start-up time

        return SecretService(self.paths.ensure_data(), self.run_volume_jobs)

    @functools.cached_property
    def volumes(self) -> VolumeService:
        """Volume use cases (``rctl volume``; mounts of containers)."""

        return VolumeService(
            self.paths.ensure_data(),
            self.run_volume_jobs,
            self.store.locked,
            self,
        )

    def remove_container(self, ref: str) -> None:
        """Remove a container, stopping it first (``rm -f``), for the volume and network
        services (:class:`rootless.contracts.ContainerRemover`)."""
        self.containers.remove(ref, force=True)

    def pull_image(self, name: str, platform: str | None = None) -> ImageRecord:
        """Pull ``name`` (for ``platform``, else this host's) without progress output
        (``run --pull``, ``--platform``)."""
        return self.pull(PullOptions(name, platform=platform, quiet=True), _ignore)

    def unpack_missing(self, image: ImageRecord) -> None:
        """Unpack the layers of ``image`` that the storage driver in use lacks."""
        from rootless.images.pull import unpack_missing  # noqa: PLC0415 - imported when used

        unpack_missing(self.store, image.layers, self.run_layer_jobs, self.layer_format, _ignore)

    @property
    def networks(self) -> NetworkService:
        """Bridge network use cases (``rctl network``); they share the containers' store."""
        return self.containers.networks

    @functools.cached_property
    def pods(self) -> PodService:
        """Pod use cases (``rctl pod``); members are the container service's containers."""
        from rootless.pods.service import PodService  # noqa: PLC0415 - start-up time

        default = self.network_defaults.default
        return PodService(
            self.containers, self.paths.ensure_data(), self.paths.ensure_runtime(), default
        )

    @functools.cached_property
    def definitions(self) -> DefinitionService:
        """Definition use cases (``rctl apply``, ``down``, ``generate systemd``, units)."""
        from rootless.definitions.service import DefinitionService  # noqa: PLC0415

        return DefinitionService(self, self.paths.config.parent)

    def kube_generate(self, refs: Sequence[str], kind: str = "pod", service: bool = False) -> str:
        """``rctl kube generate``: Kubernetes YAML for containers or definition files."""
        from rootless.kube.service import generate_yaml  # noqa: PLC0415 - start-up time

        def secret_labels(name: str) -> dict[str, str]:
            try:
                return dict(self.secrets.inspect(name).labels)
            except NotFoundError:
                return {}

        return generate_yaml(
            refs,
            self.containers.inspect,
            kind,
            service=service,
            pods=self.pods,
            secret_labels=secret_labels,
        )

    def kube_play(
        self,
        paths: Sequence[Path],
        *,
        down: bool = False,
        replace: bool = False,
        start: bool = True,
        network: str | None = None,
        force: bool = False,
    ) -> KubePlayResult:
        """``rctl kube play``: make the YAML files' volumes, secrets and containers; with
        ``down`` remove them (the claims' volumes only with ``force``)."""
        from rootless.kube.service import PlayRequest, play_files  # noqa: PLC0415

        request = PlayRequest(down, replace, start, network, force)
        plan = play_files(paths, self.containers, self.secrets, self.volumes, request, self.pods)
        return KubePlayResult(tuple(o.name or "" for o in plan.containers), plan.warnings)

    def healthcheck_run(self, ref: str) -> tuple[bool, str]:
        """``rctl healthcheck run``: one check now; whether it passed, and the health."""

        state = run_check(self.containers, ref)
        return state.log[-1]["ExitCode"] == 0, state.status

    def version(self) -> VersionReport:
        """``rctl version``: what rctl is (client and engine)."""
        from rootless.system import version_report  # noqa: PLC0415 - start-up time

        return version_report(self.settings.runtime)

    def info(self) -> InfoReport:
        """``rctl info``: how rctl is set up here: storage, cgroups, network, counts."""
        from rootless.system import ContainerCounts, InfoInputs, info_report  # noqa: PLC0415

        rows = self.containers.summaries(all_containers=True)
        paused = sum(1 for r in rows if r.state == "running" and r.status.endswith("(Paused)"))
        running = sum(1 for r in rows if r.state == "running") - paused
        counts = ContainerCounts(running, paused, len(rows) - running - paused)
        inputs = InfoInputs(
            counts=counts,
            images=len(self.store.load_images()),
            storage_driver=str(parse_driver(self.settings.storage_driver or "overlay")),
            data_root=str(self.paths.data),
            run_root=str(self.paths.runtime),
            runtime=self.settings.runtime,
            default_network=self.network_defaults.default,
            search_registries=self.settings.search_registries,
            insecure_registries=self.settings.insecure_registries,
        )
        return info_report(inputs, os.getuid())

    def events(
        self,
        since: str | None = None,
        until: str | None = None,
        filters: Sequence[str] = (),
        *,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Event]:
        """``rctl events`` (``GET /events``): past events from ``since``, then new ones as
        they come, until ``until`` passes or ``should_stop()``; ``filters`` are docker's.
        The arguments are checked here, before the first event is waited for."""
        from rootless.events import EventQuery, parse_event_filters, read_events  # noqa: PLC0415

        def nanoseconds(text: str | None, flag: str) -> int | None:
            return None if text is None else int(parse_time(text, flag).timestamp() * 1e9)

        query = EventQuery(
            nanoseconds(since, "--since"),
            nanoseconds(until, "--until"),
            parse_event_filters(filters),
        )
        since_ns, until_ns = query.since_ns, query.until_ns
        if since_ns is not None and until_ns is not None and since_ns > until_ns:
            raise UsageError("--since is after --until", hint="give a --since before the --until")
        return read_events(str(self.paths.data), query, follow=True, should_stop=should_stop)

    def stats(
        self, refs: Sequence[str] = (), *, all_containers: bool = False, interval: float = 1.0
    ) -> Iterator[list[ContainerStats]]:
        """``rctl stats`` (``GET /containers/{id}/stats``): readings of the containers named
        (else the running ones, ``all_containers``: every one) every ``interval`` seconds."""
        from rootless.containers.stats import stream_stats  # noqa: PLC0415 - start-up time
        from rootless.system import memory_total  # noqa: PLC0415

        return stream_stats(
            self.containers,
            refs,
            all_containers=all_containers,
            host_memory=memory_total(),
            interval=interval,
        )

    def wait(self, ref: str, condition: str = "not-running") -> int:
        """``rctl wait --condition`` (``POST /containers/{id}/wait``): the exit code once
        ``condition`` (not-running, next-exit, removed) holds."""
        from rootless.containers.waiting import wait_condition  # noqa: PLC0415 - start-up time

        return wait_condition(self.containers, ref, condition)

    def export(self, ref: str, output: int) -> None:
        """``rctl export``: the container's filesystem as a tar stream to descriptor
        ``output`` (owners as in the container)."""
        from rootless.containers.export import export  # noqa: PLC0415 - start-up time

        export(self.containers, ref, output)

    def system_prune(
        self, *, all_images: bool = False, volumes: bool = False, filters: Sequence[str] = ()
    ) -> SystemPruneReport:
        """``rctl system prune``: stopped containers, unused networks, (``volumes``) unused
        volumes, then dangling images (``all_images``: every unused one). ``filters``
        (until=, label=, label!=) apply to each; volumes have no creation time to match
        ``until`` against, so it is refused with ``volumes``, as docker does."""

        # Checked whole before anything goes: each prune below checks only its own keys.
        if "until" in parse_filters(filters, CONTAINER_PRUNE_KEYS) and volumes:
            raise UsageError(
                "the 'until' filter is not supported with --volumes",
                hint="prune volumes apart with 'rctl volume prune', or drop --volumes",
            )
        containers = tuple(self.containers.prune(filters))
        networks = tuple(self.networks.prune(filters))
        pruned_volumes = tuple(self.volumes.prune(filters)) if volumes else ()
        images = tuple(self.images.prune(all_images=all_images, filters=filters))
        return SystemPruneReport(containers, networks, pruned_volumes, images)

    def disk_usage(self) -> DiskUsageReport:
        """``rctl system df``: images, containers and volumes, and the layers' size."""
        from rootless.reports.system import DiskUsageReport  # noqa: PLC0415 - start-up time

        blobs = self.store.blobs
        layers = self.store.layers
        return DiskUsageReport(
            layers_size=sum(p.stat().st_size for p in blobs.glob("*")) if blobs.is_dir() else 0,
            images=tuple(self.images.list_rows()),
            containers=tuple(self.containers.summaries(all_containers=True)),
            volumes=tuple(self.volumes.reports()),
            layers=len(list(layers.glob("[0-9a-f]*"))) if layers.is_dir() else 0,
        )

    def api_socket_path(self) -> Path:
        """Where ``rctl system service`` listens unless told (rctl.socket's path too)."""
        return self.paths.ensure_runtime() / "rctl.sock"

    def scratch_directory(self, prefix: str) -> Path:
        """A fresh owner-only directory in the runtime directory, the caller's to remove."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.paths.ensure_runtime()))

    def console_socket_path(self) -> Path:
        """A fresh path for ``run -t``'s console socket (owner-only runtime directory)."""
        runtime = self.paths.ensure_runtime()
        return runtime / f"console-{os.getpid()}-{time.monotonic_ns()}.sock"

    def doctor(self) -> list[Finding]:
        """``rctl doctor``: what this host lacks, each with its fix."""
        from rootless.doctor import run_checks  # noqa: PLC0415 - start-up time

        return run_checks()

    def images_in_use(self) -> set[str]:
        """IDs of images some container (running or not) is made from."""
        records = ContainerStore(self.paths.data / "containers").all()
        return {record.image_id for record in records}

    # -- the user namespace ----------------------------------------------------------------

    @functools.cached_property
    def userns_plan(self) -> UsernsPlan:
        """The user's ID mapping (0 → the user, 1.. → the subordinate ranges)."""
        return load_plan(current_user(), os.getuid(), os.getgid())

    def run_layer_jobs(self, jobs: Jobs) -> None:
        """Run layer jobs in one process inside the user namespace."""
        from uidmap.unshare import run_in_userns  # noqa: PLC0415 - start-up time (ctypes)

        if not jobs:
            return
        runtime = self.paths.ensure_runtime()
        with tempfile.NamedTemporaryFile("w", dir=runtime, prefix="jobs-", suffix=".json") as fh:
            fh.write(encode_jobs(jobs))
            fh.flush()
            argv = [sys.executable, "-I", "-m", "rootless.images.layerjob", fh.name]
            result = run_in_userns(argv, self.userns_plan, capture_output=True)
        if result.returncode != 0:
            said = last_line(result.stderr or b"") or f"exit {result.exit_code}"
            raise ExternalError(
                f"layer work in the user namespace failed: {said}",
                hint="run with --debug for details; 'rctl doctor' checks the host",
            )

    def run_volume_jobs(self, jobs: Sequence[VolumeJob]) -> None:
        """Run volume jobs (``:U`` chown, copy-up, removal) inside the user namespace."""
        from uidmap.unshare import run_in_userns  # noqa: PLC0415

        if not jobs:
            return
        argv = [sys.executable, "-I", "-m", "rootless.volumes.userjob", encode_volume_jobs(jobs)]
        result = run_in_userns(argv, self.userns_plan, capture_output=True)
        if result.returncode != 0:
            said = last_line(result.stderr or b"") or f"exit {result.exit_code}"
            raise ExternalError(
                f"volume work in the user namespace failed: {said}",
                hint="run with --debug for details; 'rctl doctor' checks the host",
            )

    def unshare(self, argv: Sequence[str]) -> int:
        """``rctl unshare CMD``: run CMD in the user's namespace, as uid 0 there."""
        from uidmap.unshare import run_in_userns  # noqa: PLC0415

        command = list(argv) or [os.environ.get("SHELL", "/bin/sh")]
        env = {**os.environ, "RCTL_STORAGE": str(self.paths.data)}
        return run_in_userns(command, self.userns_plan, env=env).exit_code

    # -- images ------------------------------------------------------------------------------

    def pull(self, options: PullOptions, events: Callable[[PullEvent], None]) -> ImageRecord:
        """Pull an image (short names through the search registries)."""
        from rootless.images.auth import Credentials  # noqa: PLC0415
        from rootless.images.pull import Puller, PullRequest  # noqa: PLC0415 - start-up time

        platform = parse_platform(options.platform) if options.platform else host_platform()
        puller = Puller(self.store, self.settings, self.run_layer_jobs, events, self.layer_format)
        given = Credentials(options.auth.username, options.auth.password) if options.auth else None
        image = puller.pull(PullRequest(options.name, platform, options.tls_verify, given))
        self.images.event("pull", options.name, options.name)
        return image

    def login(self, registry: str, username: str, password: str, tls_verify: bool | None) -> Path:
        """Check the credentials against the registry, then store them (auth.json, 0600)."""
        from rootless.images.auth import store_credentials  # noqa: PLC0415

        self.check_login(registry, username, password, tls_verify)
        return store_credentials(registry, username, password)

    def check_login(
        self, registry: str, username: str, password: str, tls_verify: bool | None
    ) -> None:
        """Check the credentials against the registry (the API's ``/auth``: the client
        keeps them and sends them with each pull and push)."""
        from rootless.images.auth import Credentials  # noqa: PLC0415
        from rootless.images.registry import RegistryClient  # noqa: PLC0415 - start-up time

        with RegistryClient(
            registry,
            credentials=Credentials(username, password),
            tls_verify=tls_verify,
            insecure_registries=self.settings.insecure_registries,
        ) as client:
            client.check_login()

    def logout(self, registry: str) -> bool:
        """Forget the credentials of ``registry``; False when there were none."""
        from rootless.images.auth import remove_credentials  # noqa: PLC0415 - start-up time

        return remove_credentials(registry)

    def resolve_name(self, name: str) -> str:
        """The full name a reference stands for (``busybox`` → docker.io/library/busybox:latest)."""
        return parse_reference(name).name

    # -- archives and push ---------------------------------------------------------------------

    def _store_loaded(
        self, manifest: bytes, media_type: str, names: tuple[str, ...]
    ) -> ImageRecord:
        from rootless.images.archive import image_record  # noqa: PLC0415 - imported when used
        from rootless.images.pull import unpack_missing  # noqa: PLC0415

        record = image_record(self.store, manifest, media_type)
        unpack_missing(self.store, record.layers, self.run_layer_jobs, self.layer_format, _ignore)
        stored = self.store.add_image(record, None, None)
        for name in names:
            stored = self.store.add_image(stored, parse_reference(name).name, None)
        return stored

    def save(self, names: Sequence[str], output: IO[bytes], fmt: str) -> None:
        """``rctl save``: images (by name or ID) into one archive."""
        from rootless.images.archive import save  # noqa: PLC0415 - start-up time

        chosen = []
        for name in names:
            image = self.images.get(name)
            full = [n for n in image.names if n in {name, *self.images.candidate_names(name)}]
            chosen.append((image, tuple(full) or image.names))
        save(self.store, chosen, output, fmt)

    def load(self, source: IO[bytes]) -> list[ImageRecord]:
        """``rctl load``: every image of a docker-archive or oci-archive."""
        from rootless.images.archive import image_record  # noqa: PLC0415 - start-up time
        from rootless.images.archiveload import load  # noqa: PLC0415
        from rootless.images.pull import unpack_missing  # noqa: PLC0415

        with self.store.locked():
            loaded = load(self.store, source)
            records = [image_record(self.store, i.manifest, i.manifest_media_type) for i in loaded]
            try:
                for record in records:
                    unpack_missing(
                        self.store, record.layers, self.run_layer_jobs, self.layer_format, _ignore
                    )
            except BaseException:
                # A layer that doesn't unpack: nothing recorded, and what the archive
                # committed (referenced by no image) goes, so the store is as it was.
                self.images.collect_garbage(self.store.load_images())
                raise
            stored = []
            for record, item in zip(records, loaded, strict=True):
                image = self.store.add_image(record, None, None)
                for name in item.names:
                    image = self.store.add_image(image, parse_reference(name).name, None)
                stored.append(image)
        for image in stored:
            self.images.event("load", image.id, image.names[0] if image.names else "")
        return stored

    def import_image(
        self, source: IO[bytes], name: str | None, changes: Sequence[str], message: str
    ) -> ImageRecord:
        """``rctl import``: a root filesystem tarball as a one-layer image."""
        from rootless.images.archive import import_rootfs  # noqa: PLC0415 - start-up time

        created = _now_text()
        arch = host_platform().architecture
        with self.store.locked():
            manifest, media_type = import_rootfs(
                self.store, source, changes, arch, created, message
            )
            return self._store_loaded(manifest, media_type, (name,) if name else ())

    # -- images from containers and Dockerfiles ---------------------------------------------

    @functools.cached_property
    def builds(self) -> BuildService:
        """``rctl build``, ``commit``, ``diff`` (:mod:`rootless.build.service`)."""
        from rootless.build.service import BuildService  # noqa: PLC0415 - start-up time

        return BuildService(
            self.store, self.paths, self.containers, self.run_layer_jobs, self._store_loaded
        )

    def diff(self, ref: str) -> list[ContainerChange]:
        """``rctl diff``: what the container changed over its image (A, C, D)."""
        return self.builds.diff(ref)

    def commit(self, options: CommitOptions) -> ImageRecord:
        """``rctl commit``: a new image of the container's image plus its r/w layer."""
        return self.builds.commit(options)

    def build(
        self, options: BuildOptions, say: Callable[[str], None], stdio: tuple[int, int, int]
    ) -> ImageRecord:
        """``rctl build``: the image of a Dockerfile in a context directory; ``say`` gets
        the step lines, ``stdio`` is what RUN steps read and write."""
        return self.builds.build(options, say, stdio)

    def build_context(
        self, upload: IO[bytes], what: str = "the build context"
    ) -> contextlib.AbstractContextManager[Path]:
        """A tar sent to the API (``/build``'s context, ``PUT archive``'s files), unpacked
        into a private directory that is removed when the context manager exits."""
        from rootless.build.upload import build_context  # noqa: PLC0415 - start-up time

        return build_context(upload, self.paths.ensure_data(), what)

    def builder_prune(self) -> int:
        """``rctl builder prune``: forget the build cache (its images become dangling)."""
        return self.builds.prune()

    def push(
        self, name: str, destination: str | None, tls_verify: bool | None,
        progress: Callable[[str, str], None], auth: RegistryAuth | None = None,
    ) -> str:  # fmt: skip
        """``rctl push``: upload an image; returns the manifest digest. ``auth``: this
        push's credentials, else those stored for the registry."""
        from rootless.images.archive import push  # noqa: PLC0415 - start-up time
        from rootless.images.auth import Credentials, lookup  # noqa: PLC0415 - start-up time
        from rootless.images.registry import RegistryClient  # noqa: PLC0415 - start-up time

        image = self.images.get(name)
        ref = parse_reference(destination or name)
        given = Credentials(auth.username, auth.password) if auth else None
        with RegistryClient(
            ref.registry,
            credentials=given or lookup(ref.registry),
            tls_verify=tls_verify,
            insecure_registries=self.settings.insecure_registries,
        ) as client:
            return push(self.store, image, client, ref.repository, ref.tag or "latest", progress)

    def auto_update(
        self, *, dry_run: bool, rollback: bool, timeout: float
    ) -> list[AutoUpdateReport]:
        """``rctl auto-update``: see :mod:`rootless.autoupdate`."""
        from rootless import autoupdate  # noqa: PLC0415 - start-up time
        from rootless.images.pull import Puller  # noqa: PLC0415

        containers = self.containers
        records = containers.store.all()
        found = autoupdate.candidates(
            (r.name, r.unit_name, r.image_name, r.image_id, r.labels) for r in records
        )
        puller = Puller(self.store, self.settings, self.run_layer_jobs, _ignore, self.layer_format)

        def image_id(name: str) -> str | None:
            try:
                return self.images.get(name).id
            except NotFoundError:
                return None

        def remote_differs(name: str, current: str) -> bool:
            ref = parse_reference(name)
            with puller.client(ref, None) as client:
                head = client.head_manifest(ref.repository, ref.digest or ref.tag or "latest")
            image = self.store.load_images().get(current)
            if image is None:
                return True
            known = {image.manifest_digest, *(d.partition("@")[2] for d in image.repo_digests)}
            return head.digest not in known

        def probe(unit: str) -> autoupdate.UnitProbe | None:
            state = containers.manager.unit_state(unit)
            if state is None:
                return None
            return autoupdate.UnitProbe(state.active_state, state.n_restarts)

        def health_of(name: str) -> str | None:
            try:
                directory = containers.store.dir(containers.store.get(name).id)
            except NotFoundError:
                return "starting"  # being made again by its unit
            if health.load_config(directory) is None:
                return None
            state = health.load_state(directory)
            return state.status if state else "starting"

        host = autoupdate.Host(
            image_id=image_id,
            pull=lambda name: self.pull(PullOptions(name, quiet=True), _ignore).id,
            remote_differs=remote_differs,
            tag=self.images.tag,
            restart=lambda unit: containers.manager.restart(unit),  # noqa: PLW0108 - D-Bus on use
            probe=probe,
            health=health_of,
        )
        return autoupdate.auto_update(
            found, host, dry_run=dry_run, rollback=rollback, timeout=timeout
        )


def _now_text() -> str:
    """Now, as image configs write times."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ignore(_event: PullEvent) -> None:
    """Progress sink for loads and imports (they have nothing to download)."""


def complete_names(kind: NameKind, prefix: str) -> list[str]:
    """Names of ``kind`` in the user's store starting with ``prefix``, for shell completion:
    read from the records alone, without an :class:`Engine` (no settings, no D-Bus)."""
    from rootless.names import list_names  # noqa: PLC0415 - every store's modules, not run's

    return list_names(Paths.from_env(), kind, prefix)
