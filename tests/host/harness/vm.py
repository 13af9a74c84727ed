"""Tier ``vm``: the tree as a qemu TCG virtual machine, resumed from a saved snapshot.

The only tier with cgroup controllers delegated to the user (MemoryMax, TasksMax...). Facts
from shared/TESTHOST.md: KVM here is a PVM variant that stock kernels can't boot on, so TCG;
direct kernel boot; a raw ext4 root made without a loop device (``mkfs.ext4 -d``); a cold
boot takes about a minute, so the first boot is saved (``savevm``) into a qcow2 overlay of the
raw image and every later ``up`` copies that overlay and resumes it (``-loadvm``) in seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from harness import build
from harness.common import (
    CACHE,
    COMPLETE,
    STATE,
    VARLIB,
    HarnessError,
    pid_alive,
    read_pid,
    recipe_key,
    say,
    sh,
    wait_until,
)
from harness.guest import Endpoint

PIDFILE = STATE / "vm.pid"
PORTFILE = STATE / "vm.port"
IMAGEFILE = STATE / "vm.image"  # which cached image the running vm resumed
KEYFILE = STATE / "vm.key"  # the key of the image this vm runs (the cache may move on)
MONITOR = STATE / "vm.monitor"
RUNDIR = VARLIB / "vm"
SNAPSHOT = "ready"
READY = b"RCTL-TESTHOST-READY"
DISK_SIZE = "8G"


def image_dir() -> Path:
    """Cache entry of the vm image for the current recipe."""
    return CACHE / f"vm-{recipe_key()}"


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 for the ssh forward."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def qemu_argv(imgdir: Path, disk: Path, port: int, console: Path, *, loadvm: bool) -> list[str]:
    """The qemu command line; it must be identical (but the port) for savevm and loadvm."""
    return [
        "qemu-system-x86_64",
        "-accel", "tcg,thread=multi",
        "-cpu", "max",
        "-smp", "2",
        "-m", "4096",
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        "-kernel", str(imgdir / "vmlinuz"),
        "-initrd", str(imgdir / "initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=0 net.ifnames=0",
        "-drive", f"file={disk},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
        "-object", "rng-random,filename=/dev/urandom,id=rng0",
        "-device", "virtio-rng-pci,rng=rng0",
        "-serial", f"file:{console}",
        "-monitor", f"unix:{MONITOR},server,nowait",
        *(["-loadvm", SNAPSHOT] if loadvm else []),
    ]  # fmt: skip


def monitor(command: str, timeout: float = 600) -> str:
    """Send one HMP command to the running qemu and return its output."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(MONITOR))
        data = b""
        while not data.endswith(b"(qemu) "):
            data += s.recv(4096)
        s.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"(qemu) "):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")


