"""Bridge networks in the test host, as uid 1000: containers on a
network reach each other by name and alias, --link, several networks, published ports,
--internal, connect/disconnect at run time, and nothing outliving the last container (the
rootless namespace's unit, slirp4netns, bridges), also after kill -9.

Each test has a store of its own (the ``rctl`` fixture), hence a rootless namespace of its
own (``rctl-netns-HASH.service``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from hostkit import Rctl, free_port, run, wait_for

R = "127.0.0.1:5000/test"
PAGE = "rctl test httpd"


def units(pattern: str = "rctl-*") -> list[str]:
    out = run(
        "systemctl", "--user", "list-units", pattern, "--all", "--no-legend", "--plain"
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_units() -> list[str]:
    return units("rctl-netns*")


def gone(path: Path) -> bool:
    return not path.exists()


def slirp_processes() -> list[str]:
    """pids of slirp4netns processes that serve a rootless namespace (API in netns*/)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"slirp4netns") and any(b"/netns" in a for a in argv):
            found.append(entry.name)
    return found


@pytest.fixture(autouse=True)
def nothing_left(rctl: Rctl) -> Iterator[None]:
    before = set(units())
    yield
    for record in json.loads(rctl("ps", "-a", "--format", "json", check=False).stdout or "[]"):
        rctl("rm", "-f", record["id"], check=False)
    wait_for("the rootless namespace's unit to go", lambda: set(units()) <= before, 15)


def httpd(rctl: Rctl, name: str, *flags: str) -> None:
    rctl("run", "-d", "--name", name, *flags, f"{R}/httpd")


def fetch(rctl: Rctl, network: str, url: str, *flags: str) -> str:
    """wget ``url`` from a throwaway busybox container on ``network`` (busybox's wget
    crashes with -T, so no timeout: every target here answers or refuses at once)."""
    out = rctl(
        "run", "--rm", "--network", network, *flags, f"{R}/busybox",
        "wget", "-q", "-O", "-", url, check=False,
    )  # fmt: skip
    return out.stdout + out.stderr


def test_containers_reach_each_other_by_name_and_alias(rctl: Rctl) -> None:
    rctl("network", "create", "front")
    httpd(rctl, "web", "--network", "front", "--network-alias", "www")
    assert netns_units(), "the rootless namespace's unit should run"
    by_name = rctl("run", "--rm", "--name", "client", "--network", "front", f"{R}/busybox",
                   "sh", "-c", "cat /etc/hosts; wget -q -O - http://web/")  # fmt: skip
    assert PAGE in by_name.stdout, by_name
    assert PAGE in fetch(rctl, "front", "http://www/")
    # the address is the first of the default 10.89.0.0/24 after the gateway
    info = json.loads(rctl("network", "inspect", "front").stdout)[0]
    assert info["IPAM"]["Config"] == [{"Subnet": "10.89.0.0/24", "Gateway": "10.89.0.1"}]
    (lease,) = info["Containers"].values()
    assert lease["Name"] == "web"
    assert lease["IPv4Address"] == "10.89.0.2/24"
    # web's own hosts file learnt the client while it ran, and forgot it afterwards
    hosts = rctl("exec", "web", "cat", "/etc/hosts").stdout
    assert "client" not in hosts and "web" in hosts
    rctl("rm", "-f", "web")
    wait_for("the namespace to stop with its last container", lambda: not netns_units(), 15)
    assert not slirp_processes()


def test_link_reaches_the_target_by_alias(rctl: Rctl) -> None:
    rctl("network", "create", "back")
    httpd(rctl, "db", "--network", "back")
    # no --network: a legacy link joins the target's bridge network
    out = rctl("run", "--rm", "--link", "db:database", "--add-host", "extra:192.0.2.7",
               f"{R}/busybox", "sh", "-c",
               "cat /etc/hosts; wget -q -O - http://database/")  # fmt: skip
    assert PAGE in out.stdout and "\tdatabase db\n" in out.stdout, out
    assert "192.0.2.7\textra\n" in out.stdout  # --add-host survives the rewrites
    missing = rctl("run", "--rm", "--link", "nosuch:x", f"{R}/busybox", "true", check=False)
    assert missing.returncode == 125 and "nosuch" in missing.stderr


