"""``rctl version`` and ``rctl info``: the documents (docker's keys), their text, and their
``--format`` templates through the CLI; ``network ls`` with the built-in networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rootless import __version__, cli
from rootless.cli import session as cli_session
from rootless.containers.hostcheck import cgroup_facts
from rootless.containers.record import ContainerStore
from rootless.networks.attach import NetworkPaths
from rootless.networks.service import NetworkService
from rootless.reports.system import InfoReport, VersionReport
from rootless.system import (
    API_VERSION,
    ContainerCounts,
    InfoInputs,
    git_commit,
    info_report,
    version_report,
)

INPUTS = InfoInputs(
    counts=ContainerCounts(running=2, paused=1, stopped=3),
    images=4,
    storage_driver="overlay",
    data_root="/home/u/.local/share/rctl",
    run_root="/run/user/1000/rctl",
    runtime="crun",
    default_network="slirp4netns",
    search_registries=("docker.io",),
    insecure_registries=("127.0.0.1:5000",),
)


class FakeEngine:
    def __init__(self, networks: NetworkService | None = None) -> None:
        self.networks = networks

    def version(self) -> VersionReport:
        return version_report("no-such-runtime-for-rctl-tests")

    def info(self) -> InfoReport:
        return info_report(INPUTS, 1000)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_session, "Engine", FakeEngine)


def test_version_document_has_docker_s_keys() -> None:
    report = version_report("no-such-runtime-for-rctl-tests").cli_document()
    for side in ("Client", "Server"):
        assert report[side]["Version"] == __version__
        assert report[side]["ApiVersion"] == API_VERSION == "1.44"
        assert report[side]["Os"] == "linux" and report[side]["Arch"]
    names = [c["Name"] for c in report["Server"]["Components"]]
    assert names[0] == "Engine" and "no-such-runtime-for-rctl-tests" not in names  # left out


@pytest.mark.usefixtures("fake_engine")
def test_version_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["version", "--format", "{{.Server.Version}}"], capsys)[1] == f"{__version__}\n"
    assert run(["version", "-f", "{{.Client.Version}}"], capsys)[1] == f"{__version__}\n"
    code, out, _ = run(["version", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["Client"]["ApiVersion"] == "1.44"
    assert out.count("\n") == 1  # one line, as docker's
    code, out, _ = run(["version"], capsys)
    assert out.startswith("Client:\n Version:") and "\nServer: rctl" in out
    assert "API version:    1.44 (minimum version 1.24; the REST API to come" in out
    assert run(["system", "version", "-f", "{{.Client.Os}}"], capsys)[1] == "linux\n"
    code, out, err = run(["version", "-f", "{{.Server.Nope}}"], capsys)
    assert code == 125 and out == "" and "can't evaluate field Nope" in err
    assert err.splitlines()[1] == (
        "Hint: -f/--format takes 'json' or a Go template such as '{{.Server.Version}}'"
    )
    assert run(["--version"], capsys)[1] == f"rctl, version {__version__}\n"


@pytest.mark.usefixtures("fake_engine")
def test_info_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["info", "--format", "{{.Driver}}"], capsys)[1] == "overlay\n"
    code, out, _ = run(["info", "--format", "{{json .}}"], capsys)
    document = json.loads(out)
    assert code == 0
    assert (document["Containers"], document["ContainersRunning"]) == (6, 2)
    assert (document["ContainersPaused"], document["ContainersStopped"], document["Images"]) == (
        1,
        3,
        4,
    )
    rctl = document["Rctl"]
    assert rctl["Rootless"] is True and document["CgroupDriver"] == "systemd"
    assert rctl["DefaultNetwork"] == "slirp4netns"
    assert rctl["Registries"] == {"Search": ["docker.io"], "Insecure": ["127.0.0.1:5000"]}
    assert document["RegistryConfig"]["IndexConfigs"]["127.0.0.1:5000"]["Secure"] is False
    assert json.loads(run(["info", "-f", "json"], capsys)[1])["ServerVersion"] == __version__
    out = run(["info"], capsys)[1]
    for line in (" Containers: 6", "  Running: 2", "  Paused: 1", "  Stopped: 3", " Images: 4",
                 " Storage Driver: overlay", " Default Runtime: crun", " Rootless: true",
                 " Default Network: slirp4netns", " Docker Root Dir: /home/u/.local/share/rctl",
                 "  Insecure: 127.0.0.1:5000"):  # fmt: skip
        assert line in out.splitlines()
    assert run(["system", "info", "-f", "{{.OSType}}"], capsys)[1] == "linux\n"


def test_cgroup_facts(tmp_path: Path) -> None:
    assert cgroup_facts(1000, tmp_path / "nothing") == ("", [])
    assert cgroup_facts(1000, tmp_path) == ("1", [])  # no cgroup.controllers at the root
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    assert cgroup_facts(1000, tmp_path) == ("2", [])  # nothing delegated to the user
    manager = tmp_path / "user.slice/user-1000.slice/user@1000.service"
    manager.mkdir(parents=True)
    (manager / "cgroup.controllers").write_text("pids memory\n")
    assert cgroup_facts(1000, tmp_path) == ("2", ["memory", "pids"])


def test_git_commit(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == ""
    main = tmp_path / "main" / ".git"
    (main / "refs/heads").mkdir(parents=True)
    (main / "HEAD").write_text("ref: refs/heads/main\n")
    (main / "refs/heads/main").write_text("0123456789abcdef\n")
    assert git_commit(tmp_path / "main") == "0123456"
    # a worktree: .git is a file naming its directory, refs live in the common one
    worktree = main / "worktrees" / "wt"
    worktree.mkdir(parents=True)
    (worktree / "HEAD").write_text("ref: refs/heads/topic\n")
    (worktree / "commondir").write_text("../..\n")
    (main / "packed-refs").write_text("# pack-refs\nfedcba9876543210 refs/heads/topic\n")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(f"gitdir: {worktree}\n")
    assert git_commit(tmp_path / "wt") == "fedcba9"
    (worktree / "HEAD").write_text("aaaaaaa1111\n")  # detached
    assert git_commit(tmp_path / "wt") == "aaaaaaa"


def test_network_ls_shows_the_builtin_networks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = NetworkPaths(tmp_path / "networks", tmp_path / "state", "rctl-netns-test.service")
    service = NetworkService(paths, ContainerStore(tmp_path / "containers"))
    engine = type("NetworkEngine", (FakeEngine,), {"__init__": lambda self: None})
    engine.networks = service  # type: ignore[attr-defined]
    monkeypatch.setattr(cli_session, "Engine", engine)
    code, out, _ = run(["network", "ls"], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SUBNET",
                                              "INTERNAL"]  # fmt: skip
    assert [line.split()[1:3] for line in lines[1:]] == [
        ["bridge", "bridge"], ["host", "host"], ["none", "null"], ["pasta", "pasta"],
        ["slirp4netns", "slirp4netns"],
    ]  # fmt: skip
    out = run(["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"], capsys)[1]
    assert out.splitlines()[:3] == ["bridge bridge local", "host host local", "none null local"]
    assert run(["network", "ls", "-f", "driver=null", "-q"], capsys)[1] == "none\n"
    code, out, err = run(["network", "ls", "-f", "colour=red"], capsys)
    assert (code, out) == (125, "") and err.splitlines()[0] == "Error: invalid filter 'colour'"
    code, _, err = run(["network", "rm", "host"], capsys)
    assert code == 125
    assert err.splitlines()[0] == "Error: host is a pre-defined network and cannot be removed"
    inspected = json.loads(run(["network", "inspect", "none"], capsys)[1])
    assert inspected[0]["Name"] == "none" and inspected[0]["Driver"] == "null"
