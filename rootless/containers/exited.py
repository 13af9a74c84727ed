"""The container unit's ``ExecStopPost=``: record how the container ended and the delay
before a restart by its policy (:mod:`rootless.containers.backoff`); for ``--rm``, remove
it. Runs after every stop, even when the CLI that started it was killed.

systemd passes ``SERVICE_RESULT``, ``EXIT_CODE`` (exited, killed, dumped) and
``EXIT_STATUS`` (the status or the signal name) to ``ExecStopPost=`` (systemd.exec(5),
"Environment variables in spawned processes").

It runs once per container stop, so it imports next to nothing (every module costs
start-up time on each ``run --rm``); only removal loads the user-namespace code.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from rctlbase.errors import run_main
from rctlbase.timeline import mark
from rootless.containers import layout

# A container's directory renamed to this prefix + its ID is being deleted: no longer in
# the store (rootless.containers.record skips it), and claimed by one remover only.
REMOVING = ".removing-"


def exit_code(code: str, status: str) -> int:
    """docker's exit code: the status, or 128 + N for a death by signal N."""
    if code == "exited":
        return int(status) if status.isdigit() else 125
    if code in ("killed", "dumped"):
        try:
            return 128 + int(
                signal.Signals[f"SIG{status}" if not status.startswith("SIG") else status]
            )
        except KeyError:
            return 128 + int(status) if status.isdigit() else 137
    return 125  # the container never ran (launcher failure)


def main() -> int:
    # Exit 1 on any failure, as an uncaught exception did: the unit's result shows it.
    return run_main(record_exit, error_code=1)


def record_exit() -> int:
    """Record how the container ended; remove it or record its restart delay."""
    mark("stop hook: imported")
    directory = os.path.dirname(os.path.abspath(sys.argv[1]))
    with open(layout.record_file(directory)) as file:
        record = json.load(file)
    code, status = os.environ.get("EXIT_CODE", ""), os.environ.get("EXIT_STATUS", "")
    result = {
        "result": os.environ.get("SERVICE_RESULT", ""),
        "code": code,
        "status": status,
        "exit_code": exit_code(code, status),
        "finished": time.time(),
    }
    tmp = layout.exit_file(directory) + ".tmp"
    with open(tmp, "w") as file:
        json.dump(result, file)
    os.replace(tmp, layout.exit_file(directory))
    from rootless.containers.unitevents import log_container_event  # noqa: PLC0415

    log_container_event(directory, record, "die", exitCode=str(result["exit_code"]))
    with open(layout.launch_file(directory)) as file:
        launch_text = file.read()  # before anything is removed: removal's fallback needs it
    launch = json.loads(launch_text)
    remove_runtime_state(os.path.join(launch["runtime_root"], launch["container_id"]))
    if record.get("auto_remove"):
        doomed = take_out_dir(directory)
        if doomed is not None:
            remove_container_dir(doomed, launch_text)
            log_container_event(directory, record, "destroy")
    else:  # the delay before a restart by the container's policy
        from rootless.containers.backoff import record_stop  # noqa: PLC0415 - kept runs only

        record_stop(directory)
    mark("stop hook: done")
    return 0


def take_out_dir(directory: str) -> str | None:
    """Rename a container's directory out of the store for deletion (the same directory,
    ``.removing-ID``): the container vanishes whole at once, and of concurrent removals
    (this hook, ``rm``, another ``rm``) one wins. The new path, or None when another
    removal took it first."""
    parent, name = os.path.split(os.path.normpath(directory))
    doomed = os.path.join(parent, REMOVING + name)
    try:
        os.rename(directory, doomed)
    except FileNotFoundError:
        return None
    return doomed


def remove_runtime_state(state: str) -> None:
    """The runtime's state of the stopped container (``crun create`` leaves it, as ``crun
    delete`` would remove it): a directory of plain files, with no cgroup of crun's
    (``--cgroup-manager=disabled``). Anything unexpected is left to the next start's
    ``crun delete``."""
    try:
        with os.scandir(state) as entries:
            for entry in entries:
                os.unlink(entry.path)
        os.rmdir(state)
    except OSError:
        pass


def remove_container_dir(directory: str, launch: str) -> None:
    """``--rm``: delete the container's directory. Its files are mostly the user's own (the
    container's root is the user), so removal is tried here first; what is left (files of
    other mapped IDs in their directories) is removed from inside a user namespace mapped
    like the container's, which costs the imports below, a fork, newuidmap and newgidmap.
    ``launch`` is the text of its ``launch.json``, read before anything is removed."""
    import shutil  # noqa: PLC0415 - only --rm pays for these imports

    if remove_as_user(directory):
        return

    from rootless.containers.plan import LaunchPlan  # noqa: PLC0415
    from uidmap.unshare import fork_in_userns  # noqa: PLC0415

    plan = LaunchPlan.from_json(launch)

    def remove() -> None:
        shutil.rmtree(directory, ignore_errors=True)
        os._exit(0 if not os.path.exists(directory) else 1)

    # A namespace of its own, mapped like the container's: a bridged container's shared
    # one may be gone already (the last container out stops it).
    pid = fork_in_userns(plan.userns, remove)
    os.waitpid(pid, 0)


def remove_as_user(directory: str) -> bool:
    """Delete what of a stopped container's directory the user may delete (nearly all of
    it: the container's root is the user); True when nothing is left. What remains belongs
    to other mapped IDs and needs the user namespace. The container's processes are gone,
    so nothing can swap a directory for a link meanwhile (and rmtree follows none)."""
    import shutil  # noqa: PLC0415

    shutil.rmtree(directory, onerror=_open_up)
    return not os.path.lexists(directory)


def _open_up(function: object, path: str, _exc_info: object) -> None:
    """``shutil.rmtree``'s error handler: overlayfs leaves its ``work/work`` directory at
    mode 000, which the user owns yet can't list; such a directory is opened up and removed.
    Other failures are left to the user-namespace fallback."""
    import shutil  # noqa: PLC0415

    if function is not os.open:
        return
    try:
        # rmtree saw a directory there, not a symlink, and the container's processes are
        # gone (ExecStopPost runs after the unit's cgroup is empty): nothing can swap it.
        os.chmod(path, 0o700)
    except OSError:
        return  # not the user's: the fallback's business
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
