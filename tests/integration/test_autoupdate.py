"""rctl auto-update in the nspawn tier, as uid 1000: a generated unit's container labelled
``auto_update = "registry"`` moves to the image newly pushed under its reference, and a
broken image pushed next is rolled back to the one that worked.

The registry side is changed with skopeo (not rctl's push), so the store's own tags move
only by rctl auto-update's pull. The units use the test's store through the manager's
environment, as in test_generator_files.py.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import Rctl, fetch, free_port, run, wait_for

R = "127.0.0.1:5000/test"
USER_UNITS = Path.home() / ".config" / "systemd" / "user"


def push(source: str, target: str) -> None:
    run(
        "skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{source}", f"docker://{target}",
    )  # fmt: skip


@pytest.fixture
def manager_store(rctl: Rctl) -> Iterator[list[str]]:
    env = [f"XDG_DATA_HOME={rctl.root / 'data'}", f"XDG_CONFIG_HOME={rctl.root / 'config'}"]
    run("systemctl", "--user", "set-environment", *env)
    units: list[str] = []
    try:
        yield units
    finally:
        for name in reversed(units):
            run("systemctl", "--user", "stop", name, check=False)
            run("systemctl", "--user", "reset-failed", name, check=False)
            (USER_UNITS / name).unlink(missing_ok=True)
        run("systemctl", "--user", "unset-environment", "XDG_DATA_HOME", "XDG_CONFIG_HOME")
        run("systemctl", "--user", "daemon-reload")
        for name in rctl("ps", "-aq").stdout.split():
            rctl("rm", "-f", name, check=False)


def test_auto_update_moves_to_a_new_image_and_rolls_a_broken_one_back(
    rctl: Rctl, manager_store: list[str]
) -> None:
    n = os.getpid()
    app, name, port = f"127.0.0.1:5000/autoupd{n}/app:latest", f"au{n}", free_port()
    push(f"{R}/busybox", app)
    defs = rctl.root / "config" / "rctl" / "definitions"
    defs.mkdir(parents=True)
    # v0 on busybox, v1 on the httpd image (it has /www); debian has no httpd: broken.
    serve = "echo v$(ls /www 2>/dev/null | wc -l) > /tmp/index.html; exec httpd -f -p 80 -h /tmp"
    (defs / "app.toml").write_text(f"""\
[container.{name}]
image = "{app}"
command = ["sh", "-c", "{serve}"]
ports = ["127.0.0.1:{port}:80"]
auto_update = "registry"
stop_timeout = 1
wanted_by = []
""")
    USER_UNITS.mkdir(parents=True, exist_ok=True)
    manager_store.extend([f"rctl-image-{name}.service", f"rctl-{name}.service"])
    run(
        "env", f"XDG_CONFIG_HOME={rctl.root / 'config'}",
        sys.executable, "-I", "-m", "rootless.definitions.generator", str(USER_UNITS),
    )  # fmt: skip
    run("systemctl", "--user", "daemon-reload")
    run("systemctl", "--user", "start", f"rctl-{name}.service", timeout=300)
    url = f"http://127.0.0.1:{port}/"
    assert wait_for("v0", lambda: fetch(url), 60) == "v0\n"

    def image_of() -> str:
        return str(json.loads(rctl("inspect", name).stdout)[0]["Image"])

    def update(*args: str) -> tuple[int, list[str]]:
        done = rctl("auto-update", "--timeout", "30", *args, check=False)
        return done.returncode, done.stdout.splitlines()[1:]

    # Nothing new: nothing done.
    code, rows = update()
    assert (code, [row.split() for row in rows]) == (
        0, [[f"rctl-{name}.service", name, app, "registry", "false"]],
    )  # fmt: skip
    first = image_of()

    # A new image under the same reference: pulled, the unit restarted on it.
    push(f"{R}/httpd", app)
    code, rows = update("--dry-run")
    assert (code, rows[0].split()[-1]) == (0, "pending")
    assert image_of() == first  # a dry run changes nothing
    code, rows = update()
    assert (code, rows[0].split()[-1]) == (0, "true")
    assert wait_for("v1", lambda: fetch(url) == "v1\n", 60)
    second = image_of()
    assert second != first

    # A broken one: the unit fails on it, auto-update goes back to the previous image.
    push(f"{R}/debian", app)
    code, rows = update()
    assert (code, rows[0].split()[-2:]) == (1, ["rolled", "back"])
    assert wait_for("v1 again", lambda: fetch(url) == "v1\n", 60)
    assert image_of() == second
    state = run(
        "systemctl", "--user", "show", "-p", "ActiveState", "--value", f"rctl-{name}.service"
    )
    assert state.stdout.strip() == "active"
