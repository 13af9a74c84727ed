"""The first main process of a container's systemd unit (``Type=notify``).

``python -m rootless.containers.launch LAUNCH_JSON`` first waits, when systemd restarts the
container by its policy, the growing delay of :mod:`rootless.containers.backoff`. Then it
moves itself into the container's new
user, mount and network namespaces (mapped from the subordinate IDs by a forked helper,
which also starts the network helper: :func:`uidmap.unshare.enter_userns`), mounts the
root filesystem, and has the OCI runtime create the container
(:func:`rootless.containers.inner.create_and_start`). Then it waits for the network helper
to be ready (slirp4netns starts while crun creates the container), tells systemd, behind a
barrier, that the container's first process (waiting in ``crun create``'s exec FIFO) is
the unit's main process and that the unit is ready (``MAINPID=``, ``READY=1`` on
``$NOTIFY_SOCKET``), has ``crun start`` run and exits. The start is run by a guard started
while crun creates, which kills the created container instead if the launcher dies before
it gave the go (:mod:`rootless.containers.startguard`): once handed over, the unit ends
with its container, never stays active around one that never runs. systemd, a subreaper,
has adopted the container's process when ``crun create`` exited; it supervises it
directly and gets its exit status. No PID file is read, and no process of rctl's or
crun's stays per container (but the port relay of :func:`relay_ports`, only for published
ports a driver serves badly, see :mod:`netns.relay`). One Python process between systemd
and the container (beyond newuidmap/newgidmap and the network helper): start-up time is
the product.

A pod's member (``network = "pod"`` in its plan) makes no network namespace and starts no
helper: it joins the pod holder's user namespace and its network (and shared IPC, UTS)
namespaces instead (:func:`rootless.containers.netattach.pod_namespaces`).

With ``RCTL_CONTAINER_NOTIFY=1`` (a definition's ``notify = true``) the launcher execs
``crun run`` instead, with ``$NOTIFY_SOCKET``: crun passes it into the container, whose own
``READY=1`` (relayed by crun with ``MAINPID=``) then marks the unit started.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rctlbase.errors import run_main
from rctlbase.timeline import mark
from rootless.containers.backoff import wait_before_start
from rootless.containers.consolehold import relay, resize_path
from rootless.containers.inner import create_and_start, exec_runtime, prepare_container
from rootless.containers.netattach import (
    attach_network,
    finish_network,
    hand_over_network,
    load_driver,
    pod_namespaces,
    prepare_network,
    relayed,
    userns_to_join,
)
from rootless.containers.plan import LaunchPlan
from rootless.containers.unitevents import log_started
from uidmap.unshare import enter_userns
from units.notify import notify

if TYPE_CHECKING:
    from units.journalsend import JournalSender


def launch(plan_path: Path) -> int:
    """Run the container described by ``plan_path``: returns only on failure."""
    mark("launcher: imported")
    wait_before_start(str(plan_path.parent.parent))  # a restart by the policy: docker's delay
    plan = LaunchPlan.from_json(plan_path.read_text())
    if plan.hold_console and plan.console_socket:
        hold_console(plan.console_socket)
    if plan.tee_output and "JOURNAL_STREAM" not in os.environ:
        # Attached (run, start -a): systemd sets JOURNAL_STREAM when output goes to the journal.
        tee_output(dict(plan.log_fields))
    forwards = relayed(plan)
    listeners = []
    if forwards:  # bound here, in the host's network namespace
        from netns.relay import bind_listeners  # noqa: PLC0415 - relayed ports only

        listeners = bind_listeners(forwards)
    # slirp4netns says it is ready on this pipe; the container is created meanwhile.
    load_driver(plan)
    pod_userns, pod_joined = pod_namespaces(plan)  # a pod's member joins the pod's
    ready_r, ready_w = os.pipe()
    try:
        enter_userns(
            plan.userns,
            net=plan.network not in ("host", "pod"),
            join=pod_userns or userns_to_join(plan),
            join_more=pod_joined,
            after_map=lambda pid: attach_network(plan, pid, ready_w),
            before_map=lambda: prepare_network(plan),
        )
    finally:
        os.close(ready_w)  # slirp4netns holds the only copy left
    mark("launcher: namespaces made, network starting")
    prepare_container(plan)
    mark("launcher: root mounted")
    if listeners:
        relay_ports(listeners)
    container_notifies = os.environ.pop("RCTL_CONTAINER_NOTIFY", "") == "1"
    socket_path = os.environ.pop("NOTIFY_SOCKET", None)

    def network_ready() -> None:
        try:
            finish_network(plan, ready_r)
        finally:
            os.close(ready_r)
        mark("launcher: network ready")

    if socket_path is None or container_notifies:
        network_ready()
        log_started(str(plan_path.parent.parent))
        if socket_path is not None:
            os.environ["NOTIFY_SOCKET"] = socket_path  # crun relays the container's READY=1
        exec_runtime(plan)
        return 125  # not reached: exec_runtime replaces this process or raises

    def tell_manager(pid: int) -> None:
        mark("launcher: container created")
        network_ready()  # before the container can run
        hand_over_network(plan, pid)
        log_started(str(plan_path.parent.parent))
        # The barrier in notify() makes systemd take the new main process before the
        # container runs: however soon it exits, its status is the unit's.
        notify(socket_path, f"MAINPID={pid}\nREADY=1")
        die_here_in_tests("before-start")

    code = create_and_start(plan, tell_manager)
    mark("launcher: container started")
    return code


def die_here_in_tests(point: str) -> None:
    """Fault injection for the integration tests: ``RCTL_TEST_KILL_AT=POINT`` in the unit's
    environment has the launcher SIGKILL itself at ``point`` (else: one lookup)."""
    if os.environ.get("RCTL_TEST_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def relay_ports(listeners: list[tuple[socket.socket, int]]) -> None:
    """Leave a process in the unit (forked: nothing to start) relaying the published ports
    the network driver serves badly (:mod:`netns.relay`); it is in the container's network
    namespace now and holds the host's sockets bound before."""
    if not fork_aside():
        for sock, _ in listeners:
            sock.close()
        return
    from netns.relay import serve  # noqa: PLC0415 - relayed ports only

    try:  # pragma: no cover - the forwarder process, covered by the integration tests
        serve(listeners)
    finally:
        os._exit(0)


