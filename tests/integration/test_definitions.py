"""Definitions in the test host, as uid 1000: ``rctl apply`` / ``down``, the units
the generator makes (``systemctl --user start``, restart after ``kill -9``), healthchecks.

Units of definitions run ``rctl container run-unit`` in the user manager's environment; the
tests' definitions pass their private store to it through the ``[container.NAME.service]``
pass-through (``Environment=XDG_DATA_HOME=...``), so nothing touches the user's real store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from hostkit import Rctl, fetch, free_port, run, wait_for

R = "127.0.0.1:5000/test"
USER_UNITS = Path.home() / ".config" / "systemd" / "user"
INSTALLED_GENERATORS = (
    Path("/etc/systemd/user-generators/rctl-user-generator"),
    Path("/usr/local/lib/systemd/user-generators/rctl-user-generator"),
    Path("/usr/lib/systemd/user-generators/rctl-user-generator"),
)


def ps(rctl: Rctl) -> dict[str, dict[str, object]]:
    rows = json.loads(rctl("ps", "-a", "--format", "json").stdout or "[]")
    return {str(row["name"]): row for row in rows}


def page(port: int) -> str | None:
    return fetch(f"http://127.0.0.1:{port}/")


def store_env(rctl: Rctl) -> str:
    """The pass-through that points a unit's rctl at the test's private store."""
    return (
        f'Environment = ["XDG_DATA_HOME={rctl.root / "data"}", '
        f'"XDG_CONFIG_HOME={rctl.root / "config"}"]'
    )


@pytest.fixture(autouse=True)
def remove_everything(rctl: Rctl) -> Iterator[None]:
    yield
    for name in ps(rctl):
        rctl("rm", "-f", name, check=False)


def test_apply_recreates_only_what_changed_and_down_removes_it(rctl: Rctl, tmp_path: Path) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    app = defs / "app.toml"
    base = f"""
[volume.shared]

[container.keeper]
image = "{R}/busybox"
command = ["sleep", "600"]

[container.changer]
image = "{R}/busybox"
command = ["sleep", "600"]
env = {{ COLOUR = "red" }}
"""
    app.write_text(base)
    first = rctl("apply", "-f", str(defs))
    assert first.stdout.splitlines() == [
        "create volume shared",
        "create container keeper",
        "create container changer",
    ]
    before = ps(rctl)
    assert {n: r["state"] for n, r in before.items()} == {"keeper": "running", "changer": "running"}
    labels = json.loads(rctl("inspect", "changer").stdout)
    labels = (labels[0] if isinstance(labels, list) else labels)["Config"]["Labels"]
    assert labels["io.rctl.definition.file"] == str(app)

    # Nothing changed: everything is kept.
    assert rctl("apply", "-f", str(app)).stdout.splitlines() == [
        "keep container keeper",
        "keep container changer",
    ]
    # One key changed: --dry-run says so and changes nothing...
    app.write_text(base.replace('"red"', '"blue"'))
    plan = rctl("apply", "--dry-run", "-f", str(defs)).stdout.splitlines()
    assert plan == ["keep container keeper", "recreate container changer (env)"]
    assert {n: r["id"] for n, r in ps(rctl).items()} == {n: r["id"] for n, r in before.items()}
    # ...and apply recreates only that container; the other keeps its ID and keeps running.
    assert rctl("apply", "-f", str(defs)).stdout.splitlines() == plan
    after = ps(rctl)
    assert after["keeper"]["id"] == before["keeper"]["id"]
    assert after["keeper"]["state"] == "running"
    assert after["changer"]["id"] != before["changer"]["id"]
    assert after["changer"]["state"] == "running"
    env = rctl("exec", "changer", "sh", "-c", "echo $COLOUR").stdout.strip()
    assert env == "blue"

    # A stopped container is started again; one no longer defined is removed.
    rctl("stop", "-t", "1", "keeper")
    app.write_text(base.replace('"red"', '"blue"').split("[container.changer]")[0])
    assert rctl("apply", "-f", str(defs)).stdout.splitlines() == [
        "remove container changer",
        "start container keeper",
    ]
    assert sorted(ps(rctl)) == ["keeper"]

    # A bad file: exit 125, file:line and key named, nothing applied.
    (defs / "bad.toml").write_text(f'[container.bad]\nimage = "{R}/busybox"\nprots = ["1:1"]\n')
    failed = rctl("apply", "-f", str(defs), check=False)
    assert failed.returncode == 125
    assert f"{defs}/bad.toml:3: [container.bad] prots: unknown key (did you mean 'ports'?)" in (
        failed.stderr
    )
    assert sorted(ps(rctl)) == ["keeper"]
    (defs / "bad.toml").unlink()

    # down removes the containers and keeps the volume unless asked.
    assert rctl("down", "-f", str(defs)).stdout.splitlines() == ["remove container keeper"]
    assert ps(rctl) == {}
    assert "shared" in rctl("volume", "ls").stdout
    rctl("down", "-v", "-f", str(defs))
    assert "shared" not in rctl("volume", "ls").stdout


@pytest.fixture
def user_units() -> Iterator[list[str]]:
    """Unit names the test installs into ~/.config/systemd/user; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        run("systemctl", "--user", "stop", name, check=False)
        run("systemctl", "--user", "reset-failed", name, check=False)
        for path in (USER_UNITS / name, *USER_UNITS.glob(f"*.wants/{name}")):
            path.unlink(missing_ok=True)
    run("systemctl", "--user", "daemon-reload")


