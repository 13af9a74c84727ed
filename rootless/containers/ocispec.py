"""Planning crun's ``config.json`` (OCI runtime-spec 1.0.2) from a :class:`ContainerSpec`.

Pure: :func:`plan_oci_config` returns the document, :func:`render_oci_config` its text; the
engine writes the bundle and runs crun. The choices below follow podman in rootless mode
(``pkg/specgen/generate``), where podman's choices differ from docker's only because a
rootless container can't do what docker's can.

**Where crun runs, and the user namespace.** In rctl's launcher
(:mod:`rootless.containers.launch`) the unit's main process enters
a user namespace mapped with newuidmap/newgidmap, mounts the rootfs there and runs crun as
root of that namespace, as podman runs crun inside its rootless namespace. The config then
lists no ``user`` namespace and no mappings (``new_userns=False``): a second namespace
would only map the first onto itself. ``uid_maps``/``gid_maps`` still describe the
namespace the container runs in (``(container_id, host_id, size)``, as
``uidmap.mapping.IDMap``): they decide whether ``--user`` and gid 5 exist there. With
``new_userns=True`` crun makes the namespace itself, from these mappings written in terms of
the namespace crun starts in (crun calls newuidmap for multi-range maps when unprivileged).

**Cgroups.** Limits belong to the systemd unit (``MemoryMax=``, ``CPUQuota=``,
``TasksMax=`` with ``Delegate=yes``, from ``containers/unitspec.py:container_service``): one
writer per cgroup. crun's global option ``--cgroup-manager=disabled`` (crun(1): cgroupfs,
systemd or disabled; ``--systemd-cgroup`` is the same as ``systemd``) leaves the
container's processes where crun started them, in the unit's cgroup, so the unit's limits,
accounting and stop (``KillMode=``) cover them and nothing else is written: the config has
neither ``cgroupsPath`` nor ``resources``. Never ``--cgroup-manager=systemd``: crun would
ask systemd for a scope of its own, outside the unit, and the unit would lose its
container. The cgroup namespace is private: its root is the cgroup the container starts in.

**/sys.** Mounting sysfs needs CAP_SYS_ADMIN in the user namespace that owns the network
namespace. A container with a network namespace of its own (made by crun, or ``netns_path``
made by the engine inside the user namespace) gets ``sysfs`` read-only and a read-only
``cgroup`` at /sys/fs/cgroup; with ``--network host`` the network namespace is the
host's, so /sys is the host's, bind-mounted recursively read-only, as podman does.
A network namespace of its own also gets ``net.ipv4.ping_group_range`` over the groups
mapped from 0 without a gap, so ping works without CAP_NET_RAW (docker sets the whole range,
which an unprivileged namespace can't map; podman sets "0 0").

**/dev.** A tmpfs with crun's default nodes (null, zero, full, tty, random, urandom),
which crun bind-mounts from the host in a user namespace since it can't mknod: no
``linux.devices``. devpts gets ``gid=5`` (tty) only when gid 5 is mapped, else the mount
fails with EINVAL (podman drops it the same way).

**rlimits.** RLIMIT_NOFILE soft = hard = min(``nofile_hard``, 1048576), podman's rootless
rule: podman raises its soft limit to its hard one and hands that to the container. The
engine passes its own hard limit (``resource.getrlimit``); None leaves the limits inherited
from the unit (systemd's default 1024 soft). Other limits are inherited.

**--init.** A static init (catatonit or tini) bind-mounted read-only at
``/run/rctl-init`` runs as PID 1 with the command after ``--``. The engine finds it and
passes ``init_path``; without one, ``--init`` is refused.
The engine looks for catatonit where podman and the distributions put it (``find_init``).

``tests/integration/test_ocispec_crun.py`` runs these configs with the test host's crun
1.8.1, in both user-namespace modes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rctlbase.errors import UsageError
from rootless.containers.isolation import Device, NamespaceMode
from rootless.containers.seccomp import plan_seccomp
from rootless.containers.spec import (
    ALL_CAPABILITIES,
    DEFAULT_PATH,
    BindMount,
    ContainerSpec,
    ResolvedUser,
    TmpfsMount,
    merge_env,
)

OCI_VERSION = "1.0.2"
IDMapping = tuple[int, int, int]  # (container_id, host_id, size), as uidmap.mapping.IDMap

# podman's default capabilities (containers/common pkg/config/default.go DefaultCapabilities).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
)
MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/firmware",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
SHM_SIZE = 64 << 20  # docker's default /dev/shm
NOFILE_MAX = 1048576  # podman's define.RLimitDefaultValue
INIT_DESTINATION = "/run/rctl-init"
TTY_GID = 5
MANAGER_ANNOTATION = {"io.container.manager": "rctl"}
# podman's tmpfs for --read-only (--read-only-tmpfs, on by default).
READ_ONLY_TMPFS = ("/tmp", "/var/tmp", "/run")
_NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]
_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


@dataclass(frozen=True, slots=True)
class EtcFiles:
    """Host paths of the generated files bind-mounted over the image's (None: the image's)."""

    hosts: str | None = None
    hostname: str | None = None
    resolv_conf: str | None = None


def plan_capabilities(cap_add: Iterable[str], cap_drop: Iterable[str]) -> tuple[str, ...]:
    """The capability set, docker's ``TweakCapabilities``: ALL in ``cap_add`` means every
    capability but the dropped ones; ALL in ``cap_drop`` means only the added ones;
    otherwise the defaults minus drops plus adds (an add beats a drop). Sorted.
    """
    add, drop = set(cap_add), set(cap_drop)
    if "ALL" in add:
        caps = set(ALL_CAPABILITIES) - drop
    elif "ALL" in drop:
        caps = add
    else:
        caps = (set(DEFAULT_CAPABILITIES) - drop) | add
    return tuple(sorted(caps - {"ALL"}))


def _mapped(maps: Sequence[IDMapping], container_id: int) -> bool:
    return any(c <= container_id < c + size for c, _, size in maps)


def _mapped_from_zero(maps: Sequence[IDMapping]) -> int:
    """How many IDs from 0 up are mapped without a gap."""
    top = 0
    for c, _, size in sorted(maps):
        if c > top:
            break
        top = max(top, c + size)
    return top


def _process_user(spec: ContainerSpec) -> ResolvedUser:
    if spec.resolved_user is not None:
        return spec.resolved_user
    numeric = spec.process_user.numeric()
    if numeric is None:
        raise ValueError(
            f"user {spec.process_user.raw!r} has names: resolve it first "
            "(ContainerSpec.with_resolved_user)"
        )
    return numeric


def _check_mapped(
    user: ResolvedUser, uid_maps: Sequence[IDMapping], gid_maps: Sequence[IDMapping]
) -> None:
    hint = "use an ID the namespace maps, or give the user more IDs in /etc/subuid and /etc/subgid"
    if uid_maps and not _mapped(uid_maps, user.uid):
        raise UsageError(
            f"uid {user.uid} of --user is not mapped in the container's user namespace",
            hint=hint,
        )
    for gid in (user.gid, *user.additional_gids):
        if gid_maps and not _mapped(gid_maps, gid):
            raise UsageError(
                f"gid {gid} of --user is not mapped in the container's user namespace",
                hint=hint,
            )


def _process(
    spec: ContainerSpec,
    user: ResolvedUser,
    caps: tuple[str, ...],
    *,
    hostname: str,
    init: bool,
    nofile_hard: int | None,
) -> dict[str, Any]:
    # docker's CreateDaemonEnvironment: PATH, HOSTNAME, TERM first, the container's over them.
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}", *(["TERM=xterm"] if spec.tty else [])]
    env = merge_env(base, spec.process_env)
    if user.home and not any(e.startswith("HOME=") for e in env):
        env = (*env, f"HOME={user.home}")
    args = [INIT_DESTINATION, "--", *spec.process_args] if init else list(spec.process_args)
    process: dict[str, Any] = {
        "terminal": spec.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": list(env),
        "cwd": spec.process_cwd,
        "capabilities": {
            "bounding": list(caps),
            "effective": list(caps),
            "permitted": list(caps),
            "inheritable": [],
            "ambient": [],
        },
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)
    rlimits = [{"type": u.rlimit, "soft": u.soft, "hard": u.hard} for u in spec.isolation.ulimits]
    if nofile_hard is not None and "RLIMIT_NOFILE" not in {r["type"] for r in rlimits}:
        nofile = min(nofile_hard, NOFILE_MAX)
        rlimits.insert(0, {"type": "RLIMIT_NOFILE", "soft": nofile, "hard": nofile})
    if rlimits:
        process["rlimits"] = rlimits
    if spec.isolation.oom_score_adj is not None:
        process["oomScoreAdj"] = spec.isolation.oom_score_adj
    process["noNewPrivileges"] = spec.no_new_privileges
    return process


def _mount(dest: str, kind: str, source: str, options: Iterable[str]) -> dict[str, Any]:
    return {"destination": dest, "type": kind, "source": source, "options": list(options)}


def _system_mounts(spec: ContainerSpec, *, gid5: bool, own_netns: bool) -> list[dict[str, Any]]:
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    iso = spec.isolation
    # A proc, mqueue or sysfs mount needs the namespace it shows to belong to the
    # container's user namespace: with the host's, podman binds the host's instead.
    if iso.pid is NamespaceMode.HOST:
        proc = _mount("/proc", "bind", "/proc", ["rbind", "rprivate", *_NOSUID_NOEXEC_NODEV])
    else:
        proc = _mount("/proc", "proc", "proc", _NOSUID_NOEXEC_NODEV)
    mounts = [
        proc,
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts", devpts + ([f"gid={TTY_GID}"] if gid5 else [])),
    ]
    if iso.ipc is NamespaceMode.HOST:
        mounts += [
            _mount("/dev/mqueue", "bind", "/dev/mqueue", ["rbind", *_NOSUID_NOEXEC_NODEV]),
            _mount("/dev/shm", "bind", "/dev/shm", ["rbind", *_NOSUID_NOEXEC_NODEV]),
        ]
    else:
        mounts.append(_mount("/dev/mqueue", "mqueue", "mqueue", _NOSUID_NOEXEC_NODEV))
    if iso.ipc is NamespaceMode.PRIVATE:
        size = f"size={(iso.shm_size or SHM_SIZE) // 1024}k"
        mounts.append(
            _mount("/dev/shm", "tmpfs", "shm", [*_NOSUID_NOEXEC_NODEV, "mode=1777", size])
        )
    ro = [] if iso.privileged else ["ro"]
    if own_netns:
        mounts += [
            _mount("/sys", "sysfs", "sysfs", [*_NOSUID_NOEXEC_NODEV, *ro]),
            _mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                ["rprivate", *_NOSUID_NOEXEC_NODEV, "relatime", *ro],
            ),
        ]
    else:
        mounts.append(
            _mount("/sys", "bind", "/sys", ["rprivate", *_NOSUID_NOEXEC_NODEV, "ro", "rbind"])
        )
    return mounts


def _device(device: Device) -> dict[str, Any]:
    # Bound, since a user namespace can't mknod (crun binds its default nodes the same way);
    # no nodev, which would make the node useless.
    return _mount(
        device.destination, "bind", device.source, ["bind", "rprivate", "nosuid", "noexec"]
    )


def _bind(mount: BindMount) -> dict[str, Any]:
    options = ["rbind", "ro" if mount.read_only else "rw"]
    if not _PROPAGATIONS & set(mount.options):
        options.append("rprivate")
    options += [o for o in mount.options if o not in ("bind", "rbind", "ro", "rw")]
    return _mount(mount.destination, "bind", mount.source, options)


def _depth(mount: dict[str, Any]) -> int:
    return len([p for p in str(mount["destination"]).split("/") if p])


def _mounts(
    spec: ContainerSpec,
    *,
    etc_files: EtcFiles,
    gid5: bool,
    init_path: str | None,
    devices: Sequence[Device],
) -> list[dict[str, Any]]:
    tmpfs = list(spec.tmpfs)
    taken = {t.destination.rstrip("/") for t in spec.tmpfs}
    taken |= {m.destination.rstrip("/") for m in spec.mounts}
    if spec.read_only and spec.read_only_tmpfs:
        tmpfs += [
            TmpfsMount(d, ("rw", "nosuid", "nodev", "tmpcopyup"))
            for d in READ_ONLY_TMPFS
            if d not in taken
        ]
    etc_ro = ["ro"] if spec.read_only else []
    etc = [
        _mount(dest, "bind", source, ["bind", "rprivate", *etc_ro])
        for dest, source in (
            ("/etc/hosts", etc_files.hosts),
            ("/etc/hostname", etc_files.hostname),
            ("/etc/resolv.conf", etc_files.resolv_conf),
        )
        if source is not None and dest not in taken
    ]
    user = etc + [_mount(t.destination, "tmpfs", "tmpfs", t.options) for t in tmpfs]
    user += [_bind(m) for m in spec.mounts]
    user += [_device(d) for d in devices if d.destination not in taken]
    if init_path is not None:
        user.append(_mount(INIT_DESTINATION, "bind", init_path, ["bind", "ro", "nosuid", "nodev"]))
    system = [
        m
        for m in _system_mounts(spec, gid5=gid5, own_netns=not spec.host_network)
        if m["destination"] not in taken
    ]
    # Parents before children (podman's sortMounts); sorted() keeps the given order otherwise,
    # and a user's mount on /etc comes before the generated files on top of it.
    return system + sorted(user, key=_depth)


def plan_oci_config(
    spec: ContainerSpec,
    *,
    rootfs_path: str,
    hostname: str,
    uid_maps: Sequence[IDMapping] = (),
    gid_maps: Sequence[IDMapping] = (),
    new_userns: bool = False,
    etc_files: EtcFiles | None = None,
    netns_path: str | None = None,
    init_path: str | None = None,
    nofile_hard: int | None = None,
    machine: str = "x86_64",
    kernel: tuple[int, int] | None = None,
    devices: Sequence[Device] | None = None,
    joined: Sequence[str] = (),
) -> dict[str, Any]:
    """The runtime-spec ``config.json`` document of ``spec``'s container.

    ``uid_maps``/``gid_maps`` are the mappings of the container's user namespace (empty when
    unknown: gid 5 is then not assumed); with ``new_userns`` crun creates it from them.
    ``hostname`` is the container's (``spec.hostname`` or the short ID, the engine decides);
    ``etc_files`` the generated /etc files; ``netns_path`` a network namespace to join
    (ignored with ``--network host``);
    ``init_path`` the host's static catatonit or tini for ``--init``; ``nofile_hard`` the
    engine's hard RLIMIT_NOFILE; ``machine``/``kernel`` pick the seccomp rules;
    ``devices`` the device nodes to bind (the engine checks ``--device``'s and adds, for
    ``--privileged``, the host's the user can open; None: ``--device``'s as given);
    ``joined`` the namespaces (``ipc``, ``uts``) the launcher joined, a pod's, which the
    container shares instead of getting its own (its network one is ``netns_path``).

    Raises UsageError when ``--init`` has no ``init_path`` or ``--user`` is not mapped; the
    user must be numeric or resolved (:meth:`ContainerSpec.with_resolved_user`).
    """
    if spec.init and init_path is None:
        raise UsageError(
            "--init needs catatonit or tini, and neither was found",
            hint="install catatonit (apt-get install catatonit), or run without --init",
        )
    user = _process_user(spec)
    _check_mapped(user, uid_maps, gid_maps)
    caps = plan_capabilities(spec.cap_add, spec.cap_drop)
    own_netns = not spec.host_network
    iso = spec.isolation
    namespaces = [
        ns
        for ns in _namespaces(spec, netns_path if own_netns else None, new_userns=new_userns)
        if ns["type"] not in joined
    ]
    linux: dict[str, Any] = {}
    if new_userns:
        linux["uidMappings"] = [_oci_map(m) for m in uid_maps]
        linux["gidMappings"] = [_oci_map(m) for m in gid_maps]
    if new_userns and netns_path and any(k.startswith("net.") for k, _ in iso.sysctls):
        raise UsageError(
            "--sysctl net.* can't go with --userns keep-id",
            hint="the container's user namespace does not own its network namespace there",
        )
    if own_netns and not (new_userns and netns_path):
        # Let ping work without CAP_NET_RAW for every group the namespace maps, as docker
        # does; the kernel refuses a range with unmapped ends, so stop at the first gap.
        # Not in a joined network namespace that the new user namespace does not own
        # (--userns keep-id): net sysctls need the owner's root, crun fails with EACCES.
        top = _mapped_from_zero(gid_maps)
        linux["sysctl"] = {"net.ipv4.ping_group_range": f"0 {max(top - 1, 0)}"}
    if iso.sysctls:
        linux["sysctl"] = {**linux.get("sysctl", {}), **dict(iso.sysctls)}
    linux["namespaces"] = namespaces
    seccomp = plan_seccomp(spec.seccomp.profile(machine), caps, machine=machine, kernel=kernel)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    if iso.masked_paths:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    gid5 = _mapped(gid_maps, TTY_GID)
    annotations = dict(MANAGER_ANNOTATION)
    if iso.keep_groups:
        # crun(1): the process keeps the groups it was started with (the user's).
        annotations["run.oci.keep_original_groups"] = "1"
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": _process(
            spec, user, caps, hostname=hostname, init=spec.init, nofile_hard=nofile_hard
        ),
        "root": {"path": rootfs_path, "readonly": spec.read_only},
        "hostname": hostname,
        "mounts": _mounts(
            spec,
            etc_files=etc_files or EtcFiles(),
            gid5=gid5,
            init_path=init_path if spec.init else None,
            devices=iso.devices if devices is None else devices,
        ),
        "annotations": annotations,
        "linux": linux,
    }
    if iso.uts is NamespaceMode.HOST or "uts" in joined:
        del config["hostname"]  # the runtime can't set one without a UTS namespace
    return config


def _namespaces(
    spec: ContainerSpec, netns_path: str | None, *, new_userns: bool
) -> list[dict[str, str]]:
    """The namespaces crun makes (or joins, ``netns_path``); a ``host`` mode leaves one out,
    and the container shares the launcher's, which is the host's."""
    iso = spec.isolation
    chosen = (
        ("pid", iso.pid is not NamespaceMode.HOST),
        ("network", not spec.host_network),
        ("ipc", iso.ipc is not NamespaceMode.HOST),
        ("uts", iso.uts is not NamespaceMode.HOST),
        ("mount", True),
        ("user", new_userns),
        ("cgroup", iso.cgroupns is not NamespaceMode.HOST),
    )
    return [
        {"type": kind, **({"path": netns_path} if kind == "network" and netns_path else {})}
        for kind, wanted in chosen
        if wanted
    ]


def _oci_map(mapping: IDMapping) -> dict[str, int]:
    container_id, host_id, size = mapping
    return {"containerID": container_id, "hostID": host_id, "size": size}


def render_oci_config(config: dict[str, Any]) -> str:
    """The text of ``config.json``: two-space JSON with a final newline, stable for diffs."""
    return json.dumps(config, indent=2) + "\n"