def test_a_container_on_two_networks_reaches_both(rctl: Rctl) -> None:
    rctl("network", "create", "neta")
    rctl("network", "create", "netb", "--subnet", "10.99.7.0/24")
    httpd(rctl, "ona", "--network", "neta")
    httpd(rctl, "onb", "--network", "netb")
    out = rctl("run", "--rm", "--network", "neta", "--network", "netb", f"{R}/busybox", "sh",
               "-c", "ip -o -4 addr; wget -q -O - http://ona/ && wget -q -O - http://onb/")  # fmt: skip
    assert out.stdout.count(PAGE) == 2, out
    assert "10.89.0.3/24" in out.stdout and "10.99.7.3/24" in out.stdout
    settings = json.loads(rctl("inspect", "onb").stdout)[0]["NetworkSettings"]["Networks"]
    assert settings["netb"]["IPAddress"] == "10.99.7.2" and settings["netb"]["Gateway"] == (
        "10.99.7.1"
    )
    # a container on neta only knows nothing of onb
    assert "bad address" in fetch(rctl, "neta", "http://onb/")


def test_published_port_reaches_a_bridged_container(rctl: Rctl) -> None:
    rctl("network", "create", "pub")
    port = free_port()
    httpd(rctl, "site", "--network", "pub", "-p", f"{port}:80")

    def page() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    assert PAGE in str(wait_for("the published page", page, 15))
    assert f"0.0.0.0:{port}->80/tcp" in rctl("ps").stdout
    rctl("rm", "-f", "site")
    wait_for("the port to be free again", lambda: not page(), 10)


def test_internal_network_has_no_route_out(rctl: Rctl) -> None:
    rctl("network", "create", "--internal", "intra")
    rctl("network", "create", "outer")
    httpd(rctl, "inner", "--network", "intra")
    routes = rctl("run", "--rm", "--network", "intra", f"{R}/busybox", "ip", "route").stdout
    assert "default" not in routes and "10.89.0.0/24" in routes
    # slirp4netns's gateway is reachable from a normal network, not from an internal one
    out = rctl("run", "--rm", "--network", "intra", f"{R}/busybox",
               "sh", "-c", "nc -w 3 10.0.2.3 53 </dev/null; echo rc=$?")  # fmt: skip
    assert "rc=0" not in out.stdout, out
    assert "unreachable" in (out.stdout + out.stderr).lower()
    # inside the network, containers still talk
    assert PAGE in fetch(rctl, "intra", "http://inner/")
    info = json.loads(rctl("network", "inspect", "intra").stdout)[0]
    assert info["Internal"] is True


def test_connect_and_disconnect_a_running_container(rctl: Rctl) -> None:
    rctl("network", "create", "one")
    rctl("network", "create", "two")
    httpd(rctl, "srv", "--network", "one")
    rctl("run", "-d", "--name", "cli", "--network", "two", f"{R}/busybox", "sleep", "300")
    assert "bad address" in rctl("exec", "cli", "wget", "-q", "-O", "-", "http://srv/",
                                 check=False).stderr  # fmt: skip
    rctl("network", "connect", "--alias", "service", "two", "srv")
    assert PAGE in rctl("exec", "cli", "wget", "-q", "-O", "-", "http://service/").stdout
    assert "eth1" in rctl("exec", "srv", "ip", "-o", "link").stdout
    again = rctl("network", "connect", "two", "srv", check=False)
    assert again.returncode == 125 and "already connected" in again.stderr
    rctl("network", "disconnect", "two", "srv")
    assert "service" not in rctl("exec", "cli", "cat", "/etc/hosts").stdout
    assert "eth1" not in rctl("exec", "srv", "ip", "-o", "link").stdout
    # still on its first network, also after a restart
    rctl("restart", "srv")
    assert PAGE in fetch(rctl, "one", "http://srv/")


def test_network_rm_is_refused_while_in_use(rctl: Rctl) -> None:
    rctl("network", "create", "busy")
    rctl("create", "--name", "user", "--network", "busy", f"{R}/busybox", "true")
    refused = rctl("network", "rm", "busy", check=False)
    assert refused.returncode == 125 and "in use" in refused.stderr and "user" in refused.stderr
    assert "busy" in rctl("network", "ls", "-q", "-f", "type=custom").stdout
    assert rctl("network", "prune", "-f").stdout == ""
    rctl("rm", "user")
    assert rctl("network", "rm", "busy").stdout == "busy\n"
    assert rctl("network", "ls", "-q", "-f", "type=custom").stdout == ""


