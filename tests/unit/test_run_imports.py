"""The modules ``rctl run`` imports, pinned: its start-up time is mostly imports.

A fresh interpreter runs the CLI's ``main`` on ``run --rm --pull never IMAGE true`` in an
empty store: it parses the flags, builds the engine and its container service and fails
at the image lookup, the point where every module imported at the top of the run path's
modules is loaded (the ones a step imports inside a function later on are not seen here).
The list is what it is today; a change that adds a module to it says so here, and
docs/dev/architecture.md ("The life of rctl run") says what each costs. Not a timed test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OURS = ("rootless", "rctlbase", "units", "uidmap", "netns")
# The project's third-party libraries (pyproject.toml) by import name.
THIRD_PARTY = {"click", "rich", "dbus_fast", "pyroute2", "zstandard", "h11", "yaml"}
RUN_THIRD_PARTY = ["click", "dbus_fast"]
RUN_MODULES = (
    "netns", "netns.pasta", "netns.ports", "netns.slirp4netns", "rctlbase", "rctlbase.errors",
    "rctlbase.run", "rctlbase.syscalls", "rctlbase.timeline", "rootless", "rootless.cli",
    "rootless.cli.containers", "rootless.cli.render", "rootless.cli.session",
    "rootless.cli.terminal", "rootless.config", "rootless.containers",
    "rootless.containers.bundle", "rootless.containers.context", "rootless.containers.create",
    "rootless.containers.execs", "rootless.containers.exited", "rootless.containers.health",
    "rootless.containers.hostcheck", "rootless.containers.isolation", "rootless.containers.keepid",
    "rootless.containers.layout", "rootless.containers.lifecycle", "rootless.containers.logs",
    "rootless.containers.lookup", "rootless.containers.netmode", "rootless.containers.ocispec",
    "rootless.containers.plan", "rootless.containers.ports", "rootless.containers.record",
    "rootless.containers.recorded", "rootless.containers.runtime", "rootless.containers.seccomp",
    "rootless.containers.service", "rootless.containers.spec", "rootless.containers.timefmt",
    "rootless.containers.unitspec", "rootless.containers.untrusted", "rootless.contracts",
    "rootless.engine", "rootless.eventlog", "rootless.filters", "rootless.images",
    "rootless.images.layerjob", "rootless.images.manifest", "rootless.images.reference",
    "rootless.images.service", "rootless.images.store", "rootless.models", "rootless.reports",
    "rootless.reports.images", "rootless.reports.volumes", "rootless.storage",
    "rootless.storage.drivers", "rootless.timestamps", "rootless.volumes",
    "rootless.volumes.model", "rootless.volumes.parse", "rootless.volumes.plan",
    "rootless.volumes.service", "rootless.volumes.store", "rootless.volumes.userjob", "uidmap",
    "uidmap.mapping", "uidmap.maptools", "uidmap.subid", "uidmap.userns", "units", "units.bus",
    "units.connection", "units.manager", "units.properties", "units.session", "units.state",
    "units.timer", "units.unitfile", "units.wire",
)  # fmt: skip

RUN_ARGV = ["run", "--rm", "--pull", "never", "localhost/probe:none", "true"]
PROBE = f"""
import json, sys
from rootless.cli import main
code = main(sys.argv[1:])
tops = {{name.partition(".")[0] for name in sys.modules}}
print(json.dumps({{
    "code": code,
    "ours": sorted(m for m in sys.modules if m.partition(".")[0] in {OURS!r}),
    "third": sorted(tops & {set(THIRD_PARTY)!r}),
}}))
"""


def run_probe(tmp_path: Path, argv: list[str], said: str) -> dict[str, object]:
    """The probe in a clean environment: an empty store, no user bus, a stand-in crun."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    crun = bin_dir / "crun"
    crun.write_text("#!/bin/sh\nexit 0\n")
    crun.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, *argv],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert said in done.stderr, done.stderr  # it got as far as the lookup or the connection
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_rctl_run_imports_the_pinned_modules(tmp_path: Path) -> None:
    found = run_probe(tmp_path, RUN_ARGV, "image not known")
    assert found["code"] == 125
    ours = found["ours"]
    assert isinstance(ours, list)
    added = sorted(set(ours) - set(RUN_MODULES))
    dropped = sorted(set(RUN_MODULES) - set(ours))
    assert (added, dropped) == ([], []), "update RUN_MODULES (and say why in the commit)"
    assert len(ours) == len(RUN_MODULES) == 82
    assert found["third"] == RUN_THIRD_PARTY