def unit_value(unit: str, prop: str) -> str:
    return run("systemctl", "--user", "show", "-p", prop, "--value", unit).stdout.strip()


def test_generated_unit_serves_httpd_and_systemd_restarts_it(
    rctl: Rctl, user_units: list[str]
) -> None:
    port = free_port()
    name = f"gweb{os.getpid()}"
    unit = f"rctl-{name}.service"
    defs = rctl.root / "config" / "rctl" / "definitions"
    defs.mkdir(parents=True)
    (defs / "web.toml").write_text(f"""
[container.{name}]
image = "{R}/httpd"
ports = ["{port}:80"]
restart = "always"

[container.{name}.service]
{store_env(rctl)}
""")
    # The generator as systemd would run it (as this user, HOME and XDG_CONFIG_HOME set),
    # writing into the user's unit directory instead of the generator directory: user
    # generators can only be installed by root (systemd.generator(7) has no per-user dir).
    USER_UNITS.mkdir(parents=True, exist_ok=True)
    user_units += [unit, f"rctl-image-{name}.service"]
    gen = run(
        "env", f"XDG_CONFIG_HOME={rctl.root / 'config'}",
        sys.executable, "-I", "-m", "rootless.definitions.generator", str(USER_UNITS),
    )  # fmt: skip
    assert gen.stderr == ""
    text = (USER_UNITS / unit).read_text()
    assert (USER_UNITS / "default.target.wants" / unit).is_symlink()
    # rctl generate systemd prints the same unit, but for the generator's image unit, which
    # a unit file of its own can't rely on.
    assert "\nRequires=rctl-image-" in text
    alone = "".join(line for line in text.splitlines(True) if "=rctl-image-" not in line)
    # Each names the rctl it was run with: the venv's here, the package's on PATH maybe.
    printed = rctl("generate", "systemd", name).stdout
    here, on_path = str(Path(sys.executable).parent / "rctl"), shutil.which("rctl") or "rctl"
    assert printed.replace(on_path, "RCTL") == alone.replace(here, "RCTL")
    run("systemctl", "--user", "daemon-reload")

    run("systemctl", "--user", "start", unit)
    assert wait_for("the page", lambda: page(port), timeout=60) == "<h1>rctl test httpd</h1>\n"
    status = run("systemctl", "--user", "status", unit, check=False).stdout
    assert "active (running)" in status
    row = ps(rctl)[name]
    assert row["state"] == "running"

    # kill -9 of the container's main process: systemd restarts the unit, same container.
    main = int(unit_value(unit, "MainPID"))
    assert main > 0
    os.kill(main, signal.SIGKILL)
    wait_for(
        "a new main process",
        lambda: (
            unit_value(unit, "MainPID") not in ("0", str(main))
            and unit_value(unit, "ActiveState") == "active"
        ),
        timeout=60,
    )
    assert int(unit_value(unit, "NRestarts")) >= 1
    assert wait_for("the page again", lambda: page(port), timeout=60)
    assert ps(rctl)[name]["id"] == row["id"]

    # rctl stop goes through the unit; systemctl stop leaves the container exited.
    run("systemctl", "--user", "stop", unit)
    wait_for("the container to be exited", lambda: ps(rctl)[name]["state"] == "exited")
    assert page(port) is None


def test_a_container_that_notifies_marks_its_unit_started(
    rctl: Rctl, user_units: list[str]
) -> None:
    # notify = true: the runtime relays the container's READY=1 from the unit's main
    # process (itself), which NotifyAccess=main accepts; nothing else may notify.
    rctl("pull", f"{R}/debian")  # before the unit: its start would pull it otherwise
    name = f"gnotify{os.getpid()}"
    unit = f"rctl-{name}.service"
    defs = rctl.root / "config" / "rctl" / "definitions"
    defs.mkdir(parents=True)
    ready = (
        "sleep 2; socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die; "
        "send($s, 'READY=1', 0, sockaddr_un($ENV{NOTIFY_SOCKET})) or die $!; sleep 600"
    )
    (defs / "notify.toml").write_text(f"""
[container.{name}]
image = "{R}/debian"
command = ["perl", "-MSocket", "-e", "{ready}"]
notify = true
wanted_by = []

[container.{name}.service]
{store_env(rctl)}
""")
    USER_UNITS.mkdir(parents=True, exist_ok=True)
    user_units += [unit, f"rctl-image-{name}.service"]
    run(
        "env", f"XDG_CONFIG_HOME={rctl.root / 'config'}",
        sys.executable, "-I", "-m", "rootless.definitions.generator", str(USER_UNITS),
    )  # fmt: skip
    assert "\nNotifyAccess=main\n" in (USER_UNITS / unit).read_text()
    run("systemctl", "--user", "daemon-reload")
    start = time.monotonic()
    run("systemctl", "--user", "start", "--no-block", unit)
    wait_for("the unit to activate", lambda: unit_value(unit, "ActiveState") == "activating")
    wait_for("READY=1", lambda: unit_value(unit, "ActiveState") == "active", timeout=90)
    assert time.monotonic() - start > 2  # not before the container said so
    # The runtime relayed it and stays the main process (it sends no MAINPID= of its own).
    main = unit_value(unit, "MainPID")
    assert Path(f"/proc/{main}/comm").read_text().strip() == "crun"
    run("systemctl", "--user", "stop", unit)


