"""Entering a booted tier: ssh as the test user (a real PAM login: XDG_RUNTIME_DIR, user bus),
syncing the project into it and installing it there.

Both tiers run sshd; the nspawn tier is reached from inside its private network namespace
(``nsenter --net``), the vm tier through qemu's host forward on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from harness.common import GUEST_SRC, GUEST_VENV, PROJECT, STATE, USER, HarnessError, say


@dataclass(frozen=True)
class Endpoint:
    """How to reach one booted tier's sshd."""

    tier: str
    key: Path
    port: int
    netns_pid: int | None = None  # nspawn: enter this process's network namespace first

    def ssh_argv(self, user: str, *, tty: bool = False, no_stdin: bool = False) -> list[str]:
        """The ssh command line (without the remote command)."""
        prefix = ["nsenter", f"--net=/proc/{self.netns_pid}/ns/net", "--"] if self.netns_pid else []
        return [
            *prefix,
            "ssh",
            "-i",
            str(self.key),
            "-p",
            str(self.port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={STATE}/ssh-{self.tier}-%r",
            "-o",
            "ControlPersist=120",
            *(["-t"] if tty else ["-T"]),
            *(["-n"] if no_stdin else []),
            f"{user}@127.0.0.1",
        ]

    def ok(self) -> bool:
        """Whether sshd answers and a login works."""
        proc = subprocess.run(
            [*self.ssh_argv("root", no_stdin=True), "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return proc.returncode == 0

    def run(
        self,
        argv: list[str],
        *,
        root: bool = False,
        tty: bool = False,
        input_data: bytes | None = None,
        capture: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run argv in the guest from the project directory; returns the remote exit code."""
        path = f"{GUEST_VENV}/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        env = f"RCTL_TESTHOST={self.tier} PATH={path}"
        remote = f"cd {GUEST_SRC} 2>/dev/null || cd; exec env {env} {shlex.join(argv)}"
        no_stdin = input_data is None and not stdin_usable()
        return subprocess.run(
            [*self.ssh_argv("root" if root else USER, tty=tty, no_stdin=no_stdin), remote],
            input=input_data,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            check=False,
        )


def stdin_usable() -> bool:
    """CI runs with no standard input at all; ssh must then be told not to read it."""
    try:
        os.fstat(0)
    except OSError:
        return False
    return True


def project_files() -> list[str]:
    """The project's files as git sees them (tracked and untracked-but-not-ignored)."""
    if (PROJECT / ".git").exists():
        out = subprocess.run(
            [
                "git",
                "-C",
                str(PROJECT),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            check=True,
            stdout=subprocess.PIPE,
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
    else:
        skip = {".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
        names = [
            str(p.relative_to(PROJECT))
            for p in PROJECT.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(PROJECT).parts)
        ]
    return sorted(n for n in names if (PROJECT / n).is_file())


def project_tarball() -> tuple[bytes, str]:
    """The project as a gzip tarball and its content hash."""
    buf = io.BytesIO()
    digest = hashlib.sha256()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for name in project_files():
            path = PROJECT / name
            digest.update(name.encode() + b"\0" + path.read_bytes())
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 1000
            info.uname = info.gname = USER
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    return buf.getvalue(), digest.hexdigest()


def sync_project(endpoint: Endpoint) -> None:
    """Copy the project into the guest and pip-install it there, unless it is unchanged."""
    data, digest = project_tarball()
    stamp = "/var/lib/rctl-src.sha256"
    check = endpoint.run(["cat", stamp], root=True, capture=True, input_data=b"")
    if check.returncode == 0 and check.stdout.decode().strip() == digest:
        return
    say(f"installing the project into the {endpoint.tier} tier")
    script = (
        f"set -e; cd /; rm -rf {GUEST_SRC}; install -d -o {USER} -g {USER} {GUEST_SRC}; "
        f"tar -xzf - -C {GUEST_SRC} --no-same-owner; "
        f"{GUEST_VENV}/bin/pip install -q --no-deps --no-build-isolation --no-index {GUEST_SRC} "
        f">/var/tmp/rctl-install.log 2>&1 || {{ cat /var/tmp/rctl-install.log; exit 1; }}; "
        # What packaging/ installs beside the package: the systemd user generator.
        f"sh {GUEST_SRC}/packaging/install.sh --python {GUEST_VENV}/bin/python "
        f">>/var/tmp/rctl-install.log 2>&1 || {{ cat /var/tmp/rctl-install.log; exit 1; }}; "
        f"rm -rf {GUEST_SRC}/build {GUEST_SRC}/*.egg-info; chown -R {USER}:{USER} {GUEST_SRC}; "
        f"echo {digest} > {stamp}"
    )
    proc = endpoint.run(["sh", "-c", script], root=True, input_data=data)
    if proc.returncode != 0:
        raise HarnessError(f"installing the project in the {endpoint.tier} tier failed")