def test_nothing_outlives_the_last_container_after_kill_9(rctl: Rctl) -> None:
    rctl("network", "create", "k9")
    httpd(rctl, "victim", "--network", "k9")
    httpd(rctl, "other", "--network", "k9")
    assert len(slirp_processes()) == 1 and len(netns_units()) == 1
    for name in ("victim", "other"):
        pid = json.loads(rctl("inspect", name).stdout)[0]["State"]["Pid"]
        unit = json.loads(rctl("inspect", name).stdout)[0]["Rctl"]["Unit"]
        run("systemctl", "--user", "kill", "--signal=SIGKILL", unit)
        wait_for(f"{name}'s processes to die", partial(gone, Path(f"/proc/{pid}")))
    wait_for("the namespace's unit to stop", lambda: not netns_units(), 15)
    wait_for("slirp4netns to end", lambda: not slirp_processes(), 10)
    leases = json.loads((rctl.data / "networks" / "leases.json").read_text())
    assert leases["leases"] == [] and leases["holder"] is None
    # and it comes back for the next container
    httpd(rctl, "again", "--network", "k9")
    assert PAGE in fetch(rctl, "k9", "http://again/")


def test_rm_f_runs_the_network_cleanup_to_its_end(rctl: Rctl) -> None:
    """rm -f waits for the unit's stop, ExecStopPost= included: the leases are released and
    the last container's namespace is stopped when it returns. Its SIGKILL must reach the
    container, never that cleanup, which starts the moment the container is dead."""
    rctl("network", "create", "quick")
    for round_ in range(8):
        httpd(rctl, f"q{round_}", "--network", "quick")
        rctl("rm", "-f", f"q{round_}")
        assert not netns_units(), f"round {round_}: the namespace outlived rm -f"
        leases = json.loads((rctl.data / "networks" / "leases.json").read_text())
        assert leases["leases"] == [] and leases["holder"] is None, f"round {round_}: {leases}"


def test_bad_input_is_one_line_and_creates_nothing(rctl: Rctl) -> None:
    rctl("network", "create", "taken", "--subnet", "10.50.0.0/16")
    cases = [
        ["network", "create", "--subnet", "10.1.2.3/24", "n1"],
        ["network", "create", "--subnet", "300.1.2.0/24", "n1"],
        ["network", "create", "--subnet", "10.60.0.0/24", "--gateway", "10.61.0.1", "n1"],
        ["network", "create", "--gateway", "10.1.0.1", "n1"],
        ["network", "create", "taken"],
        ["network", "create", "--subnet", "10.50.3.0/24", "n1"],
        ["network", "create", "bad/name"],
        ["network", "connect", "nosuchnet", "nosuchctr"],
        ["network", "connect", "taken", "nosuchctr"],
        ["network", "rm", "nosuchnet"],
        ["run", "--rm", "--network", "nosuchnet", f"{R}/busybox", "true"],
        ["run", "--rm", "--network", "taken", "--network", "none", f"{R}/busybox", "true"],
    ]
    for args in cases:
        failed = rctl(*args, check=False)
        assert failed.returncode == 125, (args, failed)
        lines = failed.stderr.strip().splitlines()
        assert lines[0].startswith("Error: ") and len(lines) <= 2, (args, failed.stderr)
    assert rctl("network", "ls", "-q", "-f", "type=custom").stdout == "taken\n"
    assert rctl("ps", "-aq").stdout == ""
    assert not netns_units()


def test_network_bridge_is_the_default_network(rctl: Rctl) -> None:
    out = rctl("run", "--rm", "--network", "bridge", f"{R}/busybox", "ip", "-o", "-4", "addr")
    assert "10.88.0.2/16" in out.stdout, out
    assert rctl("network", "ls", "-q", "-f", "type=custom").stdout == "rctl\n"
    assert rctl("network", "prune", "-f").stdout == ""  # the default network stays
    wait_for("the namespace to stop after a --rm run", lambda: not netns_units(), 15)