def fork_aside() -> bool:
    """Fork a process that is not our child (True in it, False here): this process may
    become crun, which must not find children it did not make (it would wait for them). The
    intermediate child exits at once; the user manager, a subreaper, adopts the grandchild,
    which stays in the unit's cgroup."""
    middle = os.fork()
    if middle == 0:  # pragma: no cover - the intermediate child
        if os.fork() != 0:
            os._exit(0)
        return True
    os.waitpid(middle, 0)
    return False


def tee_output(fields: dict[str, str]) -> None:
    """An attached run: the unit's output is the CLI's terminal, so the journal would get
    nothing. Put pipes between the container and it, and leave a process in the unit
    (forked: nothing to start) that copies each stream to where it went and each line to
    the journal, with the container's fields (``CONTAINER_NAME=``...). It outlives a killed
    CLI (it stops writing to the terminal, not to the journal), ignores the unit's stop
    signal (whichever the image chose: SIGINT, SIGQUIT...) to drain what is left, and ends
    when the container's side of the pipes closes. Only attached runs have it."""
    pipes = [os.pipe(), os.pipe()]
    if not fork_aside():
        for fd, (_, write_end) in zip((1, 2), pipes, strict=True):
            os.dup2(write_end, fd)  # crun and the container inherit these
        for read_end, write_end in pipes:
            os.close(read_end)
            os.close(write_end)
        return
    try:  # pragma: no cover - the tee process, covered by the integration tests
        ignore_stop_signals()
        for _, write_end in pipes:
            os.close(write_end)
        from units.journalsend import JournalSender  # noqa: PLC0415 - attached runs only

        copy_streams({pipes[0][0]: 1, pipes[1][0]: 2}, JournalSender(), fields)
    finally:
        os._exit(0)


# Signals a stop cannot be: a fault's (ignoring them would loop on the fault) and those that
# can't be caught. The unit's KillSignal= is any other (the image's STOPSIGNAL).
_KEPT_SIGNALS = frozenset({
    signal.SIGKILL, signal.SIGSTOP, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE,
    signal.SIGILL, signal.SIGTRAP, signal.SIGSYS, signal.SIGABRT, signal.SIGCHLD,
})  # fmt: skip


def ignore_stop_signals() -> None:
    """Ignore every signal the unit's stop may send (its KillSignal= goes to the whole
    control group of an attached run): the copier ends at EOF, or by SIGKILL."""
    for number in signal.valid_signals():
        if number not in _KEPT_SIGNALS:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(number, signal.SIG_IGN)


def copy_streams(streams: dict[int, int], journal: JournalSender, fields: dict[str, str]) -> None:
    """Copy each readable fd to its terminal fd and its lines to the journal, until EOF."""
    from units.journalsend import MAX_MESSAGE  # noqa: PLC0415 - attached runs only

    pending = {fd: b"" for fd in streams}
    priority = {fd: "6" if out == 1 else "3" for fd, out in streams.items()}
    alive = dict(streams)  # read fd -> terminal fd still writable (or -1)
    while pending:
        ready, _, _ = select.select(list(pending), [], [])
        for fd in ready:
            data = os.read(fd, 65536)
            if alive.get(fd, -1) >= 0 and data:
                try:
                    os.write(alive[fd], data)
                except OSError:
                    alive[fd] = -1  # the CLI is gone: the journal still gets everything
            buffered = pending[fd] + data
            *lines, rest = buffered.split(b"\n")
            if not data and rest:
                lines, rest = [*lines, rest], b""
            while len(rest) > MAX_MESSAGE:
                lines.append(rest[:MAX_MESSAGE])
                rest = rest[MAX_MESSAGE:]
            for line in lines:
                journal.send({"MESSAGE": line, "PRIORITY": priority[fd], **fields})
            if data:
                pending[fd] = rest
            else:
                del pending[fd]
                os.close(fd)


def hold_console(path: str) -> None:
    """``run -dt``: nobody is attached, yet the container's terminal needs a reader, or its
    writes block and closing the master hangs it up. Leave a process in the unit (forked
    from this one: nothing to start) that takes the master from crun and copies what the
    container writes to the unit's output, the journal (or an attached API client's pipe,
    whose input it types into the terminal: :mod:`.consolehold`). It ends with the unit; only
    containers with -t and -d have it (docker's and podman's keep conmon for every one)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    if not fork_aside():
        listener.close()
        return
    try:  # pragma: no cover - the holder process, covered by the integration tests
        ignore_stop_signals()  # it drains the terminal after the container ended
        listener.settimeout(60)
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        listener.close()
        os.unlink(path)
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(resize_path(path))
        control.bind(resize_path(path))
        control.listen(4)
        try:
            relay(fds[0], 0, 1, control)
        finally:
            os.unlink(resize_path(path))
    finally:
        os._exit(0)


def main() -> int:
    # The unit's journal is where the error goes (systemctl --user status shows it); 125
    # for any RctlError is how the stop hook tells a launcher failure from the container's.
    return run_main(lambda: launch(Path(sys.argv[1])), error_code=125)


if __name__ == "__main__":
    sys.exit(main())
