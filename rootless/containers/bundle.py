"""A container's bundle on disk: its root's layers planned for the storage driver, ``etc/``
(hostname, hosts, resolv.conf), crun's ``config.json`` and the launcher's ``launch.json``.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import Any

from rootless.containers.context import ContainerContext
from rootless.containers.hostcheck import plan_devices
from rootless.containers.keepid import check_keep_id, host_user, keep_id_home, plan_keep_id
from rootless.containers.netmode import (
    ContainerNetwork,
    NetworkMode,
    hosts_file,
    read_host_resolv_conf,
    resolv_conf,
)
from rootless.containers.ocispec import EtcFiles, plan_oci_config, render_oci_config
from rootless.containers.plan import LaunchPlan
from rootless.containers.record import ContainerRecord
from rootless.containers.runtime import DEFAULT_RUNTIME, move_net_sysctls
from rootless.containers.spec import ContainerSpec, UsernsMode
from rootless.containers.unitspec import find_init
from rootless.images.layerjob import CopyJob
from rootless.storage.drivers import Driver, plan_rootfs


@dataclass(frozen=True, slots=True)
class PodMembership:
    """What a member's bundle needs of its pod: the holder's state directory, the shared
    namespaces (none without infra) and the pod's host name."""

    state: str
    share: tuple[str, ...]
    hostname: str


def write_bundle(
    ctx: ContainerContext,
    record: ContainerRecord,
    spec: ContainerSpec,
    image: Any,
    network: ContainerNetwork,
    console_socket: str | None = None,
    pod: PodMembership | None = None,
) -> None:
    """Write the bundle of a recorded container into its directory: the r/w layer's
    directories (a copy of the image for vfs), ``etc/``, ``bundle/config.json`` and
    ``bundle/launch.json``. A pod's member (``pod``) joins the pod's namespaces."""
    directory = ctx.store.dir(record.id)
    chains = tuple(layer.chain_id.removeprefix("sha256:") for layer in image.layers)
    plan = ctx.plan_userns()
    users = ctx.image_user_files(image)
    keep = None
    if spec.userns is UsernsMode.KEEP_ID:
        # A nested namespace and a root whose IDs fuse-overlayfs shifts (keepid).
        user = host_user()
        home = keep_id_home(user.home, (m.destination for m in spec.mounts), spec.process_cwd)
        keep = plan_keep_id(plan, user, *users, home=home)
        users = (keep.passwd or users[0], keep.group or users[1])
    rootfs = plan_rootfs(
        check_keep_id(ctx.driver) if keep else ctx.driver,
        ctx.images.store.layers, chains, directory,
        uid_mapping=keep.uid_mapping if keep else (),
        gid_mapping=keep.gid_mapping if keep else (),
    )  # fmt: skip
    for path in (
        rootfs.upper,
        rootfs.work,
        rootfs.merged,
        directory / "etc",
        ctx.store.bundle(record.id),
    ):
        path.mkdir(mode=0o755 if path != ctx.store.bundle(record.id) else 0o700)
    for name, text in (("passwd", keep.passwd), ("group", keep.group)) if keep else ():
        if text is not None:  # in the r/w layer: stored as ours, so root's inside
            (rootfs.upper / "etc").mkdir(mode=0o755, exist_ok=True)
            (rootfs.upper / "etc" / name).write_text(text)
            (rootfs.upper / "etc" / name).chmod(0o644)
    if rootfs.driver is Driver.VFS:
        # vfs: the container's root is a copy of its image's top layer (a full tree).
        top = ctx.images.store.layer_dir(image.layers[-1].chain_id) / "diff"
        ctx.run_jobs([CopyJob(str(top), str(rootfs.upper))])
    shared = pod.share if pod is not None else ()
    hostname = pod.hostname if "uts" in shared and pod else spec.hostname or record.short_id
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
        devices=plan_devices(spec.isolation),
        joined=shared,
    )
    runtime = str(record.options.get("Runtime", DEFAULT_RUNTIME))
    net_sysctls = move_net_sysctls(doc, runtime)
    ctx.store.oci_config_file(record.id).write_text(render_oci_config(doc))
    launch = LaunchPlan(
        container_id=record.id,
        uid_maps=tuple(maps),
        gid_maps=tuple(gmaps),
        network="pod" if shared else str(network.mode),
        pod_state=pod.state if pod is not None and shared else "",
        pod_share=shared,
        network_options=network.helper_options,
        slirp=network.slirp,
        host_loopback=network.host_loopback,
        ports=record.ports,
        pidfile=str(ctx.store.pid_file(record.id)),
        console_socket=console_socket,
        hold_console=bool(console_socket) and spec.tty and record.detach,
        tee_output=not spec.tty and spec.isolation.log_driver != "none",
        log_fields=(
            ("SYSLOG_IDENTIFIER", record.log_tag or record.name),
            ("CONTAINER_ID", record.id),
            ("CONTAINER_NAME", record.name),
            ("IMAGE_NAME", record.image_name),
        ),
        bundle=str(ctx.store.bundle(record.id)),
        runtime=runtime,
        runtime_root=str(ctx.runtime / runtime),
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
    ctx.store.save_launch(record.id, launch)
