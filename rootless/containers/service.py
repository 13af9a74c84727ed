"""Container use cases: create, start, run, ps, stop, kill, rm, logs, wait, inspect.

A container is a record (:mod:`rootless.containers.record`), an OCI bundle and a transient
systemd user unit ``rctl-ID.service`` (:mod:`rootless.containers.unitspec`) whose main
process is first the launcher (:mod:`rootless.containers.launch`), then the container's
own first process, which systemd supervises: restart policy, stop timeout, limits, logs
(journal fields CONTAINER_ID, CONTAINER_NAME, IMAGE_NAME). The exit status is written into
the container's directory by the unit's ``ExecStopPost=``, so it survives the unit being
garbage-collected.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import json
import os
import resource
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rctlbase import timeline
from rctlbase.errors import (
    CommandNotRunnable,
    ConflictError,
    HostError,
    NotFoundError,
    RctlError,
    UsageError,
)
from rctlbase.run import run_program, spawn_program
from rootless.containers import health
from rootless.containers.exited import remove_as_user
from rootless.containers.keepid import (
    check_keep_id,
    host_user,
    keep_id_home,
    outer_ids,
    plan_keep_id,
    with_keep_id_user,
)
from rootless.containers.lookup import Layers, check_command
from rootless.containers.netmode import (
    MODES,
    ContainerNetwork,
    NetworkDefaults,
    NetworkMode,
    hosts_file,
    network_for,
    read_host_resolv_conf,
    resolv_conf,
)
from rootless.containers.ocispec import EtcFiles, plan_oci_config, render_oci_config
from rootless.containers.plan import LaunchPlan
from rootless.containers.ports import port_lines
from rootless.containers.record import (
    ContainerRecord,
    ContainerStore,
    check_name,
    new_id,
    now,
    random_name,
)
from rootless.containers.reporting import (
    UnitInputs,
    inspect_report,
    list_row,
    live_state,
    record_options,
)
from rootless.containers.runtime import DEFAULT_RUNTIME, choose_runtime, move_net_sysctls
from rootless.containers.spec import (
    ContainerSpec,
    Limits,
    ResolvedUser,
    UsernsMode,
    merge_env,
    parse_restart,
)
from rootless.containers.timefmt import ago, parse_time
from rootless.containers.unitspec import find_init, plan_spec, service_spec
from rootless.containers.untrusted import read_image_file
from rootless.images.layerjob import CopyJob, Jobs, RemoveJob
from rootless.images.manifest import parse_image_config
from rootless.images.service import ImageService
from rootless.models import RunOptions
from rootless.reports.containers import ContainerInspect, ContainerListRow
from rootless.storage.drivers import Driver, plan_rootfs
from rootless.volumes.plan import bind_mounts
from uidmap.mapping import nest_keep_id
from units.manager import UserManager
from units.properties import (
    ExecCommand,
)

if TYPE_CHECKING:
    from rootless.networks.attach import ContainerNetworks
    from rootless.networks.service import NetworkService
    from rootless.volumes.service import VolumeService
    from units.journal import JournalEntry

USEC = 1_000_000
EXIT_FILE = "exit.json"
# The most rctl reads of an image's /etc/passwd or /etc/group. Real files hold tens of
# entries (a few KiB); 1 MiB is some 15,000 entries of 70 bytes, far beyond any image's,
# and small enough to hold and to write back into a keep-id container's root.
USER_FILE_LIMIT = 1 << 20
# A directory taken out for deletion this long ago belongs to a removal that was killed.
LEFTOVER_AGE = 600.0
# How long a start waits for the stop hook of the container's previous run to finish.
STOP_HOOK_WAIT = 60.0


class ContainerService:
    """Containers of one user."""

    def __init__(
        self,
        data: Path,
        runtime: Path,
        images: ImageService,
        plan_userns: Callable[[], Any],
        driver: Driver,
        run_jobs: Callable[[Jobs], None],
        pull: Callable[[str], Any],
        ensure_layers: Callable[[Any], None],
        network_defaults: NetworkDefaults | None = None,
        volumes: VolumeService | None = None,
        default_runtime: str = DEFAULT_RUNTIME,
    ) -> None:
        self.store = ContainerStore(data / "containers")
        self.default_runtime = default_runtime
        self.network_defaults = network_defaults or NetworkDefaults()
        self.runtime = runtime
        self.images = images
        self.plan_userns = plan_userns
        self._held_fds: list[int] = []  # namespaces named to nsenter by /proc/PID/fd/N
        self.driver = driver
        self.run_jobs = run_jobs
        self.pull = pull
        self.ensure_layers = ensure_layers
        self._volumes = volumes
        self._manager: UserManager | None = None

    @property
    def volumes(self) -> VolumeService:
        """The volume service (the engine gives it; containers record their mounts)."""
        if self._volumes is None:
            raise RuntimeError("ContainerService was made without a volume service")
        return self._volumes

    @functools.cached_property
    def networks(self) -> NetworkService:
        """Bridge networks of this store (``rctl network``, ``--network NAME``, ``--link``)."""
        from rootless.networks.attach import NetworkPaths  # noqa: PLC0415 - start-up time
        from rootless.networks.service import NetworkService  # noqa: PLC0415

        paths = NetworkPaths.for_store(self.store.root.parent, self.runtime)
        return NetworkService(paths, self.store, lambda ref: self.remove(ref, force=True))

    def bridge_networks(self, options: RunOptions) -> ContainerNetworks | None:
        """The bridge networks and links ``options`` ask for, checked; None for a mode."""
        # The default network or one mode (none, pasta...): no need to load the bridge code.
        only_a_mode = not options.network or options.network.split(":", 1)[0] in MODES
        if only_a_mode and not (options.network_aliases or options.links or options.networks):
            return None
        from rootless.networks.service import bridge_request  # noqa: PLC0415

        request = bridge_request(
            options.network, options.networks, options.network_aliases, options.links
        )
        if request is None:
            return None
        if options.userns:
            raise UsageError(
                f"--userns {options.userns} can't be used with bridge networks",
                hint="bridged containers share the rootless network namespace's user namespace",
            )
        return self.networks.plan_container(request)

    def save_bridge_networks(self, directory: Path, networks: ContainerNetworks) -> None:
        """The container's networks.json, and where its launch plan finds their state."""
        from rootless.networks.attach import save_container_networks  # noqa: PLC0415

        save_container_networks(directory, networks)
        paths = self.networks.paths
        launch = directory / "bundle" / "launch.json"
        plan = dataclasses.replace(
            LaunchPlan.from_json(launch.read_text()),
            network_store=str(paths.store),
            network_state=str(paths.state),
            network_unit=paths.unit,
        )
        launch.write_text(plan.to_json())

    @property
    def manager(self) -> UserManager:
        if self._manager is None:
            self._manager = UserManager()
        return self._manager

    # -- create ------------------------------------------------------------------------------

    def resolve_image(self, name: str, policy: str) -> Any:
        if policy not in ("missing", "always", "never"):
            raise UsageError(f"invalid --pull {policy!r}", hint="use missing, always or never")
        if policy == "always":
            return self.pull(name)
        try:
            return self.images.get(name)
        except NotFoundError:
            if policy == "never":
                raise
            return self.pull(name)

    def _taken_names(self) -> set[str]:
        return {r.name for r in self.store.all()}

    def _claim_name(self, name: str, *, generated: bool) -> str:
        """Under the store's lock: the name to record. A generated one that another create
        took since it was picked is picked again here, where the answer holds."""
        if generated:
            taken = self._taken_names()
            if name in taken:
                name = random_name(taken)
        self.store.check_free(name)
        return name

    def create(self, options: RunOptions) -> ContainerRecord:
        """``rctl create``: record, bundle and r/w layer; nothing runs yet."""
        runtime = choose_runtime(options.runtime, self.default_runtime)
        image = self.resolve_image(options.image, options.pull)
        config = parse_image_config(self.images.store.read_blob(image.id))
        # Before anything exists: a taken host port leaves nothing behind.
        bridged = self.bridge_networks(options)  # bridge networks: rootless.networks
        if bridged is None:
            net = network_for(options, self.network_defaults, config.config.exposed_ports)
        else:
            from rootless.networks.service import bridge_network_for  # noqa: PLC0415

            net = bridge_network_for(options, config.config.exposed_ports)
        # A generated name is checked again under the store's lock (_claim_name).
        name = check_name(options.name) if options.name else random_name(self._taken_names())
        mounts, extra_tmpfs = self.volumes.plan_run(options, config.config.volumes)
        spec = plan_spec(
            options, name, options.image, image.id, config.config, dict(os.environ),
            mounts=bind_mounts(mounts), extra_tmpfs=extra_tmpfs,
        )  # fmt: skip
        spec = dataclasses.replace(spec, network=str(net.mode))
        spec = self.keep_id_user(spec)  # before anything exists
        if options.remove and options.restart not in ("", "no"):
            raise UsageError("conflicting options: --restart and --rm", hint="use one of them")
        self.store.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.images.store.locked():
            image = self.locked_image(image)
            diffs = self.image_diffs(image)
            problem = check_command(
                Layers(diffs), spec.process_args[0], spec.process_env, spec.process_cwd
            )
            if problem is not None:
                code, message = problem
                raise CommandNotRunnable(
                    message, exit_code=code, hint="check the command and the image's PATH"
                )
            name = self._claim_name(name, generated=options.name is None)
            spec = dataclasses.replace(spec, name=name)
            record = ContainerRecord(
                id=new_id(),
                name=name,
                image_id=image.id,
                image_name=image.names[0] if image.names else image.id,
                command=spec.process_args,
                created=now(),
                # keep-id roots are fuse-overlayfs mounts whatever the configured driver.
                driver=str(
                    check_keep_id(self.driver) if spec.userns is UsernsMode.KEEP_ID else self.driver
                ),
                auto_remove=options.remove,
                detach=options.detach,
                labels=dict(spec.all_labels),
                ports=net.ports,
                mounts=mounts.mounts,
                options=record_options(
                    options,
                    spec,
                    network_mode=options.network or self.network_defaults.default,
                    runtime=runtime,
                    exposed_ports=tuple(config.config.exposed_ports),
                    image_volumes=tuple(config.config.volumes),
                ),
            )
            directory = self.store.dir(record.id)
            directory.mkdir(mode=0o700)
            made: list[str] = []
            try:
                user = (
                    spec.with_resolved_user(*self.image_user_files(image)).resolved_user
                    if mounts.chown
                    else None
                )
                made = self.volumes.prepare(
                    mounts,
                    [str(d) for d in diffs],  # copy-up reads the image's files
                    *self.volume_owner(spec, user),
                    nested=self.nested_maps(spec),
                )
                console = options.console_socket
                if options.tty and options.detach:
                    # -dt: the unit's launcher leaves a holder of the terminal (see launch).
                    console = str(self.runtime / f"console-{record.id[:16]}.sock")
                self.write_bundle(record, spec, image, net, console)
                if bridged is not None:
                    extra = tuple((h.address, h.hostname) for h in net.hosts)
                    self.save_bridge_networks(
                        directory, dataclasses.replace(bridged, extra_hosts=extra)
                    )
                self.save_unit_inputs(record, options, spec)
                health.save_config(
                    directory, health.plan_health(options, config.config.healthcheck)
                )
                self.store.save(record)
            except BaseException:
                self.volumes.discard(made)
                self.run_jobs([RemoveJob(str(directory))])
                raise
        return record

    def locked_image(self, image: Any) -> Any:
        """Under the store's lock: ``image`` as recorded now, its layers unpacked. An ``rmi``
        or ``prune`` may have removed it since it was resolved; once the container is
        recorded, they see the image in use and leave it."""
        current = self.images.store.load_images().get(image.id)
        if current is None:
            raise NotFoundError(
                f"image {image.short_id} was removed while the container was being created",
                hint="pull the image again, then create the container",
            )
        if not all(self.images.store.has_layer(layer.chain_id) for layer in current.layers):
            # Pulled for another storage driver's layer format: unpack this one's.
            self.ensure_layers(current)
        return current

    def keep_id_user(self, spec: ContainerSpec) -> ContainerSpec:
        """``--userns keep-id`` (:mod:`rootless.containers.keepid`): the driver checked,
        the user's uid:gid as the default ``--user``. Other specs are returned as is."""
        if spec.userns is not UsernsMode.KEEP_ID:
            return spec
        check_keep_id(self.driver)
        return with_keep_id_user(spec, host_user())

    def nested_maps(
        self, spec: ContainerSpec
    ) -> tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]]:
        """keep-id: the uid and gid maps of the container's namespace, nested in the
        launcher's (nested ID, launcher's ID, count), which copy-up moves the image's
        owners through; nothing for other containers."""
        if spec.userns is not UsernsMode.KEEP_ID:
            return (), ()
        nested = nest_keep_id(self.plan_userns())
        return (
            tuple((m.container_id, m.host_id, m.size) for m in nested.uid_maps),
            tuple((m.container_id, m.host_id, m.size) for m in nested.gid_maps),
        )

    def volume_owner(self, spec: ContainerSpec, user: ResolvedUser | None) -> tuple[int, int]:
        """Whom ``:U`` chowns volumes to, in the launcher namespace's IDs (the chown runs
        there): the container's user, shifted for keep-id's nested namespace."""
        if user is None:
            return 0, 0
        if spec.userns is UsernsMode.KEEP_ID:
            return outer_ids(nest_keep_id(self.plan_userns()), user.uid, user.gid)
        return user.uid, user.gid

    def write_bundle(
        self,
        record: ContainerRecord,
        spec: ContainerSpec,
        image: Any,
        network: ContainerNetwork,
        console_socket: str | None = None,
    ) -> None:
        directory = self.store.dir(record.id)
        chains = tuple(layer.chain_id.removeprefix("sha256:") for layer in image.layers)
        plan = self.plan_userns()
        users = self.image_user_files(image)
        keep = None
        if spec.userns is UsernsMode.KEEP_ID:
            # A nested namespace and a root whose IDs fuse-overlayfs shifts (keepid).
            user = host_user()
            home = keep_id_home(user.home, (m.destination for m in spec.mounts), spec.process_cwd)
            keep = plan_keep_id(plan, user, *users, home=home)
            users = (keep.passwd or users[0], keep.group or users[1])
        rootfs = plan_rootfs(
            check_keep_id(self.driver) if keep else self.driver,
            self.images.store.layers, chains, directory,
            uid_mapping=keep.uid_mapping if keep else (),
            gid_mapping=keep.gid_mapping if keep else (),
        )  # fmt: skip
        for path in (
            rootfs.upper,
            rootfs.work,
            rootfs.merged,
            directory / "etc",
            directory / "bundle",
        ):
            path.mkdir(mode=0o755 if path != directory / "bundle" else 0o700)
        for name, text in (("passwd", keep.passwd), ("group", keep.group)) if keep else ():
            if text is not None:  # in the r/w layer: stored as ours, so root's inside
                (rootfs.upper / "etc").mkdir(mode=0o755, exist_ok=True)
                (rootfs.upper / "etc" / name).write_text(text)
                (rootfs.upper / "etc" / name).chmod(0o644)
        if rootfs.driver is Driver.VFS:
            # vfs: the container's root is a copy of its image's top layer (a full tree).
            top = self.images.store.layer_dir(image.layers[-1].chain_id) / "diff"
            self.run_jobs([CopyJob(str(top), str(rootfs.upper))])
        hostname = spec.hostname or record.short_id
        etc = directory / "etc"
        (etc / "hostname").write_text(f"{hostname}\n")
        (etc / "hosts").write_text(hosts_file(hostname, network.hosts))
        (etc / "resolv.conf").write_text(resolv_conf(network, read_host_resolv_conf()))
        maps = [(m.container_id, m.host_id, m.size) for m in plan.uid_maps]
        gmaps = [(m.container_id, m.host_id, m.size) for m in plan.gid_maps]
        doc = plan_oci_config(
            spec.with_resolved_user(*users),
            rootfs_path=str(rootfs.rootfs),
            hostname=hostname,
            # keep-id: crun makes the container's namespace inside the launcher's.
            uid_maps=keep.uid_mapping if keep else [(c, c, s) for c, _, s in maps],
            gid_maps=keep.gid_mapping if keep else [(c, c, s) for c, _, s in gmaps],
            new_userns=keep is not None,
            # crun joins the namespace it runs in, the one pasta serves (not a new one).
            netns_path=None if network.mode is NetworkMode.HOST else "/proc/self/ns/net",
            etc_files=EtcFiles(
                hosts=str(etc / "hosts"),
                hostname=str(etc / "hostname"),
                resolv_conf=str(etc / "resolv.conf"),
            ),
            nofile_hard=resource.getrlimit(resource.RLIMIT_NOFILE)[1],
            init_path=find_init() if spec.init else None,
        )
        runtime = str(record.options.get("Runtime", DEFAULT_RUNTIME))
        net_sysctls = move_net_sysctls(doc, runtime)
        (directory / "bundle" / "config.json").write_text(render_oci_config(doc))
        launch = LaunchPlan(
            container_id=record.id,
            uid_maps=tuple(maps),
            gid_maps=tuple(gmaps),
            network=str(network.mode),
            network_options=network.helper_options,
            host_loopback=network.host_loopback,
            ports=record.ports,
            pidfile=str(directory / "bundle" / "pid"),
            console_socket=console_socket,
            hold_console=bool(console_socket) and spec.tty and record.detach,
            tee_output=not spec.tty,
            log_fields=(
                ("SYSLOG_IDENTIFIER", record.log_tag or record.name),
                ("CONTAINER_ID", record.id),
                ("CONTAINER_NAME", record.name),
                ("IMAGE_NAME", record.image_name),
            ),
            bundle=str(directory / "bundle"),
            runtime=runtime,
            runtime_root=str(self.runtime / runtime),
            net_sysctls=net_sysctls,
            rootfs={
                "driver": str(rootfs.driver),
                "layers_root": str(rootfs.layers_root),
                "lowers": list(rootfs.lowers),
                "upper": str(rootfs.upper),
                "work": str(rootfs.work),
                "merged": str(rootfs.merged),
                "uid_mapping": [list(m) for m in rootfs.uid_mapping],
                "gid_mapping": [list(m) for m in rootfs.gid_mapping],
            },
        )
        (directory / "bundle" / "launch.json").write_text(launch.to_json())

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

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, ref: str, *, stdio: tuple[int, int, int] | None = None) -> ContainerRecord:
        """Start the container's unit; returns once crun runs (the forking start is done)."""
        record = self.store.get(ref)
        state = self.manager.unit_state(record.unit)
        if state is not None and state.active_state == "deactivating":
            # Its last run's stop hook is still at work: the unit can't start before it
            # ended (with --rm, the hook removes the container: then there is none).
            with contextlib.suppress(NotFoundError):
                state = self.manager.wait_inactive(record.unit, timeout=STOP_HOOK_WAIT)
            record = self.store.get(record.id)
        if state is not None and state.active_state in ("active", "activating", "reloading"):
            return record
        if record.unit_name:  # run by its generated unit (definitions): start that
            run_program(["systemctl", "--user", "start", record.unit])
            return record
        if state is not None:
            with contextlib.suppress(NotFoundError):
                self.manager.reset_failed(record.unit)
        (self.store.dir(record.id) / EXIT_FILE).unlink(missing_ok=True)
        health.reset_state(self.store.dir(record.id))
        bundle = self.store.dir(record.id) / "bundle"
        spec = self._spec_for_unit(record)
        unit = service_spec(record, spec, bundle / "launch.json", stdio=stdio)
        if json.loads((bundle / "launch.json").read_text()).get("network") == "bridge":
            # bridge networks: detach (leases, peers' hosts, the rootless namespace's end)
            # before anything else of the stop, --rm included.
            detach = ExecCommand(
                (sys.executable, "-I", "-m", "rootless.networks.detach", str(bundle.parent)),
                ignore_failure=True,
            )
            unit = dataclasses.replace(unit, exec_stop_post=(detach, *unit.exec_stop_post))
        if stdio is not None:
            # Keep the ended unit readable until we have its exit status (CollectMode).
            unit = dataclasses.replace(unit, add_ref=True)
        if traced := timeline.environment():
            unit = dataclasses.replace(unit, environment={**unit.environment, **traced})
        timeline.mark("cli: unit requested")
        self.manager.start_transient(unit, wait=True)
        timeline.mark("cli: unit started")
        self.start_health_timer(record)
        return record

    def start_health_timer(self, record: ContainerRecord) -> None:
        """Start the transient timer of the container's healthcheck, if it has one
        (:mod:`rootless.containers.health`); it stops with the container's unit."""
        config = health.load_config(self.store.dir(record.id))
        if config is None:
            return
        timer = health.timer_unit(record.unit)
        active = run_program(["systemctl", "--user", "is-active", f"{timer}.timer"], check=False)
        if active.returncode == 0:
            return  # restarted with the container's unit (BindsTo= propagates restarts)
        # A previous run's units (a failed last check) would make the name taken.
        run_program(
            ["systemctl", "--user", "reset-failed", f"{timer}.timer", f"{timer}.service"],
            check=False,
        )
        run_program(health.timer_argv(record.unit, record.id, config, os.environ))

    def copy(self, source: str, destination: str, *, archive: bool = False) -> None:
        """``rctl cp``: between the host and a container, running (its namespaces are
        joined) or not (its root is mounted in a user namespace of its own)."""
        from rootless.containers.copy import Enter, parse_copy_args, run_copy  # noqa: PLC0415
        from rootless.containers.inner import mount_rootfs, rootfs_plan  # noqa: PLC0415
        from uidmap.unshare import fork_in_userns, fork_joined  # noqa: PLC0415

        src, dst = parse_copy_args(source, destination)
        record = self.store.get(str(src.container or dst.container))
        state = self.manager.unit_state(record.unit)
        plan = LaunchPlan.from_json(
            (self.store.dir(record.id) / "bundle" / "launch.json").read_text()
        )
        enter: Enter
        if state is not None and state.active_state == "active" and state.main_pid:
            init = container_init_pid(state.main_pid)

            def enter(child: Callable[[], int]) -> int:
                return fork_joined(init, child)
        else:
            rootfs = rootfs_plan(plan.rootfs)

            def enter(child: Callable[[], int]) -> int:
                def in_root() -> int:
                    mount_rootfs(rootfs)
                    os.chroot(rootfs.rootfs)
                    os.chdir("/")
                    return child()

                return fork_in_userns(plan.userns, in_root)

        run_copy(source, destination, enter, archive=archive)

    def exec_argv(
        self,
        record: ContainerRecord,
        main_pid: int,
        argv: tuple[str, ...],
        *,
        env: tuple[str, ...] = (),
        user: str | None = None,
        workdir: str | None = None,
    ) -> list[str]:
        """The command that runs ``argv`` in the running container whose unit's main process
        is ``main_pid`` (the container's first process, or crun): enter the user namespace
        the launcher made (ours to enter: we own it) as its root and let crun join the rest.
        With --userns keep-id that is the parent of the container's own."""
        plan = LaunchPlan.from_json(
            (self.store.dir(record.id) / "bundle" / "launch.json").read_text()
        )
        userns = f"/proc/{main_pid}/ns/user"
        if plan.rootfs.get("uid_mapping"):
            userns = self._launcher_userns(userns)
        command = [
            "nsenter",
            f"--user={userns}",  # as its root
            "--",
            plan.runtime,
            "--root",
            plan.runtime_root,
            "exec",
        ]
        # Like docker exec: the container's environment, with -e entries over it (crun's
        # --env replaces the whole environment when given).
        wanted = [
            *record.options.get("Env", []),
            *(e if "=" in e else f"{e}={os.environ.get(e, '')}" for e in env),
        ]
        for value in merge_env((), wanted):
            command += ["--env", value]
        if not user and plan.rootfs.get("uid_mapping"):
            # --userns keep-id: podman's exec runs as the container's user, the user's own.
            config = json.loads(Path(plan.bundle, "config.json").read_text())
            user = f"{config['process']['user']['uid']}:{config['process']['user']['gid']}"
        if user:
            command += ["--user", user]
        if workdir:
            command += ["--cwd", workdir]
        return [*command, record.id, *argv]

    def _launcher_userns(self, container_userns: str) -> str:
        """A path to the parent of the user namespace ``container_userns``: a descriptor of
        this process's, which stays open as long as it lives (nsenter opens the path)."""
        from rctlbase.syscalls import parent_namespace  # noqa: PLC0415 - keep-id only

        fd = os.open(container_userns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            parent = parent_namespace(fd)
        except OSError as exc:
            raise HostError(
                f"cannot find the container's namespaces: {exc.strerror}",
                hint="is the container still running? see 'rctl ps'",
            ) from exc
        finally:
            os.close(fd)
        self._held_fds.append(parent)
        return f"/proc/{os.getpid()}/fd/{parent}"

    def _spec_for_unit(self, record: ContainerRecord) -> ContainerSpec:
        raw = json.loads((self.store.dir(record.id) / "spec.json").read_text())
        return ContainerSpec(
            name=record.name,
            image_ref=record.image_name,
            image_id=record.image_id,
            command=record.command,
            restart=parse_restart(raw["restart"]),
            stop_timeout=raw["stop_timeout"],
            stop_signal=raw["stop_signal"],
            limits=Limits(**raw["limits"]),
        )

    def save_unit_inputs(
        self, record: ContainerRecord, options: RunOptions, spec: ContainerSpec
    ) -> None:
        """What the unit needs on every (re)start, independent of the image."""
        raw = {
            "restart": options.restart,
            "stop_timeout": spec.stop_timeout,
            "stop_signal": spec.kill_signal,
            "limits": {k: getattr(spec.limits, k) for k in spec.limits.__slots__},
        }
        (self.store.dir(record.id) / "spec.json").write_text(json.dumps(raw))

    def run(
        self,
        options: RunOptions,
        stdio: tuple[int, int, int] | None,
        forward: Callable[[str], None],
    ) -> tuple[ContainerRecord, int | None]:
        """``rctl run``: create and start; attached, wait and return the exit code.

        ``forward(unit)`` is called once the unit runs, for the CLI to forward signals.
        Nothing is left behind when the start fails (no unit, no record, no r/w layer).
        """
        record = self.create(options)
        try:
            self.start(record.id, stdio=None if options.detach else stdio)
        except BaseException:
            # Leave nothing behind, but report the start's failure, not the cleanup's
            # (with --rm, ExecStopPost may have removed the container already).
            with contextlib.suppress(RctlError):
                self.remove(record.id, force=True)
            with contextlib.suppress(RctlError):
                self.volumes.remove_anonymous(record)  # the ones this run made
            raise
        if options.detach:
            return record, None
        forward(record.unit)
        code = self.wait(record.id)
        timeline.mark("cli: container ended")
        if options.remove:
            with contextlib.suppress(NotFoundError):
                self.remove(record.id, force=True)
            self.volumes.remove_anonymous(record)  # the unit's stop hook may have done it
        return record, code

    def port(self, ref: str, private: str | None = None) -> list[str]:
        """``rctl port``: the container's published ports, docker's lines."""
        record = self.store.get(ref)
        return port_lines(record.ports, private, name=record.name)

    def wait(self, ref: str) -> int:
        """Block until the container stops; its exit code (docker's: 128+N for signal N)."""
        record = self.store.get(ref)
        try:
            state = self.manager.wait_inactive(record.unit)
        except NotFoundError:
            state = None  # stopped and unloaded already: exit.json has its end
        # The unit's own record first: with --rm, ExecStopPost may already have removed
        # the directory holding exit.json (attached runs hold a reference on the unit).
        if state is not None and state.exit_status is not None:
            return state.exit_status
        code = self.exit_code(record)
        return 125 if code is None else code

    def exit_code(self, record: ContainerRecord) -> int | None:
        """How the container's last run ended (docker's exit code), None if it never did."""
        ended = self._exit_record(record)
        return None if ended is None else ended[0]

    def _exit_record(self, record: ContainerRecord) -> tuple[int, float] | None:
        """The exit code and time of the container's last run, read from one open file
        (the container may be removed meanwhile); None if it never ended."""
        try:
            with open(self.store.dir(record.id) / EXIT_FILE, "rb") as file:
                raw = json.loads(file.read())
                finished = os.fstat(file.fileno()).st_mtime
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None
        return int(raw["exit_code"]), finished

    def stop(self, ref: str, timeout: int | None = None) -> ContainerRecord:
        """``rctl stop``: the stop signal, SIGKILL after ``timeout`` seconds (the
        container's stop timeout by default); returns once the unit's stop hook is done.
        A container that is not running, or whose unit ends and is collected meanwhile,
        is stopped: success, as docker's."""
        record = self.store.get(ref)
        self._stop_unit(record, None if timeout is None else float(timeout))
        return record

    def restart(self, ref: str) -> ContainerRecord:
        """Stop the container if it runs, then start it again."""
        record = self.store.get(ref)
        self._stop_unit(record, None)
        return self.start(record.id)

    def kill(self, ref: str, signum: int) -> ContainerRecord:
        """Signal the container's main process; a container that is not running (or ends
        meanwhile) is a conflict, as docker's."""
        record = self.store.get(ref)
        state = self.manager.unit_state(record.unit)
        if state is None or state.active_state != "active":
            raise _not_running(record)
        try:
            self.manager.kill(record.unit, signum)
        except (NotFoundError, ConflictError) as exc:  # collected, or its main process gone
            raise _not_running(record) from exc
        return record

    def relay_signal(self, unit: str, signum: int) -> None:
        """``rctl run``'s signal relay: pass ``signum`` to the container's main process,
        if the container still runs (a late Ctrl-C finds it ended: nothing to do)."""
        with contextlib.suppress(NotFoundError, ConflictError):
            self.manager.kill(unit, signum)

    def _stop_unit(self, record: ContainerRecord, timeout: float | None) -> None:
        """Stop the container's unit and wait for the stop, its stop hook included. A stop
        job, not a kill: no restart policy starts it again. A unit that is not loaded
        (ended and collected, before the call or during it) is a stopped container."""
        with contextlib.suppress(NotFoundError):
            self.manager.stop(record.unit, timeout=timeout)

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> ContainerRecord:
        """``rm``: the unit, the record and the r/w layer; with ``volumes`` (``rm -v``), the
        anonymous volumes no other container uses. Named volumes are always kept.

        Its unit may end and be collected at any moment, and the container be removed by
        someone else meanwhile (``--rm``'s stop hook, another ``rm``): the directory is
        taken out of the store in one rename after the unit ended, so exactly one removal
        deletes it and the others succeed without doing it again."""
        record = self.store.get(ref)
        state = self.manager.unit_state(record.unit)
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
                self.manager.reset_failed(record.unit)
        doomed = self.store.take_out(record.id)
        if doomed is not None:
            self._delete_dir(doomed)
        if volumes:
            self.volumes.remove_anonymous(record)
        return record

    def _delete_dir(self, directory: Path) -> None:
        """Delete a stopped container's directory. Most of the r/w layer is the user's own
        (container root is the user); what belongs to other mapped IDs is deleted inside
        the user namespace, which costs a process, newuidmap and newgidmap."""
        if not remove_as_user(str(directory)):
            self.run_jobs([RemoveJob(str(directory))])

    def running_state(self, record: ContainerRecord) -> Any:
        state = self.manager.unit_state(record.unit)
        if state is None or state.active_state != "active":
            raise _not_running(record)
        return state

    def pause(self, ref: str) -> ContainerRecord:
        """Freeze every process of the container (the unit's cgroup freezer)."""
        record = self.store.get(ref)
        self.running_state(record)
        try:
            self.manager.freeze(record.unit)
        except NotFoundError as exc:  # ended and collected meanwhile
            raise _not_running(record) from exc
        return record

    def unpause(self, ref: str) -> ContainerRecord:
        record = self.store.get(ref)
        self.running_state(record)
        try:
            self.manager.thaw(record.unit)
        except NotFoundError as exc:
            raise _not_running(record) from exc
        return record

    def rename(self, ref: str, new_name: str) -> ContainerRecord:
        """A new name; the journal keeps tagging the container's lines with its first name
        (``log_tag``), so ``rctl logs`` finds them all."""
        record = self.store.get(ref)
        with self.images.store.locked():
            self.store.check_free(check_name(new_name))
            renamed = dataclasses.replace(
                record, name=new_name, log_tag=record.log_tag or record.name
            )
            self.store.save(renamed)
        return renamed

    def prune(self, filters: Sequence[str] = ()) -> list[str]:
        """Remove every container that is not running (``filters``: docker's until=,
        label=, label!=), and what removals that were killed half-way left behind."""
        from rootless.filters import (  # noqa: PLC0415
            CONTAINER_PRUNE_KEYS,
            parse_filters,
            prune_matcher,
        )

        keep = prune_matcher(parse_filters(filters, CONTAINER_PRUNE_KEYS))
        for leftover in self.store.leftovers(older_than=LEFTOVER_AGE):
            self._delete_dir(leftover)
        records = {record.id: record for record in self.store.all()}
        doomed = [
            row.id for row in self.summaries(all_containers=True)
            if row.state != "running" and row.id in records
            and keep(records[row.id].created, records[row.id].labels)
        ]  # fmt: skip
        removed = []
        for container_id in doomed:
            with contextlib.suppress(NotFoundError):  # removed by someone else meanwhile
                self.remove(container_id)
                removed.append(container_id)
        return removed

    def exec(
        self,
        ref: str,
        argv: tuple[str, ...],
        *,
        env: tuple[str, ...] = (),
        user: str | None = None,
        workdir: str | None = None,
        interactive: bool = False,
        console_socket: str | None = None,
        started: Callable[[], None] | None = None,
    ) -> int:
        """Run a command in a running container: enter its user and mount namespaces (ours
        to enter: we own them) and let crun join the rest. With ``console_socket`` (exec
        -t) crun gives the command a terminal and sends its master there; ``started`` runs
        once the command is on its way (the CLI receives the terminal then)."""
        if not argv:
            raise UsageError("exec needs a command", hint="rctl exec CONTAINER COMMAND [ARG...]")
        record = self.store.get(ref)
        state = self.running_state(record)
        if console_socket is not None and not any(e.startswith("TERM=") for e in env):
            env = (*env, "TERM=xterm")  # docker exec -t sets it too
        command = self.exec_argv(record, state.main_pid, argv, env=env, user=user, workdir=workdir)
        if console_socket is not None:
            at = command.index("exec") + 1
            command[at:at] = ["--tty", "--console-socket", console_socket]
        proc = spawn_program(
            command, stdin=None if interactive and not console_socket else "devnull"
        )
        if started is not None:
            try:
                started()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        return proc.wait()

    def top(self, ref: str, ps_args: tuple[str, ...] = ()) -> str:
        """``ps`` output for the container's own processes: those of its unit's cgroup that
        live in the container's PID namespace (not crun or pasta)."""
        record = self.store.get(ref)
        state = self.running_state(record)
        group = Path("/sys/fs/cgroup") / state.control_group.lstrip("/")
        own_ns = os.readlink("/proc/self/ns/pid")
        pids = []
        for procs in sorted(group.rglob("cgroup.procs")):
            for pid in procs.read_text().split():
                try:
                    if os.readlink(f"/proc/{pid}/ns/pid") != own_ns:
                        pids.append(pid)
                except OSError:
                    continue  # ended meanwhile
        if not pids:
            raise ConflictError(f"container {record.name} has no processes yet", hint="try again")
        argv = ["ps", *(ps_args or ("-o", "user,pid,ppid,etime,time,args")), "-p", ",".join(pids)]
        return run_program(argv).stdout.decode(errors="replace")

    # -- reports -----------------------------------------------------------------------------

    def summaries(
        self, *, all_containers: bool = False, filters: Sequence[str] = ()
    ) -> list[ContainerListRow]:
        """``rctl ps`` (``-a``: stopped ones too), with docker's ``--filter``s."""
        keep = None
        if filters:
            from rootless.containers.facts import container_facts, ps_matcher  # noqa: PLC0415
            from rootless.filters import PS_KEYS, parse_filters, shows_stopped  # noqa: PLC0415

            parsed = parse_filters(filters, PS_KEYS)
            all_containers = all_containers or shows_stopped(parsed)
            keep = ps_matcher(parsed, self.store, self._image_ids)
        states = {s.name: s for s in self.manager.list_units("rctl-")}
        rows = []
        for record in self.store.all():
            state = states.get(record.unit)
            ended = self._exit_record(record)
            code = None if ended is None else ended[0]
            if state is not None and state.active_state in ("active", "activating", "reloading"):
                since = (
                    state.active_enter_usec / USEC if state.active_enter_usec else record.created
                )
                status, kind = f"Up {ago(since, suffix=False)}", "running"
                status += health.status_suffix(self.store.dir(record.id))
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
                    record, self.store.dir(record.id), "paused" if paused else kind, code
                )
                if not keep(facts):
                    continue
            rows.append(
                list_row(
                    record,
                    state=kind,
                    status=status,
                    exit_code=code,
                    networks=self.networks.container_networks(record.id)
                    if self.store.has_networks(record.id)
                    else {},
                )
            )
        return rows

    def _image_ids(self, ref: str) -> set[str]:
        """``ancestor=``: the ID an image reference stands for (none when unknown)."""
        try:
            return {self.images.get(ref).id}
        except NotFoundError:
            return set()

    def inspect(self, ref: str) -> ContainerInspect:
        """``rctl inspect``: docker's document of the container."""
        record = self.store.get(ref)
        directory = self.store.dir(record.id)
        state = self.manager.unit_state(record.unit)
        ended = self._exit_record(record)
        try:
            inputs = UnitInputs.from_json(json.loads((directory / "spec.json").read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError, AttributeError):
            inputs = UnitInputs()
        return inspect_report(
            record,
            str(directory),
            live_state(state, ended, health.inspect_health(directory)),
            inputs,
            health.load_config(directory),
            self.networks.container_networks(record.id),
        )

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

        record = self.store.get(ref)
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
            state = self.manager.unit_state(record.unit)
            return state is None or state.active_state in ("inactive", "failed")

        with JournalFollower(query, should_stop=ended) as entries:
            yield from entries


def _not_running(record: ContainerRecord) -> ConflictError:
    return ConflictError(f"container {record.name} is not running", hint="see 'rctl ps -a'")


def container_init_pid(main_pid: int) -> int:
    """The container's first process: the unit's main process, or its child when that is
    the runtime (``crun run``, for containers that send ``READY=1`` themselves)."""
    try:
        if os.readlink(f"/proc/{main_pid}/ns/pid") != os.readlink("/proc/self/ns/pid"):
            return main_pid  # in the container's PID namespace
        children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    except OSError:
        children = []
    if not children:
        raise ConflictError("the container is not running any more", hint="see 'rctl ps -a'")
    return int(children[0])
