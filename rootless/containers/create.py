"""``rctl create``: a container's record, bundle, r/w layer and unit inputs, planned from the
image and the options; nothing runs yet. The bundle itself is
:mod:`rootless.containers.bundle`'s.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rctlbase.errors import CommandNotRunnable, NotFoundError, RctlError, UsageError
from rootless.containers import health
from rootless.containers.bundle import PodMembership, write_bundle
from rootless.containers.context import ContainerContext
from rootless.containers.hostcheck import cgroup_facts, check_run, discard_cidfile, write_cidfile
from rootless.containers.keepid import check_keep_id, host_user, outer_ids, with_keep_id_user
from rootless.containers.lookup import Layers, check_command
from rootless.containers.netmode import MODES, ContainerNetwork, network_for
from rootless.containers.record import ContainerRecord, check_name, new_id, now, random_name
from rootless.containers.recorded import record_options
from rootless.containers.runtime import choose_runtime
from rootless.containers.spec import ContainerSpec, ResolvedUser, UsernsMode
from rootless.containers.unitspec import plan_spec
from rootless.images.layerjob import RemoveJob
from rootless.images.manifest import (
    normalize_platform,
    parse_image_config,
    parse_platform,
    platform_matches,
)
from rootless.images.reference import candidates
from rootless.models import RunOptions
from rootless.volumes.plan import bind_mounts
from uidmap.mapping import nest_keep_id

if TYPE_CHECKING:
    from pathlib import Path

    from rootless.networks.attach import ContainerNetworks
    from rootless.pods.record import PodRecord
    from rootless.secrets.parse import SecretRequest


class ContainerCreator:
    """Create planning of one user's containers."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx

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
        return self.ctx.networks.plan_container(request)

    def save_bridge_networks(self, container_id: str, networks: ContainerNetworks) -> None:
        """The container's networks.json, and where its launch plan finds their state."""
        from rootless.networks.attach import save_container_networks  # noqa: PLC0415

        save_container_networks(self.ctx.store.dir(container_id), networks)
        paths = self.ctx.networks.paths
        plan = dataclasses.replace(
            self.ctx.store.load_launch(container_id),
            network_store=str(paths.store),
            network_state=str(paths.state),
            network_unit=paths.unit,
        )
        self.ctx.store.save_launch(container_id, plan)

    def resolve_image(self, name: str, policy: str, platform: str | None = None) -> Any:
        """The image to run: ``--pull``'s policy, and ``--platform``'s (a local image of
        another platform is pulled again for the one asked)."""
        if policy not in ("missing", "always", "never"):
            raise UsageError(f"invalid --pull {policy!r}", hint="use missing, always or never")
        wanted = parse_platform(platform) if platform else None
        if policy == "always":
            return self.ctx.pull(name, platform=platform) if wanted else self.ctx.pull(name)
        try:
            image = self.ctx.images.get(name)
        except NotFoundError:
            if policy == "never":
                raise
            return self.ctx.pull(name, platform=platform) if wanted else self.ctx.pull(name)
        if wanted is None:
            return image
        have = parse_image_config(self.ctx.images.store.read_blob(image.id)).platform
        if platform_matches(have, wanted):
            return image
        if policy == "never":
            raise UsageError(
                f"image {name} is {normalize_platform(have)}, not {wanted}",
                hint="pull the image for that platform, or drop --pull never",
            )
        return self.ctx.pull(name, platform=platform)

    def _taken_names(self) -> set[str]:
        return {r.name for r in self.ctx.store.all()}

    def _claim_name(self, name: str, *, generated: bool) -> str:
        """Under the store's lock: the name to record. A generated one that another create
        took since it was picked is picked again here, where the answer holds."""
        if generated:
            taken = self._taken_names()
            if name in taken:
                name = random_name(taken)
        self.ctx.store.check_free(name)
        return name

    @staticmethod
    def _check_options(options: RunOptions, spec: ContainerSpec, runtime: str) -> None:
        """What the host and docker's rules say of the options, before anything exists."""
        check_run(spec, runtime, cgroup_facts(os.getuid())[1], cidfile=options.cidfile)
        if options.remove and options.restart not in ("", "no"):
            raise UsageError("conflicting options: --restart and --rm", hint="use one of them")

    def create(self, options: RunOptions) -> ContainerRecord:
        """``rctl create``: record, bundle and r/w layer; nothing runs yet."""
        runtime = choose_runtime(options.runtime, self.ctx.default_runtime)
        image = self.resolve_image(options.image, options.pull, options.platform)
        config = parse_image_config(self.ctx.images.store.read_blob(image.id))
        pod, options = self.pod_of(options)
        bridged, net = self.plan_network(options, config.config.exposed_ports)
        # A generated name is checked again under the store's lock (_claim_name).
        name = check_name(options.name) if options.name else random_name(self._taken_names())
        mounts, extra_tmpfs = self.ctx.volumes.plan_run(options, config.config.volumes)
        secrets = self.ctx.secrets.plan_uses(options.secrets) if options.secrets else ()
        spec = plan_spec(
            options, name, options.image, image.id, config.config, dict(os.environ),
            mounts=bind_mounts(mounts), extra_tmpfs=extra_tmpfs,
        )  # fmt: skip
        # keep-id: before anything exists.
        spec = self.keep_id_user(dataclasses.replace(spec, network=str(net.mode)))
        self._check_options(options, spec, runtime)
        self.ctx.store.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.ctx.images.store.locked():
            image = self.locked_image(image)
            diffs = self.ctx.image_diffs(image)
            problem = check_command(
                Layers(diffs), spec.process_args[0], spec.process_env, spec.process_cwd
            )
            if problem is not None:
                raise CommandNotRunnable(
                    problem[1], exit_code=problem[0], hint="check the command and the image's PATH"
                )
            name = self._claim_name(name, generated=options.name is None)
            spec = dataclasses.replace(spec, name=name)
            record = ContainerRecord(
                id=new_id(),
                name=name,
                image_id=image.id,
                image_name=shown_image_name(
                    options.image, image.names, image.id, self.ctx.images.search
                ),
                command=spec.process_args,
                created=now(),
                # keep-id roots are fuse-overlayfs mounts whatever the configured driver.
                driver=str(
                    check_keep_id(self.ctx.driver)
                    if spec.userns is UsernsMode.KEEP_ID
                    else self.ctx.driver
                ),
                auto_remove=options.remove,
                detach=options.detach,
                labels=dict(spec.all_labels),
                ports=net.ports,
                mounts=mounts.mounts,
                pod=pod.id if pod is not None else "",
                options=record_options(
                    options,
                    spec,
                    network_mode=options.network or self.ctx.network_defaults.default,
                    runtime=runtime,
                    exposed_ports=tuple(config.config.exposed_ports),
                    image_volumes=tuple(config.config.volumes),
                ),
            )
            directory = self.ctx.store.dir(record.id)
            directory.mkdir(mode=0o700)
            made: list[str] = []
            try:
                # The record first: a create killed from here on leaves a container that
                # ps shows and rm removes, not a directory nothing knows. Its unit inputs,
                # written last, say it is complete (start refuses it without them).
                self.ctx.store.save(record)
                user = (
                    spec.with_resolved_user(*self.ctx.image_user_files(image)).resolved_user
                    if mounts.chown
                    else None
                )
                made = self.ctx.volumes.prepare(
                    mounts,
                    [str(d) for d in diffs],  # copy-up reads the image's files
                    *self.volume_owner(spec, user),
                    nested=self.nested_maps(spec),
                )
                console = options.console_socket
                if options.tty and options.detach:
                    # -dt: the unit's launcher leaves a holder of the terminal (see launch).
                    console = str(self.ctx.held_console(record.id))
                bundled = self.with_secrets(spec, secrets, directory)
                write_bundle(self.ctx, record, bundled, image, net, console, self.membership(pod))
                if bridged is not None:
                    extra = tuple((h.address, h.hostname) for h in net.hosts)
                    self.save_bridge_networks(
                        record.id, dataclasses.replace(bridged, extra_hosts=extra)
                    )
                health.save_config(
                    directory, health.plan_health(options, config.config.healthcheck)
                )
                self.save_unit_inputs(record, options, spec)
                write_cidfile(options.cidfile, record.id)
            except BaseException:
                discard_cidfile(options.cidfile, record.id)
                self.ctx.volumes.discard(made)
                self.ctx.run_jobs([RemoveJob(str(directory))])
                raise
        self.ctx.event(record, "create")
        return record

    def plan_network(
        self, options: RunOptions, exposed: Sequence[str]
    ) -> tuple[ContainerNetworks | None, ContainerNetwork]:
        """The container's bridge networks (None for the other modes) and its network plan.
        Before anything exists: a taken host port leaves nothing behind."""
        bridged = self.bridge_networks(options)  # bridge networks: rootless.networks
        if bridged is None:
            return None, network_for(options, self.ctx.network_defaults, exposed)
        from rootless.networks.service import bridge_network_for  # noqa: PLC0415

        return bridged, bridge_network_for(options, exposed)

    def pod_of(self, options: RunOptions) -> tuple[PodRecord | None, RunOptions]:
        """``--pod``'s pod (None without it), checked against the member's options, and the
        options with the pod's network (its DNS is the member's)."""
        if not options.pod:
            return None, options
        from rootless.pods.unit import pod_store  # noqa: PLC0415 - pod members only

        pod = pod_store(self.ctx.store.root.parent, self.ctx.runtime).get(options.pod)
        if not pod.shared:
            return pod, options
        for given, flag in (
            (options.publish or options.publish_all, "-p/-P"),
            (options.network or options.networks, "--network"),
        ):
            if given:
                raise UsageError(
                    f"{flag} can't be set on a member of pod {pod.name}",
                    hint="the pod's members share its network: publish ports and choose the "
                    "network on the pod (rctl pod create -p ... --network ...)",
                )
        if options.hostname and "uts" in pod.shared:
            raise UsageError(
                f"--hostname can't be set on a member of pod {pod.name}",
                hint="the members share the pod's host name: rctl pod create --hostname",
            )
        return pod, dataclasses.replace(options, network=pod.network)

    def membership(self, pod: PodRecord | None) -> PodMembership | None:
        """What the bundle of a member of ``pod`` needs."""
        if pod is None:
            return None
        from rootless.pods.unit import pod_store  # noqa: PLC0415 - pod members only

        state = pod_store(self.ctx.store.root.parent, self.ctx.runtime).state(pod.id)
        return PodMembership(str(state), pod.shared, pod.hostname or pod.name)

    def with_secrets(
        self, spec: ContainerSpec, secrets: Sequence[SecretRequest], directory: Path
    ) -> ContainerSpec:
        """The spec the bundle is written from: with the secrets' files and variables.
        Only the bundle sees their values; the record keeps the options (names)."""
        if not secrets:
            return spec
        given = self.ctx.secrets.provide(secrets, directory)
        return dataclasses.replace(
            spec, env=(*spec.env, *given.env), mounts=(*spec.mounts, *given.mounts)
        )

    def locked_image(self, image: Any) -> Any:
        """Under the store's lock: ``image`` as recorded now, its layers unpacked. An ``rmi``
        or ``prune`` may have removed it since it was resolved; once the container is
        recorded, they see the image in use and leave it."""
        current = self.ctx.images.store.load_images().get(image.id)
        if current is None:
            raise NotFoundError(
                f"image {image.short_id} was removed while the container was being created",
                hint="pull the image again, then create the container",
            )
        if not all(self.ctx.images.store.has_layer(layer.chain_id) for layer in current.layers):
            # Pulled for another storage driver's layer format: unpack this one's.
            self.ctx.ensure_layers(current)
        return current

    def keep_id_user(self, spec: ContainerSpec) -> ContainerSpec:
        """``--userns keep-id`` (:mod:`rootless.containers.keepid`): the driver checked,
        the user's uid:gid as the default ``--user``. Other specs are returned as is."""
        if spec.userns is not UsernsMode.KEEP_ID:
            return spec
        check_keep_id(self.ctx.driver)
        return with_keep_id_user(spec, host_user())

    def nested_maps(
        self, spec: ContainerSpec
    ) -> tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]]:
        """keep-id: the uid and gid maps of the container's namespace, nested in the
        launcher's (nested ID, launcher's ID, count), which copy-up moves the image's
        owners through; nothing for other containers."""
        if spec.userns is not UsernsMode.KEEP_ID:
            return (), ()
        nested = nest_keep_id(self.ctx.plan_userns())
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
            return outer_ids(nest_keep_id(self.ctx.plan_userns()), user.uid, user.gid)
        return user.uid, user.gid

    def save_unit_inputs(
        self, record: ContainerRecord, options: RunOptions, spec: ContainerSpec
    ) -> None:
        """What the unit needs on every (re)start, independent of the image."""
        raw = {
            "restart": options.restart,
            "stop_timeout": spec.stop_timeout,
            "stop_signal": spec.kill_signal,
            "limits": {k: getattr(spec.limits, k) for k in spec.limits.__slots__},
            "log_driver": spec.isolation.log_driver,
        }
        self.ctx.store.save_unit_inputs(record.id, raw)


def shown_image_name(
    requested: str, names: Sequence[str], image_id: str, search: Sequence[str]
) -> str:
    """The image name a container records (inspect's Config.Image, auto-update's reference):
    the user's own reference when the image carries it. One image can have several names (a
    copy pushed under another one), and the first of them may be another repository's."""

    try:
        wanted = {ref.name for ref in candidates(requested, search)}
    except RctlError:
        wanted = set()
    return next((n for n in names if n in wanted), names[0] if names else image_id)
