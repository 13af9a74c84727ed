"""The Debian package's generator serves a definition after a reboot, then auto-updates it (tier vm).

``tests/host/run-integration`` installs the package in the vm (``tests/host/install-deb --vm``),
so the user generator at boot is the package's. The phases go around ``testhost reboot``:

1. (``-m "vm and not after_reboot"``) with linger (the vm image enables it), put one
   definition in the default place (~/.config/rctl/definitions): a network, a volume,
   ``vmdb`` serving how many times it started (counted in the volume) and ``vmweb``
   depending on it, with ``auto_update``; start ``vmweb`` (which pulls ``vmdb`` in) and
   see both serve;
2. ``testhost reboot``;
3. (``-m after_reboot``) both serve again, ``vmdb`` having counted a second start in its
   volume, each unit started after what it depends on, by a manager that started before
   any login session (the harness's ssh makes one); then ``rctl auto-update`` moves
   ``vmweb`` to a new image pushed to the registry and rolls a broken one back.
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest
from hostkit import fetch, run, wait_for

R = "127.0.0.1:5000/test"
APP = "127.0.0.1:5000/vmservers/app:latest"
pytestmark = pytest.mark.vm
STATE = Path.home() / ".local" / "state" / "rctl-servers-test.json"
DEFS = Path.home() / ".config" / "rctl" / "definitions"
DB, WEB = "vmdb", "vmweb"
DB_PORT, WEB_PORT = 18081, 18082
# v0 on busybox, v1 on the httpd image (it has /www); debian has no httpd: broken.
SERVE_WEB = "echo v$(ls /www 2>/dev/null | wc -l) > /tmp/index.html; exec httpd -f -p 80 -h /tmp"
SERVE_DB = (
    "echo x >> /data/starts; wc -l < /data/starts > /tmp/index.html; exec httpd -f -p 80 -h /tmp"
)
DEFINITION = f"""\
[network.vmnet]

[volume.vmdata]

[container.{DB}]
image = "{R}/busybox"
command = ["sh", "-c", "{SERVE_DB}"]
volumes = ["vmdata:/data"]
networks = ["vmnet"]
ports = ["127.0.0.1:{DB_PORT}:80"]
stop_timeout = 1

[container.{WEB}]
image = "{APP}"
command = ["sh", "-c", "{SERVE_WEB}"]
networks = ["vmnet"]
ports = ["127.0.0.1:{WEB_PORT}:80"]
depends_on = ["{DB}"]
auto_update = "registry"
stop_timeout = 1
"""
UNITS = [
    "rctl-network-vmnet.service",
    "rctl-volume-vmdata.service",
    f"rctl-image-{DB}.service",
    f"rctl-{DB}.service",
    f"rctl-image-{WEB}.service",
    f"rctl-{WEB}.service",
]


def push(source: str, target: str) -> None:
    run(
        "skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{source}", f"docker://{target}",
    )  # fmt: skip


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def rctl(*argv: str, check: bool = True) -> str:
    # The package's rctl, whatever the harness's PATH puts first.
    return run("/usr/bin/rctl", *argv, check=check, timeout=300).stdout


def shown(unit: str, prop: str) -> str:
    return run("systemctl", "--user", "show", "-p", prop, "--value", unit).stdout.strip()


def shown_system(unit: str, prop: str) -> str:
    return run("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()


def served(port: int) -> str | None:
    return fetch(f"http://127.0.0.1:{port}/")


def test_package_generator_serves_the_definition_before_the_reboot() -> None:
    """Phase 1: the package's generator makes the units; both containers serve."""
    assert Path("/usr/lib/systemd/user-generators/rctl-user-generator").exists(), (
        "the package is not installed (tests/host/install-deb --vm)"
    )
    user = pwd.getpwuid(os.getuid()).pw_name
    # Enabling linger is root's (the vm image does it); without it nothing runs at boot.
    assert run("loginctl", "show-user", user, "--value", "-p", "Linger").stdout.strip() == "yes"
    push(f"{R}/busybox", APP)
    DEFS.mkdir(parents=True, exist_ok=True)
    (DEFS / "servers.toml").write_text(DEFINITION)
    run("systemctl", "--user", "daemon-reload")
    run("systemctl", "--user", "start", f"rctl-{WEB}.service", timeout=600)
    assert wait_for("vmdb to serve", lambda: served(DB_PORT), 120) == "1\n"
    assert wait_for("vmweb to serve", lambda: served(WEB_PORT), 120) == "v0\n"
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps({"boot_id": boot_id()}))


