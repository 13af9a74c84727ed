"""Tier ``nspawn``: the tree booted with systemd-nspawn at native speed.

Each boot starts from a fresh copy of the cached tree (rsync: only changed files are copied),
so tests never alter the cache. The flags come from shared/TESTHOST.md: a unified cgroup
hierarchy, no machined registration, the keyring syscalls crun needs, private device nodes
for /dev/fuse and /dev/net/tun (binding the host's would let the guest chmod them), and a
private network (the guest's 127.0.0.1:5000 registry can't clash with the host's ports).
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

from harness import build
from harness.common import (
    INSTANCE,
    MACHINE,
    STATE,
    VARLIB,
    HarnessError,
    pid_alive,
    read_pid,
    say,
    sh,
    wait_until,
)
from harness.guest import Endpoint

PIDFILE = STATE / "nspawn.pid"
CGROUPFILE = STATE / "nspawn.cgroups"
TREEFILE = STATE / "nspawn.tree"  # which cached tree the running boot was copied from
ROOT = VARLIB / "nspawn" / "root"
DEVDIR = VARLIB / "nspawn" / "dev"
LOG = VARLIB / "nspawn" / "boot.log"
DEVICES = {"fuse": (10, 229), "net-tun": (10, 200)}


def find_leader(nspawn_pid: int) -> int | None:
    """The container's PID 1 as seen from the host: a descendant of nspawn that is pid 1 one
    PID namespace down. Containers running inside the guest have a pid 1 of their own too,
    one level deeper (three NSpid entries): they must not be taken for the guest's init."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        nspid = fields.get("NSpid", "").split()
        if len(nspid) == 2 and nspid[-1] == "1" and descends_from(int(entry.name), nspawn_pid):
            return int(entry.name)
    return None


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``ancestor`` is on ``pid``'s parent chain."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        pid = int(status.split("\nPPid:\t", 1)[1].split("\n", 1)[0])
    return False


def endpoint() -> Endpoint | None:
    """How to reach the running tier, or None when it is down."""
    nspawn_pid = read_pid(PIDFILE)
    if nspawn_pid is None:
        return None
    leader = find_leader(nspawn_pid)
    if leader is None:
        return None
    # The key of the tree this boot was copied from (the cache may hold a newer tree already).
    return Endpoint("nspawn", ROOT / "root/harness-key", 22, netns_pid=leader)


def up() -> Endpoint:
    """Boot the tier unless it is running; return its endpoint once ssh works."""
    running = endpoint()
    if running is not None:
        if TREEFILE.exists() and TREEFILE.read_text() == build.tree_path().name:
            return running
        say("the recipe changed since this tier booted: rebooting it")
        down()
    tree = build.build()
    cleanup()
    say("copying the tree for this boot")
    ROOT.mkdir(parents=True, exist_ok=True)
    sh(["rsync", "-aHAX", "--delete", "--numeric-ids", f"{tree}/", f"{ROOT}/"], quiet=True)
    make_devices()
    STATE.mkdir(parents=True, exist_ok=True)
    argv = [
        "systemd-nspawn",
        "--quiet",
        "--boot",
        f"--directory={ROOT}",
        f"--machine={MACHINE}",
        "--register=no",
        "--keep-unit",
        "--private-network",
        "--system-call-filter=@keyring",
        # The console must be drained: with "passive" nobody reads the pty and PID 1
        # blocks in write(2) once its buffer is full. "pipe" sends it to our log file.
        "--console=pipe",
        *(f"--bind={DEVDIR / name}:/dev/{name.replace('-', '/')}" for name in DEVICES),
    ]
    say("booting the nspawn tier")
    cgroups = own_cgroups() if INSTANCE else Path("/proc/self/cgroup").read_text()
    if INSTANCE:
        argv = enter_cgroups(cgroups, argv)
    with open(LOG, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **build.NSPAWN_ENV},
        )
    PIDFILE.write_text(f"{proc.pid}\n")
    TREEFILE.write_text(tree.name)
    # nspawn makes payload/ and supervisor/ below the cgroups it started in (ours) and
    # moves itself there, so ours is where down() looks for them.
    CGROUPFILE.write_text(cgroups)
    try:
        wait_until(
            "the container's init", lambda: find_leader(proc.pid) or proc.poll() is not None, 30
        )
        if proc.poll() is not None:
            raise HarnessError(f"systemd-nspawn exited {proc.returncode}; see {LOG}")
        ep = endpoint()
        assert ep is not None
        wait_until("ssh into the nspawn tier", ep.ok, 90, interval=0.3)
    except BaseException:
        down()
        raise
    say("nspawn tier is up")
    return ep


