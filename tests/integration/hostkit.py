"""Helpers of the integration tests: running programs, polling, paused user namespaces."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import overload


def run(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a program, capturing text output; with ``check`` a failure shows its stderr."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def fetch(url: str, timeout: float = 2) -> str | None:
    """The body at ``url``, or None while nothing answers there (for :func:`wait_for`)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode())
    except OSError:
        return None


def wait_for(what: str, predicate: Callable[[], object], timeout: float = 20) -> object:
    """Poll until ``predicate()`` is truthy; fail the test naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UserNamespace:
    """A process (``sh``) in a new user+mount+net namespace, paused until released.

    The process waits on stdin so the test can map IDs with newuidmap/newgidmap or attach
    a network helper before the commands run.
    """

    def __init__(self, script: str, *, net: bool = False) -> None:
        flags = ["--user", "--mount", *(["--net"] if net else [])]
        self.proc = subprocess.Popen(
            ["unshare", *flags, "--", "sh", "-c", f"read _go; {script}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        # unshare(1) makes the namespaces just before it execs sh: wait for that, or
        # newuidmap would write the mapping of our own namespace and be refused.
        ours = os.readlink("/proc/self/ns/user")
        wait_for("unshare to make the namespaces", lambda: self._user_ns() not in (ours, None), 10)

    def _user_ns(self) -> str | None:
        try:
            return os.readlink(f"/proc/{self.pid}/ns/user")
        except OSError:
            return None

    def map_ids(self) -> None:
        """0 → the user, 1..65536 → the subordinate range (what rctl and podman do)."""
        uid, gid = os.getuid(), os.getgid()
        run("newuidmap", str(self.pid), "0", str(uid), "1", "1", "100000", "65536")
        run("newgidmap", str(self.pid), "0", str(gid), "1", "1", "100000", "65536")

    def release(self) -> None:
        """Let the script run without waiting for it (for servers)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def go(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Release the script and wait for it."""
        out, err = self.proc.communicate("go\n", timeout=timeout)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Rctl:
    """The rctl CLI with a private store (XDG_DATA_HOME/XDG_CONFIG_HOME under ``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "REGISTRY_AUTH_FILE": str(root / "auth.json"),
        }

    # Text out, unless the input is bytes: then the output is bytes too.
    @overload
    def __call__(
        self, *args: str, check: bool = ..., timeout: float = ..., input_data: None = ...
    ) -> subprocess.CompletedProcess[str]: ...

    @overload
    def __call__(
        self, *args: str, check: bool = ..., timeout: float = ..., input_data: bytes
    ) -> subprocess.CompletedProcess[bytes]: ...

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 300, input_data: bytes | None = None
    ) -> subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            ["rctl", *args], capture_output=True, text=input_data is None, env=self.env,
            timeout=timeout, check=False, input=input_data,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"rctl {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["rctl", *args], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip

    @property
    def data(self) -> Path:
        return self.root / "data" / "rctl"

    def cleanup(self) -> None:
        """Files of mapped IDs can only be deleted inside the user namespace."""
        if self.root.exists():
            subprocess.run(
                ["rctl", "unshare", "rm", "-rf", str(self.root)], env=self.env, check=False
            )