def started_in_order() -> None:
    """Each unit entered "active" after what it requires; the manager starting them began
    before any login session."""
    entered = {u: int(shown(u, "ActiveEnterTimestampMonotonic")) for u in UNITS}
    began = {u: int(shown(u, "InactiveExitTimestampMonotonic")) for u in UNITS}
    assert all(entered.values()), f"not all units started: {entered}"
    for unit, needs in (
        (f"rctl-{DB}.service", UNITS[:3]),
        (f"rctl-{WEB}.service", [UNITS[0], f"rctl-{DB}.service", UNITS[4]]),
    ):
        for need in needs:
            assert entered[need] <= began[unit], f"{unit} started before {need} was up"
    # The harness's ssh logs in while a TCG boot is still starting the units, so what
    # must precede every session is the manager (linger started it), not the units.
    manager = int(shown_system(f"user@{os.getuid()}.service", "InactiveExitTimestampMonotonic"))
    assert manager, "the user manager is not running"
    user = pwd.getpwuid(os.getuid()).pw_name
    listed = run("loginctl", "list-sessions", "--no-legend").stdout.splitlines()
    sessions = [line.split()[0] for line in listed if user in line.split()]
    for session in sessions:
        login = run(
            "loginctl", "show-session", session, "-p", "TimestampMonotonic", "--value"
        ).stdout.strip()
        assert manager < int(login), f"the user manager waited for session {session}"


@pytest.mark.after_reboot
def test_package_generator_serves_after_the_reboot_and_auto_updates() -> None:
    """Phase 2: served at boot in order without a login; auto-update moves and rolls back."""
    assert STATE.exists(), "phase 1 did not run before the reboot"
    saved = json.loads(STATE.read_text())
    try:
        assert saved["boot_id"] != boot_id(), "the vm did not reboot between the phases"
        assert wait_for("vmdb after the reboot", lambda: served(DB_PORT), 300) == "2\n"
        assert wait_for("vmweb after the reboot", lambda: served(WEB_PORT), 300) == "v0\n"
        started_in_order()

        def image_of() -> str:
            return str(json.loads(rctl("inspect", WEB))[0]["Image"])

        def update() -> tuple[int, list[str]]:
            done = run("/usr/bin/rctl", "auto-update", "--timeout", "60", check=False, timeout=600)
            return done.returncode, done.stdout.splitlines()[1:]

        first = image_of()
        push(f"{R}/httpd", APP)
        code, rows = update()
        assert (code, rows[0].split()[-1]) == (0, "true"), rows
        assert wait_for("v1", lambda: served(WEB_PORT) == "v1\n", 120)
        second = image_of()
        assert second != first

        push(f"{R}/debian", APP)
        code, rows = update()
        assert (code, rows[0].split()[-2:]) == (1, ["rolled", "back"]), rows
        assert wait_for("v1 again", lambda: served(WEB_PORT) == "v1\n", 120)
        assert image_of() == second
        assert shown(f"rctl-{WEB}.service", "ActiveState") == "active"
        assert served(DB_PORT) == "2\n", "restarting vmweb restarted what it depends on"
    finally:
        for unit in reversed(UNITS):
            run("systemctl", "--user", "stop", unit, check=False)
            run("systemctl", "--user", "reset-failed", unit, check=False)
        (DEFS / "servers.toml").unlink(missing_ok=True)
        run("systemctl", "--user", "daemon-reload")
        rctl("rm", "-f", DB, WEB, check=False)
        rctl("volume", "rm", "vmdata", check=False)
        rctl("network", "rm", "vmnet", check=False)
        STATE.unlink()
