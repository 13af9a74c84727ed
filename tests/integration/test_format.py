"""``--format`` with Go templates against real containers, read as a script would."""

from __future__ import annotations

import json

from hostkit import Rctl

R = "127.0.0.1:5000/test"


def test_ps_and_inspect_formats_as_scripts_use_them(rctl: Rctl) -> None:
    cid = rctl(
        "run", "-d", "--name", "fmt-web", "-e", "GREETING=hello world", "-l", "tier=front",
        f"{R}/busybox", "sleep", "120",
    ).stdout.strip()  # fmt: skip
    try:
        name, status = (
            rctl("ps", "--format", "{{.Names}} {{.Status}}").stdout.rstrip("\n").split(" ", 1)
        )
        assert (name, status.split()[0]) == ("fmt-web", "Up")

        table = rctl("ps", "--format", r"table {{.ID}}\t{{.Names}}").stdout.splitlines()
        assert table == ["CONTAINER ID   NAMES", f"{cid[:12]}   fmt-web"]

        assert rctl("ps", "--format", '{{.Label "tier"}}|{{.Label "none"}}').stdout == "front|\n"
        row = json.loads(rctl("ps", "--format", "{{json .}}").stdout)
        assert (row["ID"], row["Names"], row["Labels"]) == (cid[:12], "fmt-web", "tier=front")
        assert rctl("inspect", "-f", "{{.State.Status}}", "fmt-web").stdout == "running\n"
        env = json.loads(rctl("inspect", "--format", "{{json .Config.Env}}", "fmt-web").stdout)
        assert "GREETING=hello world" in env

        bad = rctl("inspect", "-f", "{{.State.Nope}}", "fmt-web", check=False)
        assert (bad.returncode, bad.stdout) == (125, "")
        assert bad.stderr.splitlines()[0].startswith("Error: template: :1:")
        assert "can't evaluate field Nope" in bad.stderr
        unclosed = rctl("ps", "--format", "{{.Names", check=False)
        assert unclosed.returncode == 125
        assert unclosed.stderr.splitlines()[0] == "Error: template: :1: unclosed action"
    finally:
        rctl("rm", "-f", cid, check=False)
