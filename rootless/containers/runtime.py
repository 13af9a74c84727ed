"""The OCI runtime a container runs with: crun (the default) or runc.

Chosen per container (``rctl run/create --runtime``, else ``[engine] runtime`` in rctl.toml)
and recorded in its launch plan, so that its start, exec and cleanup use the runtime that
created it, each with a state directory of its own (``$XDG_RUNTIME_DIR/rctl/NAME``: the
two don't read each other's state). They differ in one global option: crun's
``--cgroup-manager=disabled`` leaves the container in the unit's cgroup (see
:mod:`rootless.containers.ocispec`); runc has no such manager, and with a config that has
neither ``cgroupsPath`` nor ``resources`` it runs in the user namespace as rootless runc:
it makes no cgroup it can't and leaves the processes where they are. And runc refuses
``net.*`` sysctls when the container joins the network namespace runc itself runs in (it
takes that for the host's, runc libcontainer/configs/validate): for runc the launcher sets
them itself, as root of the user namespace that owns that network namespace
(:func:`move_net_sysctls`).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from rctlbase.errors import ProgramNotFound, UsageError
from rctlbase.run import install_hint

RUNTIMES = ("crun", "runc")
DEFAULT_RUNTIME = "crun"

# Global options before the command (``create``, ``start``, ``exec``...).
_GLOBAL_OPTIONS = {"crun": ("--cgroup-manager=disabled",), "runc": ()}


def parse_runtime(value: str, where: str = "--runtime") -> str:
    """A runtime's name, checked: one rctl knows how to drive."""
    if value not in RUNTIMES:
        raise UsageError(
            f"{where}: unknown OCI runtime {value!r}",
            hint=f"use one of: {', '.join(RUNTIMES)}",
        )
    return value


def runtime_options(runtime: str) -> tuple[str, ...]:
    """The global options ``runtime`` is run with."""
    return _GLOBAL_OPTIONS[os.path.basename(runtime)]


def choose_runtime(asked: str | None, default: str) -> str:
    """The runtime a new container gets: ``--runtime``, else rctl.toml's, installed (a
    missing one fails at create, not when the unit starts)."""
    runtime = parse_runtime(asked) if asked else default
    if shutil.which(runtime) is None:
        raise ProgramNotFound(f"{runtime} is not installed", hint=install_hint(runtime))
    return runtime


def move_net_sysctls(config: dict[str, Any], runtime: str) -> tuple[tuple[str, str], ...]:
    """Take the ``net.*`` sysctls out of ``config`` (a runtime-spec document) when
    ``runtime`` won't set them, and return them for the launcher; nothing for crun."""
    if runtime != "runc":
        return ()
    sysctl = config.get("linux", {}).get("sysctl", {})
    moved = tuple((k, v) for k, v in sysctl.items() if k.startswith("net."))
    for key, _ in moved:
        del sysctl[key]
    if "sysctl" in config.get("linux", {}) and not sysctl:
        del config["linux"]["sysctl"]
    return moved
