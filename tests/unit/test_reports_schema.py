"""rctl's reports against Docker's own documents: every key Docker writes, in Docker's order,
with the same JSON types, and nothing more but ``Rctl``.

The fixtures in ``golden/docker/`` are ``docker inspect`` / Engine API v1.44 documents
(``ContainerInspectResponse``, ``ContainerSummary``, ``ImageInspect``, ``ImageSummary``,
``HistoryResponseItem``, ``Volume``, ``Network``) of a typical container, image, volume and
network. A null on either side matches any type: Docker writes null for empty slices and
maps, and rctl does where it has nothing to say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from netns.ports import Protocol, PublishedPort
from rootless.containers.health import HealthConfig
from rootless.containers.record import ContainerRecord
from rootless.containers.recorded import record_options
from rootless.containers.reporting import (
    LiveState,
    UnitInputs,
    inspect_report,
    list_row,
    live_state,
)
from rootless.containers.spec import ContainerSpec, ImageDefaults
from rootless.models import RunOptions
from rootless.reports.containers import Endpoint, human_duration
from rootless.reports.images import (
    HistoryRow,
    ImageConfigReport,
    ImageHealthcheck,
    ImageInspect,
    ImageListRow,
    LayerReport,
)
from rootless.reports.networks import NetworkMember, NetworkReport
from rootless.reports.volumes import VolumeReport
from rootless.volumes.model import MountPoint
from units.state import UnitState

GOLDEN = Path(__file__).parent / "golden" / "docker"
# Keys whose value is a Go map (keys are data, not field names): their entries are
# compared with the first of Docker's entries.
MAPS = {
    "Labels", "ExposedPorts", "Volumes", "Networks", "Ports", "PortBindings", "Containers",
    "Data", "Options", "Tmpfs", "DriverOpts",
}  # fmt: skip
RCTL_KEY = "Rctl"


def docker(name: str) -> Any:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def is_map(path: str) -> bool:
    return path.rpartition(".")[2] in MAPS or path.endswith("LogConfig.Config")


def differences(theirs: Any, ours: Any, path: str = "") -> list[str]:
    """Where ``ours`` differs from ``theirs`` in keys, key order or JSON types."""
    if theirs is None or ours is None:
        return []
    if type(theirs) is not type(ours):
        return [f"{path or '.'}: {type(ours).__name__}, docker has {type(theirs).__name__}"]
    if isinstance(theirs, list):  # item by item: a fixture's mounts are a bind, then a volume
        pairs = zip(theirs, ours, strict=False)
        return [d for i, (t, o) in enumerate(pairs) for d in differences(t, o, f"{path}[{i}]")]
    if not isinstance(theirs, dict):
        return []
    if is_map(path):
        sample = next(iter(theirs.values()), None)
        return [d for k, v in ours.items() for d in differences(sample, v, f"{path}[{k}]")]
    found = []
    keys = [k for k in ours if not (k == RCTL_KEY and not path)]
    if [k for k in keys if k in theirs] != [k for k in theirs if k in keys]:
        found.append(f"{path or '.'}: key order {keys}, docker's {list(theirs)}")
    found += [f"{path}.{k}: missing" for k in theirs if k not in ours]
    found += [f"{path}.{k}: not docker's" for k in keys if k not in theirs]
    for key in theirs:
        if key in ours:
            found += differences(theirs[key], ours[key], f"{path}.{key}".lstrip("."))
    return found


CONTAINER_ID = "ab" * 32
MOUNTS = (
    MountPoint("bind", "/srv/site", "/usr/share/nginx/html", read_only=True, mode="ro"),
    MountPoint("volume", "/v/cache/_data", "/var/cache/nginx", name="cache"),
)


def container_record() -> ContainerRecord:
    options = RunOptions(
        image="nginx:1.25", name="web", cap_add=("NET_ADMIN",), cap_drop=("MKNOD",),
        tmpfs=("/run:rw,size=64m",), add_host=("db:10.0.0.5",), dns=("9.9.9.9",),
        security_opt=("no-new-privileges",), restart="on-failure:3", detach=True,
    )  # fmt: skip
    image = ImageDefaults(
        env=("PATH=/usr/bin:/bin",), cmd=("nginx", "-g", "daemon off;"),
        entrypoint=("/docker-entrypoint.sh",),
    )  # fmt: skip
    spec = ContainerSpec(name="web", image_ref="nginx:1.25", image_id="sha256:" + "cd" * 32,
                         image=image, env=("A=b",))  # fmt: skip
    return ContainerRecord(
        id=CONTAINER_ID, name="web", image_id=spec.image_id, image_name="nginx:1.25",
        command=spec.process_args, created=1_707_128_503.539, driver="overlay",
        labels={"tier": "front"}, ports=(PublishedPort(Protocol.TCP, "", 8080, 80),),
        mounts=MOUNTS,
        options=record_options(
            options, spec, network_mode="pasta", runtime="crun", exposed_ports=("80",),
            image_volumes=("/var/cache/nginx",),
        ),
    )  # fmt: skip


CHECK = HealthConfig(("CMD-SHELL", "curl -f http://localhost/ || exit 1"), 30.0, 5.0, 3)


def container_document() -> dict[str, Any]:
    live = LiveState("running", pid=4242, started=1_707_128_504_106_223_125,
                     health={"Status": "healthy", "FailingStreak": 0, "Log": [
                         {"Start": "2024-02-05T10:22:14Z", "End": "2024-02-05T10:22:15Z",
                          "ExitCode": 0, "Output": ""}]})  # fmt: skip
    inputs = UnitInputs(restart="on-failure:3", stop_timeout=20, stop_signal=3,
                        memory=268_435_456, memory_swap=536_870_912, cpus=1.5, cpu_shares=512,
                        pids_limit=100)  # fmt: skip
    networks = {"front": Endpoint("e2" * 32, "10.89.0.2", 24, "10.89.0.1", "", ("web",))}
    report = inspect_report(
        container_record(),
        "/d/containers/x",
        live,
        inputs,
        CHECK,
        networks,
    )
    return report.to_docker()


def test_container_inspect_has_dockers_keys_order_and_types() -> None:
    assert differences(docker("container-inspect"), container_document()) == []


def test_container_inspect_values_are_the_flags_the_container_was_made_with() -> None:
    doc = container_document()
    host = doc["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["NanoCpus"]) == (268435456, 536870912,
                                                                      1_500_000_000)  # fmt: skip
    assert (host["CpuShares"], host["PidsLimit"]) == (512, 100)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["CapAdd"], host["CapDrop"]) == (["NET_ADMIN"], ["MKNOD"])
    assert host["Binds"] == ["/srv/site:/usr/share/nginx/html:ro"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert (host["NetworkMode"], host["Runtime"]) == ("pasta", "crun")
    assert host["Tmpfs"] == {"/run": "rw,size=64m"} and host["ExtraHosts"] == ["db:10.0.0.5"]
    config = doc["Config"]
    assert config["Entrypoint"] == ["/docker-entrypoint.sh"]
    assert config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert "A=b" in config["Env"] and config["ExposedPorts"] == {"80/tcp": {}}
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGQUIT", 20)
    assert config["Healthcheck"]["Interval"] == 30_000_000_000
    assert (doc["Path"], doc["Args"]) == ("/docker-entrypoint.sh", ["nginx", "-g", "daemon off;"])
    assert doc["Name"] == "/web" and doc["Created"] == "2024-02-05T10:21:43.539Z"
    state = doc["State"]
    assert (state["Status"], state["Running"], state["Pid"]) == ("running", True, 4242)
    assert state["StartedAt"] == "2024-02-05T10:21:44.106223125Z"
    assert state["FinishedAt"] == "0001-01-01T00:00:00Z"
    settings = doc["NetworkSettings"]
    assert settings["IPAddress"] == "10.89.0.2" and settings["Networks"]["front"]["Aliases"] == [
        "web"
    ]
    assert doc["Rctl"]["Unit"] == f"rctl-{CONTAINER_ID}.service"
    assert [m["Type"] for m in doc["Mounts"]] == ["bind", "volume"]


def test_an_unlimited_pids_limit_is_reported_as_none_set() -> None:
    # spec.json keeps docker's -1 (the unit gets TasksMax=infinity); inspect says null.
    assert UnitInputs.from_json({"limits": {"pids_limit": -1}}).pids_limit is None
    assert UnitInputs.from_json({"limits": {"pids_limit": 50}}).pids_limit == 50


def test_live_state_words_the_unit_as_docker_does() -> None:
    active = UnitState("u", "loaded", "active", "running", main_pid=7, active_enter_usec=5)
    assert live_state(active, None, None).status == "running"
    frozen = UnitState("u", "loaded", "active", "running", freezer_state="frozen", main_pid=7)
    assert live_state(frozen, None, None).status == "paused"
    oom = UnitState("u", "loaded", "failed", "failed", result="oom-kill")
    ended = live_state(oom, (137, 1_700_000_000.0), None)
    assert (ended.status, ended.exit_code, ended.oom_killed) == ("exited", 137, True)
    assert live_state(None, None, None).status == "created"
    backoff = UnitState("u", "loaded", "activating", "auto-restart", n_restarts=2)
    assert (
        live_state(backoff, (1, 1.0), None).status,
        live_state(backoff, None, None).restarts,
    ) == (
        "restarting",
        2,
    )


def row_of_record() -> dict[str, Any]:
    networks = {"front": Endpoint("e2" * 32, "10.89.0.2", 24, "10.89.0.1")}
    row = list_row(container_record(), state="running", status="Up 5 minutes", exit_code=None,
                   networks=networks)  # fmt: skip
    return row.to_docker()


def test_container_list_entry_has_dockers_keys_and_types() -> None:
    ours = row_of_record()
    assert differences(docker("container-list"), ours) == []
    assert ours["Names"] == ["/web"] and ours["Created"] == 1707128503
    assert ours["Ports"] == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}
    ]


def test_ps_fields_are_derived_from_the_row() -> None:
    row = list_row(container_record(), state="running", status="Up 5 minutes", exit_code=None,
                   networks={})  # fmt: skip
    fields = row.ps_fields(now=row.created + 7200)
    assert fields["ID"] == CONTAINER_ID[:12] and fields["Names"] == "web"
    assert fields["Command"] == '"/docker-entrypoint.…"'
    assert fields["RunningFor"] == "2 hours ago" and fields["Ports"] == "0.0.0.0:8080->80/tcp"
    assert fields["Networks"] == "pasta" and fields["Mounts"] == "/srv/site,cache"
    assert fields["LocalVolumes"] == "1" and fields["Labels"] == "tier=front"
    assert row.ps_fields(now=row.created, no_trunc=True)["ID"] == CONTAINER_ID


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
        (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"),
        (3600, "About an hour"), (5399, "About an hour"), (5400, "2 hours"),
        (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"), (730 * 86400, "2 years"),
    ],
)  # fmt: skip
def test_human_duration_is_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


IMAGE = ImageInspect(
    id="sha256:" + "cd" * 32, repo_tags=("docker.io/library/nginx:1.25",),
    repo_digests=("docker.io/library/nginx@sha256:" + "ef" * 32,), created="2023-12-19T14:22:05Z",
    architecture="arm64", variant="v8", os="linux", size=192229436,
    config=ImageConfigReport(
        env=("PATH=/bin",), cmd=("nginx",), entrypoint=("/docker-entrypoint.sh",),
        exposed_ports=("80/tcp",), volumes=("/var/cache/nginx",), labels={"a": "b"},
        stop_signal="SIGQUIT", healthcheck=ImageHealthcheck(("CMD", "true"), 30, 5, 0, 0, 3),
    ),
    diff_ids=("sha256:" + "01" * 32,), driver="overlay", comment="buildkit.dockerfile.v0",
    layers=(LayerReport("sha256:" + "02" * 32, "sha256:" + "01" * 32, 10, "application/x"),),
)  # fmt: skip


def test_image_inspect_has_dockers_keys_order_and_types() -> None:
    ours = IMAGE.to_docker()
    assert differences(docker("image-inspect"), ours) == []
    assert ours["Rctl"]["Layers"][0]["Size"] == 10


def test_image_list_and_history_entries_have_dockers_keys_and_types() -> None:
    row = ImageListRow("sha256:" + "cd" * 32, ("nginx:1.25",), (), "2023-12-19T14:22:05Z", 5,
                       {"a": "b"})  # fmt: skip
    assert differences(docker("image-list"), row.to_docker()) == []
    assert row.to_docker()["Created"] == 1702995725
    step = HistoryRow("abcdef012345", "2023-12-19T14:22:05Z", 'CMD ["nginx"]', 0, "", ("x",))
    assert differences(docker("history"), step.to_docker()) == []


def test_volume_document_has_dockers_keys_order_and_types() -> None:
    report = VolumeReport("cache", "2024-02-05T10:21:43Z", "/v/cache/_data", labels={"a": "b"},
                          options={"o": "uid=1"}, anonymous=True)  # fmt: skip
    ours = report.to_docker()
    assert differences(docker("volume-inspect"), ours) == []
    assert ours["Rctl"] == {"Anonymous": True}


def test_network_document_has_dockers_keys_order_and_types() -> None:
    report = NetworkReport(
        "front", "8a" * 32, "bridge", created=1_707_128_411.382, subnet="10.89.0.0/24",
        gateway="10.89.0.1", labels={"a": "b"},
        containers=(NetworkMember(CONTAINER_ID, "web", "10.89.0.2/24"),), interface="rctl1",
    )  # fmt: skip
    ours = report.to_docker()
    assert differences(docker("network-inspect"), ours) == []
    assert ours["IPAM"]["Config"] == [{"Subnet": "10.89.0.0/24", "Gateway": "10.89.0.1"}]
    assert ours["Containers"][CONTAINER_ID]["IPv4Address"] == "10.89.0.2/24"
    builtin = NetworkReport("none", "00" * 32, "null").to_docker()
    assert differences(docker("network-inspect"), builtin) == []
    assert builtin["Created"] == "0001-01-01T00:00:00Z" and builtin["IPAM"]["Config"] == []


def test_the_comparison_sees_a_missing_key_a_wrong_type_and_an_extra_key() -> None:
    theirs = {"A": 1, "B": {"C": "x"}, "Labels": {"k": "v"}}
    assert differences(theirs, {"A": 1, "B": {}, "Labels": {}}) == ["B.C: missing"]
    assert differences(theirs, {"A": "1", "B": {"C": "x"}, "Labels": {"z": 2}}) == [
        "A: str, docker has int", "Labels[z]: int, docker has str",
    ]  # fmt: skip
    assert differences(theirs, {"A": 1, "B": {"C": "x"}, "Labels": {}, "D": 0}) == [
        ".D: not docker's"
    ]
    assert differences(theirs, {"B": {"C": "x"}, "A": 1, "Labels": {}})[0].startswith(
        ".: key order"
    )