def build_image() -> Path:
    """The raw root image, kernel, initrd and the snapshotted overlay; cached by recipe key."""
    imgdir = image_dir()
    if (imgdir / COMPLETE).exists():
        return imgdir
    tree = build.build()
    for stale in CACHE.glob("vm-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = imgdir.with_name(imgdir.name + ".tmp")
    tmp.mkdir(parents=True)
    try:
        say("making the vm's root image")
        kernels = sorted((tree / "boot").glob("vmlinuz-*"))
        initrds = sorted((tree / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise HarnessError(f"no kernel/initrd in {tree}/boot")
        shutil.copy(kernels[-1], tmp / "vmlinuz")
        shutil.copy(tree / "root/harness-key", tmp / "harness-key")
        shutil.copy(initrds[-1], tmp / "initrd.img")
        sh(["mkfs.ext4", "-q", "-F", "-L", "rctlroot", "-E", "root_owner=0:0", "-d", tree,
            tmp / "root.img", DISK_SIZE], capture=True)  # fmt: skip
        # The overlay names its backing file relatively, so the directory can be renamed.
        sh(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "root.img",
            tmp / "snap.qcow2"], capture=True)  # fmt: skip
        say("cold-booting the vm to snapshot it (about a minute under TCG)")
        _boot(tmp, tmp / "snap.qcow2", loadvm=False)
        say("saving the vm snapshot")
        monitor("stop")
        out = monitor(f"savevm {SNAPSHOT}")
        if "Error" in out:
            raise HarnessError(f"savevm failed: {out.strip()}")
        _stop_qemu(graceful=False)
        (tmp / COMPLETE).write_text("\n")
        tmp.rename(imgdir)
    except BaseException:
        _stop_qemu(graceful=False)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return imgdir


def _boot(imgdir: Path, disk: Path, *, loadvm: bool) -> Endpoint:
    STATE.mkdir(parents=True, exist_ok=True)
    console = RUNDIR / "console.log"
    RUNDIR.mkdir(parents=True, exist_ok=True)
    console.write_bytes(b"")
    port = free_port()
    with open(RUNDIR / "qemu.log", "wb") as log:
        proc = subprocess.Popen(
            qemu_argv(imgdir, disk, port, console, loadvm=loadvm),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PIDFILE.write_text(f"{proc.pid}\n")
    PORTFILE.write_text(f"{port}\n")
    key = imgdir / "harness-key"
    if not key.exists():  # images cached before the key was kept beside them
        key = build.tree_path() / "root/harness-key"
    shutil.copy(key, KEYFILE)
    IMAGEFILE.write_text(imgdir.name)
    ep = Endpoint("vm", KEYFILE, port)

    def ready() -> bool:
        if proc.poll() is not None:
            raise HarnessError(f"qemu exited {proc.returncode}: see {RUNDIR / 'qemu.log'}")
        return (loadvm or READY in console.read_bytes()) and ep.ok()

    # Under TCG on a busy 2-core host a cold boot has taken over 300 s.
    wait_until("the vm to be ready", ready, 900 if not loadvm else 300, interval=1)
    return ep


def endpoint() -> Endpoint | None:
    """How to reach the running vm, or None when it is down."""
    if read_pid(PIDFILE) is None:
        return None
    port = int(PORTFILE.read_text())
    return Endpoint("vm", KEYFILE, port)


def up() -> Endpoint:
    """Resume the vm from its snapshot unless it is running."""
    running = endpoint()
    if running is not None:
        if IMAGEFILE.exists() and IMAGEFILE.read_text() == image_dir().name:
            return running
        say("the recipe changed since this vm started: restarting it")
        down()
    imgdir = build_image()
    RUNDIR.mkdir(parents=True, exist_ok=True)
    disk = RUNDIR / "run.qcow2"
    shutil.copy(imgdir / "snap.qcow2", disk)
    sh(["qemu-img", "rebase", "-u", "-F", "raw", "-b", imgdir / "root.img", disk], quiet=True)
    say("resuming the vm tier from its snapshot")
    try:
        ep = _boot(imgdir, disk, loadvm=True)
        # The guest's clock stopped at savevm time.
        ep.run(["date", "-s", f"@{int(time.time())}"], root=True, capture=True, input_data=b"")
    except BaseException:
        down()
        raise
    say("vm tier is up")
    return ep


def reboot() -> None:
    """Reboot the running vm (a real reboot: systemd, the user's lingering manager and its
    enabled units start again) and wait until it answers again."""
    ep = endpoint()
    if ep is None:
        raise HarnessError("the vm tier is not running: nothing to reboot")
    before = ep.run(["cat", "/proc/sys/kernel/random/boot_id"], root=True, capture=True,
                    input_data=b"").stdout  # fmt: skip
    say("rebooting the vm tier")
    ep.run(["systemctl", "reboot"], root=True, capture=True, input_data=b"")
    for path in STATE.glob("ssh-vm-*"):
        path.unlink(missing_ok=True)  # the old connections are gone with the guest's sshd

    def back() -> bool:
        pid = read_pid(PIDFILE)
        if pid is None or not pid_alive(pid):
            raise HarnessError(f"qemu exited during the reboot: see {RUNDIR / 'qemu.log'}")
        now = ep.run(["cat", "/proc/sys/kernel/random/boot_id"], root=True, capture=True,
                     input_data=b"")  # fmt: skip
        return now.returncode == 0 and bool(now.stdout.strip()) and now.stdout != before

    wait_until("the vm to come back", back, 600, interval=2)
    say("vm tier is back")


def _stop_qemu(*, graceful: bool) -> None:
    pid = read_pid(PIDFILE)
    if pid is not None:
        if graceful:
            ep = endpoint()
            if ep is not None:
                ep.run(["systemctl", "poweroff"], root=True, capture=True, input_data=b"")
            deadline = time.monotonic() + 30
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.3)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        wait_until("qemu to exit", lambda: not pid_alive(pid), 30)
    for path in (PIDFILE, PORTFILE, MONITOR, KEYFILE, IMAGEFILE, *STATE.glob("ssh-vm-*")):
        path.unlink(missing_ok=True)


def down() -> None:
    """Stop the vm; its disk is a throwaway copy, so no shutdown is needed."""
    if read_pid(PIDFILE) is not None:
        say("stopping the vm tier")
    _stop_qemu(graceful=False)
    (RUNDIR / "run.qcow2").unlink(missing_ok=True)
