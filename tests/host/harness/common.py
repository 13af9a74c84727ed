"""Paths, logging, locks and the recipe key shared by every part of the harness."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST_DIR = HERE.parent
PROJECT = HOST_DIR.parent.parent
RECIPE = HOST_DIR / "recipe"

# Slow set-up lives outside the clone, keyed on the recipe; runtime state is volatile.
CACHE = Path(os.environ.get("RCTL_TESTHOST_CACHE", "/var/cache/rctl-testhost"))
# RCTL_TESTHOST_INSTANCE=NAME gives a checkout tiers of its own (state, root copy, machine
# name and cgroups), so several worktrees can test at once; the cached tree stays shared.
INSTANCE = os.environ.get("RCTL_TESTHOST_INSTANCE", "")
SUFFIX = f"-{INSTANCE}" if INSTANCE else ""
MACHINE = f"rctl-testhost{SUFFIX}"
GLOBAL_STATE = Path("/run/rctl-testhost")
STATE = Path(os.environ.get("RCTL_TESTHOST_STATE", f"/run/{MACHINE}"))
VARLIB = Path(os.environ.get("RCTL_TESTHOST_VARLIB", f"/var/lib/{MACHINE}"))

USER = "rctltest"
GUEST_SRC = "/home/rctltest/src"
GUEST_VENV = "/opt/rctl/venv"
COMPLETE = ".rctl-testhost-complete"
T0 = time.monotonic()


class HarnessError(Exception):
    """A step of the harness failed; the message says which and why."""


def say(message: str) -> None:
    """Progress on stderr, with the seconds since the harness started."""
    print(f"testhost [{time.monotonic() - T0:6.1f}s] {message}", file=sys.stderr, flush=True)


def sh(
    argv: Sequence[str | os.PathLike[str]],
    *,
    capture: bool = False,
    check: bool = True,
    env: dict[str, str] | None = None,
    input_data: bytes | None = None,
    quiet: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run a host program; failures raise HarnessError with the command line."""
    args = [str(a) for a in argv]
    if not quiet:
        say("$ " + shlex.join(args))
    try:
        proc = subprocess.run(
            args,
            check=False,
            input=input_data,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            env=None if env is None else {**os.environ, **env},
        )
    except FileNotFoundError as exc:
        raise HarnessError(f"{args[0]} is not installed (run tests/host/setup-host)") from exc
    if check and proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()[-2000:] if capture else ""
        raise HarnessError(f"{shlex.join(args)} exited {proc.returncode}\n{detail}".rstrip())
    return proc


def recipe_key() -> str:
    """Hash of everything that determines the built tree: recipe files and the build code."""
    digest = hashlib.sha256()
    files = sorted(p for p in RECIPE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in [*files, HERE / "build.py"]:
        digest.update(str(path.relative_to(HOST_DIR)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise harness runs that touch the same resource (build, a tier). The build's lock
    is shared by every instance: they share the cache."""
    where = GLOBAL_STATE if name == "build" else STATE
    where.mkdir(parents=True, exist_ok=True)
    with open(where / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def pid_alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def read_pid(path: Path) -> int | None:
    """The live process whose pid is stored in ``path``, if any."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def wait_until(what: str, predicate: object, timeout: float, interval: float = 0.2) -> None:
    """Poll ``predicate()`` until it is true or raise after ``timeout`` seconds."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
