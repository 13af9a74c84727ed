"""A definition enabled with linger runs again after the VM reboots (tier vm).

It takes two runs around a reboot, which a test cannot do from inside the VM, so
``tests/host/run-integration`` runs the phases with ``testhost reboot`` between them:

1. (``-m "vm and not after_reboot"``) install a definition's unit (generator output in
   ~/.config/systemd/user, linked into default.target.wants: what ``wanted_by`` does),
   start it, record the boot ID in ~/.local/state/rctl-reboot-test.json;
2. ``testhost reboot``: the user has linger, so its manager starts at boot, and
   default.target with it;
3. (``-m after_reboot``) see another boot ID and the container running without anybody
   having started it, then remove everything.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from pathlib import Path

import pytest
from hostkit import run, wait_for

R = "127.0.0.1:5000/test"
pytestmark = pytest.mark.vm
STATE = Path.home() / ".local" / "state" / "rctl-reboot-test.json"
UNITS = Path.home() / ".config" / "systemd" / "user"
NAME = "rebooter"
UNIT = f"rctl-{NAME}.service"


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def state_of() -> str:
    return run("systemctl", "--user", "is-active", UNIT, check=False).stdout.strip()


def test_enabled_definition_is_set_up_before_the_reboot() -> None:
    """Phase 1 (before ``testhost reboot``): enable and start the definition's unit."""
    root = Path.home() / ".local" / "state" / "rctl-reboot-store"
    config = root / "config" / "rctl" / "definitions"
    config.mkdir(parents=True, exist_ok=True)
    (config / "reboot.toml").write_text(f"""
[container.{NAME}]
image = "{R}/busybox"
command = ["sleep", "infinity"]
restart = "always"

[container.{NAME}.service]
Environment = ["XDG_DATA_HOME={root / "data"}", "XDG_CONFIG_HOME={root / "config"}"]
""")
    UNITS.mkdir(parents=True, exist_ok=True)
    run("env", f"XDG_CONFIG_HOME={root / 'config'}", sys.executable, "-I", "-m",
        "rootless.definitions.generator", str(UNITS))  # fmt: skip
    run("systemctl", "--user", "daemon-reload")
    run("systemctl", "--user", "start", UNIT)
    wait_for("the unit to be active", lambda: state_of() == "active", 120)
    assert (UNITS / "default.target.wants" / UNIT).exists(), "wanted_by did not enable it"
    user = pwd.getpwuid(os.getuid()).pw_name
    assert run("loginctl", "show-user", user, "--value", "-p", "Linger").stdout.strip() == "yes"
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps({"boot_id": boot_id(), "root": str(root)}))


@pytest.mark.after_reboot
def test_enabled_definition_runs_again_after_the_reboot() -> None:
    """Phase 2 (after ``testhost reboot``): nobody started it, yet it runs."""
    assert STATE.exists(), "phase 1 did not run before the reboot"
    saved = json.loads(STATE.read_text())
    try:
        assert saved["boot_id"] != boot_id(), "the vm did not reboot between the phases"
        wait_for("the unit to be active after the reboot", lambda: state_of() == "active", 180)
    finally:
        run("systemctl", "--user", "stop", UNIT, check=False)
        (UNITS / UNIT).unlink(missing_ok=True)
        (UNITS / "default.target.wants" / UNIT).unlink(missing_ok=True)
        run("systemctl", "--user", "daemon-reload")
        run("rctl", "unshare", "rm", "-rf", saved["root"], check=False)
        STATE.unlink()