def own_cgroups() -> str:
    """/proc/self/cgroup's lines with a child cgroup named after this instance: nspawn makes
    payload/ and supervisor/ where it starts, and two instances must not share them."""
    lines = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hid, controllers, path = line.split(":", 2)
        if controllers in ("", "name=systemd"):  # the ones nspawn makes its cgroups in
            path = f"{path.rstrip('/')}/{MACHINE}"
        lines.append(f"{hid}:{controllers}:{path}")
    return "\n".join(lines) + "\n"


def enter_cgroups(cgroups: str, argv: list[str]) -> list[str]:
    """``argv`` wrapped in a shell that first moves itself into the instance's cgroups (made
    here if missing); a shell rather than preexec_fn, which is unsafe with threads."""
    procs = []
    for line in cgroups.splitlines():
        _, controllers, path = line.split(":", 2)
        if not path.endswith(f"/{MACHINE}"):
            continue
        for mount in cgroup_mounts(controllers):
            where = mount / path.lstrip("/")
            where.mkdir(parents=True, exist_ok=True)
            procs.append(str(where / "cgroup.procs"))
    move = 'for p in "$@"; do [ "$p" = -- ] && break; echo $$ > "$p"; shift; done; shift; exec "$@"'
    return ["sh", "-c", move, "sh", *procs, "--", *argv]


def make_devices() -> None:
    """Private /dev/fuse and /dev/net/tun nodes for the guest (mode 0666, as udev makes them)."""
    DEVDIR.mkdir(parents=True, exist_ok=True)
    for name, (major, minor) in DEVICES.items():
        node = DEVDIR / name
        if not node.is_char_device():
            node.unlink(missing_ok=True)
            os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(node, 0o666)


def down() -> None:
    """Power the tier off (forcefully after 30 s) and remove what nspawn leaves behind."""
    nspawn_pid = read_pid(PIDFILE)
    if nspawn_pid is not None:
        say("stopping the nspawn tier")
        leader = find_leader(nspawn_pid)
        if leader is not None:
            os.kill(leader, signal.SIGRTMIN + 4)  # systemd: SIGRTMIN+4 means poweroff
        deadline = time.monotonic() + 30
        while pid_alive(nspawn_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(nspawn_pid):
            say("poweroff timed out: killing the container")
            if leader is not None and pid_alive(leader):
                os.kill(leader, signal.SIGKILL)
            time.sleep(1)
            if pid_alive(nspawn_pid):
                os.kill(nspawn_pid, signal.SIGKILL)
            wait_until("systemd-nspawn to exit", lambda: not pid_alive(nspawn_pid), 30)
    cleanup()


def cleanup() -> None:
    """Remove nspawn's leftovers: /payload and /supervisor cgroups, /run/systemd/nspawn, ssh
    control sockets. The machine's own cgroup mounts are only read, never changed."""
    try:
        cgroups = CGROUPFILE.read_text().splitlines()
    except OSError:
        cgroups = []
    for line in cgroups:
        _, controllers, path = line.split(":", 2)
        for mount in cgroup_mounts(controllers):
            for child in ("payload", "supervisor"):
                remove_cgroup_tree(mount / path.lstrip("/") / child)
            if INSTANCE and path.endswith(f"/{MACHINE}"):
                remove_cgroup_tree(mount / path.lstrip("/"))
    PIDFILE.unlink(missing_ok=True)
    CGROUPFILE.unlink(missing_ok=True)
    TREEFILE.unlink(missing_ok=True)
    if INSTANCE:
        shutil.rmtree(f"/run/systemd/nspawn/propagate/{MACHINE}", ignore_errors=True)
        shutil.rmtree(f"/run/systemd/nspawn/unix-export/{MACHINE}", ignore_errors=True)
    else:
        shutil.rmtree("/run/systemd/nspawn", ignore_errors=True)
    for sock in STATE.glob("ssh-nspawn-*"):
        sock.unlink(missing_ok=True)


def cgroup_mounts(controllers: str) -> list[Path]:
    """Mount points of the cgroup hierarchy with these controllers (v1 or the unified one)."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, where, fstype, options, *_ = line.split()
        if fstype == "cgroup2" and controllers == "":
            found.append(Path(where))
        elif fstype == "cgroup" and controllers:
            wanted = {c.removeprefix("name=") for c in controllers.split(",")}
            have = {o.removeprefix("name=") for o in options.split(",")}
            if wanted <= have:
                found.append(Path(where))
    return found


def remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup and its children, deepest first (cgroup dirs can't be rm -r'd)."""
    if not top.is_dir():
        return
    for dirpath, _dirnames, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
        try:
            os.rmdir(dirpath)
        except OSError as exc:
            say(f"could not remove cgroup {dirpath}: {exc.strerror}")
