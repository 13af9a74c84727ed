"""Commands in a container: ``exec`` and ``top`` in a running one (its namespaces entered),
``cp`` between the host and a container, running or not.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from rctlbase.errors import ConflictError, HostError, UsageError
from rctlbase.run import run_program, spawn_program
from rctlbase.syscalls import parent_namespace
from rootless.containers.context import ContainerContext
from rootless.containers.record import ContainerRecord
from rootless.containers.spec import merge_env


class ContainerExec:
    """exec, top and cp for one user's containers."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self._held_fds: list[int] = []  # namespaces named to nsenter by /proc/PID/fd/N

    def copy(
        self, source: str, destination: str, *, archive: bool = False, keep_kinds: bool = False
    ) -> None:
        """``rctl cp``: between the host and a container, running (its namespaces are
        joined) or not (its root is mounted in a user namespace of its own). With
        ``keep_kinds`` a copy into the container never replaces a directory with a
        non-directory or the reverse."""
        from rootless.containers.copy import Enter, parse_copy_args, run_copy  # noqa: PLC0415
        from rootless.containers.inner import mount_rootfs, rootfs_plan  # noqa: PLC0415
        from uidmap.unshare import fork_in_userns, fork_joined  # noqa: PLC0415

        src, dst = parse_copy_args(source, destination)
        record = self.ctx.store.get(str(src.container or dst.container))
        state = self.ctx.manager.unit_state(record.unit)
        plan = self.ctx.store.load_launch(record.id)
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

        run_copy(source, destination, enter, archive=archive, keep_kinds=keep_kinds)

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
        plan = self.ctx.store.load_launch(record.id)
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
            config = json.loads(self.ctx.store.oci_config_file(record.id).read_text())
            user = f"{config['process']['user']['uid']}:{config['process']['user']['gid']}"
        if user:
            command += ["--user", user]
        if workdir:
            command += ["--cwd", workdir]
        return [*command, record.id, *argv]

    def _launcher_userns(self, container_userns: str) -> str:
        """A path to the parent of the user namespace ``container_userns``: a descriptor of
        this process's, which stays open as long as it lives (nsenter opens the path)."""

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
        stdio: tuple[int, int, int] | None = None,
    ) -> int:
        """Run a command in a running container: enter its user and mount namespaces (ours
        to enter: we own them) and let crun join the rest. With ``console_socket`` (exec
        -t) crun gives the command a terminal and sends its master there; ``started`` runs
        once the command is on its way (the CLI receives the terminal then). ``stdio``
        gives the command's streams (the API's pipes) instead of this process's."""
        if not argv:
            raise UsageError("exec needs a command", hint="rctl exec CONTAINER COMMAND [ARG...]")
        record = self.ctx.store.get(ref)
        state = self.ctx.running_state(record)
        if console_socket is not None and not any(e.startswith("TERM=") for e in env):
            env = (*env, "TERM=xterm")  # docker exec -t sets it too
        command = self.exec_argv(record, state.main_pid, argv, env=env, user=user, workdir=workdir)
        if console_socket is not None:
            at = command.index("exec") + 1
            command[at:at] = ["--tty", "--console-socket", console_socket]
        if stdio is not None:
            proc = spawn_program(command, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
        else:
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
        record = self.ctx.store.get(ref)
        state = self.ctx.running_state(record)
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
