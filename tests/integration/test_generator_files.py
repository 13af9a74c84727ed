"""A whole definition file through the generator, as uid 1000 in the nspawn tier: its
network and volume become units the containers require, each image a unit, the containers
start in order on the network, and a bad table in the same file skips only itself.

The units run in the user manager's environment: the test points them at its private store
with ``systemctl --user set-environment`` (every unit of the file, not only the containers,
must use it) and takes that back afterwards.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, fetch, free_port, run, wait_for

R = "127.0.0.1:5000/test"
USER_UNITS = Path.home() / ".config" / "systemd" / "user"


def unit_value(unit: str, prop: str) -> str:
    return run("systemctl", "--user", "show", "-p", prop, "--value", unit).stdout.strip()


@pytest.fixture
def manager_store(rctl: Rctl) -> Iterator[list[str]]:
    """The user manager's units use the test's store; the units written are removed after."""
    env = [f"XDG_DATA_HOME={rctl.root / 'data'}", f"XDG_CONFIG_HOME={rctl.root / 'config'}"]
    run("systemctl", "--user", "set-environment", *env)
    units: list[str] = []
    try:
        yield units
    finally:
        for name in reversed(units):
            run("systemctl", "--user", "stop", name, check=False)
            run("systemctl", "--user", "reset-failed", name, check=False)
            for path in (USER_UNITS / name, *USER_UNITS.glob(f"*.wants/{name}")):
                path.unlink(missing_ok=True)
        run("systemctl", "--user", "unset-environment", "XDG_DATA_HOME", "XDG_CONFIG_HOME")
        run("systemctl", "--user", "daemon-reload")
        for name in rctl("ps", "-aq").stdout.split():
            rctl("rm", "-f", name, check=False)


def test_a_file_with_a_network_and_a_volume_runs_through_the_generator(
    rctl: Rctl, manager_store: list[str]
) -> None:
    n = os.getpid()
    net, vol, db, web, bad = f"gnet{n}", f"gvol{n}", f"gdb{n}", f"gweb{n}", f"gbad{n}"
    port = free_port()
    defs = rctl.root / "config" / "rctl" / "definitions"
    defs.mkdir(parents=True)
    app = defs / "app.toml"
    app.write_text(f"""\
[network.{net}]

[volume.{vol}]

[container.{db}]
image = "{R}/busybox"
command = ["sh", "-c", "echo db-ok > /www/index.html; exec httpd -f -p 80 -h /www"]
volumes = ["{vol}:/www"]
networks = ["{net}"]

[container.{bad}]
image = "{R}/busybox"
colour = "blue"

[container.{web}]
image = "{R}/busybox"
command = ["sh", "-c", "wget -q -O /tmp/index.html http://{db}/ && exec httpd -f -p 80 -h /tmp"]
ports = ["127.0.0.1:{port}:80"]
networks = ["{net}"]
depends_on = ["{db}"]
restart = "on-failure"
""")
    USER_UNITS.mkdir(parents=True, exist_ok=True)
    units = [
        f"rctl-network-{net}.service", f"rctl-volume-{vol}.service",
        f"rctl-image-{db}.service", f"rctl-{db}.service",
        f"rctl-image-{web}.service", f"rctl-{web}.service",
    ]  # fmt: skip
    manager_store.extend(units)
    gen = run(
        "env", f"XDG_CONFIG_HOME={rctl.root / 'config'}",
        sys.executable, "-I", "-m", "rootless.definitions.generator", str(USER_UNITS),
    )  # fmt: skip
    # The bad table is reported with its file and line; the file's other tables get units.
    assert f"{app}:13: [container.{bad}] colour: unknown key" in gen.stderr
    assert sorted(p.name for p in USER_UNITS.glob(f"rctl-*{n}.service")) == sorted(units)
    run("systemctl", "--user", "daemon-reload")

    # Starting the last container starts everything it needs, in order.
    run("systemctl", "--user", "start", f"rctl-{web}.service", timeout=300)
    assert wait_for("web's page", lambda: fetch(f"http://127.0.0.1:{port}/"), 90) == "db-ok\n"
    for unit in units:
        assert unit_value(unit, "ActiveState") == "active", unit
    assert net in rctl("network", "ls").stdout
    assert vol in rctl("volume", "ls").stdout
    assert int(unit_value(f"rctl-{web}.service", "ActiveEnterTimestampMonotonic")) > int(
        unit_value(f"rctl-{db}.service", "ActiveEnterTimestampMonotonic")
    )


def test_a_container_with_build_is_built_by_its_unit_and_by_apply(
    rctl: Rctl, manager_store: list[str]
) -> None:
    n = os.getpid()
    name = f"gbuilt{n}"
    port = free_port()
    context = rctl.root / "app"
    context.mkdir(parents=True)
    (context / "index.html").write_text("built-v1\n")
    (context / "Containerfile").write_text(
        f'FROM {R}/busybox\nCOPY index.html /www/\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n'
    )
    defs = rctl.root / "config" / "rctl" / "definitions"
    defs.mkdir(parents=True)
    app = defs / "site.toml"
    app.write_text(f"""\
[container.{name}]
build = {{ context = "{context}", file = "Containerfile" }}
ports = ["127.0.0.1:{port}:80"]
""")
    USER_UNITS.mkdir(parents=True, exist_ok=True)
    units = [f"rctl-build-{name}.service", f"rctl-{name}.service"]
    manager_store.extend(units)
    run("env", f"XDG_CONFIG_HOME={rctl.root / 'config'}",
        sys.executable, "-I", "-m", "rootless.definitions.generator", str(USER_UNITS))  # fmt: skip
    assert sorted(p.name for p in USER_UNITS.glob(f"rctl-*{n}.service")) == sorted(units)
    run("systemctl", "--user", "daemon-reload")
    run("systemctl", "--user", "start", f"rctl-{name}.service", timeout=300)
    page = wait_for("the built page", lambda: fetch(f"http://127.0.0.1:{port}/"), 90)
    assert page == "built-v1\n"
    image = f"localhost/site-{name}"
    assert rctl("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    run("systemctl", "--user", "stop", *reversed(units))

    # apply: the same file; an unchanged context builds nothing, a changed one rebuilds
    # and recreates the container on the new image.
    rctl("rm", "-f", name, check=False)
    first = rctl("apply", "-f", str(app)).stdout
    assert "build image" not in first and f"create container {name}" in first
    (context / "index.html").write_text("built-v2\n")
    second = rctl("apply", "-f", str(app)).stdout
    assert f"build image {image}" in second and f"recreate container {name}" in second
    page = wait_for("the rebuilt page", lambda: fetch(f"http://127.0.0.1:{port}/"), 90)
    assert page == "built-v2\n"
    assert "build image" not in rctl("apply", "-f", str(app)).stdout
