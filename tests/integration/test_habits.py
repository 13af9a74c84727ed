"""Docker users' scripts against real containers: ``--filter``, ``version``, ``info``, the
built-in networks and inspect's RFC 3339 times, read the way a script reads them."""

from __future__ import annotations

import datetime
import io
import json
import re
import subprocess
import tarfile

from hostkit import Rctl

R = "127.0.0.1:5000/test"
# Go's time.RFC3339Nano: up to nine fractional digits, no trailing zeros.
RFC3339_NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z")


def rootfs_tar(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_filters_version_info_networks_and_times_as_scripts_use_them(rctl: Rctl) -> None:
    web = rctl(
        "run", "-d", "--name", "habit-web", "-l", "app=x", f"{R}/busybox", "sleep", "120"
    ).stdout.strip()  # fmt: skip
    done = rctl("run", "--name", "habit-done", "-l", "app=y", f"{R}/busybox", "sh", "-c",
                "exit 3", check=False)  # fmt: skip
    assert done.returncode == 3, done.stderr
    try:
        names = rctl("ps", "-a", "--filter", "name=habit", "--format", "{{.Names}}").stdout
        assert sorted(names.split()) == ["habit-done", "habit-web"]
        assert rctl("ps", "-a", "-f", "name=^habit-web$", "--format", "{{.Names}}").stdout == (
            "habit-web\n"
        )
        assert rctl("ps", "-a", "--filter", "label=app=x", "-q").stdout == web[:12] + "\n"
        # a status filter lists stopped containers without -a, as docker's
        exited = rctl("ps", "--filter", "status=exited", "--format", "{{.Names}}").stdout
        assert exited == "habit-done\n"
        assert rctl("ps", "-a", "-f", "exited=3", "--format", "{{.Names}}").stdout == (
            "habit-done\n"
        )
        assert rctl("ps", "-a", "-f", "label=app", "-f", "status=running", "-q").stdout == (
            web[:12] + "\n"
        )
        assert rctl("ps", "-a", "-f", f"ancestor={R}/busybox", "-q").stdout.count("\n") == 2
        bad = rctl("ps", "--filter", "colour=red", check=False)
        assert (bad.returncode, bad.stdout) == (125, "")
        assert bad.stderr.splitlines()[0] == "Error: invalid filter 'colour'"

        # inspect's times as docker writes them, and ps's CreatedAt as Go's time.String()
        created = rctl("inspect", "-f", "{{.Created}}", "habit-web").stdout.strip()
        assert RFC3339_NANO.fullmatch(created), created
        moment = datetime.datetime.fromisoformat(created.replace("Z", "+00:00")[:26] + "+00:00")
        assert abs((datetime.datetime.now(datetime.UTC) - moment).total_seconds()) < 300
        started = rctl("inspect", "-f", "{{.State.StartedAt}}", "habit-web").stdout.strip()
        assert RFC3339_NANO.fullmatch(started) and started >= created[:19], started
        finished = rctl("inspect", "-f", "{{.State.FinishedAt}}", "habit-done").stdout.strip()
        assert RFC3339_NANO.fullmatch(finished) and finished >= created[:19], finished
        assert rctl("inspect", "-f", "{{.State.FinishedAt}}", "habit-web").stdout == (
            "0001-01-01T00:00:00Z\n"
        )
        created_at = rctl("ps", "-f", "name=habit-web", "--format", "{{.CreatedAt}}").stdout
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+\n", created_at)
        image_created = rctl("image", "inspect", "-f", "{{.Created}}", f"{R}/busybox").stdout
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?(Z|[+-]\d\d:\d\d)\n",
                            image_created)  # fmt: skip

        # a tag moved by a second import leaves the first image dangling
        first = rctl("import", "-", "habit/img:1", input_data=rootfs_tar(b"1")).stdout
        rctl("import", "-", "habit/img:1", input_data=rootfs_tar(b"2"))
        dangling = rctl("images", "--filter", "dangling=true", "-q").stdout.split()
        assert dangling == [first.decode().strip().removeprefix("sha256:")[:12]]
        refs = rctl("images", "-f", "reference=habit/*", "--format", "{{.Repository}}:{{.Tag}}")
        assert [r.rpartition("/")[2] for r in refs.stdout.split()] == ["img:1"], refs.stdout
        assert rctl("images", "-f", "reference=habit", "-q").stdout == ""  # * only: no match

        assert rctl("version", "--format", "{{.Server.Version}}").stdout.strip()
        assert rctl("version", "--format", "{{.Client.ApiVersion}}").stdout == "1.44\n"
        document = subprocess.run(
            ["python3", "-c", "import json, sys; d = json.load(sys.stdin); "
             "print(d['Driver'], d['Containers'], d['ContainersRunning'], d['Rctl']['Rootless'], "
             "d['CgroupVersion'])"],
            input=rctl("info", "--format", "{{json .}}").stdout,
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert document[1:] == ["2", "1", "True", "2"], document
        info = json.loads(rctl("info", "--format", "json").stdout)
        assert info["Images"] >= 2 and info["DefaultRuntime"] == "crun"

        listed = rctl("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.splitlines()
        for row in ("bridge bridge", "host host", "none null"):
            assert row in listed
        table = rctl("network", "ls").stdout
        assert table.splitlines()[0].split()[:3] == ["NETWORK", "ID", "NAME"]
        assert json.loads(rctl("network", "inspect", "none").stdout)[0]["Driver"] == "null"
        refused = rctl("network", "rm", "bridge", check=False)
        assert refused.returncode == 125
        assert refused.stderr.splitlines()[0] == (
            "Error: bridge is a pre-defined network and cannot be removed"
        )

        # prune --filter: only what the labels allow goes
        pruned = rctl("container", "prune", "-f", "--filter", "label!=app=y").stdout
        assert pruned == ""
        pruned = rctl("container", "prune", "-f", "--filter", "label=app=y").stdout
        assert rctl("ps", "-a", "--format", "{{.Names}}").stdout == "habit-web\n", pruned
    finally:
        rctl("rm", "-f", web, "habit-done", check=False)