def test_generator_installed_system_wide_makes_units_at_daemon_reload(
    rctl: Rctl, user_units: list[str]
) -> None:
    # The harness runs packaging/install.sh in the test host, as a package would.
    installed = [p for p in INSTALLED_GENERATORS if p.exists()]
    assert installed, f"packaging/install.sh installed no generator in {INSTALLED_GENERATORS}"
    # The manager's own config dir: the generator reads the real user's definitions.
    defs = Path.home() / ".config" / "rctl" / "definitions"
    defs.mkdir(parents=True, exist_ok=True)
    name = f"sysgen{os.getpid()}"
    path = defs / f"{name}.toml"
    path.write_text(f"""
[container.{name}]
image = "{R}/busybox"
command = ["sleep", "600"]

[container.{name}.service]
{store_env(rctl)}
""")
    try:
        run("systemctl", "--user", "daemon-reload")
        unit = f"rctl-{name}.service"
        fragment = unit_value(unit, "FragmentPath")
        assert "/systemd/generator" in fragment, fragment
        run("systemctl", "--user", "start", unit)
        wait_for("it to run", lambda: ps(rctl).get(name, {}).get("state") == "running", 60)
        run("systemctl", "--user", "stop", unit)
    finally:
        path.unlink()
        run("systemctl", "--user", "daemon-reload")


def test_healthchecks_healthy_unhealthy_and_restart(rctl: Rctl, tmp_path: Path) -> None:
    app = tmp_path / "hc.toml"
    app.write_text(f"""
[container.hcrestart]
image = "{R}/busybox"
command = "sh -c 'touch /tmp/ok; exec sleep 600'"
healthcheck = {{ cmd = "test -f /tmp/ok", interval = "1s", retries = 2, on_failure = "restart" }}

[container.hcplain]
image = "{R}/busybox"
command = "sh -c 'touch /tmp/ok; exec sleep 600'"
healthcheck = {{ cmd = ["test", "-f", "/tmp/ok"], interval = "1s", retries = 2 }}
""")
    rctl("apply", "-f", str(app))

    def status(name: str) -> str:
        return str(ps(rctl)[name]["status"])

    def healthy(name: str) -> bool:
        return status(name).endswith("(healthy)")

    for name in ("hcrestart", "hcplain"):
        wait_for(f"{name} to be healthy", partial(healthy, name), 30)
    health = json.loads(rctl("inspect", "hcplain").stdout)
    health = (health[0] if isinstance(health, list) else health)["State"]["Health"]
    assert health["Status"] == "healthy" and health["Log"][-1]["ExitCode"] == 0
    assert rctl("healthcheck", "run", "hcplain").returncode == 0

    # A failing check: exit 1, then unhealthy after two failures in a row.
    rctl("exec", "hcplain", "rm", "/tmp/ok")
    failed = rctl("healthcheck", "run", "hcplain", check=False)
    assert failed.returncode == 1
    wait_for("hcplain to be unhealthy", lambda: status("hcplain").endswith("(unhealthy)"), 30)

    # on_failure = "restart": the container is restarted (new main process), then healthy.
    pid = json.loads(rctl("inspect", "hcrestart").stdout)
    pid = (pid[0] if isinstance(pid, list) else pid)["State"]["Pid"]
    rctl("exec", "hcrestart", "rm", "/tmp/ok")

    def restarted() -> bool:
        doc = json.loads(rctl("inspect", "hcrestart").stdout)
        doc = doc[0] if isinstance(doc, list) else doc
        return bool(doc["State"]["Pid"] not in (0, pid) and doc["State"]["Running"])

    wait_for("hcrestart to be restarted", restarted, 30)
    wait_for("hcrestart healthy again", lambda: status("hcrestart").endswith("(healthy)"), 30)
    rctl("down", "-f", str(app))
    time.sleep(0.5)
    timers = run("systemctl", "--user", "list-units", "--all", "--plain", "--no-legend",
                 "rctl-*-healthcheck.timer").stdout  # fmt: skip
    assert timers.strip() == "", f"healthcheck timers outlived their containers: {timers}"
