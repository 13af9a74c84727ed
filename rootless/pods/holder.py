"""A pod's unit start: ``python -I -m rootless.pods.holder POD_DIR STATE_DIR [PID_FILE]``.

``Type=forking``, like the rootless network namespace's unit (:mod:`rootless.networks.holder`):
fork the *holder*, a ``sleep infinity`` that only keeps the pod's namespaces alive, into a
new user namespace (mapped from the subordinate IDs like every container's) with new mount,
network and, when shared, IPC and UTS namespaces; bring loopback up and set the host name
there; attach the pod's network helper (slirp4netns or pasta, with the pod's published
ports) from outside; write ``STATE_DIR/holder.json`` and the ``PIDFile=``; exit. No image
is needed: a host process holds the namespaces.

systemd supervises the holder; the network helper lives in the same cgroup. Stopping the
unit (or the holder's death, ``kill -9`` included) ends them both, and the members' units,
bound to this one (``BindsTo=``), stop with it. A member's launcher joins the namespaces
through ``/proc/PID/ns/*`` of the pid in ``holder.json`` (:func:`holder_pid`).

A pod without infra (``--no-infra``) has a holder in no namespace of its own: its unit
still groups the members' units.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rctlbase import syscalls
from rctlbase.errors import HostError, run_main
from rctlbase.run import exec_program
from rootless.pods.record import PodRecord

HOLDER_FILE = "holder.json"
PID_FILE = "holder.pid"


def holder_pid(state: Path) -> int:
    """The running holder's pid, checked to be a process in a user namespace of its own."""
    try:
        pid = int(json.loads((state / HOLDER_FILE).read_text())["pid"])
        theirs = os.readlink(f"/proc/{pid}/ns/user")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HostError(
            "the pod's namespaces are not there (its holder is not running)",
            hint="start the pod: rctl pod start POD",
        ) from exc
    if pid <= 1 or theirs == os.readlink("/proc/self/ns/user"):
        raise HostError(
            "the pod's holder holds no namespace", hint="restart the pod: rctl pod restart POD"
        )
    return pid


def start(pod_dir: Path, state: Path, pid_file: Path | None = None) -> int:
    """Start the holder and its network helper; the holder's pid (also written to
    ``pid_file``: a generated unit's ``PIDFile=``, named before the pod's ID is known)."""
    record = PodRecord.from_json(json.loads((pod_dir / "pod.json").read_text()))
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    (state / HOLDER_FILE).unlink(missing_ok=True)
    pid = start_infra(record, state) if record.infra else start_plain()
    write_atomically(state / HOLDER_FILE, json.dumps({"pid": pid}))
    for path in (state / PID_FILE, *([pid_file] if pid_file else [])):
        write_atomically(path, f"{pid}\n")
    return pid


def start_plain() -> int:
    """A holder in no namespace of its own (``--no-infra``), for the unit to supervise."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the holder, covered by the integration tests
        try:
            os.setsid()
            exec_program(["sleep", "infinity"])
        finally:
            os._exit(125)
    return pid


def start_infra(record: PodRecord, state: Path) -> int:
    from netns.loopback import loopback_up  # noqa: PLC0415
    from uidmap.unshare import fork_in_userns  # noqa: PLC0415
    from uidmap.userns import current_user, load_plan  # noqa: PLC0415

    plan = load_plan(current_user(), os.getuid(), os.getgid())
    ready_r, ready_w = os.pipe()  # close-on-exec: sleep does not keep it

    def holder() -> None:  # pragma: no cover - in the forked holder
        os.close(ready_r)
        flags = syscalls.CLONE_NEWIPC if "ipc" in record.share else 0
        if "uts" in record.share:
            flags |= syscalls.CLONE_NEWUTS
        if flags:
            syscalls.unshare(flags)
        if "uts" in record.share:
            syscalls.sethostname(record.hostname or record.name)
        loopback_up()
        os.write(ready_w, b"1")
        exec_program(["sleep", "infinity"])

    pid = fork_in_userns(
        plan, holder, net=True, before_release=lambda p: attach_helper(record, state, p)
    )
    os.close(ready_w)
    try:
        said = os.read(ready_r, 1)
    finally:
        os.close(ready_r)
    if said != b"1":
        raise HostError(
            "the pod's holder could not set up its namespaces",
            hint="journalctl --user -u rctl-pod-ID shows why",
        )
    return pid


def attach_helper(record: PodRecord, state: Path, pid: int) -> None:
    """The pod's network helper on ``pid``'s network namespace, with the published ports."""
    if record.network == "pasta":
        from netns.pasta import start_pasta  # noqa: PLC0415
        from rootless.containers.netmode import PASTA_DNS_FORWARD  # noqa: PLC0415

        start_pasta(pid, record.ports, extra=("--dns-forward", PASTA_DNS_FORWARD))
    elif record.network == "slirp4netns":
        from netns.rootlessns import HostForward, add_forward, start_slirp4netns  # noqa: PLC0415

        api_socket = str(state / "slirp.sock")
        start_slirp4netns(pid, api_socket)
        for port in record.ports:
            forward = HostForward(
                str(port.protocol), port.host_ip, port.host_port, port.container_port
            )
            add_forward(api_socket, forward)


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main() -> int:
    def body() -> int:
        extra = Path(sys.argv[3]) if len(sys.argv) > 3 else None
        start(Path(sys.argv[1]), Path(sys.argv[2]), extra)
        return 0

    return run_main(body, error_code=125)


if __name__ == "__main__":
    sys.exit(main())
